"""The placement core, one behaviour per test, table-driven where the shape repeats."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from scheduler.domain import Decision, Job, PoolSnapshot, PoolState
from scheduler.placement import Policy, never_fits, place
from tests.fixtures.jobs import T0, at, job, request
from tests.fixtures.nodes import node, pool

DRAINED, UNREACHABLE = PoolState.DRAINED, PoolState.UNREACHABLE


def run(
    pools: Sequence[PoolSnapshot], jobs: Sequence[Job], policy: Policy | None = None
) -> list[Decision]:
    return place(pools, jobs, policy or Policy(), T0)


def where(decisions: Sequence[Decision]) -> dict[int, str | None]:
    return {d.job_id: d.pool for d in decisions}


def reason(decision: Decision, pool_name: str) -> str:
    (found,) = [v.reason for v in decision.verdicts if v.pool == pool_name]
    return found


# -- where jobs go --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    pools: list[PoolSnapshot]
    jobs: list[Job]
    want: dict[int, str | None]
    policy: Policy = field(default_factory=Policy)


PLACEMENT = [
    Case(
        "alpha full, goes to beta",
        [pool("alpha", nodes=4, free_gpus=0), pool("beta", nodes=4, weight=2)],
        [job(1, nodes=2, gpus=4)],
        {1: "beta"},
    ),
    Case(
        "alpha has room, stays on alpha",
        [pool("alpha", nodes=4), pool("beta", nodes=4, weight=2)],
        [job(1, nodes=2, gpus=4)],
        {1: "alpha"},
    ),
    Case(
        "too few nodes anywhere, waits",
        [pool("alpha", nodes=2), pool("beta", nodes=2)],
        [job(1, nodes=3, gpus=1)],
        {1: None},
    ),
    Case(
        "drained pool skipped",
        [pool("alpha", state=DRAINED), pool("beta", weight=5)],
        [job(1, gpus=8)],
        {1: "beta"},
    ),
    Case(
        "unreachable pool skipped",
        [pool("alpha", state=UNREACHABLE), pool("beta", weight=5)],
        [job(1, gpus=8)],
        {1: "beta"},
    ),
    Case(
        "only drained and unreachable pools, waits",
        [pool("alpha", state=DRAINED), pool("beta", state=UNREACHABLE)],
        [job(1, gpus=1)],
        {1: None},
    ),
    Case(
        "lower weight wins over lower price",
        [pool("alpha", weight=5, price=0.5), pool("beta", weight=1, price=3.0)],
        [job(1, gpus=1)],
        {1: "beta"},
    ),
    Case(
        "same weight, lower price wins",
        [pool("alpha", price=2.5), pool("beta", price=1.2)],
        [job(1, gpus=1)],
        {1: "beta"},
    ),
    Case(
        "same weight and price, name decides",
        [pool("beta"), pool("alpha")],
        [job(1, gpus=1)],
        {1: "alpha"},
    ),
    Case(
        "pinned to a pool by its name",
        [pool("alpha"), pool("gamma", weight=9)],
        [job(1, gpus=1, partition="gamma")],
        {1: "gamma"},
    ),
    Case(
        "pinned to a pool by its partition",
        [pool("alpha"), pool("beta", weight=9, partition="a100")],
        [job(1, gpus=1, partition="a100")],
        {1: "beta"},
    ),
    Case(
        "virtual partition may go anywhere",
        [pool("alpha", partition="a100"), pool("beta", weight=9)],
        [job(1, gpus=1, partition="fed")],
        {1: "alpha"},
    ),
    Case(
        "custom virtual partition may go anywhere",
        [pool("alpha", partition="a100")],
        [job(1, gpus=1, partition="everything")],
        {1: "alpha"},
        Policy(virtual_partition="everything"),
    ),
    Case(
        "partition served nowhere, waits",
        [pool("alpha"), pool("beta")],
        [job(1, gpus=1, partition="debug")],
        {1: None},
    ),
    Case(
        "pinned pool full, waits rather than going elsewhere",
        [pool("alpha"), pool("gamma", free_gpus=0)],
        [job(1, gpus=1, partition="gamma")],
        {1: None},
    ),
    Case(
        "GPUs free but too few CPUs, goes elsewhere",
        [pool("alpha", free_cpus=4), pool("beta", weight=2)],
        [job(1, gpus=1, cpus=8)],
        {1: "beta"},
    ),
    Case(
        "GPUs free but too little memory, goes elsewhere",
        [pool("alpha", free_mem=10_000), pool("beta", weight=2)],
        [job(1, gpus=1, mem=64_000)],
        {1: "beta"},
    ),
    Case(
        "no memory asked, low free memory does not matter",
        [pool("alpha", free_mem=0)],
        [job(1, gpus=1)],
        {1: "alpha"},
    ),
    Case(
        "tasks spread over nodes set CPUs per node",  # 10 tasks on 2 nodes: 5 x 4 CPUs each
        [pool("alpha", free_cpus=16), pool("beta", free_cpus=20, weight=2)],
        [job(1, nodes=2, ntasks=10, cpus=4)],
        {1: "beta"},
    ),
    Case(
        "CPU-only job runs on GPU nodes' CPUs",
        [pool("alpha", free_gpus=0)],
        [job(1, gpus=0, cpus=16)],
        {1: "alpha"},
    ),
    Case(
        "unschedulable nodes are not used",
        [pool("alpha", nodes=3, down=2), pool("beta", weight=2)],
        [job(1, nodes=2, gpus=1)],
        {1: "beta"},
    ),
    Case(
        "needs distinct nodes, not GPUs summed over nodes",
        [pool("alpha", nodes=2, free_gpus=[8, 0]), pool("beta", weight=2)],
        [job(1, nodes=2, gpus=4)],
        {1: "beta"},
    ),
    Case(
        "pool with no nodes reported takes nothing",
        [pool("alpha", nodes=0), pool("beta", weight=2)],
        [job(1, gpus=1)],
        {1: "beta"},
    ),
    Case(
        "two jobs in one pass do not double-book nodes",
        [pool("alpha", nodes=2), pool("beta", nodes=2, weight=2)],
        [job(1, nodes=2, gpus=8), job(2, nodes=2, gpus=8), job(3, nodes=1, gpus=1)],
        {1: "alpha", 2: "beta", 3: None},
    ),
    Case(
        "partly used node still shared by small jobs",
        [pool("alpha", nodes=1)],
        [job(1, gpus=4), job(2, gpus=4), job(3, gpus=1)],
        {1: "alpha", 2: "alpha", 3: None},
    ),
    Case(
        "best fit keeps the idle node for the big job",
        [pool("alpha", nodes=2, free_gpus=[8, 2])],
        [job(1, gpus=2, priority=1), job(2, gpus=8)],
        {1: "alpha", 2: "alpha"},
    ),
    Case(
        "higher priority first, even if submitted later",
        [pool("alpha", nodes=1)],
        [job(1, gpus=8), job(2, gpus=8, priority=10)],
        {2: "alpha", 1: None},
    ),
    Case(
        "same priority, earlier submission first",
        [pool("alpha", nodes=1)],
        [job(1, gpus=8, submitted_at=at(seconds=50)), job(2, gpus=8, submitted_at=at(seconds=10))],
        {2: "alpha", 1: None},
    ),
    Case(
        "same priority and submission, lower id first",
        [pool("alpha", nodes=1)],
        [job(2, gpus=8, submitted_at=at(seconds=0)), job(1, gpus=8, submitted_at=at(seconds=0))],
        {1: "alpha", 2: None},
    ),
    Case(
        "greedy: a smaller lower-priority job fits while a bigger one waits",
        [pool("alpha", nodes=2, free_gpus=[8, 0])],
        [job(1, nodes=2, gpus=8, priority=10), job(2, gpus=8)],
        {1: None, 2: "alpha"},
    ),
    Case(
        "inflight requests are reserved first",
        [
            pool("alpha", nodes=2, inflight=[request(nodes=2, gpus=8)]),
            pool("beta", nodes=2, weight=2),
        ],
        [job(1, nodes=2, gpus=8)],
        {1: "beta"},
    ),
    Case(
        "inflight request that no longer fits is ignored",
        [pool("alpha", nodes=2, inflight=[request(nodes=3, gpus=8)])],
        [job(1, nodes=2, gpus=8)],
        {1: "alpha"},
    ),
    Case(
        "inflight requests partly fill a pool",
        [
            pool("alpha", nodes=2, inflight=[request(gpus=8), request(nodes=3, gpus=1)]),
            pool("beta", nodes=2, weight=2),
        ],
        [job(1, gpus=8), job(2, gpus=8)],
        {1: "alpha", 2: "beta"},
    ),
    Case(
        "cancel-requested jobs get no decision",
        [pool("alpha")],
        [job(1, gpus=1, cancel_requested=True), job(2, gpus=1)],
        {2: "alpha"},
    ),
    Case(
        "placement cap per pass",
        [pool("alpha")],
        [job(1, gpus=1), job(2, gpus=1), job(3, gpus=1)],
        {1: "alpha", 2: "alpha", 3: None},
        Policy(max_placements=2),
    ),
    Case(
        "cap of zero places nothing",
        [pool("alpha")],
        [job(1, gpus=1)],
        {1: None},
        Policy(max_placements=0),
    ),
    Case(
        "no pools, every job waits",
        [],
        [job(1, gpus=1)],
        {1: None},
    ),
    Case("no jobs, no decisions", [pool("alpha")], [], {}),
    Case(
        "typed job goes to the pool with its GPU type",
        [pool("alpha", gpu_type="a100"), pool("beta", gpu_type="h100", weight=2)],
        [job(1, gpus=2, gpu_type="h100")],
        {1: "beta"},
    ),
    Case(
        "untyped job fits typed GPUs",
        [pool("alpha", gpu_type="a100"), pool("beta", gpu_type="h100", weight=2)],
        [job(1, gpus=2)],
        {1: "alpha"},
    ),
    Case(
        "typed job waits while its type is busy, though another type is free",
        [pool("alpha", gpu_type="a100", free_gpus=0), pool("beta", gpu_type="h100")],
        [job(1, gpus=1, gpu_type="a100")],
        {1: None},
    ),
    Case(
        "typed job never on untyped GPUs",
        [pool("alpha"), pool("beta", gpu_type="a100", weight=9)],
        [job(1, gpus=1, gpu_type="a100")],
        {1: "beta"},
    ),
    Case(
        "constraint with & needs every feature on the node",
        [pool("alpha", features=["a100"]), pool("beta", features=["h100", "ib"], weight=2)],
        [job(1, gpus=1, constraint="h100&ib"), job(2, gpus=1, constraint="a100&ib")],
        {1: "beta", 2: None},
    ),
    Case(
        "constraint with | takes any of the features",
        [pool("alpha", features=["a100"]), pool("beta", features=["h100", "ib"], weight=2)],
        [job(1, gpus=1, constraint="v100|ib")],
        {1: "beta"},
    ),
    Case(
        "constraint with | mixes nodes of either feature",
        [pool("alpha", nodes=1, features=["a100"], extra=[node("alpha-h", features=["h100"])])],
        [job(1, nodes=2, gpus=8, constraint="a100|h100")],
        {1: "alpha"},
    ),
    Case(
        "GPU type and constraint together",
        [
            pool("alpha", gpu_type="h100", features=["eth"]),
            pool("beta", gpu_type="h100", features=["ib"], weight=2),
        ],
        [job(1, gpus=8, gpu_type="h100", constraint="ib")],
        {1: "beta"},
    ),
    Case(
        "mixed pool: a typed job counts only its type's nodes",
        [
            pool(
                "alpha",
                nodes=2,
                gpu_type="a100",
                extra=[node("alpha-h1", gpu_type="h100"), node("alpha-h2", gpu_type="h100")],
            )
        ],
        [job(1, nodes=3, gpus=1, gpu_type="a100"), job(2, nodes=2, gpus=1, gpu_type="h100")],
        {1: None, 2: "alpha"},
    ),
    Case(
        "mixed pool: an untyped job spans GPU types",
        [pool("alpha", nodes=1, gpu_type="a100", extra=[node("alpha-h", gpu_type="h100")])],
        [job(1, nodes=2, gpus=8)],
        {1: "alpha"},
    ),
    Case(
        "a typed placement takes the nodes from untyped jobs of the same pass",
        [pool("alpha", nodes=2, gpu_type="a100", extra=[node("alpha-x"), node("alpha-y")])],
        [job(1, nodes=2, gpus=8, gpu_type="a100", priority=1), job(2, nodes=3, gpus=8)],
        {1: "alpha", 2: None},
    ),
    Case(
        "an untyped placement takes the nodes from typed jobs of the same pass",
        [pool("alpha", nodes=2, gpu_type="a100", extra=[node("alpha-x")])],
        [job(1, nodes=3, gpus=8, priority=1), job(2, gpus=1, gpu_type="a100")],
        {1: "alpha", 2: None},
    ),
    Case(
        "inflight typed request reserves its type's nodes",
        [
            pool(
                "alpha",
                nodes=1,
                gpu_type="a100",
                extra=[node("alpha-h", gpu_type="h100")],
                inflight=[request(gpus=8, gpu_type="a100")],
            ),
            pool("beta", gpu_type="a100", weight=2),
        ],
        [job(1, gpus=8, gpu_type="a100"), job(2, gpus=8)],
        {1: "beta", 2: "alpha"},
    ),
]


@pytest.mark.parametrize("case", PLACEMENT, ids=[c.id for c in PLACEMENT])
def test_placement(case: Case) -> None:
    """Each job lands on the expected pool (None: waits), one decision per considered job."""
    decisions = run(case.pools, case.jobs, case.policy)
    assert where(decisions) == case.want
    assert [d.job_id for d in decisions] == list(case.want)  # in the order considered


# -- reasons ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Why:
    id: str
    pools: list[PoolSnapshot]
    job: Job
    want: list[str]  # every pool's reason, in preference order
    fits: list[bool] | None = None
    policy: Policy = field(default_factory=Policy)


REASONS = [
    Why(
        "chosen and full",
        [pool("alpha", nodes=4, free_gpus=[4, 0, 0, 0]), pool("beta", nodes=4, weight=2)],
        job(1, nodes=2, gpus=4),
        [
            "alpha: only 1 node with >= 4 free GPUs (2 needed)",
            "beta: 4 nodes with >= 4 free GPUs (2 needed)",
        ],
        [False, True],
    ),
    Why(
        "no node has the GPUs",
        [pool("alpha", free_gpus=2)],
        job(1, gpus=4),
        ["alpha: no node with >= 4 free GPUs (1 needed)"],
    ),
    Why(
        "one GPU, singular",
        [pool("alpha", nodes=1)],
        job(1, gpus=1),
        ["alpha: 1 node with >= 1 free GPU (1 needed)"],
    ),
    Why(
        "too few nodes anywhere",
        [pool("alpha", nodes=2), pool("beta", nodes=2)],
        job(1, nodes=3, gpus=1),
        ["alpha: only 2 nodes (job needs 3)", "beta: only 2 nodes (job needs 3)"],
    ),
    Why(
        "never enough GPUs per node",
        [pool("alpha", gpus=4)],
        job(1, gpus=16),
        ["alpha: at most 4 GPUs per node (job needs 16)"],
    ),
    Why(
        "never enough nodes with the GPUs",
        [pool("alpha", nodes=1, extra=[node("alpha-small", gpus=2)])],
        job(1, nodes=2, gpus=8),
        ["alpha: only 1 node with >= 8 GPUs (job needs 2)"],
    ),
    Why(
        "never enough CPUs per node",
        [pool("alpha", cpus=32)],
        job(1, gpus=1, cpus=64),
        ["alpha: at most 32 CPUs per node (job needs 64)"],
    ),
    Why(
        "never enough memory per node",
        [pool("alpha", mem=256_000)],
        job(1, gpus=1, mem=512_000),
        ["alpha: at most 256000 MB memory per node (job needs 512000)"],
    ),
    Why(
        "GPUs free, CPUs short",
        [pool("alpha", nodes=3, free_gpus=8, free_cpus=[64, 4, 4])],
        job(1, nodes=2, gpus=4, cpus=32),
        ["alpha: 3 nodes with >= 4 free GPUs, but only 1 of them with >= 32 free CPUs (2 needed)"],
    ),
    Why(
        "GPUs and CPUs free, memory short",
        [pool("alpha", nodes=2, free_mem=[500_000, 1_000])],
        job(1, nodes=2, gpus=4, cpus=8, mem=64_000),
        [
            "alpha: 2 nodes with >= 4 free GPUs and >= 8 free CPUs, "
            "but only 1 of them with >= 64000 MB free memory (2 needed)"
        ],
    ),
    Why(
        "CPU-only job, CPUs short",
        [pool("alpha", nodes=2, free_cpus=[16, 2])],
        job(1, nodes=2, cpus=8),
        ["alpha: only 1 node with >= 8 free CPUs (2 needed)"],
    ),
    Why(
        "CPU-only job placed, says CPUs and memory",
        [pool("alpha", nodes=2)],
        job(1, cpus=16, mem=1_000),
        ["alpha: 2 nodes with >= 16 free CPUs and >= 1000 MB free memory (1 needed)"],
    ),
    Why(
        "CPU-only job, nodes down",
        [pool("alpha", nodes=3, down=2)],
        job(1, nodes=2, cpus=1),
        ["alpha: only 1 schedulable node (2 needed)"],
    ),
    Why(
        "drained, unreachable, partition",
        [
            pool("gamma", state=DRAINED, partition="debug"),
            pool("delta", state=UNREACHABLE, partition="debug"),
            pool("epsilon", weight=2),
        ],
        job(1, gpus=1, partition="debug"),
        ["delta: unreachable", "gamma: drained", "epsilon: partition debug not served"],
    ),
    Why(
        "capacity unknown",
        [pool("alpha", nodes=0)],
        job(1, gpus=1),
        ["alpha: capacity unknown (no nodes reported)"],
    ),
    Why(
        "fits, but lower weight preferred",
        [pool("beta", weight=1), pool("gamma", weight=5)],
        job(1, nodes=2, gpus=8),
        [
            "beta: 4 nodes with >= 8 free GPUs (2 needed)",
            "gamma: fits, but beta preferred (weight 1 < 5)",
        ],
        [True, True],
    ),
    Why(
        "fits, but cheaper preferred",
        [pool("beta", price=1.2), pool("gamma", price=2.5)],
        job(1, gpus=8),
        [
            "beta: 4 nodes with >= 8 free GPUs (1 needed)",
            "gamma: fits, but beta preferred (price 1.20 < 2.50 per GPU-hour)",
        ],
    ),
    Why(
        "fits, but earlier name preferred",
        [pool("beta"), pool("alpha")],
        job(1, gpus=8),
        [
            "alpha: 4 nodes with >= 8 free GPUs (1 needed)",
            "beta: fits, but alpha preferred (same weight and price, name order)",
        ],
    ),
    Why(
        "no node with the GPU type",
        [pool("alpha", gpu_type="a100"), pool("beta", gpu_type="h100", weight=2)],
        job(1, gpus=1, gpu_type="a100"),
        [
            "alpha: 4 nodes with GPU type a100 and >= 1 free GPU (1 needed)",
            "beta: no node with GPU type a100",
        ],
    ),
    Why(
        "no node with the features",
        [pool("alpha", features=["a100"])],
        job(1, gpus=1, constraint="a100&ib"),
        ["alpha: no node with features a100&ib"],
    ),
    Why(
        "GPU type and features never on one node",
        [
            pool(
                "alpha",
                nodes=1,
                gpu_type="a100",
                extra=[node("alpha-h", gpu_type="h100", features=["ib"])],
            )
        ],
        job(1, gpus=1, gpu_type="a100", constraint="ib"),
        ["alpha: no node with GPU type a100 and features ib"],
    ),
    Why(
        "too few nodes of the GPU type",
        [pool("alpha", nodes=3, extra=[node("alpha-a", gpu_type="a100")])],
        job(1, nodes=2, gpus=1, gpu_type="a100"),
        ["alpha: only 1 node with GPU type a100 (job needs 2)"],
    ),
    Why(
        "nodes of the GPU type too small",
        [pool("alpha", nodes=1, gpus=4, gpu_type="a100", extra=[node("alpha-h", gpu_type="h100")])],
        job(1, gpus=8, gpu_type="a100"),
        ["alpha: at most 4 GPUs per node with GPU type a100 (job needs 8)"],
    ),
    Why(
        "nodes of the GPU type busy",
        [
            pool(
                "alpha",
                gpu_type="a100",
                free_gpus=[4, 0, 0, 0],
                extra=[node("alpha-h", gpu_type="h100")],
            )
        ],
        job(1, nodes=2, gpus=4, gpu_type="a100"),
        ["alpha: only 1 node with GPU type a100 and >= 4 free GPUs (2 needed)"],
    ),
    Why(
        "nodes with the features short of CPUs",
        [pool("alpha", nodes=2, features=["ib"], free_cpus=[64, 2])],
        job(1, nodes=2, gpus=1, cpus=8, constraint="ib"),
        [
            "alpha: 2 nodes with features ib and >= 1 free GPU, but only 1 of them with >= 8 free "
            "CPUs (2 needed)"
        ],
    ),
    Why(
        "CPU-only job with features, nodes down",
        [pool("alpha", nodes=3, down=2, features=["ib"])],
        job(1, nodes=2, cpus=1, constraint="ib"),
        ["alpha: only 1 schedulable node with features ib (2 needed)"],
    ),
    Why(
        "typed job chosen, and the preferred pool of the type named",
        [pool("beta", gpu_type="h100"), pool("gamma", gpu_type="h100", weight=5)],
        job(1, nodes=2, gpus=8, gpu_type="h100"),
        [
            "beta: 4 nodes with GPU type h100 and >= 8 free GPUs (2 needed)",
            "gamma: fits, but beta preferred (weight 1 < 5)",
        ],
        [True, True],
    ),
    Why(
        "cap reached",
        [pool("alpha"), pool("beta", state=DRAINED)],
        job(1, gpus=1),
        ["alpha: not tried, this pass reached its cap of 0 placements", "beta: drained"],
        policy=Policy(max_placements=0),
    ),
]


@pytest.mark.parametrize("case", REASONS, ids=[c.id for c in REASONS])
def test_reasons(case: Why) -> None:
    """Every pool gets a verdict, in preference order, with a reason that names it first."""
    (decision,) = run(case.pools, [case.job], case.policy)
    assert [v.reason for v in decision.verdicts] == case.want
    assert [v.pool for v in decision.verdicts] == [r.split(":")[0] for r in case.want]
    if case.fits is not None:
        assert [v.fits for v in decision.verdicts] == case.fits


def test_waiting_explain_lists_every_pool() -> None:
    """A waiting job's explanation names why each pool cannot take it."""
    (decision,) = run([pool("alpha", nodes=2), pool("beta", nodes=2)], [job(1, nodes=3)])
    assert decision.explain() == (
        "waiting: no pool can run it now; "
        "alpha: only 2 nodes (job needs 3); beta: only 2 nodes (job needs 3)"
    )


