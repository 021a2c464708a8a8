"""Signals sent to a front-door job reach the remote job (scancel -s), and a remote script
killed by a signal ends the door job by the same signal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.door import FrontDoor, field, poll

pytestmark = pytest.mark.lab

TRAPS_USR1 = (
    "trap 'echo got-usr1; exit 0' USR1\n"
    "echo started\n"
    "for i in $(seq 300); do sleep 0.2; done\n"
    "echo never\n"
)


def test_scancel_signal_reaches_the_remote_batch_script(door: FrontDoor, tmp_path: Path) -> None:
    """`scancel -b -s USR1` of a running door job reaches the remote batch script's trap; the
    door job goes on and ends as the script does (here COMPLETED)."""
    job = door.submit("-p", "fed", "-o", "out-%j.txt", door.script("t.sh", TRAPS_USR1))
    door.wait_comment(job, {"RUNNING"})
    out = tmp_path / f"out-{job}.txt"
    poll("the script's trap to be set", lambda: "started" in _text(out) or None, 60)
    result = door.run("scancel", "-b", "-s", "USR1", job)
    assert result.returncode == 0, result.stderr
    shown = door.wait_ended(job)
    assert field(shown, "JobState") == "COMPLETED", shown
    assert out.read_text().splitlines() == ["started", "got-usr1"]


def test_remote_script_killed_by_a_signal_shows_0_9(door: FrontDoor, tmp_path: Path) -> None:
    """A remote script that kills itself with SIGKILL ends the door job FAILED 0:9."""
    job = door.submit("-p", "fed", "-o", "/dev/null", door.script("k.sh", "kill -9 $$\n"))
    shown = door.wait_ended(job)
    assert (field(shown, "JobState"), field(shown, "ExitCode")) == ("FAILED", "0:9"), shown


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""
