"""Tests of scheduler.pathmap: per-pool path translation."""

from __future__ import annotations

import pytest

from scheduler.pathmap import PathMap

MAP = PathMap({"/shared": "/mnt/shared", "/shared/scratch": "/scratch", "/data/": "/"})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/shared/run/ckpt", "/mnt/shared/run/ckpt"),
        ("/shared", "/mnt/shared"),
        ("/shared/scratch/x", "/scratch/x"),
        ("/sharedx/y", "/sharedx/y"),
        ("/home/u/out.txt", "/home/u/out.txt"),
        ("out-%j.txt", "out-%j.txt"),
        ("/data/a", "/a"),
        ("/data", "/"),
    ],
    ids=[
        "prefix",
        "exact",
        "longest-wins",
        "not-a-dir-prefix",
        "unmapped",
        "relative",
        "to-root",
        "root-exact",
    ],
)
def test_translate(path: str, expected: str) -> None:
    """Paths map by the longest directory prefix and nothing else."""
    assert MAP.translate(path) == expected
