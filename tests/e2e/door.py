"""The lab's front door for end-to-end tests: real sbatch/squeue/scontrol/scancel on `door`.

A `FrontDoor` runs the door's Slurm clients in a test's own directory and remembers every job
it submitted; `cleanup()` cancels them, waits until their federation jobs have ended and fails
if a remote job of theirs is still alive on a pool.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sfedlab import Lab

from scheduler.store import Store
from tests.deploy.helpers import slurm

T = TypeVar("T")

DOOR = "door"
POOLS = ("alpha", "beta")
# Slurm job states after which nothing runs any more.
ENDED = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
     "BOOT_FAIL", "DEADLINE"}
)  # fmt: skip
FED_ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
SUBMITTED = re.compile(r"Submitted batch job (\d+)\n")
# What sfed-proxy writes into the front-door job's comment.
PROXY_COMMENT = re.compile(r"sfed (\d+): ([A-Z_]+)(?: on (\S+) \(job (\d+)\))?")


@dataclass(frozen=True)
class Remote:
    """The federation job behind a front-door job, as its comment tells it."""

    fed_id: int
    state: str
    pool: str | None
    remote_id: str | None


def run(
    lab: Lab,
    cluster: str,
    *argv: str,
    cwd: Path | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """A Slurm client of `cluster` (argv, no shell, no stdin), with `env` added to its
    environment; never raises on its exit code."""
    return subprocess.run(
        list(argv), env={**lab.env(cluster), **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, errors="replace", timeout=timeout, check=False,
    )  # fmt: skip


def checked(lab: Lab, cluster: str, *argv: str, cwd: Path | None = None) -> str:
    """stdout of a Slurm client that must succeed."""
    return slurm(lab, cluster, *argv, cwd=cwd, timeout=60)


def batch_script(lab: Lab, cluster: str, job: str) -> bytes:
    """The batch script Slurm stored for a job, byte for byte (`scontrol write batch_script`)."""
    result = subprocess.run(
        ["scontrol", "write", "batch_script", job, "-"], env=lab.env(cluster),
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{cluster}: batch_script of {job}: {result.stderr!r}"
    return result.stdout


def show_job(lab: Lab, cluster: str, job: str) -> str:
    """`scontrol show job` of one job (or array task `A_a`)."""
    return checked(lab, cluster, "scontrol", "show", "job", job)


def field(shown: str, key: str) -> str:
    """One space-free `Key=value` of `scontrol show job` output."""
    m = re.search(rf"(?:^|\s){key}=(\S*)", shown)
    assert m, f"no {key} in:\n{shown}"
    return m[1]


def job_name(shown: str) -> str:
    """The JobName of `scontrol show job` output: the rest of its first line, spaces and all."""
    m = re.match(r"JobId=\d+ JobName=(.*)\n", shown)
    assert m, f"no JobName in:\n{shown}"
    return m[1]


def poll(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.3) -> T:
    """Call `probe` until it returns something other than None; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:g} s: still waiting for {what}")
        time.sleep(interval)


def remote_state(lab: Lab, pool: str, remote_id: str) -> str:
    """JobState of a job on a pool."""
    return field(show_job(lab, pool, remote_id), "JobState")


def wait_remote(lab: Lab, pool: str, remote_id: str, timeout: float = 60) -> str:
    """Poll a job on a pool until it has ended; return its state."""

    def probe() -> str | None:
        state = remote_state(lab, pool, remote_id)
        return state if state in ENDED else None

    return poll(f"job {remote_id} on {pool} to end", probe, timeout)


def tagged(lab: Lab, fed_id: int) -> list[tuple[str, str, str]]:
    """(pool, remote id, state) of every job on the pools, any state, of federation job `fed_id`
    of the lab's federation (comment `sfed/lab/<fed_id>/<attempt>`)."""
    found = []
    prefix = f"sfed/lab/{fed_id}/"
    # Comments are free text (other tests put newlines in theirs): end each record with a marker.
    marker = f"<{secrets.token_hex(8)}>"
    for pool in POOLS:
        out = checked(lab, pool, "squeue", "-h", "--states=all", "-o", f"%i|%T|%k{marker}")
        for record in out.split(marker + "\n"):
            remote_id, _, rest = record.partition("|")
            state, _, comment = rest.partition("|")
            if comment.startswith(prefix):
                found.append((pool, remote_id, state))
    return found


