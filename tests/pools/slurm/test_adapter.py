"""SlurmPool against the real lab clusters, over LocalTransport and SSHTransport alike."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from scheduler.domain import AttemptState, RemoteJob, RemoteSubmission, RemoteTag
from scheduler.pools.base import OutputRestarted, PoolError, PoolUnreachable
from scheduler.pools.slurm import LocalTransport, SlurmPool, SSHTransport, Transport
from tests.fixtures import submissions
from tests.fixtures.polling import wait_state
from tests.fixtures.submissions import fresh_tag

pytestmark = pytest.mark.lab

T = TypeVar("T")
TERMINAL = {AttemptState.COMPLETED, AttemptState.FAILED, AttemptState.CANCELLED}


def submission(workdir: Path, script: bytes, **fields: Any) -> RemoteSubmission:
    """A job of a fresh tag (the lab keeps finished jobs for an hour) run in `workdir`, its
    output in out-<job id>.txt there, with 500 MB; any request field may be given."""
    defaults = {
        "chdir": str(workdir),
        "output": str(workdir / "out-%j.txt"),
        "mem_per_node_mb": 500,
    }
    return submissions.submission(tag=fresh_tag(), script=script, **{**defaults, **fields})


def run(pool: SlurmPool, scenario: Callable[[SlurmPool], Awaitable[T]]) -> T:
    """Run `scenario(pool)` in a fresh event loop and always close the pool."""

    async def main() -> T:
        try:
            return await scenario(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def slurm(lab: Any, cluster: str, *argv: str) -> str:
    done = subprocess.run(
        argv, env=lab.env(cluster), capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def other_running_jobs(lab: Any, cluster: str, mine: str) -> list[int]:
    raw = json.loads(slurm(lab, cluster, "squeue", "--json"))["jobs"]
    return [j["job_id"] for j in raw if j["job_state"] == "RUNNING" and str(j["job_id"]) != mine]


# -- snapshot --------------------------------------------------------------------------------


def test_snapshot_beta_counts_a_running_job(
    lab: Any, make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """beta shows 4 nodes x 8 GPUs; the node of a job holding 3 GPUs shows 5 free."""
    sub = submission(
        workdir, b"#!/bin/bash\nsleep 300\n", gpus_per_node=3, cpus_per_task=2, mem_per_node_mb=1000
    )

    async def scenario(pool: SlurmPool) -> None:
        remote_id = jobs.add("beta", await pool.submit(sub))
        job = await wait_state(pool, remote_id, {AttemptState.RUNNING})
        deadline = asyncio.get_running_loop().time() + 30
        while True:  # the node's counters follow the job start within a scheduler pass
            nodes = {n.name: n for n in await pool.snapshot()}
            if nodes[job.nodelist].gpus_free <= 5 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.3)
        assert sorted(nodes) == ["beta-n1", "beta-n2", "beta-n3", "beta-n4"]
        for node in nodes.values():
            assert (node.gpus_total, node.cpus_total, node.mem_total_mb) == (8, 16, 64000)
            assert node.schedulable
        holder = nodes[job.nodelist]
        if other_running_jobs(lab, "beta", remote_id):  # the lab is shared: bounds only
            assert holder.gpus_free <= 5 and holder.cpus_free <= 14
        else:
            assert (holder.gpus_free, holder.cpus_free, holder.mem_free_mb) == (5, 14, 63000)
            assert all(n.gpus_free == 8 for n in nodes.values() if n is not holder)

    run(make_pool("beta"), scenario)


def test_snapshot_alpha_has_its_own_nodes(make_pool: Callable[..., SlurmPool]) -> None:
    """alpha's pool lists alpha's 2 nodes x 4 GPUs, nothing of beta."""
    nodes = run(make_pool("alpha"), lambda pool: pool.snapshot())
    assert [(n.name, n.gpus_total) for n in nodes] == [("alpha-n1", 4), ("alpha-n2", 4)]


def test_snapshot_unknown_partition_is_a_pool_error(
    lab: Any, make_transport: Callable[..., Transport]
) -> None:
    """A pool on a partition the cluster does not have raises PoolError."""
    pool = SlurmPool("beta", make_transport(lab.conf_path("beta")), "nosuch")
    with pytest.raises(PoolError, match="nosuch"):
        run(pool, lambda pool: pool.snapshot())


# -- submit, poll, find, cancel --------------------------------------------------------------


def test_two_node_srun_job_completes(
    make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """A 2-node `srun hostname` job is polled to COMPLETED with exit code 0 on 2 nodes."""
    sub = submission(workdir, b"#!/bin/bash\nsrun hostname\n", nodes=2)

    async def scenario(pool: SlurmPool) -> RemoteJob:
        remote_id = jobs.add("beta", await pool.submit(sub))
        return await wait_state(pool, remote_id, TERMINAL)

    done = run(make_pool("beta"), scenario)
    assert (done.state, done.exit_code, done.tag) == (AttemptState.COMPLETED, 0, sub.tag)
    assert done.started_at is not None and done.ended_at is not None
    assert done.nodelist.startswith("beta-n[")  # two nodes, e.g. beta-n[1-2]
    output = (workdir / f"out-{done.remote_id}.txt").read_text().splitlines()
    assert len(output) == 2


def test_exit_3_is_failed_with_exit_code_3(
    make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """A script that exits 3 ends FAILED with exit code 3."""
    sub = submission(workdir, b"#!/bin/bash\nexit 3\n")

    async def scenario(pool: SlurmPool) -> RemoteJob:
        remote_id = jobs.add("beta", await pool.submit(sub))
        return await wait_state(pool, remote_id, TERMINAL)

    done = run(make_pool("beta"), scenario)
    assert (done.state, done.exit_code) == (AttemptState.FAILED, 3)


def test_find_returns_the_submitted_job(
    make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """find(tag) returns the job submitted with that tag, and None for another tag."""
    sub = submission(workdir, b"#!/bin/bash\nsleep 300\n")
    other = RemoteTag(sub.tag.federation, sub.tag.job_id, sub.tag.attempt + 1)

    async def scenario(pool: SlurmPool) -> tuple[str, RemoteJob | None, RemoteJob | None]:
        remote_id = jobs.add("beta", await pool.submit(sub))
        return remote_id, await pool.find(sub.tag), await pool.find(other)

    remote_id, found, missing = run(make_pool("beta"), scenario)
    assert found is not None and (found.remote_id, found.tag) == (remote_id, sub.tag)
    assert found.state in {AttemptState.PENDING, AttemptState.RUNNING}
    assert missing is None


def test_find_sees_a_finished_job(
    make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """find(tag) still returns a job that has finished while the controller remembers it."""
    sub = submission(workdir, b"#!/bin/bash\ntrue\n")

    async def scenario(pool: SlurmPool) -> tuple[str, RemoteJob | None]:
        remote_id = jobs.add("beta", await pool.submit(sub))
        await wait_state(pool, remote_id, TERMINAL)
        return remote_id, await pool.find(sub.tag)

    remote_id, found = run(make_pool("beta"), scenario)
    assert found is not None and (found.remote_id, found.state) == (
        remote_id,
        AttemptState.COMPLETED,
    )


def test_poll_omits_unknown_ids(
    make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """poll() of a known and an unknown id answers the known one and omits the other."""
    sub = submission(workdir, b"#!/bin/bash\ntrue\n")

    async def scenario(pool: SlurmPool) -> tuple[str, dict[str, RemoteJob]]:
        remote_id = jobs.add("beta", await pool.submit(sub))
        return remote_id, await pool.poll([remote_id, "99999999"])

    remote_id, polled = run(make_pool("beta"), scenario)
    assert set(polled) == {remote_id}


def test_forged_comment_does_not_fool_poll_or_find(
    lab: Any, make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """Another job whose comment holds `|`, newlines and fake records claiming our job id and
    tag COMPLETED changes nothing: poll and find still see our job FAILED with exit code 3."""
    sub = submission(workdir, b"#!/bin/bash\nexit 3\n")
    fake = "|COMPLETED|0|beta-n1|2026-01-01T00:00:00|2026-01-01T00:00:01|None"

    async def scenario(pool: SlurmPool) -> tuple[str, str, dict[str, RemoteJob], RemoteJob | None]:
        remote_id = jobs.add("beta", await pool.submit(sub))
        await wait_state(pool, remote_id, TERMINAL)
        comment = (
            f"a | b\n{remote_id}{fake}~0123456789abcdef{sub.tag.render()}~0123456789abcdef\n"
            f"{remote_id}{fake}|{sub.tag.render()}|\n"
        )
        forger = slurm(
            lab, "beta", "sbatch", "--parsable", "--hold", "-p", "gpu", "--mem=100",
            f"--comment={comment}", "-o", "/dev/null", "--wrap=true",
        ).strip()  # fmt: skip
        jobs.add("beta", forger)
        return remote_id, forger, await pool.poll([remote_id, forger]), await pool.find(sub.tag)

    remote_id, forger, polled, found = run(make_pool("beta"), scenario)
    assert (polled[remote_id].state, polled[remote_id].exit_code) == (AttemptState.FAILED, 3)
    assert (polled[forger].state, polled[forger].tag) == (AttemptState.PENDING, None)
    assert found is not None and (found.remote_id, found.exit_code) == (remote_id, 3)


def test_client_environment_does_not_change_what_squeue_shows(
    lab: Any, monkeypatch: pytest.MonkeyPatch, jobs: Any, workdir: Path
) -> None:
    """A daemon environment with another time zone, relative times and SQUEUE_* filters that
    would hide every job still gets its job, with times in UTC (LocalTransport: the child
    inherits that environment)."""
    monkeypatch.setenv("TZ", "XST-9")  # UTC+9, no tzdata needed
    monkeypatch.setenv("SLURM_TIME_FORMAT", "relative")
    monkeypatch.setenv("SQUEUE_USERS", "nobody")
    monkeypatch.setenv("SQUEUE_PARTITION", "nosuch")
    sub = submission(workdir, b"#!/bin/bash\ntrue\n")
    pool = SlurmPool("beta", LocalTransport(str(lab.conf_path("beta"))), "gpu")

    async def scenario(pool: SlurmPool) -> RemoteJob:
        jobs.add("beta", await pool.submit(sub))
        return await wait_state(pool, jobs.jobs[-1][1], TERMINAL)

    done = run(pool, scenario)
    assert done.state is AttemptState.COMPLETED and done.ended_at is not None
    assert abs(datetime.now(UTC) - done.ended_at) < timedelta(minutes=5)


def test_ssh_unset_removes_a_login_variable(
    lab: Any, make_ssh_transport: Callable[..., SSHTransport]
) -> None:
    """Over SSH, `unset` removes a variable of the remote login environment (`env -u`)."""
    transport = make_ssh_transport(lab.conf_path("beta"))

    async def scenario() -> bytes:
        try:
            result = await transport.run(
                ["sh", "-c", 'echo "${HOME-unset} ${LOGNAME-unset} $TZ"'],
                env={"TZ": "UTC"},
                unset=["LOGNAME"],
            )
        finally:
            await transport.close()
        return result.stdout

    home, logname, tz = asyncio.run(scenario()).decode().split()
    assert (home.startswith("/"), logname, tz) == (True, "unset", "UTC")


def test_cancel_running_job(make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path) -> None:
    """Cancelling a running job ends it CANCELLED; cancelling again or an unknown id is fine."""
    sub = submission(workdir, b"#!/bin/bash\nsleep 300\n")

    async def scenario(pool: SlurmPool) -> RemoteJob:
        remote_id = jobs.add("beta", await pool.submit(sub))
        await wait_state(pool, remote_id, {AttemptState.RUNNING})
        await pool.cancel(remote_id)
        cancelled = await wait_state(pool, remote_id, TERMINAL)
        await pool.cancel(remote_id)
        await pool.cancel("99999999")
        return cancelled

    assert run(make_pool("beta"), scenario).state is AttemptState.CANCELLED


def test_rejected_submission_is_a_pool_error(
    make_pool: Callable[..., SlurmPool], workdir: Path
) -> None:
    """A job no node can hold (9 GPUs per node on alpha) is refused with sbatch's reason."""
    sub = submission(workdir, b"#!/bin/bash\ntrue\n", gpus_per_node=9)
    with pytest.raises(PoolError, match="Requested node configuration is not available"):
        run(make_pool("alpha"), lambda pool: pool.submit(sub))


