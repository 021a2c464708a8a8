"""PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch, JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from typing import Any

from tests.kubeapi.apierrors import ApiError, bad_request

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
SUPPORTED = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

# patchMergeKey of the list fields a strategic merge patch merges (by field name; "ports" is
# keyed by containerPort in containers and by port in Services).
_MERGE_KEYS = {
    "ownerReferences": "uid",
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
}
_SET_LISTS = {"finalizers"}  # primitive lists with patchStrategy merge


def unsupported_media_type() -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(SUPPORTED),
    )


def apply(content_type: str, current: dict[str, Any], patch: Any) -> Any:
    if content_type == JSON_PATCH:
        return json_patch(current, patch)
    if not isinstance(patch, dict):
        raise bad_request(
            "json: cannot unmarshal "
            + type(patch).__name__
            + " into Go value of type map[string]interface {}"
        )
    if content_type == MERGE_PATCH:
        return merge_patch(current, patch)
    return strategic_merge_patch(current, patch)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Merge patch, except lists with a merge key merge by it (with `$patch: delete` items)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [x for x in result.get(name) or [] if x not in value]
            continue
        if key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys: ordering hints
        old = result.get(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(old, list) and _merge_key(key, value + old):
            result[key] = _merge_list(old, value, _merge_key(key, value + old) or "")
        elif isinstance(value, list) and isinstance(old, list) and key in _SET_LISTS:
            result[key] = old + [x for x in value if x not in old]
        else:
            result[key] = strategic_merge_patch(old, value)
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        has_container_port = any(isinstance(i, dict) and "containerPort" in i for i in items)
        return "containerPort" if has_container_port else "port"
    return _MERGE_KEYS.get(field)


def _merge_list(old: list[Any], patch: list[Any], key: str) -> list[Any]:
    out = copy.deepcopy(old)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        at = next(
            (i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if at is not None:
                del out[at]
        elif at is None:
            out.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            out[at] = strategic_merge_patch(out[at], item)
    return out


# --- RFC 6902 ---------------------------------------------------------------------------------


class _PatchFailed(Exception):
    pass


def _tokens(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise _PatchFailed(f'invalid JSON pointer: "{pointer}"')
    if pointer == "":
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, allow_end: bool, pointer: str) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise _PatchFailed(f"invalid array index {token!r} in {pointer}")
    i = int(token)
    if i > len(container) or (i == len(container) and not allow_end):
        raise _PatchFailed(f"array index out of bounds: {pointer}: missing value")
    return i


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise _PatchFailed("the root document cannot be the target of this operation")
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, False, pointer)]
        else:
            raise _PatchFailed(f'doc is missing path: "{pointer}": missing value')
    if not isinstance(cur, dict | list):
        raise _PatchFailed(f'doc is missing path: "{pointer}": missing value')
    return cur, tokens[-1]


def _get(doc: Any, pointer: str) -> Any:
    cur = doc
    for t in _tokens(pointer):
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, False, pointer)]
        else:
            raise _PatchFailed(f"doc is missing key: {pointer}: missing value")
    return cur


def _remove(doc: Any, pointer: str) -> Any:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailed(f"unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    return parent.pop(_index(parent, last, False, pointer))


def _add(doc: Any, pointer: str, value: Any) -> Any:
    if pointer == "":
        return copy.deepcopy(value)
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    else:
        parent.insert(_index(parent, last, True, pointer), copy.deepcopy(value))
    return doc


def json_patch(doc: dict[str, Any], ops: Any) -> Any:
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise bad_request(
            "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
        )
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op.get("path")
        try:
            if kind in ("add", "replace", "test") and "value" not in op:
                raise _PatchFailed(f"missing value for {kind} operation")
            if kind == "add":
                doc = _add(doc, path, op["value"])
            elif kind == "remove":
                _remove(doc, path)
            elif kind == "replace":
                _get(doc, path)
                if path == "":
                    doc = copy.deepcopy(op["value"])
                else:
                    _remove(doc, path)
                    doc = _add(doc, path, op["value"])
            elif kind == "test":
                if _get(doc, path) != op["value"]:
                    raise _PatchFailed(f"testing value {path} failed: test failed")
            elif kind in ("move", "copy"):
                source = op.get("from")
                value = _remove(doc, source) if kind == "move" else _get(doc, source)
                doc = _add(doc, path, value)
            else:
                raise bad_request(f"Unexpected kind: {kind}")
        except _PatchFailed as e:
            where = "" if kind == "test" else f"{kind} operation does not apply: "
            raise ApiError(422, "Invalid", where + str(e)) from None
    return doc
