"""Tests of scheduler.sbatch_options: sbatch's syntax for times, memory, gres and #SBATCH lines."""

from __future__ import annotations

import pytest

from scheduler.sbatch_options import (
    parse_gres,
    parse_memory_mb,
    parse_time_limit_min,
    sbatch_directives,
)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("30", 30), ("10:30", 11), ("2:00:00", 120), ("1-0", 1440), ("1-2:30", 1590), ("0-0:0:1", 1)],
    ids=["minutes", "min-sec-rounds-up", "hms", "days-hours", "days-hm", "one-second"],
)
def test_time_limit_forms(text: str, minutes: int) -> None:
    """Every sbatch --time form converts to whole minutes."""
    assert parse_time_limit_min(text) == minutes


@pytest.mark.parametrize("text", ["abc", "1:2:3:4", "0", "UNLIMITED", "-5"])
def test_bad_time_limits(text: str) -> None:
    """Malformed, zero and unlimited time limits are refused with the value named."""
    with pytest.raises(ValueError, match="time limit"):
        parse_time_limit_min(text)


@pytest.mark.parametrize(
    ("text", "mb"), [("512", 512), ("16G", 16384), ("2048M", 2048), ("1T", 1048576)]
)
def test_memory_sizes(text: str, mb: int) -> None:
    """Memory sizes with sbatch's suffixes convert to megabytes."""
    assert parse_memory_mb(text) == mb


def test_bad_memory_size() -> None:
    """A memory size that is not a number is refused."""
    with pytest.raises(ValueError, match="invalid memory size 'lots'"):
        parse_memory_mb("lots")


@pytest.mark.parametrize(("text", "gpus"), [("", 0), ("gpu", 1), ("gpu:4", 4), ("gpu:2,gpu:2", 4)])
def test_gres_gpu_counts(text: str, gpus: int) -> None:
    """gpu gres strings give GPUs per node."""
    assert parse_gres(text) == gpus


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fpga:1", "unknown gres 'fpga'"),
        ("gpu:a100:2", "typed gres"),
        ("gpu:0", "invalid gres count"),
        ("gpu:x", "invalid gres count"),
    ],
)
def test_bad_gres(text: str, message: str) -> None:
    """Unknown, typed and non-positive gres are refused with the reason."""
    with pytest.raises(ValueError, match=message):
        parse_gres(text)


def test_directives_stop_at_first_command() -> None:
    """#SBATCH lines count only before the first command, as in sbatch."""
    script = b"#!/bin/bash\n# comment\n#SBATCH -N 2 --gres=gpu:4\n\n#SBATCH -J 'my job'\necho hi\n#SBATCH -N 9\n"
    assert sbatch_directives(script) == ["-N", "2", "--gres=gpu:4", "-J", "my job"]


def test_directive_prefix_must_be_exact() -> None:
    """#SBATCHX is not a directive, and a trailing comment is dropped."""
    script = b"#!/bin/sh\n#SBATCHX -N 3\n#SBATCH -N 2 # two nodes\n"
    assert sbatch_directives(script) == ["-N", "2"]
