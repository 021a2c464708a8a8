"""The `Pool` contract (scheduler/pools/base.py), one behaviour per test, for every
implementation: the in-memory fake, Slurm over the local and the SSH transport (the lab's
beta cluster), Kubernetes against the test API server (tests/kubeapi).

Each implementation is built once per module and runs in its own event loop. Jobs are small
programs (wait, write some bytes, exit with a code): real pools run them as shell scripts,
the in-memory pool acts them out when the suite waits for their end. A behaviour an
implementation does not have is an xfail of that implementation's parameter, with the
reason, and strict: the day it passes, the mark must go.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from scheduler.domain import (
    TERMINAL_ATTEMPT_STATES,
    AttemptState,
    Job,
    Outcome,
    OutputPaths,
    RemoteJob,
    RemoteSubmission,
)
from scheduler.pools.base import Pool
from scheduler.pools.kubernetes.adapter import KubernetesPool
from scheduler.pools.slurm import LocalTransport, SlurmPool
from tests.fixtures.jobs import job
from tests.fixtures.memory_pool import MemoryPool
from tests.fixtures.polling import wait_state
from tests.fixtures.submissions import fresh_tag, submission
from tests.pools.kubernetes.conftest import pool_cluster, pool_config
from tests.pools.slurm.conftest import ssh_transport

T = TypeVar("T")
MIB = 1024 * 1024
END_WITHIN = 30.0  # seconds: a short job on a real pool is over well before
LIVE = {AttemptState.PENDING, AttemptState.RUNNING}
OUTPUT = b"contract \x00\xff\xfe\n\xc3(bytes)\n"  # NUL, 0xff, an invalid UTF-8 sequence


@dataclass(frozen=True)
class Program:
    """What a contract job does: sleep `delay` seconds, write `output`, exit `exit_code`."""

    output: bytes = b""
    exit_code: int = 0
    delay: float = 0

    def script(self) -> bytes:
        octal = "".join(f"\\{byte:03o}" for byte in self.output)
        return f"#!/bin/sh\nsleep {self.delay}\nprintf '{octal}'\nexit {self.exit_code}\n".encode()


LONG = Program(delay=300)  # still running when its test ends (cancelled at teardown)


@dataclass
class Subject:
    """One `Pool` implementation under contract, with what the suite needs to drive it."""

    pool: Pool
    unknown_id: str  # an id in the pool's own form that it never gave out
    fields: dict[str, Any] = field(default_factory=dict)  # request fields its jobs need
    forgets_cancelled: bool = False  # deletes a cancelled job at once (Kubernetes)
    runner: asyncio.Runner = field(default_factory=asyncio.Runner)
    programs: dict[str, Program] = field(default_factory=dict)
    resources: ExitStack = field(default_factory=ExitStack)  # what the pool needs, undone last

    def run(self, scenario: Callable[[Pool], Coroutine[Any, Any, T]]) -> T:
        """`scenario(pool)` in the implementation's own event loop."""
        return self.runner.run(scenario(self.pool))

    def submission(self, program: Program) -> RemoteSubmission:
        return submission(tag=fresh_tag(), script=program.script(), **self.fields)

    async def submit(self, program: Program) -> tuple[RemoteSubmission, str]:
        """Submit a fresh job running `program`: its submission and remote id."""
        sub = self.submission(program)
        remote_id = await self.pool.submit(sub)
        self.programs[remote_id] = program
        return sub, remote_id

    async def ended(self, remote_id: str) -> RemoteJob:
        """The job once it has ended (the in-memory pool acts its program out first)."""
        if isinstance(self.pool, MemoryPool):
            _act_out(self.pool, remote_id, self.programs[remote_id])
        return await wait_state(self.pool, remote_id, TERMINAL_ATTEMPT_STATES, END_WITHIN)

    def close(self) -> None:
        """Cancel every job the suite started, close the pool, then release its resources."""

        async def stop(pool: Pool) -> None:
            try:
                for remote_id in self.programs:
                    await pool.cancel(remote_id)
            finally:
                await pool.close()

        with self.resources:
            try:
                self.run(stop)
            finally:
                self.runner.close()


def _act_out(pool: MemoryPool, remote_id: str, program: Program) -> None:
    if pool.jobs[remote_id].state in TERMINAL_ATTEMPT_STATES:
        return
    pool.start(remote_id)
    pool.write(remote_id, program.output)
    state = AttemptState.COMPLETED if program.exit_code == 0 else AttemptState.FAILED
    pool.finish(remote_id, state, program.exit_code)


