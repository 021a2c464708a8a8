"""Pure parsing of Slurm 22.05 client output into domain values.

What Slurm 22.05.8 (Debian 12) really prints, found by running it (captures in
tests/pools/slurm/fixtures/):

* `sinfo --json` prints the OpenAPI v0.0.38 schema (`meta.plugin.type == "openapi/v0.0.38"`,
  `meta.Slurm.release == "22.05.8"`), a top-level `errors` list, and `nodes`. It IGNORES
  filters (`--partition=nosuch` exits 0 and lists everything) and returns every node once (not
  one row per partition) with `partitions: [...]`. Filtering is ours to do.
* With the controller down, `sinfo --json` exits 0 after MessageTimeout and prints an empty
  list with a non-empty `errors` (`{"error": "Unspecified error", "errno": -1}`): `errors` must
  be checked, the exit status says nothing. The other commands, plain-text `squeue` included,
  exit non-zero with "Unable to contact slurm controller (connect failure)" on stderr
  (`slurm_load_jobs error: ...` for squeue, exit 1, nothing on stdout).
* Jobs come from the plain-text `squeue -O` (commands.squeue_argv), not `squeue --json`: the
  JSON form also ignores every filter and costs ~3.6 kB per remembered job, the text form
  ~120 bytes for the fields read here. The text form, unlike JSON, obeys `SQUEUE_*` filter
  variables (the adapter removes them) and folds pending array tasks into one line unless
  `--array`. Its fields, as `squeue -O Name:<suffix>` prints them:
  - a field given without a size (`JobID`) is padded AND cut to 20 characters; `Name:|`
    (size 0: `Name:0|` and `Name:.|` alike) prints the whole value, unpadded, then the suffix.
    Checked with a 200-character comment and a 35-character reason
    (`BeginTime,JobHeldAdmin,JobHeldUser`, a pending array's folded reasons): nothing is cut.
  - `JobID` is the job's own numeric id (an array task's too; `JobArrayID` would be `12_3`),
    the `job_id` of JSON. With `--array` a pending array's meta record is printed once per task
    still folded into it, so one id may appear on several identical records.
  - `State` is the same string as JSON's `job_state`; `exit_code` the same raw wait status.
  - `NodeList` is the compressed hostlist, empty for a job that never got nodes.
  - `StartTime`/`EndTime` are local times of the squeue process in SLURM_TIME_FORMAT
    (`standard`: `2026-11-23T19:39:45`), so the adapter runs squeue with `TZ=UTC` and
    `SLURM_TIME_FORMAT=standard`. Without a time, `N/A` (0), `Unknown`, `None`; `NONE` is the
    end of a job without time limit. A pending job's start and end are estimates.
  - `Reason` is the state description when the controller set one (`job requeued in held
    state`), else the reason code (`None`, `Resources`, `JobHeldUser`, `NonZeroExitCode`).
  - `Comment` is printed as stored, `|` and newlines included (a comment can hold a whole
    fake record), and `(null)` when the job has none. Hence the per-call random marker after
    the reason and the comment: records and the two free-text fields are delimited by a string
    no comment can contain.
* `scontrol` has no `--json` in 22.05 ("unrecognized option '--json'"); `scontrol -o show job`
  prints one `Key=Value` line with local (not UTC) times, so it is not used.
* Node fields: `name`, `state` (base state, lower case: idle, mixed, allocated, down, ...),
  `state_flags` (upper case: DRAIN, COMPLETING, NOT_RESPONDING, ...; a drained idle node is
  `state: idle, state_flags: [DRAIN]`), `cpus`, `alloc_cpus`, `idle_cpus`, `real_memory`,
  `alloc_memory` (MB), `gres` (`gpu:4`, empty for a node without GRES), `gres_used`
  (`gpu:2`; without the `(IDX:...)` suffix that `scontrol -d show node` prints; `gpu:0` even
  on a node without GPUs), `partitions`, `reason`. `tres_used` does not count GPUs unless
  AccountingStorageTRES lists gres/gpu, so GPUs come from `gres`/`gres_used`.
  With typed GPUs (`Gres=gpu:a100:4`) `gres` is `gpu:a100:4(S:0)` and `gres_used`
  `gpu:a100:1(IDX:0)`. `features` (the node's `Features=`, comma-separated, `""` for none)
  and `active_features` (those usable now; the same unless a node_features plugin changes
  them on reboot) are strings.
* Job states: RUNNING, PENDING, COMPLETING, SUSPENDED, COMPLETED, FAILED, CANCELLED, TIMEOUT,
  SPECIAL_EXIT (`scontrol requeuehold`), ... The exit code is the RAW wait status of the batch
  script, not the number `scontrol` prints: `exit 3` gives 768 (`ExitCode=3:0`), a SIGKILL
  gives 9 (`ExitCode=0:9`), a cancelled or timed-out running job 15 (SIGTERM). A requeued job
  shows as COMPLETING, then PENDING with reason BeginTime.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from scheduler.domain import AttemptState, NodeSnapshot, Outcome, RemoteJob, RemoteTag

__all__ = [
    "SlurmOutputError",
    "SqueueRecord",
    "UnreachableOutput",
    "decode_wait_status",
    "gres_count",
    "gres_type",
    "is_unreachable_message",
    "job_from_squeue",
    "load_json",
    "node_from_json",
    "nodes_of_partition",
    "parse_sbatch_parsable",
    "rejection_reason",
    "squeue_records",
    "state_of",
]


class SlurmOutputError(ValueError):
    """Slurm's output is not what this parser knows how to read."""


