"""Benchmark of the job_submit Lua shim (plugins/job_submit.lua) under lua5.1.

    .venv/bin/python benchmarks/shim.py                # 10,000 mixed submissions
    .venv/bin/python benchmarks/shim.py --calls 50000

Runs tests/plugins/harness.lua in bench mode: the plugin with the harness's fake Slurm 22.05
job_desc (a metatable over a table, as slurmctld's is over its C struct), fresh capabilities
(two pools), and per 100 calls: 60 fed jobs with a 4 KB script, 30 jobs for another partition,
8 fed jobs refused as impossible, 2 fed jobs with a 1 MB script. Each call is timed with
os.clock (process CPU time, 1 us resolution). Prints p50 / p99 / max per kind, in microseconds.

Not measured here: slurmctld's own copies of the script in and out of Lua (lua_pushstring on
read, xstrdup on write), about two memcpy of the script.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "plugins" / "harness.lua"
PLUGIN = ROOT / "plugins" / "job_submit.lua"
CAPS = (
    "version=1 generated={now} partition=fed\n"
    "pool=alpha nodes=2 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP\n"
    "pool=beta nodes=4 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=DRAINED\n"
)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    lua = shutil.which("lua5.1")
    if lua is None:
        print("lua5.1 is not installed (apt-get install lua5.1)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        caps = Path(tmp) / "capabilities"
        caps.write_text(CAPS.format(now=int(time.time())))
        out = subprocess.run(
            [lua, str(HARNESS), "bench", str(PLUGIN), str(caps), str(args.calls)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    samples: dict[str, list[float]] = defaultdict(list)
    first = 0.0
    for line in out.splitlines():
        kind, *rest = line.split()
        if kind == "first":
            first = float(rest[0]) * 1e6
        elif kind == "sample":
            samples[rest[0]].append(float(rest[1]) * 1e6)
    print(f"lua5.1, {args.calls:,} calls; first call (reads the capabilities file): {first:.0f} us")
    print(f"{'kind':<18} {'calls':>6} {'p50 us':>8} {'p99 us':>8} {'max us':>8} {'mean us':>8}")
    for kind in ("other_4KB", "fed_4KB", "fed_rejected_4KB", "fed_1MB"):
        values = sorted(samples[kind])
        print(
            f"{kind:<18} {len(values):>6} {percentile(values, 0.50):>8.1f} "
            f"{percentile(values, 0.99):>8.1f} {values[-1]:>8.1f} {statistics.fmean(values):>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
