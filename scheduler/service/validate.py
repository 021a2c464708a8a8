"""Proto requests -> domain values, with every bad field named. Pure."""

from __future__ import annotations

import contextlib
import re
import signal as signal_module
from collections.abc import Mapping, Sequence

from scheduler import limits
from scheduler.domain import SIGNALS, JobRequest, JobState
from scheduler.limits import MAX_SCRIPT_BYTES
from scheduler.placement.features import GPU_TYPE, parse_constraint
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.sbatch_options import parse_gres

__all__ = [
    "MAX_SCRIPT_BYTES",
    "InvalidArgument",
    "client_key",
    "constraint",
    "environment",
    "front_door_id",
    "gres",
    "job_request",
    "job_states",
    "page_size",
    "pool_name",
    "signal_name",
]

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000

# A name a process environment can carry and that starts like a shell name (so no tool reads
# it as an option): no `=`, NUL or control characters. `%` and friends stay allowed for the
# exported bash functions (BASH_FUNC_module%%) of module systems; a pool that cannot hold
# one leaves it out and says so.
_ENV_NAME = re.compile(r"^[A-Za-z_][^=\x00-\x1f\x7f]*$")
_PARTITION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_POOL = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidArgument(ValueError):
    """A request field is unusable; str() is "<field>: <problem>"."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def _text(
    field: str, value: str, *, limit: int = limits.MAX_PATH, absolute: bool = False
) -> str | None:
    if not value:
        return None
    if _CONTROL.search(value):
        raise InvalidArgument(field, "must not contain control characters")
    if len(value) > limit:
        raise InvalidArgument(field, f"longer than {limit} characters")
    if absolute and not value.startswith("/"):
        raise InvalidArgument(field, f"must be an absolute path (got {value!r})")
    return value


def client_key(value: str, field: str = "client_key") -> str | None:
    """An optional idempotency key: printable, at most 200 characters."""
    if not value:
        return None
    if len(value) > limits.MAX_CLIENT_KEY or _CONTROL.search(value):
        raise InvalidArgument(
            field, f"must be at most {limits.MAX_CLIENT_KEY} printable characters"
        )
    return value


_FRONT_DOOR = re.compile(r"^([A-Za-z0-9_.-]{1,64})[/:](\d{1,12})$")


def front_door_id(value: str, field: str = "front_door") -> str:
    """ "<cluster>/<job id>" (or "<cluster>:<job id>") -> the client-key prefix "<cluster>/<id>/"."""
    match = _FRONT_DOOR.match(value)
    if not match:
        raise InvalidArgument(field, f"expected <cluster>/<job id>, got {value!r}")
    return f"{match.group(1)}/{match.group(2)}/"


def job_states(values: Sequence[str], field: str = "states") -> list[JobState] | None:
    """Job state names, any case; None (any state) for none."""
    try:
        return [JobState(value.upper()) for value in values] or None
    except ValueError:
        shown = [value[:32] for value in values[:8]]
        raise InvalidArgument(
            field, f"unknown state in {shown}; use {', '.join(JobState)}"
        ) from None


def page_size(value: int, field: str = "page_size") -> int:
    """A listing's page size: 0 = the default."""
    if value > MAX_PAGE_SIZE:
        raise InvalidArgument(field, f"at most {MAX_PAGE_SIZE} jobs per page (got {value})")
    return value or DEFAULT_PAGE_SIZE


def signal_name(value: str, field: str = "signal") -> str:
    """A signal as Slurm names it: USR1, SIGUSR1 or its number (10) -> "USR1"."""
    text = value.strip().upper().removeprefix("SIG")
    if text.isdigit() and len(text) < 4:
        with contextlib.suppress(ValueError):
            text = signal_module.Signals(int(text)).name.removeprefix("SIG")
    if text not in SIGNALS:
        raise InvalidArgument(
            field, f"not a signal sfed sends: {value[:20]!r} (one of {', '.join(sorted(SIGNALS))})"
        )
    return text


