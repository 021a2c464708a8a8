"""SlurmPool against a scripted transport replaying captured Slurm 22.05 output."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from scheduler.domain import AttemptState, JobRequest, RemoteSubmission, RemoteTag
from scheduler.pools.base import OutputRestarted, Pool, PoolError, PoolUnreachable
from scheduler.pools.slurm import CommandResult, SlurmPool, commands

FIXTURES = Path(__file__).parent / "fixtures"
Reply = CommandResult | Exception

#: The marker `lab-beta-squeue-text-states.txt` was captured with (fixtures/README.md).
CAPTURE_MARKER = b"~c0ffee00c0ffee00"
STATES = "lab-beta-squeue-text-states.txt"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def ok(stdout: bytes | str = b"") -> CommandResult:
    return CommandResult(0, stdout.encode() if isinstance(stdout, str) else stdout, b"")


def failed(stderr: str, returncode: int = 1) -> CommandResult:
    return CommandResult(returncode, b"", stderr.encode())


def squeue_marker(argv: Sequence[str]) -> str:
    """The record marker of a squeue argv (the suffix of its Comment field)."""
    match = re.search(r",Comment:(.*)$", argv[-1])
    assert match is not None, argv
    return match.group(1)


@dataclass
class Call:
    argv: list[str]
    stdin: bytes | None
    env: dict[str, str]
    unset: list[str]
    timeout: float
    spool: str = ""  # a submission's spool directory, made by the wrapper
    owner: str = ""  # and its owner


@dataclass
class ScriptedTransport:
    """Answers each command by its argv[0] with the next scripted reply.

    squeue output captured with CAPTURE_MARKER is replayed with the marker of the argv, as if
    squeue had been run with it.
    """

    replies: dict[str, list[Reply]]
    calls: list[Call] = field(default_factory=list)
    closed: int = 0

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        unset: Collection[str] = (),
        timeout: float = 30.0,
    ) -> CommandResult:
        call = Call(list(argv), stdin, dict(env or {}), list(unset), timeout)
        if argv[0] == "/bin/sh" and argv[3:4] == ["sfed-submit"]:
            call = unwrap_submit(call)
        self.calls.append(call)
        reply = self.replies[call.argv[0]].pop(0)
        if isinstance(reply, Exception):
            raise reply
        if argv[0] == "squeue":
            marker = squeue_marker(argv).encode()
            reply = dataclasses.replace(reply, stdout=reply.stdout.replace(CAPTURE_MARKER, marker))
        return reply

    async def close(self) -> None:
        self.closed += 1


def unwrap_submit(call: Call) -> Call:
    """The sbatch call inside commands.submit_argv's wrapper: its own argv, the script as
    stdin, and the variables of the --export-file the wrapper stages, as env."""
    size, spool, owner, _submit_dir, *sbatch = call.argv[4:]
    assert call.stdin is not None
    staged, script = call.stdin[: int(size)], call.stdin[int(size) :]
    assert staged.endswith(b"\0") or not staged
    env = dict(entry.decode().split("=", 1) for entry in staged.split(b"\0")[:-1])
    return Call(sbatch, script, env, call.unset, call.timeout, spool, owner)


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
    """Job variables reach sbatch's --export-file, minus those that steer sbatch."""
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


def captured_squeue(edit: Callable[[bytes], bytes] = lambda text: text) -> CommandResult:
    return ok(edit(fixture_bytes(STATES)))