def _slurm(request: pytest.FixtureRequest, kind: str) -> Subject:
    """SlurmPool on the lab's beta over `kind` transport; jobs run in a scratch directory
    the lab's slurmd can write to."""
    lab = request.getfixturevalue("lab")
    conf = str(lab.conf_path("beta"))
    transport = LocalTransport(conf) if kind == "local" else ssh_transport(lab, conf)
    workdir = Path(tempfile.mkdtemp(prefix="sfed-contract-"))
    workdir.chmod(0o755)
    subject = Subject(
        SlurmPool("beta", transport, lab.cluster("beta").partition),
        unknown_id="99999999",
        fields={"chdir": str(workdir), "mem_per_node_mb": 500},
    )
    subject.resources.callback(shutil.rmtree, workdir, ignore_errors=True)
    return subject


def _kubernetes(request: pytest.FixtureRequest) -> Subject:
    """KubernetesPool on the a100 nodes of a test cluster of its own."""
    resources = ExitStack()
    root = request.getfixturevalue("tmp_path_factory").mktemp("contract-kube")
    cluster = resources.enter_context(pool_cluster(root))
    return Subject(
        KubernetesPool(pool_config(cluster), timeout=10),
        unknown_id=f"{fresh_tag().federation}-1-1",
        resources=resources,
        forgets_cancelled=True,
    )


BUILDERS: dict[str, Callable[[pytest.FixtureRequest], Subject]] = {
    "memory": lambda request: Subject(MemoryPool("memory"), unknown_id="99999999"),
    "slurm-local": lambda request: _slurm(request, "local"),
    "slurm-ssh": lambda request: _slurm(request, "ssh"),
    "kubernetes": _kubernetes,
}


def implementations(**xfail: str) -> pytest.MarkDecorator:
    """Parametrize a test over every implementation; `xfail` gives, by implementation name
    (dashes as underscores), why that one fails the behaviour."""
    params = []
    for name in BUILDERS:
        marks: list[pytest.MarkDecorator] = []
        if name.startswith("slurm"):
            marks.append(pytest.mark.lab)
        reason = xfail.pop(name.replace("-", "_"), None)
        if reason:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(name, id=name, marks=marks))
    assert not xfail, f"no implementation named {sorted(xfail)}"
    return pytest.mark.parametrize("subject", params, indirect=True)


@pytest.fixture(scope="module")
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    """The implementation named by the test's parameter, shared by the module's tests."""
    built = BUILDERS[request.param](request)
    try:
        yield built
    finally:
        built.close()


def job_of(sub: RemoteSubmission) -> Job:
    """The federation job `sub` is an attempt of."""
    return job(sub.tag.job_id, request=sub.request, attempt=sub.tag.attempt)


@implementations()
def test_is_a_pool(subject: Subject) -> None:
    """The implementation has every method of the Pool protocol."""
    assert isinstance(subject.pool, Pool)


# -- cancel ----------------------------------------------------------------------------------


async def cancelled_or_gone(pool: Pool, remote_id: str) -> RemoteJob | None:
    """The job once its cancel took effect: reported ended, or no longer known at all (a pool
    may forget a cancelled job at once, as Kubernetes deletes the Job; the loop then records
    the attempt CANCELLED because it asked for the cancel)."""
    clock = asyncio.get_running_loop().time
    deadline = clock() + END_WITHIN
    while True:
        seen = (await pool.poll([remote_id])).get(remote_id)
        if seen is None or seen.state in TERMINAL_ATTEMPT_STATES:
            return seen
        if clock() > deadline:
            raise AssertionError(f"{remote_id} still {seen.state} {END_WITHIN} s after its cancel")
        await asyncio.sleep(0.2)


@implementations()
def test_cancel_is_idempotent(subject: Subject) -> None:
    """Cancelling twice, a finished job or an unknown id is no error; the job ends CANCELLED,
    or is no longer known."""

    async def scenario(pool: Pool) -> RemoteJob | None:
        _, live = await subject.submit(LONG)
        _, done = await subject.submit(Program())
        await subject.ended(done)
        await pool.cancel(live)
        await pool.cancel(live)
        await pool.cancel(done)
        await pool.cancel(subject.unknown_id)
        if isinstance(pool, MemoryPool):
            return await subject.ended(live)
        return await cancelled_or_gone(pool, live)

    cancelled = subject.run(scenario)
    if cancelled is None:
        assert subject.forgets_cancelled, "the pool forgot a cancelled job at once"
    else:
        assert (cancelled.state, cancelled.outcome) == (AttemptState.CANCELLED, Outcome.CANCELLED)


