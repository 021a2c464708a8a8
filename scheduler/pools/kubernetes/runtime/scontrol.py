"""scontrol for Kubernetes pools.

scontrol: only "scontrol show hostnames [hostlist]" (default $SLURM_JOB_NODELIST).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .hostlist import expand_hostlist
from .output import error, write_all

if TYPE_CHECKING:
    from collections.abc import Sequence


def run_scontrol(args: Sequence[str]) -> int:
    """scontrol show hostnames [hostlist]: one name per line; anything else is refused."""
    if len(args) not in (2, 3) or args[0] != "show" or args[1] not in ("hostnames", "hostname"):
        error("scontrol", 'only "scontrol show hostnames" is available on Kubernetes pools (sfed)')
        return 1
    expr = args[2] if len(args) == 3 else os.environ.get("SLURM_JOB_NODELIST", "")
    if not expr:
        error("scontrol", "no hostlist given and SLURM_JOB_NODELIST is not set")
        return 1
    try:
        names = expand_hostlist(expr)
    except ValueError as exc:
        error("scontrol", str(exc))
        return 1
    write_all(1, "".join(name + "\n" for name in names).encode(errors="surrogateescape"))
    return 0
