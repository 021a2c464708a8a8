"""The sfed CLI against a real sfedd: listings, formats and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import Daemon, write_script

pytestmark = pytest.mark.lab
SFED = str(Path(sys.executable).parent / "sfed")


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a failed command, checked to be one line without a traceback."""
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_pools_table_shows_capacity(daemon: Daemon) -> None:
    """sfed pools lists both lab pools with their GPU totals."""
    pools = {p["name"]: p for p in json.loads(daemon.run("pools", "--json").stdout)["pools"]}
    assert (pools["alpha"]["gpus_total"], pools["beta"]["gpus_total"]) == (8, 32)
    assert (pools["alpha"]["nodes_total"], pools["beta"]["nodes_total"]) == (2, 4)
    table = daemon.run("pools").stdout.splitlines()
    assert table[0].split()[:4] == ["POOL", "KIND", "VIA", "STATE"]
    assert {line.split()[0] for line in table[1:]} == {"alpha", "beta"}


def test_unknown_job_is_one_line(daemon: Daemon) -> None:
    """sfed show of a job that does not exist says so in one line."""
    err = one_line_error(daemon.run("show", "999999", check=False))
    assert "job 999999 does not exist" in err


def test_bad_job_id_is_a_usage_error(daemon: Daemon) -> None:
    """A job id that is not a number exits 2 with the value named."""
    result = daemon.run("cancel", "abc", check=False)
    assert (
        result.returncode == 2
        and "not a job id (1 to 9223372036854775807): 'abc'" in one_line_error(result)
    )


def test_unreachable_daemon_is_one_line(tmp_path: Path) -> None:
    """With no sfedd at the address, the CLI says it cannot reach it."""
    result = subprocess.run(
        [SFED, "--address", f"unix:{tmp_path}/none.sock", "--timeout", "2", "pools"],
        text=True,
        capture_output=True,
        timeout=30,
    )
    assert "cannot reach sfedd" in one_line_error(result)


def test_unsupported_sbatch_option_is_named(daemon: Daemon, tmp_path: Path) -> None:
    """An sbatch option the federation does not support is refused by name, nothing submitted."""
    script = write_script(tmp_path, "s.sh", "true\n")
    result = daemon.run("submit", "--licenses=matlab", str(script), check=False)
    assert (
        result.returncode == 2
        and "unsupported sbatch option '--licenses=matlab'" in one_line_error(result)
    )


def test_unknown_pool_on_drain(daemon: Daemon) -> None:
    """Draining a pool that does not exist names the known pools."""
    err = one_line_error(daemon.run("drain", "gamma", check=False))
    assert "no pool named gamma; pools: alpha, beta" in err


def test_history_format_and_filters(daemon: Daemon, tmp_path: Path) -> None:
    """history --format picks sacct-style fields and --user/--state filter the rows."""
    script = write_script(tmp_path, "h.sh", "exit 0\n")
    job_id = daemon.submit(script, "-J", "hist-job", "-o", "/dev/null")
    daemon.wait_state(job_id)
    rows = daemon.run(
        "history", "-u", "root", "-s", "completed", "-p", "-o", "JobID,JobName,State"
    ).stdout
    assert f"{job_id}|hist-job|COMPLETED" in rows.splitlines()
    assert rows.splitlines()[0] == "JobID|JobName|State"
    none = daemon.run("history", "-u", "nobody", "-p", "-o", "JobID").stdout
    assert none.splitlines() == ["JobID"]
    err = one_line_error(daemon.run("history", "-o", "JobID,Bogus", check=False))
    assert "unknown field 'Bogus'" in err


def test_history_time_window(daemon: Daemon) -> None:
    """--since in the future lists no job; a malformed time is refused by name."""
    assert daemon.run("history", "-S", "2999-01-01", "-p", "-o", "JobID").stdout.splitlines() == [
        "JobID"
    ]
    assert "--since: not a time: 'yesterday'" in one_line_error(
        daemon.run("history", "-S", "yesterday", check=False)
    )


def test_submit_wait_returns_the_exit_code(daemon: Daemon, tmp_path: Path) -> None:
    """sfed submit --wait exits with the job's own exit code, as sbatch --wait does."""
    script = write_script(tmp_path, "w.sh", "exit 5\n")
    result = daemon.run("submit", "--wait", "-o", "/dev/null", str(script), check=False)
    assert result.returncode == 5 and result.stdout.startswith("Submitted federation job ")


def test_queue_shows_a_running_job(daemon: Daemon, tmp_path: Path) -> None:
    """sfed queue lists a running job with its pool and remote id until it is cancelled."""
    script = write_script(tmp_path, "q.sh", "sleep 300\n")
    job_id = daemon.submit(script, "-J", "queued", "-o", "/dev/null")
    try:
        job = daemon.wait_state(job_id, {"RUNNING"})
        rows = [r.split() for r in daemon.run("queue").stdout.splitlines()[1:]]
        assert [str(job_id), "queued", "root", "RUNNING", job["pool"], job["remote_id"]] in [
            r[:6] for r in rows
        ]
    finally:
        daemon.run("cancel", str(job_id))
    assert daemon.wait_state(job_id)["state"] == "CANCELLED"
