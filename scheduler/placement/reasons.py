"""The human reasons of the placement core: one pool per reason, the pool's name first.

Pure string formatting from counts. The counting lives in `core` and `nodes` (and, written
the plain way, in the tests' reference implementation), so both produce the very same words.

A request with a GPU type or a constraint counts only the nodes that have them: its reasons
say so with `match`, the words of `features.NodeMatch.words` (`GPU type a100`,
`features a100&ib`), e.g. `beta: only 1 node with GPU type h100 and >= 8 GPUs (job needs 2)`.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "cap_reached",
    "chosen",
    "drained",
    "never",
    "no_capacity",
    "not_now",
    "partition_not_served",
    "preferred",
    "unmatched",
    "unreachable",
]


def _many(count: int, word: str) -> str:
    """1 node, 3 nodes."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _only(count: int, what: str) -> str:
    """Only 1 node, only 3 nodes, no node (`what` ends with "node")."""
    if count <= 0:
        return f"no {what}"
    return f"only {count} {what}" if count == 1 else f"only {count} {what}s"


def _of(count: int) -> str:
    return "none of them" if count <= 0 else f"only {count} of them"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _totals(gpus: int, cpus: int | None, mem: int | None, match: Sequence[str] = ()) -> str:
    """E.g. `>= 8 GPUs`, `>= 8 GPUs and >= 64 CPUs`, `>= 64 CPUs` (GPUs left out when 0),
    after the match's words: `GPU type a100 and >= 8 GPUs`."""
    parts = list(match)
    if gpus > 0:
        parts.append(f">= {_many(gpus, 'GPU')}")
    if cpus is not None:
        parts.append(f">= {_many(cpus, 'CPU')}")
    if mem is not None:
        parts.append(f">= {mem} MB memory")
    return _join(parts)


def _on(match: Sequence[str]) -> str:
    """` with GPU type a100 and features ib` after a node count, or nothing."""
    return f" with {_join(list(match))}" if match else ""


def unmatched(pool: str, match: Sequence[str]) -> str:
    """E.g. `beta: no node with GPU type a100`, `alpha: no node with features a100&ib`."""
    return f"{pool}: no node with {_join(list(match))}"


def partition_not_served(pool: str, partition: str) -> str:
    return f"{pool}: partition {partition} not served"


def drained(pool: str) -> str:
    return f"{pool}: drained"


def unreachable(pool: str) -> str:
    return f"{pool}: unreachable"


def no_capacity(pool: str) -> str:
    return f"{pool}: capacity unknown (no nodes reported)"


def cap_reached(pool: str, cap: int) -> str:
    return f"{pool}: not tried, this pass reached its cap of {_many(cap, 'placement')}"


def never(
    pool: str,
    nodes: int,
    gpus: int,
    cpus: int,
    mem: int | None,
    *,
    node_count: int,
    max_gpus: int,
    with_gpus: int,
    max_cpus: int,
    with_cpus: int,
    max_mem: int,
    with_mem: int,
    match: Sequence[str] = (),
) -> str | None:
    """Why `pool` could not run the job even empty, or None when it could.

    From the totals of all its nodes (schedulable or not: they may come back) that have the
    job's GPU type and features (`match`, their words; all nodes when empty): `node_count`
    nodes, the largest per-node totals, and how many nodes have at least the job's GPUs
    (`with_gpus`), also its CPUs (`with_cpus`), also its memory (`with_mem`).
    """
    on = _on(match) if match else ""
    if node_count < nodes:
        return f"{pool}: only {_many(node_count, 'node')}{on} (job needs {nodes})"
    if max_gpus < gpus:
        return f"{pool}: at most {_many(max_gpus, 'GPU')} per node{on} (job needs {gpus})"
    if with_gpus < nodes:
        totals = _totals(gpus, None, None, match)
        return f"{pool}: {_only(with_gpus, 'node')} with {totals} (job needs {nodes})"
    if max_cpus < cpus:
        return f"{pool}: at most {_many(max_cpus, 'CPU')} per node{on} (job needs {cpus})"
    if with_cpus < nodes:
        totals = _totals(gpus, cpus, None, match)
        return f"{pool}: {_only(with_cpus, 'node')} with {totals} (job needs {nodes})"
    if mem is None:
        return None
    if max_mem < mem:
        return f"{pool}: at most {max_mem} MB memory per node{on} (job needs {mem})"
    if with_mem < nodes:
        totals = _totals(gpus, cpus, mem, match)
        return f"{pool}: {_only(with_mem, 'node')} with {totals} (job needs {nodes})"
    return None


