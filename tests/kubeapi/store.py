"""The object store: every object by kind, namespace and name, with a global resourceVersion."""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from typing import Any

Obj = dict[str, Any]


def now_rfc3339(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


def random_suffix(n: int = 5) -> str:
    # The alphabet apimachinery's rand.String uses (no vowels, no confusable digits).
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


class Store:
    """Objects are plain dicts; callers hold the cluster lock."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self.resource_version = 1

    def _bump(self, obj: Obj) -> None:
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)

    @staticmethod
    def new_uid() -> str:
        return str(uuid.uuid4())

    def add(self, kind: str, obj: Obj, uid: str | None = None) -> Obj:
        meta = obj["metadata"]
        meta["uid"] = uid or self.new_uid()
        meta["creationTimestamp"] = now_rfc3339()
        if kind in ("Job", "Pod", "Service"):
            meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        self._bump(obj)
        self._objects[(kind, meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def replace(self, obj: Obj, new: Obj) -> None:
        """An update: obj (the stored dict, kept for its holders) takes new's content."""
        obj.clear()
        obj.update(new)
        self._bump(obj)

    def touch(self, obj: Obj) -> None:
        """Record a change made in place."""
        self._bump(obj)

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get((kind, namespace, name))

    def list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return [
            o
            for (k, ns, _), o in sorted(self._objects.items(), key=lambda kv: kv[0])
            if k == kind and (namespace is None or ns == namespace)
        ]

    def all(self) -> list[tuple[str, Obj]]:
        return [(k, o) for (k, _, _), o in self._objects.items()]

    def remove(self, kind: str, obj: Obj) -> None:
        meta = obj["metadata"]
        self._objects.pop((kind, meta.get("namespace", ""), meta["name"]), None)

    def exists_uid(self, uid: str) -> bool:
        return any(o["metadata"].get("uid") == uid for o in self._objects.values())

    def snapshot(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return copy.deepcopy(self.list(kind, namespace))
