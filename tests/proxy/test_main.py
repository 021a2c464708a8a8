"""Tests of sfed-proxy's command line (scheduler.proxy.main)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.proxy.main import Proxy, main


@pytest.mark.parametrize(
    "tls",
    [
        ["--cert-file", "/c.pem"],
        ["--key-file", "/k.pem"],
        ["--cert-file", "/c", "--key-file", "/k"],
    ],
)
def test_client_certificate_needs_its_key_and_a_ca(
    tls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A client certificate without its key, or without a CA, is refused before anything."""
    assert main(["--wrapper", "/nonexistent", *tls]) == 2
    assert "--cert-file and --key-file go together, and need --ca-file" in capsys.readouterr().err


@pytest.mark.parametrize("signum", [9, 10, 15])
def test_die_by_ends_the_process_by_that_signal(signum: int) -> None:
    """The proxy ends by the remote script's signal, so Slurm records 0:<signal>."""
    done = subprocess.run(
        [sys.executable, "-c", f"from scheduler.proxy.main import die_by; die_by({signum})"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == -signum


def fake_scontrol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An scontrol on PATH that records its arguments in a file; returns that file."""
    record = tmp_path / "scontrol.args"
    script = tmp_path / "bin" / "scontrol"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    return record


def test_the_clock_starts_when_the_remote_job_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the remote job runs, the door job's limit becomes the wait so far plus the user's
    limit, so the limit counts the run and not the queue."""
    record = fake_scontrol(tmp_path, monkeypatch)
    proxy = Proxy(None, {"SLURM_JOB_ID": "41"}, retry_for=0)  # type: ignore[arg-type]
    proxy.limit_min = 60
    proxy.started -= 150  # waited two and a half minutes in the federation's queues
    proxy.start_the_clock()
    assert record.read_text() == "update jobid=41 TimeLimit=62\n"


def test_no_limit_no_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job without a time limit keeps none."""
    record = fake_scontrol(tmp_path, monkeypatch)
    proxy = Proxy(None, {"SLURM_JOB_ID": "41"}, retry_for=0)  # type: ignore[arg-type]
    proxy.start_the_clock()
    assert not record.exists() and proxy.clock_set
