"""Graceful deletion, propagation policies and the garbage collector."""

from __future__ import annotations

from collections.abc import Callable

from tests.kubeapi.store import Obj, Store, now_rfc3339

FOREGROUND = "foregroundDeletion"


def _is_terminal_pod(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def dependents(store: Store, owner: Obj) -> list[tuple[str, Obj]]:
    uid = owner["metadata"]["uid"]
    return [
        (k, o)
        for k, o in store.all()
        if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])
    ]


def request_delete(
    store: Store,
    kind: str,
    obj: Obj,
    propagation: str,
    grace: int | None,
    has_process: Callable[[Obj], bool],
) -> bool:
    """Start deleting obj; True when it is gone at once."""
    meta = obj["metadata"]
    if kind == "Pod":
        if not meta.get("deletionTimestamp"):
            if grace is None:
                grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
            # Unscheduled, terminal or process-less pods need no kubelet: gone at once.
            if not obj["spec"].get("nodeName") or _is_terminal_pod(obj) or not has_process(obj):
                grace = 0
            meta["deletionTimestamp"] = now_rfc3339()
            meta["deletionGracePeriodSeconds"] = grace
            store.touch(obj)
        elif grace is not None and grace < meta.get("deletionGracePeriodSeconds", 30):
            meta["deletionGracePeriodSeconds"] = grace
            store.touch(obj)
        if not meta.get("finalizers") and not has_process(obj):
            store.remove(kind, obj)
            return True
        return False
    if propagation == "Orphan":
        for _, dep in dependents(store, obj):
            refs = dep["metadata"]["ownerReferences"]
            dep["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != meta["uid"]]
            if not dep["metadata"]["ownerReferences"]:
                del dep["metadata"]["ownerReferences"]
            store.touch(dep)
    if propagation == "Foreground" and dependents(store, obj):
        finalizers = meta.setdefault("finalizers", [])
        if FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
    if not meta.get("deletionTimestamp"):
        meta["deletionTimestamp"] = now_rfc3339()
        meta["deletionGracePeriodSeconds"] = 0
    if not meta.get("finalizers"):
        store.remove(kind, obj)
        return True
    store.touch(obj)
    return False


def collect(store: Store, has_process: Callable[[Obj], bool]) -> bool:
    """One garbage-collector pass; True if anything changed."""
    changed = False
    uids = {o["metadata"]["uid"] for _, o in store.all()}
    for kind, obj in store.all():
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        if (
            refs
            and not meta.get("deletionTimestamp")
            and not any(r.get("uid") in uids for r in refs)
        ):
            request_delete(store, kind, obj, "Background", None, has_process)
            changed = True
    for kind, obj in store.all():
        meta = obj["metadata"]
        if FOREGROUND in (meta.get("finalizers") or []):
            deps = dependents(store, obj)
            for dep_kind, dep in deps:
                if not dep["metadata"].get("deletionTimestamp"):
                    request_delete(store, dep_kind, dep, "Background", None, has_process)
                    changed = True
            if not dependents(store, obj):
                meta["finalizers"].remove(FOREGROUND)
                if not meta["finalizers"]:
                    del meta["finalizers"]
                store.touch(obj)
                changed = True
        removable = kind != "Pod" or not has_process(obj)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and removable:
            store.remove(kind, obj)
            changed = True
    return changed
