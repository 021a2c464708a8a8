"""srun_options.py: srun's command line, without pods."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.pools.kubernetes.runtime.conftest import SUPPORTED


@pytest.mark.parametrize(
    "args",
    [
        ["-n4", "hostname"],
        ["-n", "4", "hostname"],
        ["--ntasks=4", "hostname"],
        ["--ntasks", "4", "hostname"],
        ["-ln4", "hostname"],
    ],
)
def test_option_forms_are_equivalent(srun_options: ModuleType, args: list[str]) -> None:
    """-n4, -n 4, --ntasks=4, --ntasks 4 and a combined -ln4 all mean four tasks."""
    opts = srun_options.parse_srun_args(args)
    assert (opts.ntasks, opts.command) == (4, ["hostname"])


def test_options_end_at_the_command(srun_options: ModuleType) -> None:
    """The first non-option word starts the command; its own options are left alone."""
    opts = srun_options.parse_srun_args(["-l", "python", "-n", "1", "--pty"])
    assert (opts.label, opts.ntasks, opts.command) == (True, None, ["python", "-n", "1", "--pty"])


def test_double_dash_ends_the_options(srun_options: ModuleType) -> None:
    """After "--", even a word starting with "-" is the command."""
    opts = srun_options.parse_srun_args(["-K", "--", "-weird-cmd"])
    assert (opts.kill_on_bad_exit, opts.command) == (True, ["-weird-cmd"])


def test_every_supported_option_is_parsed(srun_options: ModuleType) -> None:
    """The whole supported set in one command line lands in the options."""
    opts = srun_options.parse_srun_args(
        [
            "-N",
            "2",
            "--ntasks-per-node=2",
            "-c",
            "3",
            "-l",
            "-K",
            "-u",
            "-J",
            "step",
            "--export=NONE,A=1",
            "--mpi=none",
            "env",
        ]
    )
    got: dict[str, Any] = vars(opts)
    assert got == {
        "ntasks": None,
        "nodes": 2,
        "ntasks_per_node": 2,
        "cpus_per_task": 3,
        "label": True,
        "kill_on_bad_exit": True,
        "job_name": "step",
        "export": "NONE,A=1",
        "command": ["env"],
    }


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--pty", "bash"], "--pty"),
        (["--gpus-per-task=1", "x"], "--gpus-per-task"),
        (["--exclusive", "x"], "--exclusive"),
        (["-w", "n1", "x"], "-w"),
        (["--mem", "4G", "x"], "--mem"),
        (["--mpi=pmix", "x"], "--mpi=pmix"),
        (["--multi-prog", "conf"], "--multi-prog"),
    ],
)
def test_unsupported_options_are_named(
    srun_options: ModuleType, args: list[str], option: str
) -> None:
    """Every option outside the supported set is refused with its name and the supported list."""
    with pytest.raises(srun_options.UsageError) as caught:
        srun_options.parse_srun_args(args)
    assert str(caught.value) == (
        f"option {option} is not supported on Kubernetes pools (sfed); {SUPPORTED}"
    )


@pytest.mark.parametrize("args", [[], ["-n", "2"], ["-n", "0", "x"], ["-n", "many", "x"], ["-n"]])
def test_bad_command_lines_are_refused(srun_options: ModuleType, args: list[str]) -> None:
    """No command, a missing value or a non-positive count is a usage error."""
    with pytest.raises(srun_options.UsageError):
        srun_options.parse_srun_args(args)


@pytest.mark.parametrize(
    ("args", "option"), [(["-n"], "-n"), (["--ntasks"], "--ntasks"), (["-ln"], "-n")]
)
def test_missing_value_names_its_option(
    srun_options: ModuleType, args: list[str], option: str
) -> None:
    """An option left without its value is named in the error, as written (short or long)."""
    with pytest.raises(srun_options.UsageError) as caught:
        srun_options.parse_srun_args(args)
    assert str(caught.value) == f"option {option} requires an argument"
