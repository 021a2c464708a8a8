"""Frozen value types shared by every layer: the placement core, the pools, the store, the API.

Nothing here does I/O. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "TERMINAL_ATTEMPT_STATES",
    "TERMINAL_JOB_STATES",
    "Attempt",
    "AttemptState",
    "Decision",
    "Event",
    "Job",
    "JobRequest",
    "JobState",
    "NodeSnapshot",
    "Outcome",
    "OutputPaths",
    "PoolSnapshot",
    "PoolState",
    "PoolVerdict",
    "RemoteJob",
    "RemoteSubmission",
    "RemoteTag",
]


class JobState(enum.StrEnum):
    """Where a federation job is in its life."""

    PENDING = "PENDING"  # in the federation queue, on no pool yet
    PLACED = "PLACED"  # handed to a pool, queued or starting there
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL_JOB_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


class AttemptState(enum.StrEnum):
    """Where one placement of a job on one pool is."""

    SUBMITTING = "SUBMITTING"  # intent recorded; the pool may or may not have the job yet
    PENDING = "PENDING"  # the pool has it, not started
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    LOST = "LOST"  # the pool no longer knows the job and never reported an end


TERMINAL_ATTEMPT_STATES = frozenset(
    {AttemptState.COMPLETED, AttemptState.FAILED, AttemptState.CANCELLED, AttemptState.LOST}
)


class Outcome(enum.StrEnum):
    """How an attempt ended, as its pool (or the federation) saw it: a fact, not a verdict.

    Pools report one of these with every terminal state; the job lifecycle
    (scheduler.lifecycle) alone decides what it means for the job.
    """

    COMPLETED = "COMPLETED"  # the script ended with exit code 0
    FAILED = "FAILED"  # the script ended with a non-zero exit code (or a signal)
    CANCELLED = "CANCELLED"  # cancelled on the pool: by the federation, a user or an admin there
    TIMEOUT = "TIMEOUT"  # its time limit (or deadline) passed
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    PREEMPTED = "PREEMPTED"  # taken back for higher-priority work
    NODE_FAIL = "NODE_FAIL"  # a node of the job failed, or failed to boot
    EVICTED = "EVICTED"  # removed by the pool's own housekeeping: drain, node pressure, taint
    LOST = "LOST"  # the pool no longer knows the job and never reported an end
    REFUSED = "REFUSED"  # the pool refused the submission
    NOT_SUBMITTED = "NOT_SUBMITTED"  # the submission never reached the pool


# The outcome a terminal state implies when a pool gives no more precise one.
DEFAULT_OUTCOME: dict[AttemptState, Outcome] = {
    AttemptState.COMPLETED: Outcome.COMPLETED,
    AttemptState.FAILED: Outcome.FAILED,
    AttemptState.CANCELLED: Outcome.CANCELLED,
    AttemptState.LOST: Outcome.LOST,
}


# Signals a job's owner may send it (scancel -s), by name as Slurm spells them: those a
# training script traps (checkpoint now, reload, dump), and the usual stop/continue/end ones.
SIGNALS: frozenset[str] = frozenset(
    {"HUP", "INT", "QUIT", "ABRT", "KILL", "USR1", "USR2", "ALRM", "TERM", "CONT", "STOP",
     "TSTP", "URG", "WINCH", "XCPU"}
)  # fmt: skip


class PoolState(enum.StrEnum):
    """Whether a pool may receive new jobs."""

    UP = "UP"
    DRAINED = "DRAINED"  # by an admin: keeps its jobs, receives no new ones
    UNREACHABLE = "UNREACHABLE"  # stopped answering: receives no new jobs


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What the user asked for, in sbatch's terms. The script is kept byte for byte."""

    script: bytes
    job_name: str = "sbatch"
    nodes: int = 1
    ntasks: int | None = None  # total tasks; None = one per node
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_per_node_mb: int | None = None
    time_limit_min: int | None = None
    partition: str | None = None  # None or the virtual partition: any pool
    chdir: str | None = None
    output: str | None = None
    error: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    requeue: bool = False
    priority: int = 0
    separate_error: bool = False  # no error path given, but stderr apart from stdout (spooled)
    gpu_type: str | None = None  # --gres=gpu:TYPE:N: only GPUs of this type; None = any
    constraint: str | None = None  # -C: node features, `a`, `a&b` (all) or `a|b` (any)
    # Where sbatch (or sfed submit) ran: the job's SLURM_SUBMIT_DIR, translated per pool.
    submit_dir: str | None = None

    @property
    def tasks(self) -> int:
        return self.ntasks if self.ntasks is not None else self.nodes

    @property
    def cpus_per_node(self) -> int:
        """CPUs one node must give: tasks are spread as evenly as Slurm's block distribution."""
        per_node_tasks = -(-self.tasks // self.nodes)
        return per_node_tasks * self.cpus_per_task


@dataclass(frozen=True, slots=True)
class Job:
    """A federation job as the store holds it."""

    id: int
    user: str
    request: JobRequest
    state: JobState
    submitted_at: datetime
    updated_at: datetime
    pool: str | None = None  # pool of the current attempt
    remote_id: str | None = None  # id on that pool
    attempt: int = 0  # number of the current attempt, 0 = never placed
    exit_code: int | None = None  # as a shell sees it: 128 + the signal when one killed it
    exit_signal: int | None = None  # the signal that killed the batch script, if one did
    reason: str = ""  # last word on why it is where it is
    cancel_requested: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None
    client_key: str | None = None  # a retrying client's idempotency key
    # Every pool's verdict in the pass that placed the job, or in the latest pass it waited.
    verdicts: tuple[PoolVerdict, ...] = ()


@dataclass(frozen=True, slots=True)
class Attempt:
    """One placement of a job on one pool."""

    job_id: int
    number: int
    pool: str
    state: AttemptState
    created_at: datetime
    remote_id: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    nodelist: str = ""
    outcome: Outcome | None = None  # how it ended; None while it has not
    exit_signal: int | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a job's append-only history."""

    id: int
    job_id: int
    at: datetime
    kind: str  # submitted, placed, submitted_remote, state, cancel_requested, ...
    message: str
    pool: str | None = None
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """Free and total resources of one node, as its pool reports them."""

    name: str
    gpus_total: int
    gpus_free: int
    cpus_total: int
    cpus_free: int
    mem_total_mb: int
    mem_free_mb: int
    schedulable: bool = True  # False when down, drained or otherwise unusable on the pool
    gpu_type: str = ""  # the type of its GPUs (Slurm's gres type, a mapped label); "" untyped
    features: tuple[str, ...] = ()  # node features a -C constraint matches (sorted, unique)

    def __post_init__(self) -> None:
        # One spelling for equal sets (and a tuple whatever the caller or a JSON row gave).
        features = self.features
        if type(features) is not tuple or (
            len(features) > 1 and list(features) != sorted(set(features))
        ):
            object.__setattr__(self, "features", tuple(sorted(set(features))))


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """A pool at one instant, with the federation's policy knobs for it."""

    name: str
    state: PoolState
    nodes: tuple[NodeSnapshot, ...]
    weight: int = 1  # lower is preferred, as Slurm's node Weight
    price_per_gpu_hour: float = 0.0
    partition: str | None = None
    taken_at: datetime | None = None
    # Jobs the federation already handed to this pool that the snapshot may not yet show
    # as allocated (still pending remotely): the placement core reserves them first.
    inflight: tuple[JobRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class PoolVerdict:
    """The placement core's word on one pool for one job."""

    pool: str
    fits: bool
    reason: str  # e.g. "beta: 4 idle nodes with >= 8 GPUs", "alpha: only 2 nodes"


@dataclass(frozen=True, slots=True)
class Decision:
    """The placement of one pending job in one pass: a pool, or none with the reasons."""

    job_id: int
    pool: str | None
    verdicts: tuple[PoolVerdict, ...]

    @property
    def placed(self) -> bool:
        return self.pool is not None

    @property
    def summary(self) -> str:
        return f"placed on {self.pool}" if self.pool else "waiting: no pool can run it now"

    def explain(self) -> str:
        """One line for a job's reason (squeue's REASON column): the summary, then each pool."""
        return "; ".join([self.summary, *(v.reason for v in self.verdicts)])


@dataclass(frozen=True, slots=True)
class RemoteTag:
    """Marks a remote job as attempt `attempt` of federation job `job_id` of `federation`.

    Carried on the remote job (Slurm comment, Kubernetes labels) so that a restart finds what
    was already submitted instead of submitting it again.
    """

    federation: str
    job_id: int
    attempt: int

    def render(self) -> str:
        return f"sfed/{self.federation}/{self.job_id}/{self.attempt}"

    @classmethod
    def parse(cls, text: str) -> RemoteTag | None:
        parts = text.strip().split("/")
        if len(parts) != 4 or parts[0] != "sfed":
            return None
        try:
            return cls(parts[1], int(parts[2]), int(parts[3]))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class RemoteSubmission:
    """What a pool is asked to run: the unchanged script and the request, paths already mapped."""

    tag: RemoteTag
    request: JobRequest
    environment: Mapping[str, str] = field(default_factory=dict)  # SFED_* vars, added to request's
    run_as: str | None = None  # the job's owner, when the pool runs jobs as their owners
    owner: str = ""  # the federation job's owner, whatever account the pool runs it as


@dataclass(frozen=True, slots=True)
class OutputPaths:
    """Where a job's output is on its pool; stderr None = joined with stdout; None = not
    known to sfedd. What a path means (a file, a pod's log) is the pool's own business."""

    stdout: str | None
    stderr: str | None


@dataclass(frozen=True, slots=True)
class RemoteJob:
    """A pool's view of one of its jobs."""

    remote_id: str
    state: AttemptState
    tag: RemoteTag | None = None
    exit_code: int | None = None
    reason: str = ""  # for people: the pool's own words; the lifecycle reads `outcome`
    exit_signal: int | None = None  # the signal that killed the batch script, when the pool says
    nodelist: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None  # how it ended: given with every terminal state

    def __post_init__(self) -> None:
        if self.outcome is None and self.state in DEFAULT_OUTCOME:
            object.__setattr__(self, "outcome", DEFAULT_OUTCOME[self.state])
        elif self.outcome is not None and self.state not in TERMINAL_ATTEMPT_STATES:
            raise ValueError(f"a {self.state} job has no outcome yet (got {self.outcome})")