def pool_name(value: str, field: str = "name") -> str:
    if not _POOL.match(value):
        raise InvalidArgument(field, f"not a valid pool name: {value!r}")
    return value


def _bounded(field: str, value: int, low: int, high: int, unit: str = "") -> int:
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be from {low} to {high}{unit} (got {value})")
    return value


def _optional(spec: pb.JobSpec, name: str) -> int | None:
    return getattr(spec, name) if spec.HasField(name) else None


def environment(values: Mapping[str, str], field: str = "spec.environment") -> dict[str, str]:
    """The job's variables: names as the shell's, each NAME=value short enough to reach a
    process (Linux's MAX_ARG_STRLEN), and the whole within a bound."""
    if len(values) > limits.MAX_ENV_VARS:
        raise InvalidArgument(field, f"more than {limits.MAX_ENV_VARS} variables ({len(values)})")
    env: dict[str, str] = {}
    total = 0
    for key, value in values.items():
        if len(key) > limits.MAX_ENV_NAME or not _ENV_NAME.match(key):
            shown = key[:40] + ("..." if len(key) > 40 else "")
            raise InvalidArgument(
                field, f"not a variable name (at most {limits.MAX_ENV_NAME}): {shown!r}"
            )
        if "\0" in value:
            raise InvalidArgument(f"{field}[{key}]", "contains a NUL byte")
        size = len(key.encode()) + 1 + len(value.encode())
        if size > limits.MAX_ENV_ENTRY_BYTES:
            raise InvalidArgument(
                f"{field}[{key}]",
                f"{key}=value is {size} bytes; at most {limits.MAX_ENV_ENTRY_BYTES} can reach a "
                "process",
            )
        total += size + 1
        env[key] = value
    if total > limits.MAX_ENV_BYTES:
        raise InvalidArgument(field, f"{total} bytes in all; at most {limits.MAX_ENV_BYTES}")
    return env


def gres(text: str, gpu_type: str = "", field: str = "spec.gres") -> tuple[int, str | None]:
    """sbatch --gres per node, typed or not (`gpu:4`, `gpu:a100:4`, `gpu:a100` for one), and
    the JobSpec's own `gpu_type` when given apart: (GPUs per node, GPU type or None)."""
    types: set[str] = set()
    untyped: list[str] = []
    gpus = 0
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rest = item.partition(":")
        kind, colon, count = rest.partition(":")
        if name == "gpu" and (colon or (kind and not kind.isdigit())):
            # gpu:TYPE:N, or gpu:TYPE (one GPU of that type), as Slurm reads them
            if colon and (not count.isdigit() or int(count) < 1):
                raise InvalidArgument(
                    field, f"invalid gres count in {item[:80]!r}: must be a whole number >= 1"
                )
            types.add(kind)
            gpus += int(count) if colon else 1
        else:
            untyped.append(item)
    if types and untyped:
        raise InvalidArgument(
            field, f"typed and untyped GPUs in one request ({text[:80]!r}): one GPU type per job"
        )
    try:
        gpus += parse_gres(",".join(untyped))
    except ValueError as exc:
        raise InvalidArgument(field, str(exc)) from None
    if gpu_type:
        types.add(gpu_type)
    if not types:
        return gpus, None
    if len(types) > 1:
        shown = ", ".join(sorted(t[:40] for t in types))
        raise InvalidArgument(field, f"one GPU type per job (got {shown})")
    (kind,) = types
    if len(kind) > limits.MAX_GPU_TYPE or not GPU_TYPE.fullmatch(kind):
        raise InvalidArgument(
            field,
            f"not a GPU type: {kind[:80]!r} (at most {limits.MAX_GPU_TYPE} letters, digits, _ . -)",
        )
    if gpus < 1:
        raise InvalidArgument(field, f"GPU type {kind} without GPUs: ask gpu:{kind}:N")
    return gpus, kind


