"""scontrol.py: "scontrol show hostnames", through the shim and in a batch script."""

from __future__ import annotations

import subprocess

import pytest

from tests.pools.kubernetes.runtime.conftest import Job, run_shim


def scontrol(*args: str, nodelist: str | None = "t-[0-1]") -> subprocess.CompletedProcess[str]:
    env = {"SLURM_JOB_NODELIST": nodelist} if nodelist is not None else {}
    return run_shim("scontrol", *args, env=env)


def test_scontrol_show_hostnames_defaults_to_the_job_nodelist() -> None:
    """Without an argument, the shim expands SLURM_JOB_NODELIST, one name per line."""
    result = scontrol("show", "hostnames")
    assert (result.returncode, result.stdout) == (0, "t-0\nt-1\n")


def test_scontrol_show_hostnames_expands_its_argument() -> None:
    """An explicit hostlist is expanded instead."""
    result = scontrol("show", "hostnames", "a-[01-02],b")
    assert (result.returncode, result.stdout) == (0, "a-01\na-02\nb\n")


@pytest.mark.parametrize("args", [("show", "job"), ("update",), ()])
def test_scontrol_rejects_everything_else(args: tuple[str, ...]) -> None:
    """Any other scontrol command fails with the one-line explanation."""
    result = scontrol(*args)
    assert result.returncode == 1
    assert result.stderr == (
        'scontrol: error: only "scontrol show hostnames" is available on Kubernetes pools (sfed)\n'
    )


def test_scontrol_in_a_script_expands_the_job_nodelist(job: Job) -> None:
    """The common MASTER_ADDR idiom works in a batch script."""
    pod0, _ = job.run(
        '#!/bin/sh\nMASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
        "echo $MASTER_ADDR\n",
        SLURM_JOB_NODELIST="127.0.0.[2-3]",
    )
    assert pod0.stdout == "127.0.0.2\n"
