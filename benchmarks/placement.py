"""Benchmark of the placement core: one full pass over a large synthetic federation.

    .venv/bin/python benchmarks/placement.py            # 100,000 jobs, 50 pools, 2,000 nodes
    .venv/bin/python benchmarks/placement.py --jobs 20000 --runs 3
    .venv/bin/python benchmarks/placement.py --typed     # GPU types, features, typed jobs
    .venv/bin/python benchmarks/placement.py --baseline-tree /tmp/old   # this tree beside
        another checkout (e.g. `git worktree add /tmp/old <rev>`): each in its own process,
        alternately, the same workload; prints both medians and their ratio

Builds a deterministic snapshot (seeded), runs `place` several times and prints a table: pass
seconds (min / median), decisions per second, and per-decision latency from one extra,
instrumented pass (see benchmarks/README.md, section "placement", for the method).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from scheduler.domain import (
    Decision,
    Job,
    JobRequest,
    JobState,
    NodeSnapshot,
    PoolSnapshot,
    PoolState,
)
from scheduler.placement import Policy, core, place

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SCRIPT = b"#!/bin/sh\nsrun ./train\n"
GPUS, CPUS, MEM = 8, 64, 512_000  # per node


def _weighted(rng: random.Random, table: dict[Any, int]) -> Any:
    return rng.choices(list(table), weights=list(table.values()))[0]


GPU_TYPES = ("a100", "h100", "l40s")
CONSTRAINTS = ("ib", "ib&h100", "a100|h100")


def _node(
    rng: random.Random, name: str, idle: bool, gpu_type: str = "", features: tuple[str, ...] = ()
) -> NodeSnapshot:
    """Mixed partial occupancy: idle, partly used, full, or not schedulable."""
    draw = rng.random()
    if idle:
        draw = 0.0
    if draw < 0.30:
        free_g, free_c, free_m = GPUS, CPUS, MEM
    elif draw < 0.65:
        used = rng.randint(1, GPUS - 1)
        free_g = GPUS - used
        free_c = max(0, CPUS - used * rng.choice([4, 8]))
        free_m = MEM - used * rng.choice([32_000, 64_000])
    elif draw < 0.95:
        free_g, free_c, free_m = 0, rng.choice([0, 0, 4, 8, 16]), rng.choice([0, 16_000, 64_000])
    else:
        free_g, free_c, free_m = GPUS, CPUS, MEM
    return NodeSnapshot(
        name=name,
        gpus_total=GPUS,
        gpus_free=free_g,
        cpus_total=CPUS,
        cpus_free=free_c,
        mem_total_mb=MEM,
        mem_free_mb=free_m,
        schedulable=draw < 0.95,
        gpu_type=gpu_type,
        features=features,
    )


def _request(rng: random.Random, pool_names: list[str], typed: bool = False) -> JobRequest:
    """A realistic mix: mostly 1-2 nodes, many full-node GPU jobs, some CPU-only jobs."""
    nodes = _weighted(rng, {1: 50, 2: 20, 3: 3, 4: 15, 6: 2, 8: 10})
    gpus = _weighted(rng, {0: 10, 1: 20, 2: 15, 4: 20, 8: 35})
    ntasks: int | None = None
    if gpus:
        if rng.random() < 0.7:  # one task per GPU
            ntasks, cpus_per_task = nodes * gpus, rng.choice([4, 8])
        else:
            cpus_per_task = gpus * rng.choice([4, 8])
    else:
        cpus_per_task = rng.choice([1, 2, 4, 8, 16, 32])
    mem = None if rng.random() < 0.7 else rng.choice([32_000, 64_000, 128_000, 256_000])
    draw = rng.random()
    partition = (
        None
        if draw < 0.85
        else "fed"
        if draw < 0.90
        else "a100"
        if draw < 0.95
        else "h100"
        if draw < 0.98
        else rng.choice(pool_names)
    )
    gpu_type = constraint = None
    if typed:  # 30 % of GPU jobs ask a GPU type, 10 % of all jobs node features
        if gpus and rng.random() < 0.3:
            gpu_type = rng.choice(GPU_TYPES)
        if rng.random() < 0.1:
            constraint = rng.choice(CONSTRAINTS)
    return JobRequest(
        script=SCRIPT,
        nodes=nodes,
        ntasks=ntasks,
        gpus_per_node=gpus,
        cpus_per_task=cpus_per_task,
        mem_per_node_mb=mem,
        partition=partition,
        priority=_weighted(rng, {0: 70, 10: 20, 100: 10}),
        gpu_type=gpu_type,
        constraint=constraint,
    )


def _kinds(rng: random.Random, size: int) -> list[tuple[str, tuple[str, ...]]]:
    """Each node's GPU type and features: one type per pool (features ib on half the pools),
    a second kind of node on the other half of one pool in five."""
    first = rng.choice(GPU_TYPES)
    kinds = [(first, (first, "ib") if rng.random() < 0.5 else (first,))] * size
    if rng.random() < 0.2:
        other = rng.choice(GPU_TYPES)
        kinds[size // 2 :] = [(other, (other,))] * (size - size // 2)
    return kinds


def build(
    seed: int, jobs: int, pools: int, nodes: int, *, idle: bool = False, typed: bool = False
) -> tuple[list[PoolSnapshot], list[Job]]:
    rng = random.Random(seed)
    names = [f"pool-{i:02d}" for i in range(pools)]
    # Pool sizes vary around the mean (in pairs, so they add up to `nodes` exactly).
    mean, sizes = nodes // pools, []
    for _ in range(pools // 2):
        spread = rng.randint(0, mean * 3 // 4)
        sizes += [mean + spread, mean - spread]
    sizes += [mean] * (pools - len(sizes))
    sizes[0] += nodes - sum(sizes)
    snapshots = []
    for i, (name, size) in enumerate(zip(names, sizes, strict=True)):
        state = {7: PoolState.DRAINED, 31: PoolState.DRAINED, 42: PoolState.UNREACHABLE}.get(
            i, PoolState.UP
        )
        kinds = _kinds(rng, size) if typed else [("", ())] * size
        snapshots.append(
            PoolSnapshot(
                name=name,
                state=state,
                nodes=tuple(_node(rng, f"{name}-n{k:03d}", idle, *kinds[k]) for k in range(size)),
                weight=rng.choice([1, 1, 2, 5]),
                price_per_gpu_hour=rng.choice([0.0, 1.2, 2.5, 3.1]),
                partition=rng.choice([None, None, None, "a100", "h100"]),
                inflight=tuple(_request(rng, names, typed) for _ in range(rng.randint(0, 3))),
            )
        )
    pending = []
    at = T0
    for job_id in range(1, jobs + 1):  # ids in submission order, as the store assigns them
        at += timedelta(milliseconds=rng.randint(0, 1_700))
        pending.append(
            Job(
                id=job_id,
                user="user",
                request=_request(rng, names, typed),
                state=JobState.PENDING,
                submitted_at=at,
                updated_at=at,
                cancel_requested=rng.random() < 0.01,
            )
        )
    return snapshots, pending


class _GcClock:
    """Adds up the time the interpreter spends in garbage collection (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


def _timed_decisions(pools: list[PoolSnapshot], pending: list[Job]) -> tuple[float, list[int]]:
    """One pass with every Decision construction time-stamped; returns the setup time (pass
    start to the first decision) and the gap before each later decision, in nanoseconds."""
    stamps: list[int] = []
    clock = time.perf_counter_ns

    def stamped(*args: Any) -> Decision:
        stamps.append(clock())
        return Decision(*args)

    # The core builds every Decision through its module-level name: swap in a stamping one.
    with mock.patch.object(core, "Decision", stamped):
        start = clock()
        place(pools, pending, Policy(), T0)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return (stamps[0] - start) / 1e9, gaps


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e3  # microseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--shuffle", action="store_true", help="hand the jobs over in random order, not by id"
    )
    parser.add_argument(
        "--idle", action="store_true", help="every node idle and up: many more placements"
    )
    parser.add_argument(
        "--gc-off", action="store_true", help="pause the garbage collector during each pass"
    )
    parser.add_argument(
        "--typed",
        action="store_true",
        help="nodes with GPU types and features; some jobs ask for them (not with --baseline-tree)",
    )
    parser.add_argument(
        "--baseline-tree",
        help="a checkout of another revision: run its benchmark and this one alternately",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline-tree")
    args = parser.parse_args()
    if args.baseline_tree:
        _compare(args)
        return

    pools, pending = build(
        args.seed, args.jobs, args.pools, args.nodes, idle=args.idle, typed=args.typed
    )
    if args.shuffle:
        random.Random(args.seed).shuffle(pending)
    groups = {  # jobs that see the pools alike: same shape, type, features and partition
        (r.nodes, r.gpus_per_node, r.cpus_per_node, r.mem_per_node_mb, r.partition or "fed",
         r.gpu_type, r.constraint)
        for r in (j.request for j in pending)
    }  # fmt: skip
    seconds, cpu, in_gc = [], [], []
    decisions: list[Decision] = []
    gc_clock = _GcClock()
    gc.callbacks.append(gc_clock)
    for _ in range(args.runs):
        del decisions
        gc.collect()
        gc_clock.seconds = 0.0
        if args.gc_off:
            gc.disable()
        start, start_cpu = time.perf_counter(), time.process_time()
        decisions = place(pools, pending, Policy(), T0)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        gc.enable()
        in_gc.append(gc_clock.seconds)
    gc.callbacks.remove(gc_clock)
    gc.collect()
    if args.gc_off:
        gc.disable()
    setup, gaps = _timed_decisions(pools, pending)
    gc.enable()

    placed = sum(1 for d in decisions if d.placed)
    best, median = min(seconds), statistics.median(seconds)
    rows = [
        ("jobs", f"{len(pending):,}"),
        ("pools", f"{len(pools)}"),
        ("nodes", f"{sum(len(p.nodes) for p in pools):,}"),
        ("distinct job shapes x partitions", f"{len(groups):,}"),
        ("decisions (cancel-requested skipped)", f"{len(decisions):,}"),
        ("placed", f"{placed:,}"),
        ("waiting", f"{len(decisions) - placed:,}"),
        (f"pass seconds, min / median of {args.runs}", f"{best:.3f} / {median:.3f}"),
        ("pass CPU seconds, min / median", f"{min(cpu):.3f} / {statistics.median(cpu):.3f}"),
        ("of which garbage collection, median (s)", f"{statistics.median(in_gc):.3f}"),
        ("decisions per second (median pass)", f"{len(decisions) / median:,.0f}"),
        ("setup before the first decision (s)", f"{setup:.3f}"),
        ("per-decision latency p50 / p99 / max (us)",
         f"{_pct(gaps, 0.50):.1f} / {_pct(gaps, 0.99):.1f} / {max(gaps) / 1e3:.0f}"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for key, value in rows:
        print(f"| {key:<{width}} | {value} |")


_MEDIAN = re.compile(r"\| pass seconds, min / median of \d+ +\| [0-9.]+ / ([0-9.]+) \|")


def _median_of(tree: Path, argv: list[str]) -> float:
    """The median pass seconds that tree's benchmark prints for `argv`, in a process of its own
    with only that tree importable."""
    out = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "placement.py"), *argv],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = _MEDIAN.search(out)
    if match is None:
        raise SystemExit(f"no pass seconds in the output of {tree}:\n{out}")
    return float(match.group(1))


def _compare(args: argparse.Namespace) -> None:
    here = Path(__file__).resolve().parents[1]
    baseline = Path(args.baseline_tree).resolve()
    argv = [f"--jobs={args.jobs}", f"--pools={args.pools}", f"--nodes={args.nodes}",
            f"--runs={args.runs}", f"--seed={args.seed}"]  # fmt: skip
    argv += [
        flag
        for flag in ("--shuffle", "--idle", "--gc-off")
        if getattr(args, flag[2:].replace("-", "_"))
    ]
    this, other = [], []
    for _ in range(args.rounds):  # alternate, so drift of the machine hits both alike
        other.append(_median_of(baseline, argv))
        this.append(_median_of(here, argv))
    a, b = statistics.median(this), statistics.median(other)
    print(f"| tree | median pass seconds over {args.rounds} rounds |")
    print("|------|-------|")
    print(f"| {here} (this) | {a:.3f} ({', '.join(f'{x:.3f}' for x in this)}) |")
    print(f"| {baseline} (baseline) | {b:.3f} ({', '.join(f'{x:.3f}' for x in other)}) |")
    print(f"| ratio this / baseline | {a / b:.3f} |")


if __name__ == "__main__":
    main()
