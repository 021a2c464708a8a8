"""The capabilities file: what the federation's pools could ever run, for the front door.

The job_submit shim in slurmctld reads it (no network there) to refuse at sbatch time a job
that no pool could ever run, or that breaks a bound of scheduler.limits (the header carries
them, so the shim and the API apply the same numbers). One line per pool and GPU size:
`nodes` pool nodes have at least `gpus_per_node` GPUs. CPUs and memory are the largest among those nodes, so the file
may admit a job that sfedd then refuses with the exact reason; it never refuses one a pool
could run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from scheduler.domain import PoolSnapshot
from scheduler.limits import LIMITS

__all__ = ["render_capabilities", "write_atomically"]


def render_capabilities(pools: Sequence[PoolSnapshot], partition: str, generated: datetime) -> str:
    """The file's text; pools with no known nodes are left out."""
    bounds = " ".join(f"{k}={v}" for k, v in LIMITS.items())
    lines = [f"version=1 generated={int(generated.timestamp())} partition={partition} {bounds}"]
    for pool in pools:
        for gpus in sorted({n.gpus_total for n in pool.nodes}, reverse=True):
            able = [n for n in pool.nodes if n.gpus_total >= gpus]
            lines.append(
                f"pool={pool.name} nodes={len(able)} gpus_per_node={gpus}"
                f" cpus_per_node={max(n.cpus_total for n in able)}"
                f" mem_mb_per_node={max(n.mem_total_mb for n in able)} state={pool.state.value}"
            )
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one rename, so that a reader sees the old file or the new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
