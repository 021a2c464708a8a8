"""sbatch's option syntax, parsed the way sbatch parses it (time limits, memory, gres).

Pure functions; each raises ValueError with a message fit to show the user.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "expand_filename_pattern",
    "parse_gres",
    "parse_memory_mb",
    "parse_time_limit_min",
    "sbatch_directives",
]

_TIME_FORMS = (
    # sbatch(1): "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
    # "days-hours:minutes" and "days-hours:minutes:seconds".
    (re.compile(r"^(\d+)$"), ("m",)),
    (re.compile(r"^(\d+):(\d+)$"), ("m", "s")),
    (re.compile(r"^(\d+):(\d+):(\d+)$"), ("h", "m", "s")),
    (re.compile(r"^(\d+)-(\d+)$"), ("d", "h")),
    (re.compile(r"^(\d+)-(\d+):(\d+)$"), ("d", "h", "m")),
    (re.compile(r"^(\d+)-(\d+):(\d+):(\d+)$"), ("d", "h", "m", "s")),
)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_FILENAME_PATTERN = re.compile(r"%(.)")


def expand_filename_pattern(pattern: str, values: Mapping[str, str | None]) -> tuple[str, bool]:
    """sbatch's -o/-e filename patterns (%j, %x, %u, %%, ...) filled from `values` (letter ->
    text; None or absent: not known). Returns the text, unknown patterns left as written, and
    whether every pattern was known."""
    complete = True

    def sub(match: re.Match[str]) -> str:
        nonlocal complete
        value = values.get(match.group(1))
        if value is None:
            complete = False
            return match.group(0)
        return value

    return _FILENAME_PATTERN.sub(sub, pattern), complete


def parse_time_limit_min(text: str) -> int:
    """sbatch --time: returns whole minutes, rounding seconds up as Slurm does."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited"):
        raise ValueError("an unlimited time limit is not accepted; give a limit such as 1-00:00:00")
    for pattern, units in _TIME_FORMS:
        match = pattern.match(text)
        if match:
            seconds = sum(
                int(v) * _UNIT_SECONDS[u] for v, u in zip(match.groups(), units, strict=True)
            )
            if seconds <= 0:
                raise ValueError(f"time limit {text!r} must be more than zero")
            return -(-seconds // 60)
    raise ValueError(
        f"invalid time limit {text!r}: use minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
    )


_MEM = re.compile(r"^(\d+)([KMGT]?)B?$", re.IGNORECASE)
_MEM_FACTOR = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def parse_memory_mb(text: str) -> int:
    """sbatch --mem: a number with an optional K/M/G/T suffix, megabytes by default."""
    match = _MEM.match(text.strip())
    if not match:
        raise ValueError(f"invalid memory size {text!r}: use a number with K, M, G or T (e.g. 16G)")
    mb = int(int(match.group(1)) * _MEM_FACTOR[match.group(2).upper()])
    if mb <= 0:
        raise ValueError(f"memory size {text!r} must be at least 1M")
    return mb


def parse_gres(text: str) -> int:
    """sbatch --gres per node: returns the GPUs per node; only gpu is a federated resource."""
    gpus = 0
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rest = item.partition(":")
        if name != "gpu":
            raise ValueError(f"unknown gres {name!r}: the federation schedules only gpu")
        if not rest:
            count = "1"
        elif ":" in rest:
            raise ValueError(f"typed gres {item!r} is not supported: ask for gpu:N")
        else:
            count = rest
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"invalid gres count in {item!r}: must be a whole number >= 1")
        gpus += int(count)
    return gpus


def sbatch_directives(script: bytes) -> list[str]:
    """The arguments of the script's leading #SBATCH lines, as sbatch reads them.

    sbatch stops at the first line that is neither blank, a comment, nor the #! line.
    """
    import shlex

    args: list[str] = []
    for raw in script.split(b"\n")[1:]:
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            continue
        if not line.startswith("#"):
            break
        if line.startswith("#SBATCH"):
            rest = line[len("#SBATCH") :]
            if rest and not rest[0].isspace():
                continue
            body = rest.split(" #", 1)[0]
            args.extend(shlex.split(body, comments=False))
    return args