class UnreachableOutput(SlurmOutputError):
    """The command ran but reports that it could not reach the controller."""


# -- generic ---------------------------------------------------------------------------------

_UNREACHABLE = re.compile(
    r"Unable to contact slurm controller|Socket timed out on send/recv|Connection refused"
    r"|Communication connection failure|Slurm backup controller in standby mode"
    r"|Zero Bytes were transmitted or received|Connection timed out|Transport endpoint"
    r"|Could not establish a configuration source|Slurmctld not responding"
    r"|Unable to establish connection|Protocol authentication error"
    r"|(?:Munge|munge).*(?:Failed to connect|Socket communication error)",
    re.IGNORECASE,
)


def is_unreachable_message(text: str) -> bool:
    """Whether a Slurm client's stderr says the controller (or its auth) did not answer."""
    return bool(_UNREACHABLE.search(text))


def load_json(text: str | bytes, key: str) -> list[Mapping[str, Any]]:
    """The `key` list of a `--json` document, after checking its `errors`.

    Raises UnreachableOutput when `errors` is not empty (22.05 reports a controller it could
    not reach only there, with exit status 0), SlurmOutputError when it is not such a document.
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SlurmOutputError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SlurmOutputError("JSON document is not an object")
    errors = doc.get("errors") or []
    if errors:
        raise UnreachableOutput("; ".join(_describe_error(e) for e in errors))
    items = doc.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SlurmOutputError(f"JSON document has no {key!r} list")
    return items


def _describe_error(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    parts = [str(error[k]) for k in ("source", "description", "error") if error.get(k)]
    return ": ".join(parts) or json.dumps(error, sort_keys=True)


# -- nodes -----------------------------------------------------------------------------------

_SCHEDULABLE_STATES = frozenset({"idle", "mixed", "allocated", "completing"})
_UNSCHEDULABLE_FLAGS = frozenset(
    {
        "DRAIN",
        "DRAINING",
        "DRAINED",
        "DOWN",
        "FAIL",
        "FAILING",
        "NOT_RESPONDING",
        "NO_RESPOND",
        "POWERED_DOWN",
        "POWERING_DOWN",
        "POWER_DOWN",
        "POWERING_UP",
        "REBOOT_ISSUED",
        "INVALID_REG",
        "MAINTENANCE",
    }
)


def _split_gres(text: str) -> Iterable[str]:
    """Split `gpu:a100:2(IDX:0,2),mps:100` on the commas outside parentheses."""
    depth = 0
    start = 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            yield text[start:i]
            start = i + 1
    yield text[start:]


def gres_count(text: str | None, name: str = "gpu") -> int:
    """How many units of GRES `name` a Slurm GRES string lists, all types together.

    `gpu:4` -> 4, `gpu:2(IDX:0-1)` -> 2, `gpu:a100:2(S:0),gpu:v100:1` -> 3, `` -> 0.
    """
    if not text or text in {"(null)", "N/A"}:
        return 0
    total = 0
    for item in _split_gres(text):
        fields = item.split("(", 1)[0].strip().split(":")
        if fields[0] != name:
            continue
        if len(fields) == 1:
            total += 1
            continue
        count = fields[-1]
        if count.isdigit():
            total += int(count)
        elif len(fields) == 2:  # `gpu:a100`: a type, one unit
            total += 1
        else:
            raise SlurmOutputError(f"unreadable GRES count in {text!r}")
    return total


def gres_type(text: str | None, name: str = "gpu") -> str:
    """The type of the units of GRES `name` a Slurm GRES string lists; "" when untyped.

    `gpu:a100:4(S:0)` -> `a100`, `gpu:4` -> ``, `gpu:a100` -> `a100`. A node with GPUs of
    several types gets them all, sorted and joined by `,` (`a100,v100`): no request names
    such a type, so it serves untyped requests only (its free GPUs are not counted per type).
    """
    if not text or text in {"(null)", "N/A"}:
        return ""
    types = set()
    for item in _split_gres(text):
        fields = item.split("(", 1)[0].strip().split(":")
        if fields[0] != name or len(fields) == 1:
            continue
        if len(fields) == 2:  # `gpu:4` or `gpu:a100` (a type, one unit)
            if not fields[1].isdigit():
                types.add(fields[1])
        elif fields[-1] != "0":
            types.add(":".join(fields[1:-1]))
    return ",".join(sorted(types))


def _features(node: Mapping[str, Any]) -> tuple[str, ...]:
    """The node's active features (its `features` when sinfo gives no active ones)."""
    text = node.get("active_features", node.get("features"))
    if text is None:
        return ()
    if not isinstance(text, str):
        raise SlurmOutputError(f"features is not a string: {text!r}")
    return tuple(sorted({f.strip() for f in text.split(",") if f.strip()}))


