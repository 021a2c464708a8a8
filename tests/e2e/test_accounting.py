"""sacct at the front door: an unchanged `sbatch -p fed` job is in the door's accounting with the
remote job's real state and exit code, and its start and end times."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.deploy.helpers import door_sacct
from tests.e2e.door import FrontDoor, field

pytestmark = pytest.mark.lab


def ended_in_sacct(door: FrontDoor, script: str) -> dict[str, str]:
    """Submit `script` to fed, wait until it ends at the door; its sacct record there."""
    job = door.submit("-p", "fed", "-o", "out-%j.txt", door.script("job.sh", script))
    shown = door.wait_ended(job)
    row = door_sacct(door.lab, job)
    assert row["JobID"] == job and row["Partition"] == "fed", row
    # sacct agrees with slurmctld, and the times are real ones, in order.
    assert (row["State"], row["ExitCode"]) == (
        field(shown, "JobState"),
        field(shown, "ExitCode"),
    ), (row, shown)
    submit, start, end = (datetime.fromisoformat(row[k]) for k in ("Submit", "Start", "End"))
    assert submit <= start <= end, row
    return row


def test_sacct_shows_a_fed_job_that_exits_3_failed_3_0(door: FrontDoor) -> None:
    """A fed job whose script exits 3 is FAILED 3:0 in the door's sacct, with start and end."""
    row = ended_in_sacct(door, "exit 3\n")
    assert (row["State"], row["ExitCode"]) == ("FAILED", "3:0"), row


def test_sacct_shows_a_completing_fed_job_completed_0_0(door: FrontDoor) -> None:
    """A fed job whose script exits 0 is COMPLETED 0:0 in the door's sacct, with start and end."""
    row = ended_in_sacct(door, "sleep 1\necho done\n")
    assert (row["State"], row["ExitCode"]) == ("COMPLETED", "0:0"), row
