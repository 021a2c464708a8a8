"""Front-door submission cost: `sbatch -p fed` (through the job_submit shim) beside `sbatch -p
local` on the same slurmctld (the lab's door, whose shim returns at once for other partitions).

Both paths submit the same trivial script with `--hold` (nothing runs: no proxy job starts or
reaches sfedd; only the submission path is measured), the same number of jobs, interleaved in
blocks (fed, local, local, fed, fed, local, ...) to spread the machine's noise over both, from
1 and from 8 concurrent clients (threads), each job after the previous one of its client.
- jobs/s: jobs of a path / the summed wall time of its blocks (a block starts with its first
  command and ends with its last; with several clients it includes the block's tail).
- p50 / p99: per `sbatch` command, from fork to exit.
- ctld us: slurmctld's own time per REQUEST_SUBMIT_BATCH_JOB, from `sdiag` (its RPC
  statistics, reset with `sdiag --reset` before every block; root only): the shim plus
  everything else slurmctld does for a submission, including waits for its locks (so with
  several clients it grows with contention). fed - local, as the median over pairs of adjacent
  blocks, estimates the shim's cost; it is noisy (hundreds of us on a busy machine).
All jobs are named `--name` and cancelled with `scancel -n` after each client count.

Run: `.venv/bin/python benchmarks/front_door.py [--jobs 200]` (starts the lab if needed).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "deploy"), str(ROOT)]

from sfedlab import Lab  # noqa: E402

from benchmarks.stats import percentile  # noqa: E402

SCRIPT = b"#!/bin/bash\ntrue\n"
# 22.05: "REQUEST_SUBMIT_BATCH_JOB ( 4003) count:17 ave_time:1748 total_time:29717" (us).
SDIAG_SUBMIT = re.compile(
    r"^\s*REQUEST_SUBMIT_BATCH_JOB\s+\(\s*\d+\)\s+count:(\d+)\s+ave_time:\d+\s+total_time:(\d+)",
    re.M,
)


@dataclass
class Series:
    """One path at one client count, summed over its blocks."""

    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    rpc_count: int = 0  # REQUEST_SUBMIT_BATCH_JOB seen by sdiag during this path's blocks
    rpc_us: int = 0
    block_us: list[float] = field(default_factory=list)  # slurmctld's mean per block
    foreign_blocks: int = 0  # blocks during which someone else submitted to the door too


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200, help="jobs per path and client count")
    parser.add_argument("--block", type=int, default=20, help="jobs per interleaved block")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrent clients")
    parser.add_argument("--name", default="sfed-bench-fd", help="job name (scancel -n)")
    args = parser.parse_args()
    if args.jobs < 1 or args.block < 1 or min(args.clients) < 1:
        parser.error("--jobs, --block and --clients must be >= 1")
    lab = Lab.default()
    lab.up()
    door = lab.door
    if door is None:
        raise SystemExit("the lab has no front door")
    env = lab.env(door.name)
    fed, local = door.partition, door.local_partition
    use_sdiag = os.geteuid() == 0  # sdiag --reset needs root or SlurmUser

    def run(*argv: str) -> str:
        return subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout

    def sbatch(partition: str) -> float:
        t0 = time.perf_counter()
        out = subprocess.run(
            ["sbatch", "--parsable", "--hold", "-p", partition, "-o", "/dev/null", "-J", args.name],
            input=SCRIPT,
            env=env,
            capture_output=True,
            check=False,
        )
        elapsed = time.perf_counter() - t0
        if out.returncode != 0 or not out.stdout.strip().split(b";")[0].isdigit():
            raise SystemExit(f"sbatch -p {partition} failed: {out.stderr.decode().strip()}")
        return elapsed

    def sdiag_submits() -> tuple[int, int]:
        m = SDIAG_SUBMIT.search(run("sdiag"))
        return (int(m[1]), int(m[2])) if m else (0, 0)

    def cancel() -> int:
        """Cancel every job named args.name; returns how many are still active after."""
        subprocess.run(["scancel", "-n", args.name], env=env, check=False)
        left = run("squeue", "-h", "-n", args.name, "-t", "PENDING,RUNNING,SUSPENDED", "-o", "%i")
        return len(left.split())

    sizes = [args.block] * (args.jobs // args.block)
    if args.jobs % args.block:
        sizes.append(args.jobs % args.block)
    results: dict[tuple[str, int], Series] = {}
    started = time.perf_counter()
    try:
        cancel()  # leftovers of an interrupted run would stay in the queue
        with ThreadPoolExecutor(1) as pool:  # warm up both paths (the shim reads its file)
            list(pool.map(sbatch, [fed, local] * 5))
        # The shim is live: it marks every proxy job's comment (nothing else would).
        comments = run("squeue", "-h", "-n", args.name, "-p", fed, "-o", "%k").splitlines()
        if len(comments) != 5 or not all(c.startswith("sfed:") for c in comments):
            raise SystemExit(f"the {fed} jobs were not turned into proxy jobs: {comments}")
        for clients in args.clients:
            for path in (fed, local):
                results[(path, clients)] = Series()
            with ThreadPoolExecutor(clients) as pool:
                for i, size in enumerate(sizes):
                    # fed first in even pairs of blocks, local first in odd ones
                    for path in (fed, local) if i % 2 == 0 else (local, fed):
                        series = results[(path, clients)]
                        if use_sdiag:
                            run("sdiag", "--reset")
                        t0 = time.perf_counter()
                        series.latencies += pool.map(sbatch, [path] * size)
                        series.wall += time.perf_counter() - t0
                        if use_sdiag:
                            count, total_us = sdiag_submits()
                            series.rpc_count += count
                            series.rpc_us += total_us
                            series.block_us.append(total_us / max(count, 1))
                            series.foreign_blocks += count != size
            cancel()
    finally:
        left = cancel()
    elapsed = time.perf_counter() - started

    print(
        f"{args.jobs} jobs per path and client count, blocks of {args.block}, cluster "
        f"{door.name} (sbatch --hold), {elapsed:.0f} s in all"
    )
    print(
        f"{'path':<10} {'clients':>7} {'jobs/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'ctld us':>8} {'rate vs local':>14}"
    )
    for clients in args.clients:
        base = args.jobs / results[(local, clients)].wall
        for path, label in ((local, f"-p {local}"), (fed, f"-p {fed}")):
            s = results[(path, clients)]
            rate = args.jobs / s.wall
            ctld = f"{s.rpc_us / s.rpc_count:8.0f}" if s.rpc_count else f"{'-':>8}"
            print(
                f"{label:<10} {clients:>7} {rate:8.1f} {statistics.median(s.latencies) * 1000:8.1f} "
                f"{percentile(s.latencies, 0.99) * 1000:8.1f} {ctld} {rate / base:14.2f}"
            )
    for clients in args.clients:
        f, lo = results[(fed, clients)], results[(local, clients)]
        ratio = (args.jobs / f.wall) / (args.jobs / lo.wall)
        verdict = "ok" if ratio >= 0.8 else "BELOW TARGET"
        line = f"{clients} client(s): fed/local jobs/s {ratio:.2f} (target >= 0.80: {verdict})"
        if f.block_us and lo.block_us:
            shim = statistics.median(a - b for a, b in zip(f.block_us, lo.block_us, strict=True))
            line += (
                f"; slurmctld us per submission, fed - local (median of block pairs): {shim:+.0f}"
            )
        print(line)
    if not use_sdiag:
        print("not root: no sdiag figures (sdiag --reset needs root or SlurmUser)")
    foreign = sum(s.foreign_blocks for s in results.values())
    if foreign:
        print(f"note: in {foreign} blocks sdiag counted submissions that were not this run's")
    if left:
        print(f"warning: {left} jobs named {args.name} are still active on {door.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
