"""Label selectors (query strings and LabelSelector objects), field selectors, node selectors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.kubeapi.apierrors import ApiError, bad_request


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t.strip() for t in terms]


_SET = re.compile(r"(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)")
_EQ = re.compile(r"(?P<key>[^\s!=(),]+)\s*(?P<op>==|!=|=)\s*(?P<value>[^\s!=(),]*)")
_KEY = re.compile(r"(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)")


def parse_label_selector(selector: str | None) -> list[Requirement]:
    """Parse a labelSelector query; 400 BadRequest on syntax errors, like the apiserver."""
    if not selector or not selector.strip():
        return []
    reqs = []
    for term in _split_terms(selector):
        if m := _SET.fullmatch(term):
            values = tuple(v.strip() for v in m["values"].split(",") if v.strip())
            reqs.append(Requirement(m["key"], m["op"], values))
        elif m := _EQ.fullmatch(term):
            op = "!=" if m["op"] == "!=" else "="
            reqs.append(Requirement(m["key"], op, (m["value"],)))
        elif m := _KEY.fullmatch(term):
            reqs.append(Requirement(m["key"], "!" if m["neg"] else "exists"))
        else:
            raise bad_request(
                f"unable to parse requirement: found '{term}', expected: valid selector"
            )
    return reqs


def labels_match(reqs: list[Requirement], labels: dict[str, str] | None) -> bool:
    return all(r.matches(labels or {}) for r in reqs)


def _expression(expr: dict[str, Any]) -> Requirement:
    op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}[expr["operator"]]
    return Requirement(expr["key"], op, tuple(expr.get("values") or ()))


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A metav1.LabelSelector: nil matches nothing, {} matches everything."""
    if selector is None:
        return False
    reqs = [Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    reqs += [_expression(e) for e in selector.get("matchExpressions") or []]
    return labels_match(reqs, labels)


def node_selector_term_matches(term: dict[str, Any], node: dict[str, Any]) -> bool:
    """A NodeSelectorTerm (matchExpressions on labels, matchFields on metadata.name)."""
    labels = node["metadata"].get("labels") or {}
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    for expr in exprs:
        if expr["operator"] in ("Gt", "Lt"):
            value = labels.get(expr["key"])
            if value is None or not value.lstrip("-").isdigit():
                return False
            bound = int(expr["values"][0])
            ok = int(value) > bound if expr["operator"] == "Gt" else int(value) < bound
            if not ok:
                return False
        elif not _expression(expr).matches(labels):
            return False
    for expr in fields:
        if not _expression(expr).matches({"metadata.name": node["metadata"]["name"]}):
            return False
    return True


# Field selectors the apiserver supports per kind (pkg/registry/*/strategy.go).
_FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {}


def _path(*keys: str) -> Callable[[dict[str, Any]], str]:
    def get(obj: dict[str, Any]) -> str:
        cur: Any = obj
        for k in keys:
            cur = (cur or {}).get(k)
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return "" if cur is None else str(cur)

    return get


_COMMON = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}
_FIELDS["Pod"] = _COMMON | {
    "spec.nodeName": _path("spec", "nodeName"),
    "spec.restartPolicy": _path("spec", "restartPolicy"),
    "spec.schedulerName": _path("spec", "schedulerName"),
    "spec.serviceAccountName": _path("spec", "serviceAccountName"),
    "spec.hostNetwork": lambda o: "true" if (o.get("spec") or {}).get("hostNetwork") else "false",
    "status.phase": _path("status", "phase"),
    "status.podIP": _path("status", "podIP"),
    "status.nominatedNodeName": _path("status", "nominatedNodeName"),
}
_FIELDS["Secret"] = _COMMON | {"type": _path("type")}
_FIELDS["Job"] = _COMMON | {"status.successful": _path("status", "succeeded")}
_FIELDS["Node"] = _COMMON | {
    "spec.unschedulable": lambda o: (
        "true" if (o.get("spec") or {}).get("unschedulable") else "false"
    )
}


def field_selector(kind: str, selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate for a fieldSelector query; 400 for unsupported fields, like the apiserver."""
    if not selector or not selector.strip():
        return lambda _obj: True
    supported = _FIELDS.get(kind, _COMMON)
    checks: list[tuple[Callable[[dict[str, Any]], str], bool, str]] = []
    for term in (t.strip() for t in selector.split(",")):
        m = re.fullmatch(r"([^=!]+?)\s*(==|!=|=)\s*(.*)", term)
        if not m:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        field, op, value = m.groups()
        if field not in supported:
            raise ApiError(400, "BadRequest", f"field label not supported: {field}")
        checks.append((supported[field], op != "!=", value))
    return lambda obj: all((get(obj) == value) == equal for get, equal, value in checks)
