"""Benchmark of the Kubernetes pool: sfedd's own cost per pass, and round trips.

    .venv/bin/python benchmarks/kube_pool.py               # needs root (the test cluster's pods)
    .venv/bin/python benchmarks/kube_pool.py --nodes 2000 --pods 40000 --jobs 50

Part 1 times the pure code sfedd runs on every pass against a large cluster: turning the
Node and Pod lists into a snapshot (capacity.node_snapshots) and the Jobs and pods of the
federation's jobs into states (status.remote_job), on synthetic API documents.

Part 2 times KubernetesPool.submit (Secret, ConfigMap, Service, Job, then three owner
patches) and poll (two lists) through the official client against the test API server
(tests/kubeapi, TLS on loopback), beside SlurmPool.submit (a real `sbatch`) on the lab's alpha in the same run. The
test API server is not kube-apiserver: read part 2 as the client-side cost of the adapter
(serialisation, TLS, the client library), not as what a GKE or EKS control plane answers in.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "deploy"), str(ROOT)]

from sfedlab import Lab  # noqa: E402

from benchmarks.stats import percentile  # noqa: E402
from scheduler.config import parse_config  # noqa: E402
from scheduler.domain import JobRequest, RemoteSubmission, RemoteTag  # noqa: E402
from scheduler.pools.kubernetes import capacity, status  # noqa: E402
from scheduler.pools.kubernetes.adapter import KubernetesPool  # noqa: E402
from scheduler.pools.slurm import LocalTransport, SlurmPool  # noqa: E402
from tests.kubeapi import FakeCluster  # noqa: E402


def synthetic(nodes: int, pods: int, jobs: int) -> tuple[list[Any], list[Any], list[Any]]:
    """Nodes with 8 GPUs, pods of 1-8 GPUs spread over them, 4-pod federation jobs."""
    node_docs = [
        {
            "metadata": {"name": f"gke-a100-{i:05d}", "labels": {"pool": "a100"}},
            "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
            "status": {
                "allocatable": {"cpu": "95500m", "memory": "1320Gi", "nvidia.com/gpu": "8"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
        for i in range(nodes)
    ]
    pod_docs = [
        {
            "metadata": {"name": f"p{i}", "namespace": "ml"},
            "spec": {
                "nodeName": f"gke-a100-{i % nodes:05d}",
                "containers": [
                    {"resources": {"requests": {"cpu": "500m", "memory": "2Gi"}}},
                    {"resources": {"limits": {"nvidia.com/gpu": str(1 + i % 2)}}},
                ],
            },
            "status": {"phase": "Running"},
        }
        for i in range(pods)
    ]
    job_docs = []
    for j in range(jobs):
        meta = {"name": f"fed-{j}-1", "annotations": {"sfed.io/tag": f"sfed/fed/{j}/1"}}
        job_pods = [
            {
                "metadata": {
                    "name": f"fed-{j}-1-{k}-abcde",
                    "labels": {"batch.kubernetes.io/job-completion-index": str(k)},
                },
                "spec": {"nodeName": f"gke-a100-{(4 * j + k) % nodes:05d}"},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {"state": {"running": {"startedAt": "2026-11-23T10:00:00Z"}}}
                    ],
                },
            }
            for k in range(4)
        ]
        job_docs.append(({"metadata": meta, "status": {"active": 4}}, job_pods))
    return node_docs, pod_docs, job_docs


def time_it(runs: int, fn: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


async def round_trips(pool: Any, n: int, make: Callable[[int], RemoteSubmission]) -> list[float]:
    latencies = []
    for i in range(n):
        start = time.perf_counter()
        await pool.submit(make(i))
        latencies.append(time.perf_counter() - start)
    return latencies


async def timed(n: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


def row(name: str, values: list[float], unit: float = 1e3) -> str:
    med, p99 = statistics.median(values) * unit, percentile(values, 0.99) * unit
    return f"| {name:<52} | {med:9.2f} | {p99:9.2f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--fed-jobs", type=int, default=2000, help="federation jobs to map")
    parser.add_argument("--jobs", type=int, default=30, help="jobs submitted in part 2")
    args = parser.parse_args()

    nodes, pods, jobs = synthetic(args.nodes, args.pods, args.fed_jobs)
    tolerations = (
        parse_config(
            {
                "pools": [
                    {
                        "name": "k",
                        "kind": "kubernetes",
                        "image": "x",
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                    }
                ]
            }
        )
        .pools[0]
        .tolerations
    )  # type: ignore[union-attr]
    snap = time_it(
        7,
        lambda: capacity.node_snapshots(
            nodes, pods, gpu_resource="nvidia.com/gpu", tolerations=tolerations
        ),
    )
    states = time_it(7, lambda: [status.remote_job(j, p) for j, p in jobs])
    print("## part 1: sfedd's own cost per pass (pure code, synthetic documents)\n")
    print(f"| {'measure':<52} | {'median ms':>9} | {'p99 ms':>9} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|")
    print(row(f"snapshot: {args.nodes} nodes, {args.pods} pods", snap))
    print(row(f"states: {args.fed_jobs} jobs x 4 pods", states))

    lab = Lab.default()
    with lab.session(), tempfile.TemporaryDirectory() as tmp, FakeCluster(Path(tmp)) as cluster:
        for i in range(4):
            cluster.add_node(f"n{i}", gpus=8, cpus=64, labels={"pool": "a100"})
        config = parse_config(
            {
                "pools": [
                    {
                        "name": "kube",
                        "kind": "kubernetes",
                        "kubeconfig": str(cluster.kubeconfig),
                        "image": "python:3.11",
                        "node_selector": {"pool": "a100"},
                    }
                ]
            }
        ).pools[0]
        fed = f"b{uuid.uuid4().hex[:8]}"

        def make(i: int) -> RemoteSubmission:
            return RemoteSubmission(
                tag=RemoteTag(fed, i + 1, 1),
                request=JobRequest(script=b"#!/bin/sh\ntrue\n", output="/dev/null"),
            )

        async def run() -> tuple[list[float], list[float], list[float], list[float]]:
            kube = KubernetesPool(config, timeout=30)  # type: ignore[arg-type]
            partition = next(s.partition for s in lab.clusters if s.name == "alpha")
            slurm = SlurmPool("alpha", LocalTransport(str(lab.conf_path("alpha"))), partition)
            try:
                await kube.snapshot()  # connect once
                k_submit = await round_trips(kube, args.jobs, make)
                ids = [f"{fed}-{i + 1}-1-sbatch" for i in range(args.jobs)]
                k_poll = await timed(10, lambda: kube.poll(ids))
                s_submit = await round_trips(slurm, args.jobs, lambda i: make(args.jobs + i))
                s_poll = await timed(10, lambda: slurm.poll(["1"]))
                for remote_id in ids:
                    await kube.cancel(remote_id)
                return k_submit, k_poll, s_submit, s_poll
            finally:
                await kube.close()
                await slurm.close()

        k_submit, k_poll, s_submit, s_poll = asyncio.run(run())
        subprocess_cancel(lab, fed)

    print(f"\n## part 2: round trips, {args.jobs} submissions each\n")
    print(f"| {'path':<52} | {'median ms':>9} | {'p99 ms':>9} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|")
    print(row("SlurmPool.submit (real sbatch, alpha)", s_submit))
    print(row("KubernetesPool.submit (4 creates + 3 patches)", k_submit))
    print(row("SlurmPool.poll (squeue)", s_poll))
    print(row(f"KubernetesPool.poll ({args.jobs} jobs: 2 lists)", k_poll))
    ratio = statistics.median(s_submit) / statistics.median(k_submit)
    print(f"\nsubmit rate ratio, Kubernetes pool / sbatch: {ratio:.2f}")
    return 0


def subprocess_cancel(lab: Lab, fed: str) -> None:
    """Cancel the benchmark's sbatch jobs on alpha (their comment carries the tag)."""
    import subprocess

    out = subprocess.run(
        ["squeue", "-h", "-o", "%i %k"], env=lab.env("alpha"), capture_output=True, text=True
    ).stdout
    ids = [line.split()[0] for line in out.splitlines() if f"sfed/{fed}/" in line]
    if ids:
        subprocess.run(["scancel", *ids], env=lab.env("alpha"), check=False)


if __name__ == "__main__":
    sys.exit(main())