def not_now(
    pool: str,
    nodes: int,
    gpus: int,
    cpus: int,
    mem: int | None,
    *,
    with_gpus: int,
    with_cpus: int,
    with_mem: int,
    match: Sequence[str] = (),
) -> str:
    """Why `pool` cannot run the job now, from how many schedulable nodes (of those with the
    job's GPU type and features, `match`) have the free GPUs (`with_gpus`), also the free
    CPUs (`with_cpus`), also the free memory (`with_mem`).

    Names the first resource that runs short: GPUs, then CPUs, then memory.
    """
    need = f"({nodes} needed)"
    gpu_need = f">= {_many(gpus, 'free GPU')}"
    cpu_need = f">= {_many(cpus, 'free CPU')}"
    # Most requests ask no GPU type or features: those reasons are formatted the short way.
    gpu_head = _join([*match, gpu_need]) if match else gpu_need
    if with_gpus < nodes:
        if gpus > 0:
            return f"{pool}: {_only(with_gpus, 'node')} with {gpu_head} {need}"
        return f"{pool}: {_only(with_gpus, 'schedulable node')}{_on(match)} {need}"
    if with_cpus < nodes:
        if gpus > 0:
            return (
                f"{pool}: {_many(with_gpus, 'node')} with {gpu_head}, "
                f"but {_of(with_cpus)} with {cpu_need} {need}"
            )
        cpu_head = _join([*match, cpu_need]) if match else cpu_need
        return f"{pool}: {_only(with_cpus, 'node')} with {cpu_head} {need}"
    head = _join([*match, gpu_need, cpu_need] if gpus > 0 else [*match, cpu_need])
    return (
        f"{pool}: {_many(with_cpus, 'node')} with {head}, "
        f"but {_of(with_mem)} with >= {mem} MB free memory {need}"
    )


def chosen(
    pool: str,
    nodes: int,
    gpus: int,
    cpus: int,
    mem: int | None,
    *,
    fitting: int,
    match: Sequence[str] = (),
) -> str:
    """E.g. `beta: 4 nodes with >= 8 free GPUs (2 needed)`; CPUs and memory when no GPUs;
    the GPU type and features first when asked (`4 nodes with GPU type h100 and >= 8 ...`)."""
    if gpus > 0:
        what = [f">= {_many(gpus, 'free GPU')}"]
    elif mem is None:
        what = [f">= {_many(cpus, 'free CPU')}"]
    else:
        what = [f">= {_many(cpus, 'free CPU')}", f">= {mem} MB free memory"]
    return f"{pool}: {_many(fitting, 'node')} with {_join([*match, *what])} ({nodes} needed)"


def preferred(
    pool: str, weight: int, price: float, winner: str, winner_weight: int, winner_price: float
) -> str:
    """E.g. `gamma: fits, but beta preferred (weight 1 < 5)`, or by price, or by name."""
    if winner_weight != weight:
        why = f"weight {winner_weight} < {weight}"
    elif winner_price != price:
        low, high = f"{winner_price:.2f}", f"{price:.2f}"
        if low == high:
            low, high = repr(winner_price), repr(price)
        why = f"price {low} < {high} per GPU-hour"
    else:
        why = "same weight and price, name order"
    return f"{pool}: fits, but {winner} preferred ({why})"
