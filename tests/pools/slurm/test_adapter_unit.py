"""SlurmPool against a scripted transport replaying captured Slurm 22.05 output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from scheduler.domain import AttemptState, JobRequest, RemoteSubmission, RemoteTag
from scheduler.pools.base import Pool, PoolError, PoolUnreachable
from scheduler.pools.slurm import CommandResult, SlurmPool

FIXTURES = Path(__file__).parent / "fixtures"
Reply = CommandResult | Exception


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def ok(stdout: bytes | str = b"") -> CommandResult:
    return CommandResult(0, stdout.encode() if isinstance(stdout, str) else stdout, b"")


def failed(stderr: str, returncode: int = 1) -> CommandResult:
    return CommandResult(returncode, b"", stderr.encode())


@dataclass
class Call:
    argv: list[str]
    stdin: bytes | None
    env: dict[str, str]
    timeout: float


@dataclass
class ScriptedTransport:
    """Answers each command by its argv[0] with the next scripted reply."""

    replies: dict[str, list[Reply]]
    calls: list[Call] = field(default_factory=list)
    closed: int = 0

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult:
        self.calls.append(Call(list(argv), stdin, dict(env or {}), timeout))
        reply = self.replies[argv[0]].pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def close(self) -> None:
        self.closed += 1


def pool_with(**replies: Reply | list[Reply]) -> tuple[SlurmPool, ScriptedTransport]:
    transport = ScriptedTransport(
        {k: list(v) if isinstance(v, list) else [v] for k, v in replies.items()}
    )
    return SlurmPool("beta", transport, "gpu", command_timeout=7.0), transport


def run(coro_factory: Callable[[], Any]) -> Any:
    return asyncio.run(coro_factory())


SUBMISSION = RemoteSubmission(
    tag=RemoteTag("fed", 12, 1),
    request=JobRequest(
        script=b"#!/bin/bash\necho caf\xc3\xa9 \xff\n",
        job_name="x; touch /tmp/pwned",
        nodes=2,
        environment={"HOME_DIR": "/home/u", "LD_PRELOAD": "/tmp/evil.so"},
    ),
    environment={"SFED_JOB_ID": "12"},
)


def test_slurm_pool_is_a_pool() -> None:
    """SlurmPool satisfies the Pool protocol."""
    pool, _ = pool_with()
    assert isinstance(pool, Pool)


# -- snapshot --------------------------------------------------------------------------------


def test_snapshot_lists_the_partition_nodes() -> None:
    """snapshot() returns only the nodes of the pool's partition."""
    pool, transport = pool_with(sinfo=ok(fixture_bytes("probe-sinfo-busy.json")))
    nodes = run(pool.snapshot)
    assert [(n.name, n.gpus_free) for n in nodes] == [("p1", 4), ("p2", 1)]
    assert transport.calls[0].argv == ["sinfo", "--json"]


def test_snapshot_uses_the_command_timeout() -> None:
    """Every command is given the pool's command_timeout."""
    pool, transport = pool_with(sinfo=ok(fixture_bytes("probe-sinfo-busy.json")))
    run(pool.snapshot)
    assert transport.calls[0].timeout == 7.0


def test_snapshot_unknown_partition_is_a_pool_error() -> None:
    """A partition no node belongs to is a PoolError."""
    transport = ScriptedTransport({"sinfo": [ok(fixture_bytes("probe-sinfo-busy.json"))]})
    pool = SlurmPool("beta", transport, "nosuch")
    with pytest.raises(PoolError, match="nosuch"):
        run(pool.snapshot)


def test_snapshot_dead_controller_json_is_unreachable() -> None:
    """sinfo --json exiting 0 with `errors` (controller down) raises PoolUnreachable."""
    pool, _ = pool_with(sinfo=ok(fixture_bytes("probe-sinfo-dead-controller.json")))
    with pytest.raises(PoolUnreachable):
        run(pool.snapshot)


def test_snapshot_unreachable_stderr_is_unreachable() -> None:
    """A non-zero exit saying the controller cannot be contacted raises PoolUnreachable."""
    pool, _ = pool_with(
        sinfo=failed("slurm_load_partitions: Unable to contact slurm controller (connect failure)")
    )
    with pytest.raises(PoolUnreachable, match="Unable to contact"):
        run(pool.snapshot)


def test_snapshot_transport_failure_propagates_as_unreachable() -> None:
    """A transport that cannot run the command raises PoolUnreachable through the pool."""
    pool, _ = pool_with(sinfo=PoolUnreachable("ssh: connection refused"))
    with pytest.raises(PoolUnreachable, match="connection refused"):
        run(pool.snapshot)


