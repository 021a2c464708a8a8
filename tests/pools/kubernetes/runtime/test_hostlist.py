"""Slurm hostlists: expand_hostlist/compress_hostlist and the scontrol shim."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import pytest

from tests.pools.kubernetes.runtime.conftest import RUNTIME

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
def test_compress_then_expand_round_trips(sfed_pod: ModuleType, names: list[str]) -> None:
    """expand_hostlist(compress_hostlist(names)) gives the names back, in order."""
    assert sfed_pod.expand_hostlist(sfed_pod.compress_hostlist(names)) == names


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
def test_compress_writes_slurm_form(sfed_pod: ModuleType, names: list[str], expected: str) -> None:
    """Consecutive numbers become ranges; names without a number are listed as they are."""
    assert sfed_pod.compress_hostlist(names) == expected


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
def test_expand(sfed_pod: ModuleType, expr: str, expected: list[str]) -> None:
    """Ranges, lists, padding and several bracket groups expand like Slurm's."""
    assert sfed_pod.expand_hostlist(expr) == expected


@pytest.mark.parametrize("expr", ["a-[1-", "a-]1[", "a-[3-1]", "a-[x]", "a-[[1]]", "a-[0-999999]"])
def test_expand_rejects_bad_expressions(sfed_pod: ModuleType, expr: str) -> None:
    """Unbalanced brackets, reversed or non-numeric ranges and huge lists raise ValueError."""
    with pytest.raises(ValueError):
        sfed_pod.expand_hostlist(expr)


def scontrol(*args: str, nodelist: str | None = "t-[0-1]") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    if nodelist is not None:
        env["SLURM_JOB_NODELIST"] = nodelist
    return subprocess.run(
        [sys.executable, str(RUNTIME / "scontrol"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


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
