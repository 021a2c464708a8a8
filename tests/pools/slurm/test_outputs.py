"""Tests of scheduler.pools.slurm.outputs: where a job's output is on a Slurm pool."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from scheduler.domain import Job, JobRequest, JobState, OutputPaths
from scheduler.pathmap import PathMap
from scheduler.pools.slurm.outputs import remote_output_paths

T0 = datetime(2026, 1, 1, tzinfo=UTC)
JOB = Job(7, "alice", JobRequest(script=b"#!/bin/sh\n", job_name="train", chdir="/shared/run"),
          JobState.RUNNING, T0, T0)  # fmt: skip
MAP = PathMap({"/shared": "/mnt/shared"})


def paths(spool: str | None = "/var/spool/sfed", **request: object) -> OutputPaths:
    """The output paths of JOB's attempt 2, remote id 55, with request fields overridden."""
    job = replace(JOB, request=replace(JOB.request, **request))  # type: ignore[arg-type]
    return remote_output_paths(job, 2, "55", federation="lab", spool_dir=spool, path_map=MAP)


def test_no_output_goes_to_the_spool() -> None:
    """A job naming no output file writes it in its owner's spool directory, under sfedd's name."""
    assert paths() == OutputPaths("/var/spool/sfed/alice/lab-7-2.out", None)


def test_no_output_and_no_spool_is_sbatch_default() -> None:
    """Without a spool dir the output is sbatch's slurm-%j.out in the mapped working dir."""
    assert paths(spool=None).stdout == "/mnt/shared/run/slurm-55.out"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("/shared/out-%j.txt", "/mnt/shared/out-55.txt"),
        ("logs/%x-%u.log", "/mnt/shared/run/logs/train-alice.log"),
        ("/tmp/100%%.txt", "/tmp/100%.txt"),
        ("/tmp/out-%A_%a.txt", None),
    ],
    ids=["jobid", "relative-name-user", "percent", "unknown-pattern"],
)
def test_user_output_patterns(output: str, expected: str | None) -> None:
    """The user's pattern is mapped and expanded; an unknown field makes the path unknown."""
    assert paths(output=output).stdout == expected


def test_separate_error_file() -> None:
    """A job with -e has its own error path."""
    assert paths(output="/tmp/o", error="/shared/e-%j").stderr == "/mnt/shared/e-55"


def test_separate_error_goes_to_its_own_spool_file() -> None:
    """A job asking stderr apart, with no path, gets a .err file beside the spooled .out."""
    assert paths(separate_error=True) == OutputPaths(
        "/var/spool/sfed/alice/lab-7-2.out", "/var/spool/sfed/alice/lab-7-2.err"
    )
