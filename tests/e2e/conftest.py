"""Fixtures for end-to-end tests: a real sfedd on the shared lab."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sfedlab import Lab

from tests.e2e.door import FrontDoor
from tests.e2e.harness import Daemon, Filler


@pytest.fixture
def filler(lab: Lab) -> Iterator[Filler]:
    """Fill lab clusters with direct jobs; all are cancelled after the test."""
    f = Filler(lab)
    yield f
    f.release()


@pytest.fixture(scope="module", params=["local", "ssh"])
def daemon(
    request: pytest.FixtureRequest, lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Daemon]:
    """A running sfedd over alpha (local) and beta (local or through the lab's sshd)."""
    ssh_pools = ("beta",) if request.param == "ssh" else ()
    d = Daemon(lab, tmp_path_factory.mktemp(f"sfedd-{request.param}"), ssh_pools=ssh_pools)
    d.start()
    yield d
    d.stop()


@pytest.fixture
def fresh_daemon(lab: Lab, tmp_path: Path) -> Iterator[Daemon]:
    """A daemon of the test's own (not started), stopped after the test."""
    d = Daemon(lab, tmp_path)
    yield d
    d.stop()


@pytest.fixture
def door(lab: Lab, tmp_path: Path) -> Iterator[FrontDoor]:
    """The lab's front door, run from the test's directory; its jobs are cancelled after the
    test and none of their remote jobs may be left alive on alpha or beta."""
    front = FrontDoor(lab, tmp_path)
    try:
        yield front
    finally:
        front.cleanup()
