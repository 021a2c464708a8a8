"""Human tables and lines for the CLI (JSON output goes through protobuf's JSON mapping)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb

__all__ = [
    "DEFAULT_HISTORY_FORMAT",
    "HISTORY_FIELDS",
    "event_line",
    "explanation",
    "history_table",
    "job_details",
    "pools_table",
    "queue_table",
]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, sep: str | None = None) -> str:
    if sep is not None:
        return "\n".join(sep.join(row) for row in [headers, *rows])
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        " ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def _when(ts: Timestamp, *, present: bool) -> str:
    if not present:
        return "Unknown"
    return ts.ToDatetime(tzinfo=UTC).astimezone().strftime("%Y-%m-%dT%H:%M:%S")


def _elapsed(job: pb.JobInfo) -> str:
    if not job.HasField("started_at"):
        return "00:00:00"
    start = job.started_at.ToDatetime(tzinfo=UTC)
    end = job.ended_at.ToDatetime(tzinfo=UTC) if job.HasField("ended_at") else datetime.now(UTC)
    seconds = max(0, int((end - start).total_seconds()))
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def _exit(job: pb.JobInfo) -> str:
    """As Slurm shows it: <exit code>:<signal>, 0:9 for a script killed by SIGKILL."""
    if job.HasField("exit_signal"):
        return f"0:{job.exit_signal}"
    return f"{job.exit_code}:0" if job.HasField("exit_code") else ""


def _gpus(job: pb.JobInfo) -> str:
    return job.spec.gres.partition(":")[2] or ("1" if job.spec.gres else "0")


def pools_table(pools: Sequence[pb.PoolInfo]) -> str:
    rows = [
        [
            p.name,
            p.kind,
            p.transport,
            p.state,
            p.partition,
            f"{p.nodes_idle}/{p.nodes_total}",
            f"{p.gpus_free}/{p.gpus_total}",
            str(p.max_gpus_per_node),
            ",".join(p.gpu_types) or "-",
            ",".join(p.features) or "-",
            f"{p.price_per_gpu_hour:.2f}",
            str(p.weight),
            str(p.jobs_active),
            p.reason,
        ]
        for p in pools
    ]
    headers = [
        "POOL",
        "KIND",
        "VIA",
        "STATE",
        "PARTITION",
        "NODES(idle/total)",
        "GPUS(free/total)",
        "GPUS/NODE",
        "GPU-TYPES",
        "FEATURES",
        "$/GPU-H",
        "WEIGHT",
        "JOBS",
        "REASON",
    ]
    return table(headers, rows)


def queue_table(jobs: Sequence[pb.JobInfo]) -> str:
    rows = [
        [
            str(j.id),
            j.spec.job_name[:20],
            j.user,
            j.state,
            j.pool or "-",
            j.remote_id or "-",
            str(j.spec.nodes),
            _gpus(j),
            _elapsed(j),
            j.reason.split("; ")[0][:60],
        ]
        for j in jobs
    ]
    return table(
        [
            "JOBID",
            "NAME",
            "USER",
            "STATE",
            "POOL",
            "REMOTEID",
            "NODES",
            "GPUS/NODE",
            "TIME",
            "REASON",
        ],
        rows,
    )


HISTORY_FIELDS: dict[str, Callable[[pb.JobInfo], str]] = {
    "jobid": lambda j: str(j.id),
    "jobname": lambda j: j.spec.job_name,
    "user": lambda j: j.user,
    "state": lambda j: j.state,
    "exitcode": _exit,
    "pool": lambda j: j.pool,
    "remoteid": lambda j: j.remote_id,
    "partition": lambda j: j.spec.partition,
    "nnodes": lambda j: str(j.spec.nodes),
    "gpus": _gpus,
    "attempts": lambda j: str(j.attempt),
    "submit": lambda j: _when(j.submitted_at, present=j.HasField("submitted_at")),
    "start": lambda j: _when(j.started_at, present=j.HasField("started_at")),
    "end": lambda j: _when(j.ended_at, present=j.HasField("ended_at")),
    "elapsed": _elapsed,
    "reason": lambda j: j.reason,
}
DEFAULT_HISTORY_FORMAT = (
    "JobID,JobName,User,State,ExitCode,Pool,RemoteID,NNodes,GPUs,Submit,Elapsed"
)


def history_table(jobs: Sequence[pb.JobInfo], spec: str, *, parsable: bool = False) -> str:
    """sacct-style output: --format=JobID,State%12,... (a %N width pads or cuts the column)."""
    from scheduler.cli.submit_args import UsageError

    columns: list[tuple[str, Callable[[pb.JobInfo], str], int | None]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, width_text = item.partition("%")
        getter = HISTORY_FIELDS.get(name.lower())
        if getter is None:
            raise UsageError(
                f"--format: unknown field {name!r} (available: {', '.join(HISTORY_FIELDS)})"
            )
        if width_text and not width_text.isdigit():
            raise UsageError(f"--format: bad width in {item!r}")
        columns.append((name, getter, int(width_text) if width_text else None))
    if not columns:
        raise UsageError("--format: no fields given")
    headers = [name for name, _, _ in columns]
    rows = [[getter(job) for _, getter, _ in columns] for job in jobs]
    for index, (_, _, width) in enumerate(columns):
        if width is not None:
            headers[index] = headers[index][:width].ljust(width)
            for row in rows:
                row[index] = row[index][:width].ljust(width)
    return table(headers, rows, sep="|" if parsable else None)


def job_details(job: pb.JobInfo) -> str:
    spec = job.spec
    lines = [
        f"JobId={job.id} JobName={spec.job_name} User={job.user}",
        f"   State={job.state} ExitCode={_exit(job) or '-'} Attempt={job.attempt}"
        f" Pool={job.pool or '-'} RemoteId={job.remote_id or '-'}",
        f"   Reason={job.reason or '-'}",
        f"   NumNodes={spec.nodes} NumTasks={spec.ntasks if spec.HasField('ntasks') else spec.nodes}"
        f" CpusPerTask={spec.cpus_per_task} Gres={spec.gres or '-'}"
        f" MemPerNode={str(spec.mem_per_node_mb) + 'M' if spec.HasField('mem_per_node_mb') else '-'}"
        f" TimeLimit={spec.time_limit_min if spec.HasField('time_limit_min') else '-'}",
        f"   Partition={spec.partition or '-'} Requeue={int(spec.requeue)} Priority={spec.priority}",
        f"   SubmitTime={_when(job.submitted_at, present=job.HasField('submitted_at'))}"
        f" StartTime={_when(job.started_at, present=job.HasField('started_at'))}"
        f" EndTime={_when(job.ended_at, present=job.HasField('ended_at'))}",
        f"   WorkDir={spec.chdir or '-'} StdOut={spec.output or '-'} StdErr={spec.error or '-'}",
        f"   Script={job.script_bytes} bytes sha256={job.script_sha256}",
    ]
    for a in job.attempts:
        code = f" exit {a.exit_code}" if a.HasField("exit_code") else ""
        where = f" nodes {a.nodelist}" if a.nodelist else ""
        reason = f" ({a.reason})" if a.reason else ""
        lines.append(
            f"   Attempt {a.number}: {a.pool} job {a.remote_id or '?'} {a.state}{code}{where}{reason}"
        )
    lines += [f"   Note: {note}" for note in job.notes]
    return "\n".join(lines)


def event_line(event: pb.JobEvent) -> str:
    when = event.at.ToDatetime(tzinfo=UTC).astimezone().strftime("%H:%M:%S")
    where = f" [{event.pool}#{event.attempt}]" if event.pool else ""
    return f"{when} job {event.job_id}{where} {event.kind}: {event.message}"


def explanation(exp: pb.Explanation) -> str:
    lines = [f"job {exp.job_id} {exp.state}: {exp.summary}"]
    lines += [f"  {verdict.reason}" for verdict in exp.verdicts]
    placements = [
        e
        for e in exp.history
        if e.kind in ("placed", "state", "submitted_remote", "aborted", "environment")
    ]
    if placements:
        lines.append("history:")
        lines += [f"  {event_line(e)}" for e in placements]
    return "\n".join(lines)
