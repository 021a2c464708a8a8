"""Tests of sfed-proxy's command line (scheduler.proxy.main)."""

from __future__ import annotations

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