# -- nothing from a user reaches a shell, bytes arrive intact --------------------------------

PWNED = [Path(f"/tmp/pwned{suffix}") for suffix in ("", "2", "3")]


@pytest.mark.parametrize("name", ["x; touch /tmp/pwned", "$(touch /tmp/pwned2)"])
def test_metacharacters_arrive_verbatim(
    lab: Any, make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path, name: str
) -> None:
    """Shell metacharacters in the job name, an env value and chdir reach Slurm as text."""
    chdir = workdir / "d; touch pwned4 $(touch pwned5)"  # a path component cannot hold "/"
    chdir.mkdir()
    relative = [d / f"pwned{n}" for d in (workdir, chdir, Path.cwd(), Path.home()) for n in (4, 5)]
    for marker in [*PWNED, *relative]:
        marker.unlink(missing_ok=True)
    value = "v; touch /tmp/pwned3 `touch /tmp/pwned3` $(touch /tmp/pwned3) 'q' \"dq\""
    sub = submission(
        workdir,
        b'#!/bin/bash\nprintf "%s" "$TEST_VALUE" > value.txt\n',
        job_name=name,
        chdir=str(chdir),
        output=str(chdir / "out.txt"),
        environment={"TEST_VALUE": value},
    )

    async def scenario(pool: SlurmPool) -> RemoteJob:
        remote_id = jobs.add("beta", await pool.submit(sub))
        return await wait_state(pool, remote_id, TERMINAL)

    done = run(make_pool("beta"), scenario)
    assert done.state is AttemptState.COMPLETED
    shown = slurm(lab, "beta", "scontrol", "-o", "show", "job", done.remote_id)
    assert f"JobName={name} UserId=" in shown
    assert (chdir / "value.txt").read_text() == value
    assert [m for m in [*PWNED, *relative] if m.exists()] == []


