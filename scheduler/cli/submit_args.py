"""`sfed submit`'s sbatch options: the same spellings as sbatch, #SBATCH lines included."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from scheduler import limits
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.sbatch_options import parse_memory_mb, parse_time_limit_min, sbatch_directives
from scheduler.service import validate

__all__ = ["SUPPORTED_OPTIONS", "UsageError", "add_sbatch_options", "build_spec"]

SUPPORTED_OPTIONS = (
    "-N/--nodes",
    "-n/--ntasks",
    "--gres",
    "--gpus-per-node",
    "-G/--gpus",
    "-C/--constraint",
    "-c/--cpus-per-task",
    "--mem",
    "-t/--time",
    "-p/--partition",
    "-J/--job-name",
    "-D/--chdir",
    "-o/--output",
    "-e/--error",
    "--export",
    "--export-file",
    "--requeue/--no-requeue",
    "--priority",
)


class UsageError(ValueError):
    """A bad option value; the message names the option."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def add_sbatch_options(parser: argparse.ArgumentParser) -> None:
    """The sbatch options a federated job may use (others are refused by name)."""
    parser.add_argument("-N", "--nodes", help="number of nodes (a range like 2-4 is not supported)")
    parser.add_argument("-n", "--ntasks", help="total number of tasks")
    parser.add_argument("--gres", help="generic resources per node, e.g. gpu:4 or gpu:a100:4")
    parser.add_argument(
        "--gpus-per-node", dest="gpus_per_node", help="GPUs per node, [TYPE:]N, e.g. h100:8"
    )
    parser.add_argument(
        "-G", "--gpus", help="GPUs for the whole job, [TYPE:]N, spread evenly over its nodes"
    )
    parser.add_argument(
        "-C", "--constraint", help="node features: a100, a100&ib (all) or a100|h100 (any)"
    )
    parser.add_argument("-c", "--cpus-per-task", dest="cpus_per_task")
    parser.add_argument("--mem", help="memory per node, e.g. 16G")
    parser.add_argument("-t", "--time", help="time limit, e.g. 1:00:00 or 2-00:00:00")
    parser.add_argument("-p", "--partition")
    parser.add_argument("-J", "--job-name", dest="job_name")
    parser.add_argument("-D", "--chdir", help="working directory (default: the current one)")
    parser.add_argument("-o", "--output")
    parser.add_argument("-e", "--error")
    parser.add_argument(
        "--export",
        help="ALL (the default: your whole environment), NONE, VAR[=value],... or ALL,VAR=value"
        " (each pool leaves out what must not cross to it, and says so)",
    )
    parser.add_argument(
        "--export-file",
        dest="export_file",
        help="more variables: a file of NAME=value entries, NUL- or newline-separated",
    )
    parser.add_argument("--requeue", action="store_true", default=None)
    parser.add_argument("--no-requeue", dest="requeue", action="store_false")
    parser.add_argument("--priority", help="higher runs first among waiting jobs")


# The option that sets each JobSpec field, to name it in a refusal.
_OPTION_OF = {
    "script": "the script",
    "job_name": "-J/--job-name",
    "nodes": "-N/--nodes",
    "ntasks": "-n/--ntasks",
    "gres": "--gres/--gpus-per-node/--gpus",
    "constraint": "-C/--constraint",
    "cpus_per_task": "-c/--cpus-per-task",
    "mem_per_node_mb": "--mem",
    "time_limit_min": "-t/--time",
    "partition": "-p/--partition",
    "chdir": "-D/--chdir",
    "output": "-o/--output",
    "error": "-e/--error",
    "environment": "--export",
    "priority": "--priority",
    "separate_error": "-e/--error",
}


def _int(name: str, value: str | None, *, minimum: int = 1, maximum: int) -> int | None:
    if value is None:
        return None
    text = value.strip()
    # A bounded count of digits first: int() of a huge string is slow, and a huge number
    # must not reach the protobuf field (a traceback), only this message.
    if not re.fullmatch(r"\d{1,19}", text) or not minimum <= int(text) <= maximum:
        raise UsageError(
            f"{name}: expected a whole number from {minimum} to {maximum}, got {value[:40]!r}"
        )
    return int(text)


def _directive_options(script: bytes) -> argparse.Namespace:
    parser = _Parser(prog="#SBATCH", add_help=False)
    add_sbatch_options(parser)
    try:
        namespace, unknown = parser.parse_known_args(sbatch_directives(script))
    except ValueError as exc:  # UsageError, or an unclosed quote
        raise UsageError(f"#SBATCH line in the script: {exc}") from None
    if unknown:
        raise UsageError(
            f"#SBATCH line in the script: unsupported option {unknown[0]!r} "
            f"(supported: {', '.join(SUPPORTED_OPTIONS)})"
        )
    return namespace


def _export(value: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """sbatch --export: ALL (the default) carries the client's whole environment, NONE none
    of it; VAR and VAR=value carry only those (values given win); ALL,VAR=value everything
    with those set. Each pool leaves out what must not cross to it, and says so."""
    items = [item for item in (value or "ALL").split(",") if item]
    words = {item.upper() for item in items}
    env: dict[str, str] = dict(environ) if "ALL" in words or not items else {}
    if "NONE" in words:
        if len(items) > 1:
            raise UsageError("--export: NONE goes alone")
        return {}
    for item in items:
        if item.upper() == "ALL":
            continue
        name, eq, val = item.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UsageError(f"--export: not a variable name: {name[:40]!r}")
        if eq:
            env[name] = val
        elif name in environ:
            env[name] = environ[name]
    return env


def _export_file(path: str | None) -> dict[str, str]:
    """sbatch --export-file: NAME=value entries separated by NUL (or by newlines)."""
    if path is None:
        return {}
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"--export-file: cannot read {path}: {exc.strerror}") from None
    separator = b"\0" if b"\0" in data else b"\n"
    env: dict[str, str] = {}
    for entry in filter(None, data.split(separator)):
        name, eq, val = entry.decode("utf-8", "surrogateescape").partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UsageError(f"--export-file: not NAME=value: {entry[:40]!r}")
        env[name] = val
    return env