def test_snapshot_garbage_is_a_pool_error() -> None:
    """Output that is not sinfo JSON is a PoolError."""
    pool, _ = pool_with(sinfo=ok("PARTITION AVAIL\n"))
    with pytest.raises(PoolError):
        run(pool.snapshot)


# -- submit ----------------------------------------------------------------------------------


def test_submit_returns_the_job_id() -> None:
    """submit() returns the id from `--parsable` output, with or without `;cluster`."""
    pool, _ = pool_with(sbatch=ok("4711;beta\n"))
    assert run(lambda: pool.submit(SUBMISSION)) == "4711"


def test_submit_feeds_the_script_on_stdin() -> None:
    """The script bytes go to sbatch's stdin unchanged."""
    pool, transport = pool_with(sbatch=ok("1\n"))
    run(lambda: pool.submit(SUBMISSION))
    assert transport.calls[0].stdin == SUBMISSION.request.script


def test_submit_argv_carries_tag_name_and_partition() -> None:
    """The sbatch argv carries the tag as comment, the name verbatim and the pool partition."""
    pool, transport = pool_with(sbatch=ok("1\n"))
    run(lambda: pool.submit(SUBMISSION))
    argv = transport.calls[0].argv
    assert "--comment=sfed/fed/12/1" in argv
    assert "--job-name=x; touch /tmp/pwned" in argv
    assert "--partition=gpu" in argv


def test_submit_passes_environment_through_env() -> None:
    """Job variables go through the transport's env, minus those that steer sbatch."""
    pool, transport = pool_with(sbatch=ok("1\n"))
    with capture_logs() as logs:
        run(lambda: pool.submit(SUBMISSION))
    assert transport.calls[0].env == {"HOME_DIR": "/home/u", "SFED_JOB_ID": "12"}
    dropped = [e for e in logs if e["event"] == "slurm.env_dropped"]
    assert dropped[0]["names"] == ["LD_PRELOAD"]


def test_submit_rejection_is_a_pool_error_with_the_reason() -> None:
    """sbatch refusing the job raises PoolError with sbatch's reason."""
    pool, _ = pool_with(
        sbatch=failed(
            "sbatch: error: Batch job submission failed: Requested node configuration is not "
            "available\n"
        )
    )
    with pytest.raises(PoolError, match="Requested node configuration is not available"):
        run(lambda: pool.submit(SUBMISSION))


def test_submit_unreachable_controller_is_unreachable() -> None:
    """sbatch failing to contact the controller raises PoolUnreachable, not PoolError."""
    pool, _ = pool_with(
        sbatch=failed(
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
            "(connect failure)\n"
        )
    )
    with pytest.raises(PoolUnreachable):
        run(lambda: pool.submit(SUBMISSION))


def test_submit_unexpected_output_is_a_pool_error() -> None:
    """sbatch exiting 0 without an id raises PoolError."""
    pool, _ = pool_with(sbatch=ok("Submitted batch job 5\n"))
    with pytest.raises(PoolError):
        run(lambda: pool.submit(SUBMISSION))


def test_submit_impossible_request_runs_nothing() -> None:
    """A request sbatch cannot express raises PoolError before any command runs."""
    bad = RemoteSubmission(SUBMISSION.tag, JobRequest(script=b"#!/bin/sh\n", nodes=0))
    pool, transport = pool_with()
    with pytest.raises(PoolError, match="nodes"):
        run(lambda: pool.submit(bad))
    assert transport.calls == []


def test_submit_logs_one_event_with_pool_bound() -> None:
    """A submission logs `slurm.submit` with the pool, tag and remote id."""
    pool, _ = pool_with(sbatch=ok("99\n"))
    with capture_logs() as logs:
        run(lambda: pool.submit(SUBMISSION))
    (event,) = [e for e in logs if e["event"] == "slurm.submit"]
    assert (event["pool"], event["tag"], event["remote_id"]) == ("beta", "sfed/fed/12/1", "99")


# -- find, poll ------------------------------------------------------------------------------


def test_find_returns_the_job_with_the_tag() -> None:
    """find() returns the job whose comment is the rendered tag, finished or not."""
    pool, transport = pool_with(squeue=ok(fixture_bytes("probe-squeue-states.json")))
    job = run(lambda: pool.find(RemoteTag("fed", 6, 1)))
    assert (job.remote_id, job.state, job.reason) == (
        "6",
        AttemptState.FAILED,
        "time limit reached",
    )
    assert transport.calls[0].argv == ["squeue", "--json", "--states=all"]