def constraint(text: str, field: str = "spec.constraint") -> str | None:
    """-C/--constraint: one feature, a&b (all) or a|b (any); "" for none."""
    if not text:
        return None
    if len(text) > limits.MAX_CONSTRAINT:
        raise InvalidArgument(field, f"longer than {limits.MAX_CONSTRAINT} characters")
    try:
        parse_constraint(text)
    except ValueError as exc:
        raise InvalidArgument(field, str(exc)) from None
    return text


def job_request(spec: pb.JobSpec, field: str = "spec") -> JobRequest:
    """Validate a JobSpec the way sbatch would, naming the first bad field and its bound."""
    script = bytes(spec.script)
    if not script:
        raise InvalidArgument(f"{field}.script", "required")
    if len(script) > MAX_SCRIPT_BYTES:
        raise InvalidArgument(f"{field}.script", f"larger than {MAX_SCRIPT_BYTES} bytes")
    if not script.startswith(b"#!"):
        raise InvalidArgument(f"{field}.script", "the first line must start with #! (as sbatch)")
    if b"\0" in script:
        raise InvalidArgument(f"{field}.script", "contains a NUL byte")
    nodes = _bounded(f"{field}.nodes", spec.nodes or 1, 1, limits.MAX_NODES)
    ntasks = _optional(spec, "ntasks")
    if ntasks is not None:
        _bounded(f"{field}.ntasks", ntasks, 1, limits.MAX_TASKS)
        if ntasks < nodes:
            raise InvalidArgument(f"{field}.ntasks", f"{ntasks} tasks cannot fill {nodes} nodes")
    gpus, gpu_type = gres(spec.gres, spec.gpu_type, f"{field}.gres")
    _bounded(f"{field}.gres", gpus, 0, limits.MAX_GPUS_PER_NODE, " GPUs per node")
    cpus = _bounded(f"{field}.cpus_per_task", spec.cpus_per_task or 1, 1, limits.MAX_CPUS_PER_TASK)
    mem = _optional(spec, "mem_per_node_mb")
    if mem is not None:
        _bounded(f"{field}.mem_per_node_mb", mem, 1, limits.MAX_MEM_PER_NODE_MB, " MB")
    time_limit = _optional(spec, "time_limit_min")
    if time_limit is not None:
        _bounded(f"{field}.time_limit_min", time_limit, 1, limits.MAX_TIME_LIMIT_MIN, " minutes")
    if spec.partition and not _PARTITION.match(spec.partition):
        raise InvalidArgument(
            f"{field}.partition", f"not a valid partition name: {spec.partition[:80]!r}"
        )
    if spec.separate_error and spec.error:
        raise InvalidArgument(
            f"{field}.separate_error", "give either an error path or separate_error"
        )
    priority = _bounded(
        f"{field}.priority", spec.priority, -limits.MAX_PRIORITY, limits.MAX_PRIORITY
    )
    return JobRequest(
        script=script,
        job_name=_text(f"{field}.job_name", spec.job_name, limit=limits.MAX_JOB_NAME) or "sbatch",
        nodes=nodes,
        ntasks=ntasks,
        gpus_per_node=gpus,
        cpus_per_task=cpus,
        mem_per_node_mb=mem,
        time_limit_min=time_limit,
        partition=spec.partition or None,
        chdir=_text(f"{field}.chdir", spec.chdir, absolute=True),
        output=_text(f"{field}.output", spec.output),
        error=_text(f"{field}.error", spec.error),
        environment=environment(spec.environment, f"{field}.environment"),
        requeue=spec.requeue,
        priority=priority,
        separate_error=spec.separate_error,
        submit_dir=_text(f"{field}.submit_dir", spec.submit_dir, absolute=True),
        gpu_type=gpu_type,
        constraint=constraint(spec.constraint, f"{field}.constraint"),
    )