# -- find ------------------------------------------------------------------------------------


@implementations()
def test_find_after_a_crash_returns_the_submitted_job(subject: Subject) -> None:
    """A job whose remote id was lost with the caller is found by its tag."""

    async def scenario(pool: Pool) -> tuple[str, RemoteSubmission, RemoteJob | None]:
        sub, remote_id = await subject.submit(LONG)
        return remote_id, sub, await pool.find(sub.tag)  # as if remote_id had never come back

    remote_id, sub, found = subject.run(scenario)
    assert found is not None and (found.remote_id, found.tag) == (remote_id, sub.tag)


@implementations()
def test_find_of_a_tag_never_submitted_is_none(subject: Subject) -> None:
    """find() of a tag the pool never saw returns None."""
    assert subject.run(lambda pool: pool.find(fresh_tag())) is None


# -- poll ------------------------------------------------------------------------------------


@implementations()
def test_poll_leaves_out_unknown_ids(subject: Subject) -> None:
    """poll() of ids the pool does not know answers without them, and without an error."""
    assert subject.run(lambda pool: pool.poll([subject.unknown_id])) == {}


@implementations()
def test_poll_reports_a_submitted_job_with_its_tag(subject: Subject) -> None:
    """poll() of a job just submitted reports it, not yet ended, carrying its tag."""

    async def scenario(pool: Pool) -> tuple[str, RemoteSubmission, dict[str, RemoteJob]]:
        sub, remote_id = await subject.submit(LONG)
        return remote_id, sub, await pool.poll([remote_id])

    remote_id, sub, polled = subject.run(scenario)
    assert list(polled) == [remote_id]
    assert (polled[remote_id].remote_id, polled[remote_id].tag) == (remote_id, sub.tag)
    assert polled[remote_id].state in LIVE


@implementations()
def test_poll_of_no_ids_is_empty(subject: Subject) -> None:
    """poll([]) returns {}."""
    assert subject.run(lambda pool: pool.poll([])) == {}


@implementations()
def test_a_finished_job_is_terminal_with_an_outcome_and_exit_code(subject: Subject) -> None:
    """Exit 0 ends COMPLETED with exit code 0, exit 3 FAILED with 3: state, outcome, code."""

    async def scenario(pool: Pool) -> list[RemoteJob]:
        started = [await subject.submit(Program(exit_code=code)) for code in (0, 3)]
        return [await subject.ended(remote_id) for _, remote_id in started]

    ok, failed = subject.run(scenario)
    assert (ok.state, ok.outcome, ok.exit_code) == (AttemptState.COMPLETED, Outcome.COMPLETED, 0)
    assert (failed.state, failed.outcome, failed.exit_code) == (
        AttemptState.FAILED,
        Outcome.FAILED,
        3,
    )


# -- output ----------------------------------------------------------------------------------


@implementations()
def test_read_output_returns_what_the_job_wrote(subject: Subject) -> None:
    """The stdout path of output_paths() reads b"" before the job writes, then its bytes
    exactly (NUL, 0xff), from any offset, and b"" past the end."""

    async def scenario(pool: Pool) -> list[bytes]:
        sub, remote_id = await subject.submit(Program(output=OUTPUT, delay=2))
        path = pool.output_paths(job_of(sub), sub.tag.attempt, remote_id).stdout
        assert path is not None

        async def read(offset: int, limit: int = MIB) -> bytes:
            return await pool.read_output(path, offset, limit, remote_id=remote_id)

        before = await read(0)
        await subject.ended(remote_id)
        return [before, await read(0), await read(3, 4), await read(len(OUTPUT))]

    assert subject.run(scenario) == [b"", OUTPUT, OUTPUT[3:7], b""]


@implementations()
def test_output_paths_is_pure_and_stable(subject: Subject) -> None:
    """output_paths() gives the same answer twice, with a remote id and without one."""
    sub = subject.submission(Program())
    for remote_id in (subject.unknown_id, None):
        first = subject.pool.output_paths(job_of(sub), 2, remote_id)
        assert isinstance(first, OutputPaths)
        assert subject.pool.output_paths(job_of(sub), 2, remote_id) == first
