"""Helpers for end-to-end tests: a real sfedd subprocess, the real `sfed` CLI, lab fillers."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from sfedlab import Lab
from sfedlab.daemon import SfeddProcess
from sfedlab.federation import federation_config, write_config

from tests.deploy.helpers import slurm

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


class Daemon(SfeddProcess):
    """One sfedd with its own config, socket, SQLite store and log, plus test conveniences."""

    def __init__(
        self,
        lab: Lab,
        workdir: Path,
        *,
        ssh_pools: tuple[str, ...] = (),
        extra_pools: tuple[dict[str, Any], ...] = (),
        checkpoint_root: Path | None = None,
    ) -> None:
        self.lab = lab
        self.workdir = workdir
        self.store_url = f"sqlite:///{workdir / 'sfed.db'}"
        socket = workdir / "sfed.sock"
        config = federation_config(
            lab.site,
            store_url=self.store_url,
            socket=socket,
            ssh_pools=ssh_pools,
            interval_s=0.5,
            name=f"t{secrets.token_hex(6)}",
        )
        config["pools"].extend(extra_pools)
        if checkpoint_root is not None:
            config["federation"]["checkpoint_root"] = str(checkpoint_root)
        self.federation: str = config["federation"]["name"]
        super().__init__(write_config(config, workdir / "sfed.yaml"), socket, workdir / "sfedd.log")

    @property
    def cwd(self) -> Path:
        """Where the CLI runs (its working directory, so the jobs' submit directory)."""
        return self.config.parent

    def run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The real `sfed` CLI (with `env` added to its environment); with check, a non-zero
        exit fails the test with the daemon's log."""
        if env is None:
            result = self.sfed(*args)
        else:
            result = subprocess.run(
                [str(self.bin_dir / "sfed"), "--address", self.address, *args],
                text=True, capture_output=True, timeout=120, cwd=self.cwd,
                env={**os.environ, **env},
            )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"sfed {' '.join(args)} exited {result.returncode}: "
                f"{result.stderr}\n--- sfedd log ---\n{self.log_tail()}"
            )
        return result

    def show(self, job_id: int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.run("show", str(job_id), "--json").stdout)
        return data

    def output(self, job_id: int) -> bytes:
        """What the job's current attempt has written so far (StreamOutput, not followed)."""
        import grpc

        from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
        from scheduler.proto_gen.sfed.v1 import sfed_pb2_grpc as pb_grpc
        from tests.fixtures.credentials import proven

        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.FederationStub(channel)
            request = pb.StreamOutputRequest(job_id=job_id, follow=False)
            metadata = proven("StreamOutput", request)
            return b"".join(
                c.data for c in stub.StreamOutput(request, timeout=30, metadata=metadata)
            )

    def submit(self, script: Path, *options: str) -> int:
        return int(self.run("submit", "--parsable", *options, str(script)).stdout.strip())

    def wait_state(
        self, job_id: int, states: set[str] = TERMINAL, timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.show(job_id)
            if job["state"] in states:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} still {job['state']} after {timeout} s: {job}"
                    f"\n--- sfedd log ---\n{self.log_tail()}"
                )
            time.sleep(0.3)


def write_script(directory: Path, name: str, body: str) -> Path:
    """A batch script file in `directory`."""
    path = directory / name
    path.write_text("#!/bin/bash\n" + body)
    return path


def remote_jobs_tagged(lab: Lab, cluster: str, tag: str) -> list[str]:
    """Ids of every job on `cluster` (any state) whose comment is `tag`."""
    out = slurm(lab, cluster, "squeue", "-h", "--states=all", "-o", "%i %k", timeout=60)
    return [
        line.split(" ", 1)[0] for line in out.splitlines() if line.split(" ", 1)[-1].strip() == tag
    ]


class Filler:
    """Direct sbatch jobs that hold a cluster's GPUs, cancelled at the end of the test."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.jobs: list[tuple[str, str]] = []

    def fill(self, cluster: str, nodes: int, gpus: int) -> str:
        script = b"#!/bin/bash\nsleep 600\n"
        job_id = (
            slurm(
                self.lab,
                cluster,
                "sbatch",
                "--parsable",
                "-J",
                "filler",
                f"-N{nodes}",
                f"--gres=gpu:{gpus}",
                "-o",
                "/dev/null",
                stdin=script,
            )
            .strip()
            .split(";")[0]
        )
        self.jobs.append((cluster, job_id))
        deadline = time.monotonic() + 30
        while (
            slurm(self.lab, cluster, "squeue", "-h", "-j", job_id, "-o", "%T").strip() != "RUNNING"
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"filler {job_id} on {cluster} did not start")
            time.sleep(0.2)
        return job_id

    def release(self) -> None:
        for cluster, job_id in self.jobs:
            subprocess.run(["scancel", job_id], env=self.lab.env(cluster), check=False)
        self.jobs.clear()
