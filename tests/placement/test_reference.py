"""The fast core decides exactly what the plain reference decides, on random small snapshots."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from scheduler.domain import Job, JobRequest, NodeSnapshot, PoolSnapshot, PoolState
from scheduler.placement import Policy, never_fits, place
from scheduler.placement import nodes as nodes_module
from tests.fixtures.jobs import T0, at, job, request
from tests.placement.reference import reference_never_fits, reference_place

CASES = 600
NAMES = ["alpha", "beta", "gamma", "delta", "epsilon"]
Shapes = list[tuple[int, int, int, int | None]]  # (nodes, GPUs, CPUs per task, memory)
PARTITIONS = [None] * 8 + ["fed", "fed", "gpu", "cpu", "alpha", "beta", "nowhere"]
# With types: what nodes have and requests ask (None: the request asks no type or features).
NODE_TYPES = ["", "a100", "a100", "h100"]
NODE_FEATURES = [(), ("ib",), ("ib", "nvme"), ("a100", "ib"), ("nvme",)]
GPU_TYPES = [None, None, "a100", "h100", "v100"]
CONSTRAINTS = [None, None, "ib", "ib&nvme", "nvme|a100", "ib|x", "x"]
Kind = tuple[int, int, int, str, tuple[str, ...]]  # GPUs, CPUs, memory, GPU type, features


def _node(rng: random.Random, name: str, kind: Kind) -> NodeSnapshot:
    gpus, cpus, mem, gpu_type, features = kind
    odd = rng.random() < 0.03  # reports that disagree with the totals happen
    return NodeSnapshot(
        name=name,
        gpus_total=gpus,
        gpus_free=(
            rng.randint(-1, gpus + 1) if odd else rng.choice([gpus, gpus, 0, rng.randint(0, gpus)])
        ),
        cpus_total=cpus,
        cpus_free=rng.randint(-2, cpus) if odd else rng.choice([cpus, rng.randint(0, cpus)]),
        mem_total_mb=mem,
        mem_free_mb=rng.choice([mem, mem // 2, rng.randint(0, mem)]),
        schedulable=rng.random() > 0.1,
        gpu_type=gpu_type,
        features=features,
    )


def _request(rng: random.Random, shapes: Shapes, typed: bool = False) -> JobRequest:
    nodes, gpus, cpus, mem = rng.choice(shapes)
    built = request(
        nodes=nodes,
        gpus=gpus,
        cpus=cpus,
        ntasks=rng.choice([None, None, nodes * 2]),
        mem=mem,
        partition=rng.choice(PARTITIONS),
        priority=rng.choice([0, 0, 0, 5, 10]),
    )
    if not typed:
        return built
    gpu_type = rng.choice(GPU_TYPES) if gpus else None
    return replace(built, gpu_type=gpu_type, constraint=rng.choice(CONSTRAINTS))


def _shapes(rng: random.Random) -> Shapes:
    """A few shapes per case, so that many jobs share one (the fast path's caches)."""
    return [
        (
            rng.choice([1, 1, 1, 2, 2, 3, 4, 6]),
            rng.choice([0, 0, 1, 1, 2, 4, 8, 16]),
            rng.choice([1, 1, 2, 4, 8, 32]),
            rng.choice([None, None, 1000, 16000, 32000, 64000]),
        )
        for _ in range(rng.randint(1, 10))
    ]


def _pools(
    rng: random.Random, shapes: Shapes, most: int = 8, typed: bool = False
) -> list[PoolSnapshot]:
    pools = []
    for name in rng.sample(NAMES, rng.randint(1, 5)):
        kinds: list[Kind] = [
            (
                rng.choice([0, 2, 4, 8]),
                rng.choice([8, 32, 64]),
                rng.choice([16000, 64000, 256000]),
                "",
                (),
            )
            for _ in range(rng.randint(1, 2))
        ]
        if typed:  # up to three kinds of node, each with its GPU type and features
            kinds = [
                (g, c, m, rng.choice(NODE_TYPES) if g else "", rng.choice(NODE_FEATURES))
                for g, c, m, _, _ in kinds + kinds[:1]
            ]
        count = 0 if rng.random() < 0.05 else rng.randint(1, most)
        nodes = tuple(_node(rng, f"{name}-n{i}", rng.choice(kinds)) for i in range(count))
        pools.append(
            PoolSnapshot(
                name=name,
                state=rng.choice([PoolState.UP] * 6 + [PoolState.DRAINED, PoolState.UNREACHABLE]),
                nodes=nodes,
                weight=rng.choice([1, 1, 2, 5]),
                price_per_gpu_hour=rng.choice([0.0, 1.2, 1.2, 2.5]),
                partition=rng.choice([None, "gpu", "cpu"]),
                inflight=tuple(
                    _request(rng, shapes, typed) for _ in range(rng.choice([0, 0, 1, 3]))
                ),
            )
        )
    return pools


def _jobs(rng: random.Random, shapes: Shapes, most: int = 60, typed: bool = False) -> list[Job]:
    jobs = [
        replace(
            job(
                i, submitted_at=at(seconds=rng.randint(0, 20)), cancel_requested=rng.random() < 0.05
            ),
            request=_request(rng, shapes, typed),
        )
        for i in range(1, rng.randint(0, most) + 1)
    ]
    rng.shuffle(jobs)
    return jobs


def _policy(rng: random.Random) -> Policy:
    return Policy(max_placements=rng.choice([None] * 8 + [0, 1, 3, 10]))


def _check_place(
    seed: int, *, most_nodes: int = 8, most_jobs: int = 60, typed: bool = False, capped: bool = True
) -> None:
    """place() on a random case decides exactly what the reference decides."""
    rng = random.Random(seed)
    shapes = _shapes(rng)
    pools = _pools(rng, shapes, most=most_nodes, typed=typed)
    jobs = _jobs(rng, shapes, most=most_jobs, typed=typed)
    policy = _policy(rng) if capped else Policy()
    assert place(pools, jobs, policy, T0) == reference_place(pools, jobs, policy)


def _check_never_fits(seed: int, *, typed: bool = False) -> None:
    """never_fits() on random requests gives the reference's answer."""
    rng = random.Random(seed)
    shapes = _shapes(rng)
    pools = _pools(rng, shapes, typed=typed) if typed or rng.random() > 0.03 else []
    for _ in range(5):
        r = _request(rng, shapes, typed)
        assert never_fits(r, pools, Policy()) == reference_never_fits(r, pools, Policy())


@pytest.mark.parametrize("seed", range(CASES))
def test_place_matches_reference(seed: int) -> None:
    """place() returns exactly the reference's decisions, verdicts and reasons included."""
    _check_place(seed)


@pytest.mark.parametrize("seed", range(CASES))
def test_never_fits_matches_reference(seed: int) -> None:
    """never_fits() gives the reference's answer for every kind of request."""
    _check_never_fits(10_000 + seed)


@pytest.mark.parametrize("seed", range(0, CASES, 3))
def test_place_matches_reference_with_capped_gpu_buckets(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes beyond the last free-GPU bucket (absurd reports) are still counted exactly."""
    monkeypatch.setattr(nodes_module, "MAX_LEVEL", 2)
    _check_place(seed)


@pytest.mark.parametrize("seed", range(40))
def test_place_matches_reference_on_bigger_snapshots(seed: int) -> None:
    """Also with pools of up to 80 nodes and hundreds of jobs (long runs of placements)."""
    _check_place(50_000 + seed, most_nodes=80, most_jobs=600, capped=False)


@pytest.mark.parametrize("seed", range(CASES))
def test_place_matches_reference_with_types_and_features(seed: int) -> None:
    """Also when nodes have GPU types and features and jobs ask for them (mixed pools too)."""
    _check_place(70_000 + seed, typed=True)


@pytest.mark.parametrize("seed", range(CASES))
def test_never_fits_matches_reference_with_types_and_features(seed: int) -> None:
    """never_fits() gives the reference's answer for typed and constrained requests."""
    _check_never_fits(80_000 + seed, typed=True)


@pytest.mark.parametrize("seed", range(40))
def test_place_matches_reference_on_bigger_typed_snapshots(seed: int) -> None:
    """Typed and constrained jobs on pools of up to 80 mixed nodes, hundreds of jobs."""
    _check_place(90_000 + seed, most_nodes=80, most_jobs=600, typed=True, capped=False)