class Federation:
    """The lab's own sfedd as the real `sfed` CLI and its store see it."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.cli = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sfed"

    def sfed(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.cli), "--address", self.lab.sfedd.address, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def show(self, fed_id: int) -> dict[str, Any]:
        result = self.sfed("show", str(fed_id), "--json")
        assert result.returncode == 0, f"sfed show {fed_id}: {result.stderr}"
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def wait(
        self, fed_id: int, states: Iterable[str] = FED_ENDED, timeout: float = 60
    ) -> dict[str, Any]:
        wanted = set(states)

        def probe() -> dict[str, Any] | None:
            job = self.show(fed_id)
            return job if job["state"] in wanted else None

        return poll(f"federation job {fed_id} in {sorted(wanted)}", probe, timeout)

    def jobs_of(self, door_ids: Iterable[str]) -> dict[str, list[int]]:
        """Federation job ids per front-door job id, by client key `door/<id>/<restarts>`."""
        wanted: dict[str, list[int]] = {str(i): [] for i in door_ids}
        with Store(self.lab.sfedd.store_url) as store:
            for job in store.list_jobs():
                parts = (job.client_key or "").split("/")
                if len(parts) == 3 and parts[0] == DOOR and parts[1] in wanted:
                    wanted[parts[1]].append(job.id)
        return wanted


class FrontDoor:
    """Slurm clients of the door run in `workdir`; every submitted job is cancelled at cleanup."""

    def __init__(self, lab: Lab, workdir: Path) -> None:
        self.lab = lab
        self.workdir = workdir
        self.federation = Federation(lab)
        self.jobs: list[str] = []
        self.names: list[str] = []

    def name(self, prefix: str) -> str:
        """A job name of this test's own; jobs of that name are cancelled at cleanup."""
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.names.append(name)
        return name

    def named(self, name: str) -> list[str]:
        """Ids of the door's jobs (any state) named `name`."""
        out = checked(self.lab, DOOR, "squeue", "-h", "--states=all", "-n", name, "-o", "%A")
        return out.split()

    def run(
        self, *argv: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(self.lab, DOOR, *argv, cwd=self.workdir, timeout=timeout, env=env)

    def script(self, name: str, body: str | bytes) -> str:
        """A script file in the work dir; returns its name (sbatch runs in the work dir)."""
        data = body if isinstance(body, bytes) else ("#!/bin/bash\n" + body).encode()
        (self.workdir / name).write_bytes(data)
        return name

    def sbatch(
        self, *argv: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`sbatch argv...` (with `env` added to the client's environment), remembering the
        job if one was submitted."""
        result = self.run("sbatch", *argv, env=env)
        m = SUBMITTED.fullmatch(result.stdout)
        if m:
            self.jobs.append(m[1])
        return result

    def submit(self, *argv: str, env: dict[str, str] | None = None) -> str:
        """`sbatch argv...` that must print `Submitted batch job <id>`; returns the id."""
        result = self.sbatch(*argv, env=env)
        assert result.returncode == 0, f"sbatch {argv} exited {result.returncode}: {result.stderr}"
        m = SUBMITTED.fullmatch(result.stdout)
        assert m, f"sbatch printed {result.stdout!r}"
        return m[1]

    def show(self, job: str) -> str:
        return show_job(self.lab, DOOR, job)

    def state(self, job: str) -> str:
        return field(self.show(job), "JobState")

    def wait_ended(self, job: str, timeout: float = 120) -> str:
        """Poll until the job has ended; returns its `scontrol show job` output."""

        def probe() -> str | None:
            shown = self.show(job)
            return shown if field(shown, "JobState") in ENDED else None

        return poll(f"door job {job} to end", probe, timeout)

    def comment(self, job: str) -> str:
        return checked(
            self.lab, DOOR, "squeue", "-h", "--states=all", "-j", job, "-o", "%k"
        ).strip()

    def wait_comment(self, job: str, states: set[str], timeout: float = 60) -> Remote:
        """Poll the door job's comment until it shows the federation job in `states` on a pool."""

        def probe() -> Remote | None:
            # The proxy's status follows the user's own comment, when there is one.
            m = PROXY_COMMENT.fullmatch(self.comment(job).rsplit(" | ", 1)[-1])
            if m is None or m[2] not in states or m[3] is None:
                return None
            return Remote(int(m[1]), m[2], m[3], m[4])

        return poll(f"door job {job}'s comment to show {sorted(states)} on a pool", probe, timeout)

    def array_tasks(self, array_id: str) -> list[str]:
        """The door job ids of an array's tasks (once Slurm has split them off)."""
        out = checked(
            self.lab, DOOR, "squeue", "-h", "-r", "--states=all", "-j", array_id, "-o", "%A"
        )
        return sorted(set(out.split()))

    def cleanup(self) -> None:
        """Cancel every job submitted here, then check that no remote job of theirs is left."""
        for name in self.names:
            self.jobs.extend(self.named(name))
        if not self.jobs:
            return
        self.run("scancel", *self.jobs)
        door_ids: set[str] = set()
        for job in self.jobs:
            door_ids.update(self.array_tasks(job) or [job])
        for job in door_ids:
            self.wait_ended(job, timeout=60)
        fed_ids = [i for ids in self.federation.jobs_of(door_ids).values() for i in ids]
        left: list[tuple[str, str, str]] = []
        for fed_id in fed_ids:
            if self.federation.show(fed_id)["state"] not in FED_ENDED:
                self.federation.sfed("cancel", str(fed_id))
            for pool, remote_id, state in tagged(self.lab, fed_id):
                if state in ENDED:
                    continue
                try:
                    wait_remote(self.lab, pool, remote_id, timeout=30)
                except AssertionError:
                    left.append((pool, remote_id, state))
                    run(self.lab, pool, "scancel", remote_id)
        self.jobs.clear()
        assert not left, f"remote jobs still alive after their front-door jobs ended: {left}"
