"""Proto requests -> domain values, with every bad field named. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence

from scheduler.domain import JobRequest, JobState
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.sbatch_options import parse_gres

__all__ = [
    "MAX_SCRIPT_BYTES",
    "InvalidArgument",
    "client_key",
    "front_door_id",
    "job_request",
    "job_states",
    "page_size",
    "pool_name",
]

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000

MAX_SCRIPT_BYTES = 4 * 1024 * 1024  # Slurm's default max_script_size
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARTITION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_POOL = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidArgument(ValueError):
    """A request field is unusable; str() is "<field>: <problem>"."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def _text(field: str, value: str, *, limit: int = 4096, absolute: bool = False) -> str | None:
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
    if len(value) > 200 or _CONTROL.search(value):
        raise InvalidArgument(field, "must be at most 200 printable characters")
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


def pool_name(value: str, field: str = "name") -> str:
    if not _POOL.match(value):
        raise InvalidArgument(field, f"not a valid pool name: {value!r}")
    return value


def job_request(spec: pb.JobSpec, field: str = "spec") -> JobRequest:
    """Validate a JobSpec the way sbatch would, naming the first bad field."""
    script = bytes(spec.script)
    if not script:
        raise InvalidArgument(f"{field}.script", "required")
    if len(script) > MAX_SCRIPT_BYTES:
        raise InvalidArgument(f"{field}.script", f"larger than {MAX_SCRIPT_BYTES} bytes")
    if not script.startswith(b"#!"):
        raise InvalidArgument(f"{field}.script", "the first line must start with #! (as sbatch)")
    if b"\0" in script:
        raise InvalidArgument(f"{field}.script", "contains a NUL byte")
    nodes = spec.nodes or 1
    if nodes > 100_000:
        raise InvalidArgument(f"{field}.nodes", "more than 100000 nodes")
    ntasks = spec.ntasks if spec.HasField("ntasks") else None
    if ntasks is not None and ntasks < nodes:
        raise InvalidArgument(f"{field}.ntasks", f"{ntasks} tasks cannot fill {nodes} nodes")
    try:
        gpus = parse_gres(spec.gres)
    except ValueError as exc:
        raise InvalidArgument(f"{field}.gres", str(exc)) from None
    mem = spec.mem_per_node_mb if spec.HasField("mem_per_node_mb") else None
    if mem is not None and mem < 1:
        raise InvalidArgument(f"{field}.mem_per_node_mb", "must be at least 1")
    time_limit = spec.time_limit_min if spec.HasField("time_limit_min") else None
    if time_limit is not None and time_limit < 1:
        raise InvalidArgument(f"{field}.time_limit_min", "must be at least 1 minute")
    if spec.partition and not _PARTITION.match(spec.partition):
        raise InvalidArgument(
            f"{field}.partition", f"not a valid partition name: {spec.partition!r}"
        )
    if spec.separate_error and spec.error:
        raise InvalidArgument(
            f"{field}.separate_error", "give either an error path or separate_error"
        )
    env: dict[str, str] = {}
    for key, value in spec.environment.items():
        if not _ENV_NAME.match(key):
            raise InvalidArgument(f"{field}.environment", f"not a variable name: {key!r}")
        if "\0" in value:
            raise InvalidArgument(f"{field}.environment[{key}]", "contains a NUL byte")
        env[key] = value
    return JobRequest(
        script=script,
        job_name=_text(f"{field}.job_name", spec.job_name, limit=200) or "sbatch",
        nodes=nodes,
        ntasks=ntasks,
        gpus_per_node=gpus,
        cpus_per_task=spec.cpus_per_task or 1,
        mem_per_node_mb=mem,
        time_limit_min=time_limit,
        partition=spec.partition or None,
        chdir=_text(f"{field}.chdir", spec.chdir, absolute=True),
        output=_text(f"{field}.output", spec.output),
        error=_text(f"{field}.error", spec.error),
        environment=env,
        requeue=spec.requeue,
        priority=spec.priority,
        separate_error=spec.separate_error,
    )