def _int(node: Mapping[str, Any], key: str) -> int:
    value = node.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise SlurmOutputError(f"{key} is not an integer: {value!r}")
    return value


def node_from_json(node: Mapping[str, Any]) -> NodeSnapshot:
    """One `sinfo --json` node as a NodeSnapshot."""
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise SlurmOutputError("node without a name")
    gpus_total = gres_count(node.get("gres"))
    gpus_used = gres_count(node.get("gres_used"))
    cpus = _int(node, "cpus")
    memory = _int(node, "real_memory")
    state = str(node.get("state") or "").lower()
    flags = {str(f).upper() for f in node.get("state_flags") or ()}
    return NodeSnapshot(
        name=name,
        gpus_total=gpus_total,
        gpus_free=max(0, gpus_total - gpus_used),
        cpus_total=cpus,
        cpus_free=max(0, cpus - _int(node, "alloc_cpus")),
        mem_total_mb=memory,
        mem_free_mb=max(0, memory - _int(node, "alloc_memory")),
        schedulable=state in _SCHEDULABLE_STATES and not flags & _UNSCHEDULABLE_FLAGS,
        gpu_type=gres_type(node.get("gres")),
        features=_features(node),
    )


def nodes_of_partition(
    nodes: Iterable[Mapping[str, Any]], partition: str
) -> tuple[NodeSnapshot, ...]:
    """The nodes of `partition` among `sinfo --json` nodes (`load_json(out, "nodes")`), by name."""
    mine = [n for n in nodes if partition in (n.get("partitions") or ())]
    return tuple(sorted((node_from_json(n) for n in mine), key=lambda n: n.name))


# -- jobs ------------------------------------------------------------------------------------

