"""Tests of scheduler.cli.submit_args: sbatch options and #SBATCH lines to a JobSpec."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from scheduler.cli.submit_args import UsageError, add_sbatch_options, build_spec

SCRIPT = b"#!/bin/bash\n#SBATCH -N 2\n#SBATCH --gres=gpu:4 -t 1:00:00\n#SBATCH -J from-script\nsrun hostname\n"


def options(*argv: str) -> argparse.Namespace:
    """Parse sbatch options as `sfed submit` does."""
    parser = argparse.ArgumentParser()
    add_sbatch_options(parser)
    return parser.parse_args(list(argv))


def test_directives_fill_the_spec() -> None:
    """#SBATCH lines set nodes, gres, time and name."""
    spec = build_spec(options(), SCRIPT, "train.sh", cwd="/work")
    assert (spec.nodes, spec.gres, spec.time_limit_min, spec.job_name) == (
        2,
        "gpu:4",
        60,
        "from-script",
    )
    assert spec.chdir == "/work"


def test_command_line_wins_over_directives() -> None:
    """An option on the command line overrides the same #SBATCH option."""
    spec = build_spec(options("-N", "3", "-J", "cli"), SCRIPT, "train.sh", cwd="/w")
    assert (spec.nodes, spec.job_name) == (3, "cli")


def test_job_name_defaults_to_script_name() -> None:
    """Without -J the job is named after the script file, as sbatch does."""
    spec = build_spec(options(), b"#!/bin/sh\ntrue\n", "/home/u/train.sh", cwd="/w")
    assert spec.job_name == "train.sh"


ENVIRON = {"A": "1", "C": "3"}


@pytest.mark.parametrize(
    ("export", "expected"),
    [
        (None, {"A": "1", "C": "3"}),  # sbatch's default is ALL
        ("--export=ALL", {"A": "1", "C": "3"}),
        ("--export=NONE", {}),
        ("--export=A,B=2", {"A": "1", "B": "2"}),
        ("--export=ALL,A,B=2", {"A": "1", "B": "2", "C": "3"}),
        ("--export=ALL,A=9", {"A": "9", "C": "3"}),
        ("--export=Z", {}),  # named but not set: nothing to send
    ],
)
def test_export_follows_sbatch(export: str | None, expected: dict[str, str]) -> None:
    """--export carries the client's environment as sbatch does."""
    argv = [export] if export else []
    spec = build_spec(options(*argv), SCRIPT, "t.sh", cwd="/w", environ=ENVIRON)
    assert dict(spec.environment) == expected


def test_export_none_goes_alone() -> None:
    """--export=NONE,A is refused, naming the option."""
    with pytest.raises(UsageError, match="--export: NONE goes alone"):
        build_spec(options("--export=NONE,A"), SCRIPT, "t.sh", cwd="/w", environ=ENVIRON)


@pytest.mark.parametrize("separator", [b"\0", b"\n"])
def test_export_file_adds_variables(tmp_path: Path, separator: bytes) -> None:
    """--export-file adds its NAME=value entries (NUL- or newline-separated) over --export."""
    path = tmp_path / "env"
    path.write_bytes(separator.join([b"LR=0.1", b"A=from file", b""]))
    spec = build_spec(
        options("--export=A", f"--export-file={path}"), SCRIPT, "t.sh", cwd="/w", environ=ENVIRON
    )
    assert dict(spec.environment) == {"A": "from file", "LR": "0.1"}


def test_submit_dir_is_where_sfed_submit_ran() -> None:
    """The job's submit directory is the client's working directory, whatever -D says."""
    spec = build_spec(options("-D", "/elsewhere"), SCRIPT, "t.sh", cwd="/home/u/run")
    assert (spec.submit_dir, spec.chdir) == ("/home/u/run", "/elsewhere")


def test_gpus_per_node_option() -> None:
    """--gpus-per-node=N is the same as --gres=gpu:N."""
    assert build_spec(options("--gpus-per-node", "2"), b"#!/bin/sh\n", "t", cwd="/").gres == "gpu:2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("-N", "two"), "--nodes: expected a whole number"),
        (("--mem", "lots"), "invalid memory size"),
        (("-t", "soon"), "invalid time limit"),
        (("--gres", "gpu:1", "--gpus-per-node", "2"), "either --gres or --gpus-per-node"),
        (("--gpus-per-node", "2", "-G", "4"), "either --gpus-per-node or --gpus"),
        (("--gpus-per-node", "h100:x"), "--gpus-per-node: expected a whole number"),
        (("-C", "a100*2"), "-C/--constraint: feature counts"),
        (("--gres", "gpu:a100:2,gpu:h100:2"), "--gres/--gpus-per-node/--gpus: one GPU type"),
        (("--priority", "high"), "--priority"),
    ],
)
def test_bad_options_name_the_option(argv: tuple[str, ...], message: str) -> None:
    """A bad option value raises UsageError naming it."""
    with pytest.raises(UsageError, match=message):
        build_spec(options(*argv), b"#!/bin/sh\n", "t", cwd="/")


def test_unsupported_directive_is_refused() -> None:
    """An #SBATCH option the federation does not support is refused by name."""
    with pytest.raises(UsageError, match="unsupported option '--licenses=x'"):
        build_spec(options(), b"#!/bin/sh\n#SBATCH --licenses=x\n", "t", cwd="/")


@pytest.mark.parametrize(
    ("argv", "gres"),
    [
        pytest.param(("--gres", "gpu:a100:4"), "gpu:a100:4", id="typed gres as given"),
        pytest.param(("--gpus-per-node", "h100:8"), "gpu:h100:8", id="typed per node"),
        pytest.param(("-N", "2", "--gpus", "h100:16"), "gpu:h100:8", id="typed for the job"),
        pytest.param(("-N", "2", "-G", "3"), "gpu:2", id="for the job, rounded up per node"),
        pytest.param(("-G", "4"), "gpu:4", id="for a one-node job"),
    ],
)
def test_gpu_options_become_gres_per_node(argv: tuple[str, ...], gres: str) -> None:
    """--gres, --gpus-per-node=[TYPE:]N and -G/--gpus=[TYPE:]N become the gres per node."""
    assert build_spec(options(*argv), b"#!/bin/sh\n", "t", cwd="/").gres == gres


def test_constraint_option_and_directive() -> None:
    """-C on the command line, or #SBATCH --constraint, sets the spec's constraint."""
    assert build_spec(options("-C", "a100|h100"), b"#!/bin/sh\n", "t", cwd="/").constraint == (
        "a100|h100"
    )
    script = b"#!/bin/sh\n#SBATCH --constraint=h100&ib\n"
    assert build_spec(options(), script, "t", cwd="/").constraint == "h100&ib"
