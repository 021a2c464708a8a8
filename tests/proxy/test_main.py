"""Tests of sfed-proxy's command line (scheduler.proxy.main)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scheduler.proxy.main import main


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