_PENDING = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "SPECIAL_EXIT",
        "SUSPENDED",
        "RESV_DEL_HOLD",
        "POWER_UP_NODE",
        "RESIZING",
    }
)
_RUNNING = frozenset({"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "STOPPED"})
# Slurm's failed states: how the attempt ended, and the words for people.
_FAILED_REASONS: dict[str, tuple[Outcome, str]] = {
    "FAILED": (Outcome.FAILED, "failed"),
    "OUT_OF_MEMORY": (Outcome.OUT_OF_MEMORY, "out of memory"),
    "NODE_FAIL": (Outcome.NODE_FAIL, "node failure"),
    "BOOT_FAIL": (Outcome.NODE_FAIL, "node boot failure"),
    "DEADLINE": (Outcome.TIMEOUT, "deadline reached"),
    "TIMEOUT": (Outcome.TIMEOUT, "time limit reached"),
    "PREEMPTED": (Outcome.PREEMPTED, "preempted"),
}


def state_of(job_state: str) -> AttemptState:
    """The attempt state for a Slurm job state string; unknown ones count as pending."""
    state = job_state.upper()
    if state in _PENDING:
        return AttemptState.PENDING
    if state in _RUNNING:
        return AttemptState.RUNNING
    if state == "COMPLETED":
        return AttemptState.COMPLETED
    if state in _FAILED_REASONS:
        return AttemptState.FAILED
    if state in {"CANCELLED", "REVOKED"}:
        return AttemptState.CANCELLED
    return AttemptState.PENDING  # a state this module does not know: conclude nothing from it


def decode_wait_status(status: int) -> int:
    """A shell-style exit code from a raw wait status: `exit 3` (768) -> 3, signal 9 -> 137."""
    signal = status & 0x7F
    if signal:
        return 128 + signal
    return (status >> 8) & 0xFF


def _reason(job_state: str, state: AttemptState, slurm_reason: str) -> str:
    detail = "" if slurm_reason in {"", "None"} else slurm_reason
    if state is AttemptState.FAILED:
        head = _FAILED_REASONS[job_state][1]
        return f"{head} ({detail})" if detail and job_state == "FAILED" else head
    if state is AttemptState.CANCELLED:
        return "cancelled"
    if state is AttemptState.PENDING:
        if job_state in {"PENDING", ""}:
            return detail
        return job_state.lower() + (f" ({detail})" if detail else "")
    if job_state == "COMPLETING":
        return "completing"
    return ""


class SqueueRecord(NamedTuple):
    """One job as `squeue_argv` prints it: the raw text of each field."""

    job_id: str
    state: str
    exit_code: str
    nodelist: str
    start_time: str
    end_time: str
    reason: str
    comment: str


def squeue_records(text: str, marker: str) -> list[SqueueRecord]:
    """The records of `squeue_argv(marker)` output, in output order (ids may repeat).

    Each record is `id|state|status|nodes|start|end|reason<marker>comment<marker>\n`: split on
    `<marker>\n` first, so a comment holding newlines, `|` or whole fake records stays inside
    its own record. Raises SlurmOutputError when the output is not framed that way.
    """
    if not text:
        return []
    terminator = marker + "\n"
    if not text.endswith(terminator):
        raise SlurmOutputError(f"squeue output does not end with its record marker: {text[-80:]!r}")
    records = []
    for chunk in text[: -len(terminator)].split(terminator):
        head, found, comment = chunk.partition(marker)
        fields = head.split("|", 6)  # the reason, last, keeps any `|` of its own
        if not found or marker in comment or len(fields) != 7:
            raise SlurmOutputError(f"unreadable squeue record: {chunk[:200]!r}")
        job_id, state, status, nodelist, start, end, reason = fields
        if comment == "(null)":  # how squeue prints a job without a comment
            comment = ""
        records.append(SqueueRecord(job_id, state, status, nodelist, start, end, reason, comment))
    return records


_DIGITS = re.compile(r"[0-9]+")
_STATUS = re.compile(r"-?[0-9]+")
_NO_TIME = frozenset({"", "N/A", "Unknown", "None", "NONE"})


def _squeue_time(text: str) -> datetime | None:
    """A `SLURM_TIME_FORMAT=standard` time printed with `TZ=UTC`, or None when there is none."""
    if text in _NO_TIME:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise SlurmOutputError(f"unreadable squeue time {text!r}") from exc


def job_from_squeue(record: SqueueRecord) -> RemoteJob:
    """One `squeue_records` record as a RemoteJob."""
    if not _DIGITS.fullmatch(record.job_id):
        raise SlurmOutputError(f"not a job id: {record.job_id!r}")
    job_state = record.state.upper()
    state = state_of(job_state)
    nodelist = record.nodelist
    ran = bool(nodelist)  # a job cancelled or failed while pending has no nodes
    started_at = ended_at = None
    exit_code = exit_signal = None
    if state is AttemptState.RUNNING:
        started_at = _squeue_time(record.start_time)
    elif state in {AttemptState.COMPLETED, AttemptState.FAILED, AttemptState.CANCELLED}:
        started_at = _squeue_time(record.start_time) if ran else None
        ended_at = _squeue_time(record.end_time)
        if not _STATUS.fullmatch(record.exit_code):
            raise SlurmOutputError(f"unreadable exit code {record.exit_code!r}")
        status = int(record.exit_code)
        if ran and status >= 0:  # NO_VAL would print negative (%d of a uint32)
            exit_code = decode_wait_status(status)
            exit_signal = (status & 0x7F) or None
    failed = _FAILED_REASONS.get(job_state) if state is AttemptState.FAILED else None
    return RemoteJob(
        remote_id=record.job_id,
        state=state,
        outcome=failed[0] if failed else None,  # else the state's own (COMPLETED, CANCELLED)
        tag=RemoteTag.parse(record.comment) if record.comment else None,
        exit_code=exit_code,
        exit_signal=exit_signal,
        reason=_reason(job_state, state, record.reason),
        nodelist=nodelist,
        started_at=started_at,
        ended_at=ended_at,
    )


# -- sbatch ---------------------------------------------------------------------------------------

_PARSABLE = re.compile(r"([0-9]+)(?:;\S+)?")


def parse_sbatch_parsable(stdout: str) -> str:
    """The job id from `sbatch --parsable` output: `123` or `123;cluster`."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    match = _PARSABLE.fullmatch(lines[-1]) if lines else None
    if match is None:
        raise SlurmOutputError(f"unexpected sbatch --parsable output: {stdout.strip()!r}")
    return match.group(1)


def rejection_reason(stderr: str) -> str:
    """The line of sbatch's stderr that says why: the first one, without the `sbatch: error: `
    prefix, or the "Batch job submission failed" line when there is one."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "Batch job submission failed:" in line:
            return line.split("Batch job submission failed:", 1)[1].strip()
    if not lines:
        return "no message"
    return re.sub(r"^\w+: error: ", "", lines[0])


# -- dd (read_output) ------------------------------------------------------------------------

# GNU dd 9.1 (Debian 12) with LC_ALL=C, exit status 1, found by running it (each message starts
# with dd's argv[0], `/bin/dd` here): a missing file (or directory on the way) is
# `/bin/dd: failed to open '<path>': No such file or directory`; an offset past the largest file
# the filesystem allows (ext4: 16 TiB) is `/bin/dd: <path>: cannot skip: Invalid argument`.
# dd escapes control characters in the path, so its message is one line and the error text
# comes last: a path cannot forge the end of a message about another error. Not "nothing to
# read": `Permission denied`, `Not a directory` (a file on the way), and
# `/bin/dd: error reading '<path>': Is a directory`.
_DD_NOTHING_TO_READ = re.compile(
    r"(?:/\S*)?dd: "
    r"(?:failed to open .*: No such file or directory|.*: cannot skip: Invalid argument)"
)


def dd_nothing_to_read(stderr: str) -> bool:
    """Whether a failed dd (LC_ALL=C) only says there are no bytes to read: the file does not
    exist (yet), or the offset lies beyond any file the filesystem can hold."""
    lines = stderr.rstrip("\n").rsplit("\n", 1)
    return bool(_DD_NOTHING_TO_READ.fullmatch(lines[-1]))