def test_reasons_see_earlier_placements_of_the_pass() -> None:
    """A job's reasons count what the jobs placed before it in the pass took."""
    decisions = run([pool("alpha", nodes=2)], [job(1, gpus=8), job(2, nodes=2, gpus=8)])
    assert reason(decisions[0], "alpha") == "alpha: 2 nodes with >= 8 free GPUs (1 needed)"
    assert reason(decisions[1], "alpha") == "alpha: only 1 node with >= 8 free GPUs (2 needed)"


def test_waiting_jobs_of_one_shape_share_verdicts() -> None:
    """Identical waiting jobs share one verdict tuple while nothing changes between them."""
    decisions = run([pool("alpha", nodes=1)], [job(i, nodes=2, gpus=8) for i in range(1, 4)])
    assert decisions[0].verdicts is decisions[1].verdicts is decisions[2].verdicts


# -- never_fits -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Never:
    id: str
    pools: list[PoolSnapshot]
    job: Job
    want: str | None


NEVER = [
    Never(
        "GPUs per node everywhere too few",
        [pool("alpha", gpus=4), pool("beta", weight=2)],
        job(1, gpus=16),
        "no pool can ever run this job: alpha: at most 4 GPUs per node (job needs 16); "
        "beta: at most 8 GPUs per node (job needs 16)",
    ),
    Never(
        "too few nodes everywhere",
        [pool("alpha", nodes=2), pool("beta", nodes=3)],
        job(1, nodes=4, gpus=1),
        "no pool can ever run this job: alpha: only 2 nodes (job needs 4); "
        "beta: only 3 nodes (job needs 4)",
    ),
    Never("one pool could", [pool("alpha", gpus=4), pool("beta")], job(1, gpus=8), None),
    Never("busy pool could, when empty", [pool("alpha", free_gpus=0)], job(1, gpus=8), None),
    Never(
        "drained pool may come back",
        [pool("alpha", gpus=4), pool("beta", state=DRAINED)],
        job(1, gpus=8),
        None,
    ),
    Never(
        "unreachable pool may come back",
        [pool("alpha", state=UNREACHABLE)],
        job(1, gpus=8),
        None,
    ),
    Never("down nodes may come back", [pool("alpha", nodes=2, down=2)], job(1, nodes=2), None),
    Never("no pools", [], job(1), "no pools are configured"),
    Never(
        "partition served nowhere",
        [pool("alpha", partition="a100")],
        job(1, partition="xyz"),
        "no pool serves partition xyz",
    ),
    Never(
        "only the pinned pool counts",
        [pool("alpha", gpus=4), pool("beta")],
        job(1, gpus=8, partition="alpha"),
        "no pool can ever run this job: alpha: at most 4 GPUs per node (job needs 8)",
    ),
    Never(
        "capacity unknown: accept and wait",
        [pool("alpha", gpus=4), pool("beta", nodes=0)],
        job(1, gpus=8),
        None,
    ),
    Never(
        "capacity unknown but partition not served",
        [pool("alpha", gpus=4, partition="a100"), pool("beta", nodes=0)],
        job(1, gpus=8, partition="a100"),
        "no pool can ever run this job: alpha: at most 4 GPUs per node (job needs 8)",
    ),
    Never(
        "CPUs per node",
        [pool("alpha", cpus=32)],
        job(1, cpus=64),
        "no pool can ever run this job: alpha: at most 32 CPUs per node (job needs 64)",
    ),
    Never(
        "memory per node",
        [pool("alpha", mem=1_000)],
        job(1, mem=2_000),
        "no pool can ever run this job: alpha: at most 1000 MB memory per node (job needs 2000)",
    ),
    Never(
        "GPU type on no pool",
        [pool("alpha", gpu_type="a100"), pool("beta", gpu_type="h100", weight=2)],
        job(1, gpus=1, gpu_type="v100"),
        "no pool can ever run this job: alpha: no node with GPU type v100; "
        "beta: no node with GPU type v100",
    ),
    Never(
        "GPU type only on a pool too small",
        [pool("alpha", gpus=4, gpu_type="a100"), pool("beta", gpu_type="h100")],
        job(1, gpus=8, gpu_type="a100"),
        "no pool can ever run this job: alpha: at most 4 GPUs per node with GPU type a100 "
        "(job needs 8); beta: no node with GPU type a100",
    ),
    Never(
        "GPU type on one pool",
        [pool("alpha", gpu_type="a100")],
        job(1, gpus=8, gpu_type="a100"),
        None,
    ),
    Never(
        "untyped request fits typed GPUs", [pool("alpha", gpu_type="a100")], job(1, gpus=8), None
    ),
    Never(
        "features on no pool",
        [pool("alpha", features=["a100"]), pool("beta", features=["h100", "ib"], weight=2)],
        job(1, constraint="a100&ib"),
        "no pool can ever run this job: alpha: no node with features a100&ib; "
        "beta: no node with features a100&ib",
    ),
    Never(
        "down nodes with the features may come back",
        [pool("alpha", nodes=2, down=2, features=["ib"])],
        job(1, nodes=2, constraint="ib"),
        None,
    ),
    Never(
        "GPUs and CPUs on different nodes",
        [pool("alpha", nodes=1, gpus=8, cpus=16, extra=[node("alpha-fat", gpus=0, cpus=128)])],
        job(1, gpus=8, cpus=64),
        "no pool can ever run this job: alpha: no node with >= 8 GPUs and >= 64 CPUs (job needs 1)",
    ),
]