def test_find_returns_none_for_another_tag() -> None:
    """find() returns None when no job carries the tag."""
    pool, _ = pool_with(squeue=ok(fixture_bytes("probe-squeue-states.json")))
    assert run(lambda: pool.find(RemoteTag("fed", 6, 2))) is None


def test_find_prefers_a_live_duplicate() -> None:
    """With two jobs carrying one tag, the one still alive is returned."""
    doc = json.loads(fixture_bytes("probe-squeue-states.json"))
    for job in doc["jobs"]:
        if job["job_id"] in (3, 13):
            job["comment"] = "sfed/fed/99/1"
    pool, _ = pool_with(squeue=ok(json.dumps(doc)))
    assert run(lambda: pool.find(RemoteTag("fed", 99, 1))).remote_id == "13"


def test_poll_runs_one_command_for_all_ids() -> None:
    """poll() answers every id with one squeue call and omits ids Slurm no longer knows."""
    pool, transport = pool_with(squeue=ok(fixture_bytes("probe-squeue-states.json")))
    result = run(lambda: pool.poll(["3", "6", "2", "999999"]))
    assert {k: v.state for k, v in result.items()} == {
        "3": AttemptState.COMPLETED,
        "6": AttemptState.FAILED,
    }
    assert len(transport.calls) == 1


def test_poll_without_ids_runs_nothing() -> None:
    """poll([]) returns {} without a command."""
    pool, transport = pool_with()
    assert run(lambda: pool.poll([])) == {}
    assert transport.calls == []


def test_poll_dead_controller_json_is_unreachable() -> None:
    """squeue --json exiting 0 with `errors` raises PoolUnreachable, not an empty result."""
    pool, _ = pool_with(squeue=ok(fixture_bytes("probe-squeue-dead-controller.json")))
    with pytest.raises(PoolUnreachable, match="slurm_load_jobs"):
        run(lambda: pool.poll(["1"]))


def test_poll_skips_an_unreadable_job() -> None:
    """One malformed job record does not break the poll of the others."""
    doc = json.loads(fixture_bytes("probe-squeue-states.json"))
    doc["jobs"].append({"job_id": "bogus"})
    pool, _ = pool_with(squeue=ok(json.dumps(doc)))
    assert set(run(lambda: pool.poll(["3", "bogus"]))) == {"3"}


# -- cancel, close ---------------------------------------------------------------------------


def test_cancel_runs_scancel() -> None:
    """cancel() runs `scancel <id>`."""
    pool, transport = pool_with(scancel=ok())
    run(lambda: pool.cancel("42"))
    assert transport.calls[0].argv == ["scancel", "42"]


@pytest.mark.parametrize(
    "stderr",
    [
        "scancel: error: Kill job error on job id 42: Invalid job id specified\n",
        "scancel: error: Kill job error on job id 42: Job/step already completing or completed\n",
    ],
)
def test_cancel_unknown_or_finished_is_fine(stderr: str) -> None:
    """scancel complaining the job is unknown or finished is not an error."""
    pool, _ = pool_with(scancel=failed(stderr))
    run(lambda: pool.cancel("42"))


def test_cancel_unreachable_controller_is_unreachable() -> None:
    """scancel failing to contact the controller raises PoolUnreachable."""
    pool, _ = pool_with(
        scancel=failed(
            "scancel: error: Kill job error on job id 42: Unable to contact slurm controller "
            "(connect failure)\n",
            returncode=8,
        )
    )
    with pytest.raises(PoolUnreachable):
        run(lambda: pool.cancel("42"))


def test_cancel_other_failure_is_a_pool_error() -> None:
    """Any other scancel failure raises PoolError with its message."""
    pool, _ = pool_with(scancel=failed("scancel: error: Access/permission denied\n"))
    with pytest.raises(PoolError, match="permission denied"):
        run(lambda: pool.cancel("42"))


def test_cancel_of_a_non_id_runs_nothing() -> None:
    """An id that is not a Slurm job id raises PoolError without running scancel."""
    pool, transport = pool_with()
    with pytest.raises(PoolError):
        run(lambda: pool.cancel("1 --signal=KILL"))
    assert transport.calls == []


def test_close_closes_the_transport() -> None:
    """close() closes the transport."""
    pool, transport = pool_with()
    run(pool.close)
    assert transport.closed == 1
