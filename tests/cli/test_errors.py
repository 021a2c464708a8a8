"""Every bad command line gets one line naming the option and exit 2, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import identity
from scheduler.cli.main import main
from tests.fixtures.credentials import no_munged

NOWHERE = "unix:/nonexistent/sfed.sock"  # nothing to reach: argument errors come first


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--address", NOWHERE, "--timeout", "0.5", *argv])
    err = capsys.readouterr().err
    return code, err


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "job.sh"
    path.write_text("#!/bin/sh\ntrue\n")
    return path


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["-N", "99999999999"], "--nodes"),
        (["-n", "99999999999"], "--ntasks"),
        (["-c", "99999999999"], "--cpus-per-task"),
        (["--gpus-per-node", "99999999999"], "--gpus-per-node"),
        (["-G", "999999999999"], "-G/--gpus"),
        (["--gpus-per-node", "h100:99999"], "--gpus-per-node"),
        (["-C", "[a|b]"], "-C/--constraint"),
        (["--gres", "gpu:99999"], "--gres"),
        (["-t", "99999999999"], "-t/--time"),
        (["--mem", "99999999999999999999T"], "--mem"),
        (["--priority", "99999999999999999999"], "--priority"),
        (["-J", "two\nlines"], "-J/--job-name"),
        (["-N", "4", "-n", "2"], "-n/--ntasks"),
    ],
)
def test_bad_submit_option_is_one_line(
    capsys: pytest.CaptureFixture[str], script: Path, options: list[str], named: str
) -> None:
    """A submit option out of bounds is refused before anything is sent, naming it."""
    code, err = run(capsys, "submit", *options, str(script))
    assert code == 2
    assert err.startswith("sfed: ") and named in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "line",
    ["#SBATCH -N 99999999999", '#SBATCH -J "unclosed', "#SBATCH -c 0"],
)
def test_bad_sbatch_line_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str
) -> None:
    """A bad #SBATCH line is refused in one line that says it came from the script."""
    path = tmp_path / "job.sh"
    path.write_text(f"#!/bin/sh\n{line}\ntrue\n")
    code, err = run(capsys, "submit", str(path))
    assert code == 2
    assert err.startswith("sfed: #SBATCH line in the script: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["history", "--limit=-1"],
        ["history", "--limit=99999999999"],
        ["show", "99999999999999999999"],
        ["cancel", "9223372036854775808"],
        ["explain", "0"],
        ["watch", "-5"],
    ],
)
def test_bad_argument_is_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Out-of-range ids and limits are refused in one line with exit 2."""
    code, err = run(capsys, *argv)
    assert code == 2 and err.startswith("sfed: ") and err.count("\n") == 1


WORDS = st.one_of(
    st.sampled_from(["-N", "-n", "-c", "-G", "--gres", "--mem", "-t", "-J", "-p", "-D", "-o",
                     "--export", "--priority", "--requeue", "--wait", "--bogus", "--"]),
    st.text(max_size=30),
    st.integers(-(2**70), 2**70).map(str),
)  # fmt: skip


@settings(
    max_examples=int(os.environ.get("SFED_FUZZ_EXAMPLES", "200")),
    derandomize="SFED_FUZZ_EXAMPLES" not in os.environ,  # the same examples in make test
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(command=st.sampled_from(["submit", "show", "cancel", "history", "queue", "explain",
                                "watch", "drain", "pools", "nonsense"]),
       words=st.lists(WORDS, max_size=8))  # fmt: skip
def test_any_command_line_answers_in_one_line(
    capsys: pytest.CaptureFixture[str], script: Path, command: str, words: list[str]
) -> None:
    """Whatever the arguments, sfed ends with 0, 1 or 2 and at most one line on stderr."""
    if "\0" in "".join(words):
        return  # an argv word cannot hold a NUL
    argv = [command, *words] + ([str(script)] if command == "submit" else [])
    code, err = run(capsys, *argv)
    assert code in (0, 1, 2)
    assert "Traceback" not in err and "unexpected error" not in err, err
    assert err.count("\n") <= 1, err


def test_batch_needs_a_signal(capsys: pytest.CaptureFixture[str]) -> None:
    """sfed cancel -b without -s is refused: -b says where a signal goes."""
    code, err = run(capsys, "cancel", "-b", "5")
    assert (code, err) == (2, "sfed: --batch goes with --signal\n")


def test_without_munged_an_unreachable_sfedd_is_what_is_said(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no credential to be had, the call is still tried: sfed says it cannot reach
    sfedd rather than blame the credential."""

    monkeypatch.setattr(identity, "encode_for", no_munged)
    code, err = run(capsys, "pools")
    assert code == 1 and err.startswith(f"sfed: cannot reach sfedd at {NOWHERE}")