@pytest.mark.parametrize("case", NEVER, ids=[c.id for c in NEVER])
def test_never_fits(case: Never) -> None:
    """never_fits names every serving pool's permanent shortfall, or says None."""
    assert never_fits(case.job.request, case.pools, Policy()) == case.want


# -- determinism and purity -----------------------------------------------------------------


def _mixed() -> tuple[list[PoolSnapshot], list[Job]]:
    pools = [
        pool("alpha", nodes=6, free_gpus=[8, 4, 2, 0, 8, 1], weight=2),
        pool("beta", nodes=4, free_gpus=[8, 8, 3, 0], price=1.2, inflight=[request(gpus=8)]),
        pool("gamma", nodes=3, state=DRAINED),
        pool("delta", nodes=5, free_cpus=[64, 8, 8, 64, 2], partition="a100"),
    ]
    jobs = [
        job(i, nodes=1 + i % 3, gpus=[0, 1, 2, 4, 8][i % 5], priority=i % 2, partition=p)
        for i, p in zip(range(1, 41), [None, "a100", "fed", None] * 10, strict=True)
    ]
    return pools, jobs


def test_deterministic_whatever_the_input_order() -> None:
    """Same pools and jobs in any order give the same decisions."""
    pools, jobs = _mixed()
    first = run(pools, jobs)
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(pools)
        rng.shuffle(jobs)
        assert run(pools, jobs) == first


def test_repeatable() -> None:
    """Calling place twice on the same inputs gives equal results (no state kept between)."""
    pools, jobs = _mixed()
    assert run(pools, jobs) == run(pools, jobs)


def test_verdicts_cover_every_pool_in_preference_order() -> None:
    """Each decision has one verdict per pool, ordered by weight, price, then name."""
    pools, jobs = _mixed()
    for decision in run(pools, jobs):
        assert [v.pool for v in decision.verdicts] == ["delta", "gamma", "beta", "alpha"]


def test_absurd_gpu_report_stays_cheap() -> None:
    """A node reporting a trillion free GPUs is handled without a trillion-long table."""
    huge = node("alpha-huge", gpus=10**12, free_gpus=10**12)
    decisions = run([pool("alpha", nodes=1, extra=[huge])], [job(1, gpus=10**9), job(2, gpus=8)])
    assert where(decisions) == {1: "alpha", 2: "alpha"}
