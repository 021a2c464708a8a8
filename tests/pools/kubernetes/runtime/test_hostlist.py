"""hostlist.py: expand_hostlist and compress_hostlist."""

from __future__ import annotations

from types import ModuleType

import pytest

ROUND_TRIP = [
    ["t-7-1-0", "t-7-1-1"],
    ["t-7-1-0"],
    ["a-0", "a-1", "a-2", "a-3", "a-5"],
    ["b-01", "b-02", "b-09", "b-10"],
    ["n8", "n9", "n10", "n11"],
    ["n098", "n099", "n100"],
    ["login", "gpu-1", "gpu-2", "head"],
    ["x-3", "x-1", "x-2"],
    ["a1", "b1", "a2"],
    ["127.0.0.2", "127.0.0.3"],
    ["n01", "n2"],
    [],
]


@pytest.mark.parametrize("names", ROUND_TRIP, ids=lambda n: ",".join(n) or "empty")
def test_compress_then_expand_round_trips(hostlist: ModuleType, names: list[str]) -> None:
    """expand_hostlist(compress_hostlist(names)) gives the names back, in order."""
    assert hostlist.expand_hostlist(hostlist.compress_hostlist(names)) == names


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["t-7-1-0", "t-7-1-1"], "t-7-1-[0-1]"),
        (["t-7-1-0"], "t-7-1-0"),
        (["a-0", "a-1", "a-2", "a-3", "a-5"], "a-[0-3,5]"),
        (["b-01", "b-02", "c-1"], "b-[01-02],c-1"),
        (["n9", "n10"], "n[9-10]"),
        (["login", "gpu-1", "gpu-2"], "login,gpu-[1-2]"),
    ],
)
def test_compress_writes_slurm_form(hostlist: ModuleType, names: list[str], expected: str) -> None:
    """Consecutive numbers become ranges; names without a number are listed as they are."""
    assert hostlist.compress_hostlist(names) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("a-[0-3,5],b-[01-02]", ["a-0", "a-1", "a-2", "a-3", "a-5", "b-01", "b-02"]),
        ("n[8-10]", ["n8", "n9", "n10"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
        ("solo", ["solo"]),
        ("h-[007]", ["h-007"]),
    ],
)
def test_expand(hostlist: ModuleType, expr: str, expected: list[str]) -> None:
    """Ranges, lists, padding and several bracket groups expand like Slurm's."""
    assert hostlist.expand_hostlist(expr) == expected


@pytest.mark.parametrize("expr", ["a-[1-", "a-]1[", "a-[3-1]", "a-[x]", "a-[[1]]", "a-[0-999999]"])
def test_expand_rejects_bad_expressions(hostlist: ModuleType, expr: str) -> None:
    """Unbalanced brackets, reversed or non-numeric ranges and huge lists raise ValueError."""
    with pytest.raises(ValueError):
        hostlist.expand_hostlist(expr)
