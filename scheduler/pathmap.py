"""Per-pool path translation: the same absolute path means the same data on every pool."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["PathMap"]


@dataclass(frozen=True, slots=True)
class PathMap:
    """Maps federation paths to a pool's paths by longest matching directory prefix.

    `/shared` -> `/mnt/shared` maps `/shared/x` to `/mnt/shared/x` but leaves `/sharedx` alone.
    Relative paths are left alone: Slurm resolves them against the (mapped) working directory.
    """

    prefixes: Mapping[str, str] = field(default_factory=dict)

    def translate(self, path: str) -> str:
        if not path.startswith("/"):
            return path
        best_root, best_dst = "", ""
        for src, dst in self.prefixes.items():
            root = src.rstrip("/")
            if (path == root or path.startswith(root + "/")) and len(src) > len(best_root):
                best_root, best_dst = src, dst
        if not best_root:
            return path
        rest = path[len(best_root.rstrip("/")) :].lstrip("/")
        base = best_dst.rstrip("/")
        return f"{base}/{rest}" if rest else base or "/"