def test_squeue_runs_the_text_form_with_utc_times() -> None:
    """find/poll run the text squeue in UTC, standard time format, without SQUEUE_* filters."""
    pool, transport = pool_with(squeue=captured_squeue())
    run(lambda: pool.poll(["110631"]))
    (call,) = transport.calls
    marker = squeue_marker(call.argv)
    assert call.argv == commands.squeue_argv(marker)
    assert call.env == {"TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}
    assert "SQUEUE_USERS" in call.unset and "SQUEUE_PARTITION" in call.unset
    assert call.timeout == 7.0


def test_each_squeue_call_has_a_fresh_marker() -> None:
    """The record marker is drawn anew for every call."""
    pool, transport = pool_with(squeue=[captured_squeue(), captured_squeue()])
    run(lambda: pool.poll(["110631"]))
    run(lambda: pool.find(RemoteTag("txtcap", 4, 1)))
    first, second = (squeue_marker(c.argv) for c in transport.calls)
    assert first != second


def test_find_returns_the_job_with_the_tag() -> None:
    """find() returns the job whose comment is the rendered tag, finished or not."""
    pool, _ = pool_with(squeue=captured_squeue())
    job = run(lambda: pool.find(RemoteTag("txtcap", 1, 1)))
    assert (job.remote_id, job.state, job.reason, job.exit_code) == (
        "110628",
        AttemptState.FAILED,
        "time limit reached",
        143,
    )


def test_find_returns_none_for_another_tag() -> None:
    """find() returns None when no job carries the tag."""
    pool, _ = pool_with(squeue=captured_squeue())
    assert run(lambda: pool.find(RemoteTag("txtcap", 1, 2))) is None


def test_find_ignores_a_forged_record_in_a_comment() -> None:
    """Another user's comment holding a fake record with our tag does not fool find."""
    pool, _ = pool_with(squeue=captured_squeue())
    job = run(lambda: pool.find(RemoteTag("txtcap", 4, 1)))
    assert (job.remote_id, job.state, job.exit_code) == ("110631", AttemptState.FAILED, 3)


def test_find_prefers_the_newest_live_duplicate() -> None:
    """With several jobs carrying one tag (array tasks here), the newest live one is returned."""
    pool, _ = pool_with(squeue=captured_squeue())
    assert run(lambda: pool.find(RemoteTag("txtcap", 14, 1))).remote_id == "110643"


def test_find_prefers_a_live_duplicate() -> None:
    """A live job wins over a newer finished one with the same tag."""
    retag = lambda text: text.replace(b"note: " + b"x" * 200, b"sfed/txtcap/2/1")  # noqa: E731
    pool, _ = pool_with(squeue=captured_squeue(retag))  # 110640 (COMPLETED) now carries tag 2
    assert run(lambda: pool.find(RemoteTag("txtcap", 2, 1))).remote_id == "110629"


def test_poll_runs_one_command_for_all_ids() -> None:
    """poll() answers every id with one squeue call and omits ids Slurm no longer knows."""
    pool, transport = pool_with(squeue=captured_squeue())
    result = run(lambda: pool.poll(["110630", "110628", "110629", "110635", "999999"]))
    assert {k: v.state for k, v in result.items()} == {
        "110630": AttemptState.COMPLETED,
        "110628": AttemptState.FAILED,
        "110629": AttemptState.RUNNING,
        "110635": AttemptState.PENDING,
    }
    assert len(transport.calls) == 1


def test_poll_is_not_fooled_by_a_forged_record() -> None:
    """A comment holding fake records for our job leaves our job's real state."""
    pool, _ = pool_with(squeue=captured_squeue())
    result = run(lambda: pool.poll(["110631", "110642"]))
    assert (result["110631"].state, result["110631"].exit_code) == (AttemptState.FAILED, 3)
    assert result["110631"].tag == RemoteTag("txtcap", 4, 1)
    assert result["110642"].tag is None


def test_poll_of_a_repeated_record_gives_one_job() -> None:
    """A pending array's meta record printed once per task is one job."""
    pool, _ = pool_with(squeue=captured_squeue())
    assert list(run(lambda: pool.poll(["110641"]))) == ["110641"]


def test_poll_without_ids_runs_nothing() -> None:
    """poll([]) returns {} without a command."""
    pool, transport = pool_with()
    assert run(lambda: pool.poll([])) == {}
    assert transport.calls == []


def test_poll_of_no_jobs_at_all() -> None:
    """A controller that remembers no job prints nothing: every id is absent."""
    pool, _ = pool_with(squeue=ok(b""))
    assert run(lambda: pool.poll(["1"])) == {}


@pytest.mark.parametrize("operation", ["poll", "find"])
def test_squeue_dead_controller_is_unreachable(operation: str) -> None:
    """squeue exiting 1 with "Unable to contact slurm controller" raises PoolUnreachable."""
    stderr = fixture_bytes("lab-beta-squeue-text-dead-controller.stderr.txt").decode()
    pool, _ = pool_with(squeue=failed(stderr))
    call = pool.poll(["1"]) if operation == "poll" else pool.find(RemoteTag("x", 1, 1))
    with pytest.raises(PoolUnreachable, match="Unable to contact slurm controller"):
        run(lambda: call)


def test_squeue_other_failure_is_a_pool_error() -> None:
    """Any other squeue failure raises PoolError with its message."""
    pool, _ = pool_with(squeue=failed("squeue: error: Invalid user: nobody\n"))
    with pytest.raises(PoolError, match="Invalid user"):
        run(lambda: pool.poll(["1"]))


@pytest.mark.parametrize(
    "stdout", [b"JOBID PARTITION NAME\n", b"110631|FAILED|768|beta-n1\n"], ids=["header", "cut"]
)
def test_squeue_unframed_output_is_a_pool_error(stdout: bytes) -> None:
    """Output not framed by the call's marker is a PoolError, not an empty answer."""
    pool, _ = pool_with(squeue=ok(stdout))
    with pytest.raises(PoolError, match="squeue"):
        run(lambda: pool.poll(["110631"]))


def test_squeue_output_with_a_stale_marker_is_a_pool_error() -> None:
    """Records framed by another marker than this call's are not taken for this call's."""
    stale = CommandResult(0, fixture_bytes(STATES).replace(CAPTURE_MARKER, b"~" + b"0" * 16), b"")
    pool, _ = pool_with(squeue=stale)
    with pytest.raises(PoolError):
        run(lambda: pool.poll(["110631"]))


def test_poll_unreadable_wanted_job_is_a_pool_error() -> None:
    """A job asked for whose record cannot be read raises PoolError instead of going missing
    (a missing job would be taken for lost)."""
    garble = lambda text: text.replace(b"|FAILED|768|", b"|FAILED|x|")  # noqa: E731
    pool, _ = pool_with(squeue=captured_squeue(garble))
    with capture_logs() as logs, pytest.raises(PoolError, match="110631"):
        run(lambda: pool.poll(["110631", "110630"]))
    assert [e["job_id"] for e in logs if e["event"] == "slurm.unparsed_job"] == ["110631"]


def test_poll_ignores_unreadable_jobs_it_did_not_ask_for() -> None:
    """Records of other jobs are not parsed: an odd one among them does not matter."""
    garble = lambda text: text.replace(b"|FAILED|768|", b"|FAILED|x|")  # noqa: E731
    pool, _ = pool_with(squeue=captured_squeue(garble))
    assert set(run(lambda: pool.poll(["110630"]))) == {"110630"}


def test_find_unreadable_tagged_job_is_a_pool_error() -> None:
    """A job carrying the tag whose record cannot be read raises PoolError, not None."""
    garble = lambda text: text.replace(b"|FAILED|768|", b"|FAILED|x|")  # noqa: E731
    pool, _ = pool_with(squeue=captured_squeue(garble))
    with pytest.raises(PoolError):
        run(lambda: pool.find(RemoteTag("txtcap", 4, 1)))


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


# -- read_output -----------------------------------------------------------------------------

DD = "/bin/dd"


def dd_pool(*replies: Reply) -> tuple[SlurmPool, ScriptedTransport]:
    return pool_with(**{DD: list(replies)})


def test_read_output_returns_stdout_byte_for_byte() -> None:
    """dd's stdout is returned untouched (NUL, 0xff, not UTF-8), with LC_ALL=C and the timeout."""
    data = b"\x00\xff\xfe caf\xc3\xa9 \r\n\x00"
    pool, transport = dd_pool(ok(data))
    assert run(lambda: pool.read_output("/spool/out.txt", 10, 100)) == data
    (call,) = transport.calls
    assert call.argv == commands.read_output_argv("/spool/out.txt", 10, 100)
    assert (call.env, call.stdin, call.timeout) == ({"LC_ALL": "C"}, None, 7.0)


def test_read_output_cuts_the_limit_to_four_mib() -> None:
    """A limit above 4 MiB asks dd for 4 MiB."""
    pool, transport = dd_pool(ok(b"x"))
    run(lambda: pool.read_output("/spool/out.txt", 0, 64 * 1024 * 1024))
    assert f"count={4 * 1024 * 1024}" in transport.calls[0].argv


@pytest.mark.parametrize(
    "stderr",
    [
        "/bin/dd: failed to open '/spool/out.txt': No such file or directory\n",
        "/bin/dd: /spool/out.txt: cannot skip: Invalid argument\n",
    ],
    ids=["missing", "beyond-filesystem"],
)
def test_read_output_nothing_to_read_is_empty(stderr: str) -> None:
    """A file that does not exist yet, or an offset no file can reach, reads as b""."""
    pool, _ = dd_pool(failed(stderr))
    assert run(lambda: pool.read_output("/spool/out.txt", 0, 100)) == b""


@pytest.mark.parametrize(
    ("stderr", "match"),
    [
        ("/bin/dd: failed to open '/spool/out.txt': Permission denied\n", "Permission denied"),
        ("/bin/dd: error reading '/spool': Is a directory\n", "Is a directory"),
        ("/bin/dd: failed to open '/spool/f/x': Not a directory\n", "Not a directory"),
        ("", "exit status 1"),
    ],
    ids=["permission", "directory", "not-a-directory", "silent"],
)
def test_read_output_unreadable_is_a_pool_error(stderr: str, match: str) -> None:
    """Any other dd failure is a PoolError carrying dd's message, partial stdout discarded."""
    pool, _ = dd_pool(CommandResult(1, b"partial", stderr.encode()))
    with pytest.raises(PoolError, match=match):
        run(lambda: pool.read_output("/spool/out.txt", 0, 100))


def test_read_output_message_naming_the_controller_is_still_a_pool_error() -> None:
    """A path that reads like a Slurm "unreachable" message does not make the pool unreachable."""
    path = "/spool/Unable to contact slurm controller/out.txt"
    pool, _ = dd_pool(failed(f"/bin/dd: failed to open '{path}': Permission denied\n"))
    with pytest.raises(PoolError):
        run(lambda: pool.read_output(path, 0, 100))


@pytest.mark.parametrize("returncode", [126, 127])
def test_read_output_without_dd_is_unreachable(returncode: int) -> None:
    """The remote shell not finding or not running dd is PoolUnreachable, like a missing binary."""
    pool, _ = dd_pool(failed("sh: 1: /bin/dd: not found\n", returncode))
    with pytest.raises(PoolUnreachable, match="/bin/dd"):
        run(lambda: pool.read_output("/spool/out.txt", 0, 100))


def test_read_output_transport_failure_is_unreachable() -> None:
    """A transport that cannot reach the pool raises PoolUnreachable."""
    pool, _ = dd_pool(PoolUnreachable("ssh: cannot connect"))
    with pytest.raises(PoolUnreachable, match="cannot connect"):
        run(lambda: pool.read_output("/spool/out.txt", 0, 100))


@pytest.mark.parametrize(
    ("path", "offset", "limit"),
    [
        ("spool/out.txt", 0, 100),
        ("", 0, 100),
        ("/spool/a\0b", 0, 100),
        ("/spool/a\nb", 0, 100),
        ("/spool/out.txt", -1, 100),
        ("/spool/out.txt", 0, -1),
        ("/spool/out.txt", 2**63, 100),
    ],
    ids=["relative", "empty", "nul", "newline", "negative-offset", "negative-limit", "off_t"],
)
def test_read_output_bad_request_runs_nothing(path: str, offset: int, limit: int) -> None:
    """A request that cannot be a byte range of an absolute path is a PoolError before any I/O."""
    pool, transport = dd_pool()
    with pytest.raises(PoolError):
        run(lambda: pool.read_output(path, offset, limit))
    assert transport.calls == []


def test_read_output_of_zero_bytes_runs_nothing() -> None:
    """limit=0 answers b"" without a round trip."""
    pool, transport = dd_pool()
    assert run(lambda: pool.read_output("/spool/out.txt", 5, 0)) == b""
    assert transport.calls == []


def test_read_output_of_a_file_started_anew_says_so() -> None:
    """Nothing past the offset and the file now shorter than it: OutputRestarted."""
    pool, transport = pool_with(**{"/bin/dd": ok(b""), "/usr/bin/stat": ok("5\n")})
    with pytest.raises(OutputRestarted) as info:
        run(lambda: pool.read_output("/spool/out.txt", 10, 100))
    assert info.value.size == 5
    assert transport.calls[1].argv == commands.size_argv("/spool/out.txt")


def test_read_output_at_the_end_of_a_growing_file_is_empty() -> None:
    """Nothing past the offset and the file as long as it: b"", nothing restarted."""
    pool, _ = pool_with(**{"/bin/dd": ok(b""), "/usr/bin/stat": ok("10\n")})
    assert run(lambda: pool.read_output("/spool/out.txt", 10, 100)) == b""


def test_read_output_from_zero_asks_no_size() -> None:
    """An empty read from byte 0 is a file with nothing yet: no stat."""
    pool, transport = pool_with(**{"/bin/dd": ok(b"")})
    assert run(lambda: pool.read_output("/spool/out.txt", 0, 100)) == b""
    assert len(transport.calls) == 1
