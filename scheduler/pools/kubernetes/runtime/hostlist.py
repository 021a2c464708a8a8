"""Slurm hostlists: expansion ("a-[0-3,5]" -> names) and compression (names -> "a-[0-3,5]").

scontrol expands them ("scontrol show hostnames"); srun writes its step's SLURM_STEP_NODELIST
with them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


MAX_HOSTLIST = 100_000


def _split_top_level(expr: str) -> list[str]:
    items: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(expr):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"nested '[' in hostlist {expr!r}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in hostlist {expr!r}")
        elif ch == "," and depth == 0:
            items.append(expr[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '[' in hostlist {expr!r}")
    items.append(expr[start:])
    return [item.strip() for item in items if item.strip()]


def _expand_ranges(spec: str, expr: str) -> list[str]:
    values: list[str] = []
    for part in spec.split(","):
        lo, sep, hi = part.strip().partition("-")
        hi = hi if sep else lo
        if not (lo.isdigit() and hi.isdigit()) or int(hi) < int(lo):
            raise ValueError(f"bad range {part!r} in hostlist {expr!r}")
        if len(values) + int(hi) - int(lo) >= MAX_HOSTLIST:
            raise ValueError(f"hostlist {expr!r} has more than {MAX_HOSTLIST} names")
        # Slurm keeps the zero padding of the range's first number.
        values.extend(str(n).zfill(len(lo)) for n in range(int(lo), int(hi) + 1))
    return values


def expand_hostlist(expr: str) -> list[str]:
    """Expands a Slurm hostlist ("a-[0-3,5],b-[01-02]") to names, in order, padding kept."""
    names: list[str] = []
    for item in _split_top_level(expr):
        results = [""]
        pos = 0
        while pos < len(item):
            open_at = item.find("[", pos)
            if open_at < 0:
                results = [r + item[pos:] for r in results]
                break
            close_at = item.index("]", open_at)
            literal = item[pos:open_at]
            values = _expand_ranges(item[open_at + 1 : close_at], expr)
            results = [r + literal + v for r in results for v in values]
            pos = close_at + 1
        names.extend(results)
        if len(names) > MAX_HOSTLIST:
            raise ValueError(f"hostlist {expr!r} has more than {MAX_HOSTLIST} names")
    return names


_NUMBERED = re.compile(r"(.*?)(\d+)")


def compress_hostlist(names: Sequence[str]) -> str:
    """Writes names as a Slurm hostlist ("t-[0-1]"); expand_hostlist() gives back the same list.

    Only neighbours with the same prefix share brackets, so the order of the names is kept.
    """
    items: list[str] = []
    prefix: str | None = None
    ranges: list[list[str]] = []  # [first digits, last digits]

    def flush() -> None:
        if prefix is None:
            return
        if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
            items.append(prefix + ranges[0][0])
        else:
            spec = ",".join(lo if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
            items.append(f"{prefix}[{spec}]")

    for name in names:
        if not name or any(ch in name for ch in "[],") or name != name.strip():
            raise ValueError(f"{name!r} cannot be written in a hostlist")
        match = _NUMBERED.fullmatch(name)
        if match is None:
            flush()
            prefix, ranges = None, []
            items.append(name)
            continue
        head, digits = match.group(1), match.group(2)
        if head == prefix:
            last = ranges[-1]
            # Extends the range only if expansion (padded to the first number) yields `digits`.
            if int(digits) == int(last[1]) + 1 and str(int(digits)).zfill(len(last[0])) == digits:
                last[1] = digits
            else:
                ranges.append([digits, digits])
        else:
            flush()
            prefix, ranges = head, [[digits, digits]]
    flush()
    return ",".join(items)