def _typed(name: str, value: str, maximum: int) -> tuple[str, int]:
    """`[TYPE:]N` (--gpus-per-node, --gpus): the type ("" for none) and the count."""
    kind, _, count = value.rpartition(":")
    number = _int(name, count, minimum=0, maximum=maximum)
    assert number is not None
    return kind, number


def _gres(
    gres: str | None,
    per_node: str | None,
    per_job: str | None,
    nodes: int,
    option: Callable[[str, str], str],
) -> str:
    """The JobSpec's gres from --gres, --gpus-per-node=[TYPE:]N or -G/--gpus=[TYPE:]N (GPUs
    for the whole job, spread over its nodes, rounded up as the front door does)."""
    given = [
        spelling
        for spelling, value in (
            ("--gres", gres),
            ("--gpus-per-node", per_node),
            ("--gpus", per_job),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise UsageError(f"give either {given[0]} or {given[1]}, not both")
    if gres is not None:
        return gres
    if per_node is not None:
        kind, gpus = _typed(
            option("gpus_per_node", "--gpus-per-node"), per_node, limits.MAX_GPUS_PER_NODE
        )
    elif per_job is not None:
        kind, total = _typed(
            option("gpus", "-G/--gpus"), per_job, limits.MAX_GPUS_PER_NODE * limits.MAX_NODES
        )
        gpus = -(-total // nodes)
    else:
        return ""
    if not gpus:
        return f"gpu:{kind}:0" if kind else ""  # a type with no GPUs: validation says why
    return f"gpu:{kind}:{gpus}" if kind else f"gpu:{gpus}"


def build_spec(
    options: argparse.Namespace,
    script: bytes,
    script_name: str,
    *,
    cwd: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> pb.JobSpec:
    """Merge #SBATCH lines with command-line options (the command line wins), as sbatch does."""
    from_script = _directive_options(script)

    def pick(name: str) -> object:
        value = getattr(options, name, None)
        return value if value is not None else getattr(from_script, name, None)

    def text(name: str) -> str | None:
        value = pick(name)
        return str(value) if value is not None else None

    def option(name: str, spelling: str) -> str:
        """How to name the option in a refusal: where its value came from."""
        if getattr(options, name, None) is None and getattr(from_script, name, None) is not None:
            return f"#SBATCH line in the script: {spelling}"
        return spelling

    spec = pb.JobSpec(script=script)
    spec.job_name = text("job_name") or os.path.basename(script_name) or "sbatch"
    spec.nodes = _int(option("nodes", "--nodes"), text("nodes"), maximum=limits.MAX_NODES) or 1
    ntasks = _int(option("ntasks", "--ntasks"), text("ntasks"), maximum=limits.MAX_TASKS)
    if ntasks is not None:
        spec.ntasks = ntasks
    spec.gres = _gres(text("gres"), text("gpus_per_node"), text("gpus"), spec.nodes, option)
    spec.constraint = text("constraint") or ""
    cpus = _int(
        option("cpus_per_task", "--cpus-per-task"),
        text("cpus_per_task"),
        maximum=limits.MAX_CPUS_PER_TASK,
    )
    spec.cpus_per_task = cpus or 1
    try:
        mem = text("mem")
        if mem is not None:
            spec.mem_per_node_mb = min(parse_memory_mb(mem), 2**64 - 1)
        limit = text("time")
        if limit is not None:
            spec.time_limit_min = min(parse_time_limit_min(limit), 2**32 - 1)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    spec.partition = text("partition") or ""
    submit_dir = cwd or os.getcwd()
    spec.submit_dir = submit_dir  # where sfed submit ran: the job's SLURM_SUBMIT_DIR
    spec.chdir = os.path.abspath(text("chdir") or submit_dir)
    spec.output = text("output") or ""
    spec.error = text("error") or ""
    env = _export(text("export"), environ if environ is not None else os.environ)
    spec.environment.update({**env, **_export_file(text("export_file"))})
    spec.requeue = bool(pick("requeue"))
    priority = text("priority")
    if priority is not None:
        if not re.fullmatch(r"-?\d{1,10}", priority.strip()):
            raise UsageError(f"--priority: expected a whole number, got {priority[:40]!r}")
        spec.priority = max(-(2**31), min(int(priority), 2**31 - 1))
    try:  # the API's own rules, so a refusal names the option before anything is sent
        validate.job_request(spec)
    except validate.InvalidArgument as exc:
        field = exc.field.split(".")[1].split("[")[0]
        raise UsageError(f"{_OPTION_OF.get(field, field)}: {str(exc).split(': ', 1)[1]}") from None
    return spec


def unknown_option_message(unknown: Sequence[str]) -> str:
    return f"unsupported sbatch option {unknown[0]!r} (supported: {', '.join(SUPPORTED_OPTIONS)})"
