"""Submit throughput and latency: sfed (submit -> remote job id) beside plain sbatch, one run.

Both sides submit the same trivial 1-node script to the lab's beta cluster, from 1 and from 8
concurrent clients (threads), each job after the previous one of its client:
- `sbatch`: the real `sbatch --parsable` command, from fork to its job id.
- `sfed grpc`: SubmitJob over the Unix socket, then WatchJob until the event that records the
  remote job id (the federation's full path: validation, store, placement, sbatch on the pool).
- `sfed cli`: the `sfed submit` command (a fresh Python process per job, as a user runs it),
  until the remote job id is recorded.

Run: `.venv/bin/python benchmarks/submit.py [--jobs 100]` (starts the lab if needed).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "deploy"), str(ROOT)]

from sfedlab import Lab  # noqa: E402
from sfedlab.daemon import SfeddProcess  # noqa: E402
from sfedlab.federation import federation_config, write_config  # noqa: E402

from benchmarks.stats import percentile  # noqa: E402
from scheduler.cli.client import Client  # noqa: E402
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb  # noqa: E402

SCRIPT = b"#!/bin/bash\ntrue\n"
CLUSTER = "beta"


def measure(n: int, one: Callable[[], None], clients: int = 1) -> tuple[float, list[float]]:
    """Run `one` n times from `clients` threads; returns wall time and per-call latencies."""
    latencies: list[float] = []

    def timed(_: int) -> None:
        t0 = time.perf_counter()
        one()
        latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(timed, range(n)))
    return time.perf_counter() - start, latencies


def wait_remote_id(client: Client, job_id: int) -> None:
    for event in client.federation.WatchJob(pb.WatchJobRequest(job_id=job_id)):
        if event.kind == "submitted_remote":
            return
        if event.job_state in ("FAILED", "CANCELLED"):
            raise SystemExit(f"job {job_id} ended {event.job_state}: {event.message}")
    raise SystemExit(f"job {job_id} ended without a remote id")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrent clients")
    args = parser.parse_args()
    lab = Lab.default()
    lab.up()
    env = lab.env(CLUSTER)
    with tempfile.TemporaryDirectory(prefix="sfed-bench-") as tmp:
        work = Path(tmp)
        script_path = work / "job.sh"
        script_path.write_bytes(SCRIPT)
        config = federation_config(
            lab.site,
            store_url=f"sqlite:///{work / 'sfed.db'}",
            socket=work / "sfed.sock",
            interval_s=1.0,
            name="bench",
        )
        daemon = SfeddProcess(
            write_config(config, work / "sfed.yaml"), work / "sfed.sock", work / "sfedd.log"
        )
        daemon.start()
        try:

            def sbatch() -> None:
                subprocess.run(
                    ["sbatch", "--parsable", "-p", "gpu", "-o", "/dev/null", "-J", "bench"],
                    input=SCRIPT,
                    env=env,
                    check=True,
                    capture_output=True,
                )

            spec = pb.JobSpec(
                script=SCRIPT, job_name="bench", partition=CLUSTER, output="/dev/null", chdir=tmp
            )
            with Client(daemon.address) as client:

                def sfed_grpc() -> None:
                    reply = client.federation.SubmitJob(pb.SubmitJobRequest(spec=spec, user="root"))
                    wait_remote_id(client, reply.job_id)

                def sfed_cli() -> None:
                    out = daemon.sfed(
                        "submit", "--parsable", "-p", CLUSTER, "-o", "/dev/null", str(script_path)
                    )
                    if out.returncode != 0:
                        raise SystemExit(out.stderr)
                    wait_remote_id(client, int(out.stdout))

                measure(5, sbatch)  # warm up both paths
                measure(5, sfed_grpc)
                paths = (("sbatch", sbatch), ("sfed grpc", sfed_grpc), ("sfed cli", sfed_cli))
                rows = [
                    (name, clients, *measure(args.jobs, fn, clients))
                    for clients in args.clients
                    for name, fn in paths
                ]
        finally:
            daemon.stop()
            subprocess.run(["scancel", "-n", "bench"], env=env, check=False)
    print(f"{args.jobs} jobs per path and client count, cluster {CLUSTER}")
    print(
        f"{'path':<10} {'clients':>7} {'jobs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'rate vs sbatch':>15}"
    )
    base: dict[int, float] = {}
    for name, clients, total, lat in rows:
        rate = args.jobs / total
        base.setdefault(clients, rate)  # sbatch comes first for each client count
        print(
            f"{name:<10} {clients:>7} {rate:8.1f} {statistics.median(lat) * 1000:8.1f} "
            f"{percentile(lat, 0.99) * 1000:8.1f} {rate / base[clients]:15.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
