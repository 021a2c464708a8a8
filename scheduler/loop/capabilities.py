"""The capabilities file: what the federation's pools could ever run, for the front door.

The job_submit shim in slurmctld reads it (no network there) to refuse at sbatch time a job
that no pool could ever run, or that breaks a bound of scheduler.limits (the header carries
them, so the shim and the API apply the same numbers). One line per pool and GPU size:
`nodes` pool nodes have at least `gpus_per_node` GPUs. CPUs and memory are the largest among
those nodes, so the file may admit a job that sfedd then refuses with the exact reason; it
never refuses one a pool could run.

A pool whose nodes have GPU types or features also gets the same lines per kind of node:
`gpu_type=<type> features=<a,b>` (`-` for none) names the kind, and the shim judges a typed
or constrained job on the kinds that have them, together.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from scheduler.domain import NodeSnapshot, PoolSnapshot
from scheduler.limits import LIMITS
from scheduler.placement.features import FEATURE, GPU_TYPE

__all__ = ["render_capabilities", "write_atomically"]


def render_capabilities(pools: Sequence[PoolSnapshot], partition: str, generated: datetime) -> str:
    """The file's text; pools with no known nodes are left out."""
    bounds = " ".join(f"{k}={v}" for k, v in LIMITS.items())
    lines = [f"version=1 generated={int(generated.timestamp())} partition={partition} {bounds}"]
    for pool in pools:
        lines += _sizes(pool, pool.nodes)
        kinds: dict[tuple[str, str], list[NodeSnapshot]] = {}
        for node in pool.nodes:
            kinds.setdefault(_kind(node), []).append(node)
        if set(kinds) != {("-", "-")}:  # some node has a GPU type or features
            for (gpu_type, features), nodes in sorted(kinds.items()):
                lines += _sizes(pool, nodes, f" gpu_type={gpu_type} features={features}")
    return "\n".join(lines) + "\n"


def _kind(node: NodeSnapshot) -> tuple[str, str]:
    """A node's GPU type and features as the file spells them ("-": none, or none a job can
    name, such as a node's several types)."""
    gpu_type = node.gpu_type if GPU_TYPE.fullmatch(node.gpu_type) else "-"
    features = ",".join(f for f in node.features if FEATURE.fullmatch(f)) or "-"
    return gpu_type, features


def _sizes(
    pool: PoolSnapshot, nodes: list[NodeSnapshot] | tuple[NodeSnapshot, ...], kind: str = ""
) -> list[str]:
    """One line per GPU size among `nodes`: how many have at least that many GPUs."""
    lines = []
    for gpus in sorted({n.gpus_total for n in nodes}, reverse=True):
        able = [n for n in nodes if n.gpus_total >= gpus]
        lines.append(
            f"pool={pool.name} nodes={len(able)} gpus_per_node={gpus}"
            f" cpus_per_node={max(n.cpus_total for n in able)}"
            f" mem_mb_per_node={max(n.mem_total_mb for n in able)} state={pool.state.value}{kind}"
        )
    return lines


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
