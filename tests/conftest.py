"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sfedlab import Lab


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The shared Slurm lab, up; stopped at the end if a session started it and none holds it."""
    with Lab.default().session() as the_lab:
        yield the_lab
