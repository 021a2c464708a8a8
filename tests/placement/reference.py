"""The placement rules written the plain way: every job, every pool, every node, every time.

Slow (jobs x pools x nodes) and obviously right; `test_reference` checks that the fast
core decides exactly the same, reasons included. Only the wording is shared (from
`scheduler.placement.reasons`); every count is made here, independently.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.domain import (
    Decision,
    Job,
    JobRequest,
    NodeSnapshot,
    PoolSnapshot,
    PoolState,
    PoolVerdict,
)
from scheduler.placement import Policy, reasons

__all__ = ["reference_never_fits", "reference_place"]


class _Node:
    def __init__(self, node: NodeSnapshot) -> None:
        self.name, self.gpus, self.cpus, self.mem = (
            node.name,
            node.gpus_free,
            node.cpus_free,
            node.mem_free_mb,
        )
        self.gpu_type, self.features = node.gpu_type, node.features


def _has_type(node: NodeSnapshot | _Node, request: JobRequest) -> bool:
    return request.gpu_type is None or node.gpu_type == request.gpu_type


def _has_features(node: NodeSnapshot | _Node, request: JobRequest) -> bool:
    asked = request.constraint
    if asked is None:
        return True
    if "|" in asked:
        return any(name in node.features for name in asked.split("|"))
    return all(name in node.features for name in asked.split("&"))


def _accepts(node: NodeSnapshot | _Node, request: JobRequest) -> bool:
    return _has_type(node, request) and _has_features(node, request)


def _words(request: JobRequest, *, gpu_type: bool = True, features: bool = True) -> list[str]:
    out = []
    if gpu_type and request.gpu_type is not None:
        out.append(f"GPU type {request.gpu_type}")
    if features and request.constraint is not None:
        out.append(f"features {request.constraint}")
    return out


def _fits(n: _Node, request: JobRequest) -> bool:
    mem = request.mem_per_node_mb
    return (
        _accepts(n, request)
        and n.gpus >= request.gpus_per_node
        and n.cpus >= request.cpus_per_node
        and (mem is None or n.mem >= mem)
    )


def _take(nodes: list[_Node], request: JobRequest) -> bool:
    fitting = [n for n in nodes if _fits(n, request)]
    if len(fitting) < request.nodes:
        return False
    fitting.sort(key=lambda n: (n.gpus, n.cpus, n.name))  # stable: then snapshot order
    for n in fitting[: request.nodes]:
        n.gpus -= request.gpus_per_node
        n.cpus -= request.cpus_per_node
        if request.mem_per_node_mb is not None:
            n.mem -= request.mem_per_node_mb
    return True


def _partition(request: JobRequest, policy: Policy) -> str | None:
    if request.partition is None or request.partition == policy.virtual_partition:
        return None
    return request.partition


def _serves(pool: PoolSnapshot, partition: str | None) -> bool:
    return partition is None or partition in (pool.name, pool.partition)


def _never(pool: PoolSnapshot, request: JobRequest) -> str | None:
    g, c, m = request.gpus_per_node, request.cpus_per_node, request.mem_per_node_mb
    nodes = [n for n in pool.nodes if _accepts(n, request)]
    if not nodes:  # the request asks a GPU type or features, and no node has them
        has_type = any(_has_type(n, request) for n in pool.nodes)
        has_features = any(_has_features(n, request) for n in pool.nodes)
        if has_features and not has_type:
            words = _words(request, features=False)
        elif has_type and not has_features:
            words = _words(request, gpu_type=False)
        else:
            words = _words(request)
        return reasons.unmatched(pool.name, words)
    return reasons.never(
        pool.name,
        request.nodes,
        g,
        c,
        m,
        node_count=len(nodes),
        max_gpus=max(n.gpus_total for n in nodes),
        with_gpus=sum(1 for n in nodes if n.gpus_total >= g),
        max_cpus=max(n.cpus_total for n in nodes),
        with_cpus=sum(1 for n in nodes if n.gpus_total >= g and n.cpus_total >= c),
        max_mem=max(n.mem_total_mb for n in nodes),
        with_mem=sum(
            1
            for n in nodes
            if n.gpus_total >= g and n.cpus_total >= c and (m is None or n.mem_total_mb >= m)
        ),
        match=_words(request),
    )


def _out(pool: PoolSnapshot, partition: str | None) -> str | None:
    """The shape-independent reason a pool is out of the running, if any."""
    if not _serves(pool, partition):
        assert partition is not None
        return reasons.partition_not_served(pool.name, partition)
    if pool.state is PoolState.DRAINED:
        return reasons.drained(pool.name)
    if pool.state is PoolState.UNREACHABLE:
        return reasons.unreachable(pool.name)
    if not pool.nodes:
        return reasons.no_capacity(pool.name)
    return None


def reference_place(
    pools: Sequence[PoolSnapshot], pending: Sequence[Job], policy: Policy
) -> list[Decision]:
    ordered = sorted(pools, key=lambda p: (p.weight, p.price_per_gpu_hour, p.name))
    free: dict[str, list[_Node]] = {}
    for p in ordered:
        if p.state is PoolState.UP:
            free[p.name] = [_Node(n) for n in p.nodes if n.schedulable]
            for r in p.inflight:
                _take(free[p.name], r)
    jobs = sorted(
        (j for j in pending if not j.cancel_requested),
        key=lambda j: (-j.request.priority, j.submitted_at, j.id),
    )
    decisions: list[Decision] = []
    placed = 0
    for j in jobs:
        r = j.request
        partition = _partition(r, policy)
        if policy.max_placements is not None and placed >= policy.max_placements:
            cap = max(policy.max_placements, 0)
            decisions.append(
                Decision(
                    j.id,
                    None,
                    tuple(
                        PoolVerdict(
                            p.name, False, _out(p, partition) or reasons.cap_reached(p.name, cap)
                        )
                        for p in ordered
                    ),
                )
            )
            continue
        n, g, c, m = r.nodes, r.gpus_per_node, r.cpus_per_node, r.mem_per_node_mb
        verdicts: list[PoolVerdict] = []
        fitting: list[tuple[int, PoolSnapshot, int]] = []  # (position, pool, fitting nodes)
        for p in ordered:
            why = _out(p, partition) or _never(p, r)
            if why is None:
                nodes = [x for x in free[p.name] if _accepts(x, r)]
                with_gpus = sum(1 for x in nodes if x.gpus >= g)
                with_cpus = sum(1 for x in nodes if x.gpus >= g and x.cpus >= c)
                with_mem = sum(1 for x in nodes if _fits(x, r))
                if with_mem >= n:
                    fitting.append((len(verdicts), p, with_mem))
                    verdicts.append(PoolVerdict(p.name, True, "fits"))
                    continue
                why = reasons.not_now(
                    p.name, n, g, c, m,
                    with_gpus=with_gpus, with_cpus=with_cpus, with_mem=with_mem,
                    match=_words(r),
                )  # fmt: skip
            verdicts.append(PoolVerdict(p.name, False, why))
        if not fitting:
            decisions.append(Decision(j.id, None, tuple(verdicts)))
            continue
        _, winner, count = fitting[0]
        for position, p, _count in fitting:
            if p is winner:
                reason = reasons.chosen(p.name, n, g, c, m, fitting=count, match=_words(r))
            else:
                reason = reasons.preferred(
                    p.name,
                    p.weight,
                    p.price_per_gpu_hour,
                    winner.name,
                    winner.weight,
                    winner.price_per_gpu_hour,
                )
            verdicts[position] = PoolVerdict(p.name, True, reason)
        assert _take(free[winner.name], r)
        placed += 1
        decisions.append(Decision(j.id, winner.name, tuple(verdicts)))
    return decisions


def reference_never_fits(
    request: JobRequest, pools: Sequence[PoolSnapshot], policy: Policy
) -> str | None:
    if not pools:
        return "no pools are configured"
    partition = _partition(request, policy)
    ordered = sorted(pools, key=lambda p: (p.weight, p.price_per_gpu_hour, p.name))
    serving = [p for p in ordered if _serves(p, partition)]
    if not serving:
        return f"no pool serves partition {partition}"
    if any(not p.nodes for p in serving):
        return None
    why = [_never(p, request) for p in serving]
    if any(w is None for w in why):
        return None
    return "no pool can ever run this job: " + "; ".join(w for w in why if w is not None)