def test_script_arrives_byte_identical(
    lab: Any, make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """A script with non-ASCII and control bytes is stored and run byte for byte."""
    odd = bytes(b for b in range(1, 256) if b not in b"\n\r")
    script = (
        b"#!/bin/bash\n# caf\xc3\xa9 \xe2\x82\xac \xff\xfe binary: " + odd + b"\n"
        b'sha256sum "$0" | cut -d" " -f1 > sha.txt\n'
    )
    sub = submission(workdir, script)

    async def scenario(pool: SlurmPool) -> RemoteJob:
        remote_id = jobs.add("beta", await pool.submit(sub))
        return await wait_state(pool, remote_id, TERMINAL)

    done = run(make_pool("beta"), scenario)
    assert done.state is AttemptState.COMPLETED
    stored = subprocess.run(
        ["scontrol", "write", "batch_script", done.remote_id, "-"],
        env=lab.env("beta"),
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert stored == script
    assert (workdir / "sha.txt").read_text().strip() == hashlib.sha256(script).hexdigest()


# -- unreachable -----------------------------------------------------------------------------


def test_ssh_foreign_host_key_is_unreachable(
    lab: Any, make_ssh_transport: Callable[..., SSHTransport], foreign_known_hosts: Path
) -> None:
    """An sshd whose host key is not the one in known_hosts is never trusted."""
    transport = make_ssh_transport(lab.conf_path("beta"), foreign_known_hosts)
    with pytest.raises(PoolUnreachable, match="host key"):
        run(SlurmPool("beta", transport, "gpu"), lambda pool: pool.snapshot())


def test_ssh_unknown_host_is_unreachable(
    lab: Any, make_ssh_transport: Callable[..., SSHTransport], workdir: Path
) -> None:
    """An sshd missing from known_hosts is never trusted."""
    empty = workdir / "empty_known_hosts"
    empty.write_text("")
    transport = make_ssh_transport(lab.conf_path("beta"), empty)
    with pytest.raises(PoolUnreachable, match="host key"):
        run(SlurmPool("beta", transport, "gpu"), lambda pool: pool.snapshot())


def test_ssh_connection_refused_is_unreachable(lab: Any, unused_port: int) -> None:
    """Nothing listening on the SSH port raises PoolUnreachable."""
    endpoint = lab.ssh
    transport = SSHTransport(
        endpoint.host,
        unused_port,
        endpoint.user,
        [str(endpoint.client_key)],
        str(endpoint.known_hosts),
        str(lab.conf_path("beta")),
        connect_timeout=5.0,
    )
    with pytest.raises(PoolUnreachable, match="cannot connect"):
        run(SlurmPool("beta", transport, "gpu"), lambda pool: pool.snapshot())


def test_ssh_reconnects_after_a_dropped_connection(
    lab: Any, make_ssh_transport: Callable[..., SSHTransport]
) -> None:
    """A dropped SSH connection is re-established once, transparently."""
    transport = make_ssh_transport(lab.conf_path("beta"))

    async def scenario(pool: SlurmPool) -> int:
        await pool.snapshot()
        conn = transport._conn
        assert conn is not None
        conn.close()  # what a restarted sshd or an idle-timeout middlebox does
        await conn.wait_closed()
        return len(await pool.snapshot())

    assert run(SlurmPool("beta", transport, "gpu"), scenario) == 4


@pytest.mark.parametrize(
    "operation",
    [
        lambda pool: pool.snapshot(),
        lambda pool: pool.poll(["1"]),
        lambda pool: pool.find(RemoteTag("x", 1, 1)),
        lambda pool: pool.cancel("1"),
        lambda pool: pool.submit(submissions.submission(tag=fresh_tag(), script=b"#!/bin/sh\n")),
    ],
    ids=["snapshot", "poll", "find", "cancel", "submit"],
)
def test_dead_controller_is_unreachable(
    make_transport: Callable[..., Transport],
    dead_conf: Path,
    operation: Callable[[SlurmPool], Any],
) -> None:
    """A conf naming a port where no slurmctld listens raises PoolUnreachable for every call."""
    transport = make_transport(dead_conf)
    with pytest.raises(PoolUnreachable):
        run(SlurmPool("dead", transport, "gpu", command_timeout=20), operation)


def test_command_timeout_is_unreachable(
    make_transport: Callable[..., Transport], dead_conf: Path
) -> None:
    """A command outlasting command_timeout is stopped and raises PoolUnreachable."""
    pool = SlurmPool("dead", make_transport(dead_conf), "gpu", command_timeout=0.2)
    with pytest.raises(PoolUnreachable, match="did not finish"):
        run(pool, lambda pool: pool.snapshot())


def test_concurrent_calls_share_the_transport(make_pool: Callable[..., SlurmPool]) -> None:
    """More concurrent calls than sshd's MaxSessions all succeed over one transport."""

    async def scenario(pool: SlurmPool) -> list[int]:
        snapshots = await asyncio.gather(*(pool.snapshot() for _ in range(12)))
        return [len(s) for s in snapshots]

    assert run(make_pool("beta"), scenario) == [4] * 12


# -- read_output -----------------------------------------------------------------------------

MIB = 1024 * 1024


@pytest.fixture
def random_file(workdir: Path) -> tuple[Path, bytes]:
    """3 MB of random bytes (NUL, 0xff and an invalid UTF-8 sequence forced in) in `workdir`,
    world-readable so that the SSH login (root in the lab) can read it too."""
    data = bytearray(os.urandom(3_000_000))
    data[0:4] = b"\x00\xff\xc3\x28"
    data[MIB - 2 : MIB + 2] = b"\x00\x00\xff\xff"  # across the first chunk boundary
    data[-1] = 0
    path = workdir / "random.bin"
    path.write_bytes(bytes(data))
    path.chmod(0o644)
    return path, bytes(data)


def test_read_output_in_chunks_reproduces_the_file(
    make_pool: Callable[..., SlurmPool], random_file: tuple[Path, bytes]
) -> None:
    """Reading 1 MiB at increasing offsets returns the file exactly (same sha256), then b""."""
    path, data = random_file

    async def scenario(pool: SlurmPool) -> list[bytes]:
        chunks = []
        while True:
            chunk = await pool.read_output(str(path), sum(map(len, chunks)), MIB)
            if not chunk:
                return chunks
            chunks.append(chunk)

    chunks = run(make_pool("beta"), scenario)
    assert [len(c) for c in chunks] == [MIB, MIB, 3_000_000 - 2 * MIB]
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == hashlib.sha256(data).hexdigest()


def test_read_output_ranges(
    make_pool: Callable[..., SlurmPool], random_file: tuple[Path, bytes]
) -> None:
    """Arbitrary ranges, a limit past the end and a limit above 4 MiB read what is there."""
    path, data = random_file

    async def scenario(pool: SlurmPool) -> list[bytes]:
        return [
            await pool.read_output(str(path), 0, 4),
            await pool.read_output(str(path), MIB - 2, 4),
            await pool.read_output(str(path), 2_999_990, MIB),
            await pool.read_output(str(path), 0, 64 * MIB),
        ]

    assert run(make_pool("beta"), scenario) == [
        data[:4],
        data[MIB - 2 : MIB + 2],
        data[2_999_990:],
        data,
    ]


def test_read_output_at_the_end_is_empty(
    make_pool: Callable[..., SlurmPool], random_file: tuple[Path, bytes]
) -> None:
    """An offset at the end of the file reads as b"" (the file may still grow)."""
    path, data = random_file

    async def scenario(pool: SlurmPool) -> bytes:
        return await pool.read_output(str(path), len(data), MIB)

    assert run(make_pool("beta"), scenario) == b""


@pytest.mark.parametrize("past", [1, 10**9, 20 * 2**40], ids=["one", "a-gigabyte", "20-tib"])
def test_read_output_past_the_end_says_the_file_is_shorter(
    make_pool: Callable[..., SlurmPool], random_file: tuple[Path, bytes], past: int
) -> None:
    """An offset past the end of the file, even past any file the filesystem can hold
    (20 TiB, where dd's lseek fails with EINVAL), raises OutputRestarted with the file's size:
    a reader that had read that far sees the file started anew."""
    path, data = random_file

    async def scenario(pool: SlurmPool) -> int:
        with pytest.raises(OutputRestarted) as info:
            await pool.read_output(str(path), len(data) + past, MIB)
        return info.value.size

    assert run(make_pool("beta"), scenario) == len(data)


def test_read_output_missing_file_is_empty(
    make_pool: Callable[..., SlurmPool], workdir: Path
) -> None:
    """A file that does not exist yet, or whose directory does not exist yet, reads as b""."""

    async def scenario(pool: SlurmPool) -> list[bytes]:
        return [
            await pool.read_output(str(workdir / "out-123.txt"), 0, MIB),
            await pool.read_output(str(workdir / "not-yet" / "out-123.txt"), 10, MIB),
        ]

    assert run(make_pool("beta"), scenario) == [b"", b""]


def test_read_output_relative_path_is_a_pool_error(make_pool: Callable[..., SlurmPool]) -> None:
    """A relative path is refused with PoolError."""
    with pytest.raises(PoolError, match="absolute"):
        run(make_pool("beta"), lambda pool: pool.read_output("out-123.txt", 0, MIB))


def test_read_output_directory_is_a_pool_error(
    make_pool: Callable[..., SlurmPool], workdir: Path
) -> None:
    """A directory is not an output file that does not exist yet: PoolError (dd: Is a directory)."""
    with pytest.raises(PoolError, match="Is a directory"):
        run(make_pool("beta"), lambda pool: pool.read_output(str(workdir), 0, MIB))


def test_read_output_file_in_place_of_a_directory_is_a_pool_error(
    make_pool: Callable[..., SlurmPool], random_file: tuple[Path, bytes]
) -> None:
    """A regular file where the path needs a directory is a PoolError (Not a directory)."""
    path, _ = random_file
    with pytest.raises(PoolError, match="Not a directory"):
        run(make_pool("beta"), lambda pool: pool.read_output(f"{path}/out.txt", 0, MIB))


def test_read_output_fifo_does_not_block(
    make_pool: Callable[..., SlurmPool], workdir: Path
) -> None:
    """A FIFO with no writer reads as b"" at once instead of blocking until the timeout."""
    fifo = workdir / "fifo"
    os.mkfifo(fifo)
    pool = make_pool("beta", command_timeout=10.0)
    assert run(pool, lambda pool: pool.read_output(str(fifo), 0, MIB)) == b""


def test_read_output_follows_a_running_job(
    make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """Reading a running job's output file from where the last read stopped, until the job
    ends, gives exactly the final file (binary bytes included)."""
    script = (
        b"#!/bin/bash\n"
        b'for i in $(seq 1 10); do printf "line %02d \\xff\\x00 %s\\n" "$i" "$(date +%s.%N)"; '
        b"sleep 0.2; done\n"
    )
    sub = submission(workdir, script)

    async def scenario(pool: SlurmPool) -> tuple[str, list[bytes], int]:
        remote_id = jobs.add("beta", await pool.submit(sub))
        path = str(workdir / f"out-{remote_id}.txt")
        chunks: list[bytes] = []
        offset = 0
        reads_while_running = 0
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            job = (await pool.poll([remote_id])).get(remote_id)
            chunk = await pool.read_output(path, offset, MIB)
            chunks.append(chunk)
            offset += len(chunk)
            if job is not None and job.state is AttemptState.RUNNING and chunk:
                reads_while_running += 1
            if job is not None and job.state in TERMINAL:
                break  # the job wrote its last byte before it ended: this read saw them all
            assert asyncio.get_running_loop().time() < deadline, f"job {remote_id}: {job}"
            await asyncio.sleep(0.1)
        assert await pool.read_output(path, offset, MIB) == b""
        return path, chunks, reads_while_running

    path, chunks, reads_while_running = run(make_pool("beta"), scenario)
    final = Path(path).read_bytes()
    assert b"".join(chunks) == final
    assert len(final.splitlines()) == 10 and final.startswith(b"line 01 \xff\x00 ")
    assert reads_while_running >= 2  # the output arrived in pieces while the job ran
