"""Slurm client helpers for the lab tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sfedlab import Lab


def slurm_bytes(
    lab: Lab,
    cluster: str,
    *argv: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    timeout: float = 30,
) -> bytes:
    """Run a Slurm client on a lab cluster (argv, no shell); it must succeed; its stdout."""
    res = subprocess.run(argv, env=lab.env(cluster), input=stdin, cwd=cwd, capture_output=True,
                         timeout=timeout, check=False)  # fmt: skip
    assert res.returncode == 0, (
        f"{cluster}: {argv} exited {res.returncode}: {res.stderr.decode(errors='replace')}"
    )
    return res.stdout


def slurm(
    lab: Lab,
    cluster: str,
    *argv: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    timeout: float = 30,
) -> str:
    """The same, stdout as text."""
    return slurm_bytes(lab, cluster, *argv, stdin=stdin, cwd=cwd, timeout=timeout).decode(
        errors="replace"
    )


def job_field(lab: Lab, cluster: str, job: str, key: str) -> str:
    """One `Key=value` field of `scontrol show job`."""
    fields = slurm(lab, cluster, "scontrol", "show", "job", job).split()
    return next(f.partition("=")[2] for f in fields if f.partition("=")[0] == key)


def wait_job(lab: Lab, cluster: str, job: str, states: set[str], timeout: float = 60) -> str:
    """Poll `scontrol show job` until the job reaches one of `states`; return it."""
    deadline = time.monotonic() + timeout
    while (state := job_field(lab, cluster, job, "JobState")) not in states:
        assert time.monotonic() < deadline, f"job {job} still {state} after {timeout}s"
        time.sleep(0.2)
    return state


def door_sacct(lab: Lab, job: str, timeout: float = 30) -> dict[str, str]:
    """The door's sacct record of `job` (no steps) once it has ended and is whole: slurmdbd may
    hold a short job's end before its start record (no name, no partition) for a second."""
    fields = ("JobID", "Partition", "State", "ExitCode", "Submit", "Start", "End", "Elapsed")
    deadline = time.monotonic() + timeout
    while True:
        out = slurm(lab, "door", "sacct", "-X", "-n", "-P", "-j", job, "-o", ",".join(fields))
        rows = [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines()]
        if rows and rows[0]["State"] not in {"PENDING", "RUNNING"} and rows[0]["Partition"]:
            return rows[0]
        assert time.monotonic() < deadline, f"sacct of door job {job} after {timeout}s: {rows}"
        time.sleep(0.5)


@contextmanager
def private_lab(prefix: str, **options: Any) -> Iterator[tuple[Lab, Path]]:
    """A private lab with a door under a short new /tmp directory (slurmstepd puts unix sockets
    under its spool dir) and that directory; stopped, its slurmdbd database dropped and the
    directory removed afterwards. `options` are Lab's; a callable value is called with the
    directory first (for files made in it)."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    built = {k: v(root) if callable(v) else v for k, v in options.items()}
    private = Lab(root / "lab", **built)
    try:
        yield private, root
    finally:
        private.down()
        private.slurmdbd.drop_database()
        shutil.rmtree(root, ignore_errors=True)
