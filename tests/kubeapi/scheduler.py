"""The default scheduler's filters, in its plugin order, and its FitError message."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from tests.kubeapi.quantity import parse_quantity
from tests.kubeapi.selectors import label_selector_matches, node_selector_term_matches
from tests.kubeapi.store import Obj, Store, now_rfc3339

HOSTNAME_KEY = "kubernetes.io/hostname"


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    total: Counter[str] = Counter()
    for c in pod["spec"].get("containers") or []:
        for name, raw in ((c.get("resources") or {}).get("requests") or {}).items():
            total[name] += parse_quantity(raw)
    # Init containers run one at a time: the pod needs the largest of them if that is more.
    for c in pod["spec"].get("initContainers") or []:
        for name, raw in ((c.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total[name], parse_quantity(raw))
    return dict(total)


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t["key"] != taint.get("key"):
            continue
        if op == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _node_ready(node: Obj) -> bool:
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def _anti_terms(pod: Obj) -> list[dict[str, Any]]:
    anti = ((pod["spec"].get("affinity") or {}).get("podAntiAffinity")) or {}
    return anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []


def _term_matches(term: dict[str, Any], owner: Obj, other: Obj) -> bool:
    namespaces = term.get("namespaces") or [owner["metadata"]["namespace"]]
    if other["metadata"]["namespace"] not in namespaces:
        return False
    return label_selector_matches(term.get("labelSelector"), other["metadata"].get("labels"))


class Scheduler:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _bound(self) -> dict[str, list[Obj]]:
        by_node: dict[str, list[Obj]] = {}
        for p in self.store.list("Pod"):
            if p["spec"].get("nodeName") and not is_terminal(p):
                by_node.setdefault(p["spec"]["nodeName"], []).append(p)
        return by_node

    def _filter(
        self, pod: Obj, node: Obj, on_node: list[Obj], bound: dict[str, list[Obj]], nodes: list[Obj]
    ) -> list[str]:
        """Reasons node cannot take pod, from the first failing plugin; [] if it fits."""
        spec = pod["spec"]
        tolerations = spec.get("tolerations") or []
        unsched_taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
        if node["spec"].get("unschedulable") and not tolerates(tolerations, unsched_taint):
            return ["node(s) were unschedulable"]
        for taint in node["spec"].get("taints") or []:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(
                tolerations, taint
            ):
                return [
                    f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
                ]
        if not self._affinity_ok(pod, node):
            return ["node(s) didn't match Pod's node affinity/selector"]
        reasons = self._resources(pod, node, on_node)
        if reasons:
            return reasons
        if not self._spread_ok(pod, node, bound, nodes):
            return ["node(s) didn't match pod topology spread constraints"]
        for term in _anti_terms(pod):
            if term.get("topologyKey") == HOSTNAME_KEY and any(
                _term_matches(term, pod, o) for o in on_node
            ):
                return ["node(s) didn't match pod anti-affinity rules"]
        for other in on_node:
            for term in _anti_terms(other):
                if term.get("topologyKey") == HOSTNAME_KEY and _term_matches(term, other, pod):
                    return ["node(s) didn't satisfy existing pods anti-affinity rules"]
        return []

    def _affinity_ok(self, pod: Obj, node: Obj) -> bool:
        labels = node["metadata"].get("labels") or {}
        for k, v in (pod["spec"].get("nodeSelector") or {}).items():
            if labels.get(k) != v:
                return False
        na = ((pod["spec"].get("affinity") or {}).get("nodeAffinity")) or {}
        required = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if required:
            return any(
                node_selector_term_matches(t, node) for t in required.get("nodeSelectorTerms") or []
            )
        return True

    def _resources(self, pod: Obj, node: Obj, on_node: list[Obj]) -> list[str]:
        alloc = {k: parse_quantity(v) for k, v in node["status"]["allocatable"].items()}
        used: Counter[str] = Counter()
        for other in on_node:
            for k, v in pod_requests(other).items():
                used[k] += v
        reasons = []
        if len(on_node) + 1 > alloc.get("pods", Decimal(110)):
            reasons.append("Too many pods")
        for name, want in sorted(pod_requests(pod).items()):
            if want == 0:
                continue
            if want > alloc.get(name, Decimal(0)) - used[name]:
                reasons.append(f"Insufficient {name}")
        return reasons

    def _spread_ok(
        self, pod: Obj, node: Obj, bound: dict[str, list[Obj]], nodes: list[Obj]
    ) -> bool:
        for tsc in pod["spec"].get("topologySpreadConstraints") or []:
            if (
                tsc.get("whenUnsatisfiable") != "DoNotSchedule"
                or tsc.get("topologyKey") != HOSTNAME_KEY
            ):
                continue
            ns = pod["metadata"]["namespace"]

            def count(n: Obj, tsc: dict[str, Any] = tsc, ns: str = ns) -> int:
                return sum(
                    1
                    for o in bound.get(n["metadata"]["name"], [])
                    if o["metadata"]["namespace"] == ns
                    and label_selector_matches(
                        tsc.get("labelSelector"), o["metadata"].get("labels")
                    )
                )

            eligible = [n for n in nodes if self._affinity_ok(pod, n)]
            counts = [count(n) for n in eligible] or [0]
            self_match = label_selector_matches(
                tsc.get("labelSelector"), pod["metadata"].get("labels")
            )
            if count(node) + int(self_match) - min(counts) > tsc.get("maxSkew", 1):
                return False
        return True

    def schedule(self) -> bool:
        """Bind every pending pod that fits somewhere; True if anything changed."""
        changed = False
        nodes = self.store.list("Node")
        for pod in self.store.list("Pod"):
            spec = pod["spec"]
            if spec.get("nodeName") or pod["metadata"].get("deletionTimestamp") or is_terminal(pod):
                continue
            if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            bound = self._bound()
            missing_pvc = self._missing_pvc(pod)
            if missing_pvc:
                changed |= self._unschedulable(
                    pod,
                    f'0/{len(nodes)} nodes are available: persistentvolumeclaim "{missing_pvc}" not found.',
                )
                continue
            fits, reasons = [], Counter[str]()
            for node in nodes:
                on_node = bound.get(node["metadata"]["name"], [])
                why = self._filter(pod, node, on_node, bound, nodes)
                if why:
                    reasons.update(why)
                else:
                    fits.append(node)
            if fits:
                best = min(
                    fits,
                    key=lambda n: (
                        len(bound.get(n["metadata"]["name"], [])),
                        n["metadata"]["name"],
                    ),
                )
                spec["nodeName"] = best["metadata"]["name"]
                _set_scheduled(pod, "True", None, None)
                self.store.touch(pod)
                changed = True
            else:
                listed = ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))
                changed |= self._unschedulable(
                    pod, f"0/{len(nodes)} nodes are available: {listed}."
                )
        return changed

    def _missing_pvc(self, pod: Obj) -> str | None:
        for v in pod["spec"].get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and not self.store.get(
                "PersistentVolumeClaim", pod["metadata"]["namespace"], claim
            ):
                return claim
        return None

    def _unschedulable(self, pod: Obj, message: str) -> bool:
        for c in pod["status"].get("conditions") or []:
            if c["type"] == "PodScheduled" and c.get("message") == message:
                return False
        _set_scheduled(pod, "False", "Unschedulable", message)
        self.store.touch(pod)
        return True


def _set_scheduled(pod: Obj, status: str, reason: str | None, message: str | None) -> None:
    conds = [c for c in pod["status"].get("conditions") or [] if c["type"] != "PodScheduled"]
    cond: dict[str, Any] = {
        "type": "PodScheduled",
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now_rfc3339(),
    }
    if reason:
        cond["reason"] = reason
        cond["message"] = message
    pod["status"]["conditions"] = [cond, *conds]
