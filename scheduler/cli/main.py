"""sfed: the federation's command line for users and admins.

Every listing has --json. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from scheduler.cli import format as fmt
from scheduler.cli.client import (
    ADDRESS_HELP,
    DEFAULT_ADDRESS,
    Client,
    ClientConfigError,
    ClientError,
    Target,
    resolve_address,
)
from scheduler.cli.submit_args import (
    UsageError,
    add_sbatch_options,
    build_spec,
    unknown_option_message,
)
from scheduler.cli.timespec import parse_when
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb

__all__ = ["DEFAULT_ADDRESS", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _say(message: object) -> None:
    """One line on stderr, whatever the message holds (it may echo what the user typed)."""
    text = re.sub(r"[\x00-\x1f\x7f]", "?", str(message))
    print(f"sfed: {text}", file=sys.stderr)


def _json(message: Any) -> str:
    return json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=2)


MAX_JOB_ID = 2**63 - 1  # the API's int64
MAX_LIMIT = 2**32 - 1  # the API's uint32


def _job_id(text: str) -> int:
    if not re.fullmatch(r"\d{1,19}", text) or not 0 < int(text) <= MAX_JOB_ID:
        raise UsageError(f"not a job id (1 to {MAX_JOB_ID}): {text[:40]!r}")
    return int(text)


def resolve_job(client: Client, text: str) -> int:
    """A federation job id, or a front-door job as <cluster>:<id> (the id sbatch printed)."""
    if ":" in text or "/" in text:
        return int(client.federation.GetJob(pb.GetJobRequest(front_door=text)).id)
    return _job_id(text)


def cmd_pools(client: Client, args: argparse.Namespace) -> int:
    response = client.admin.ListPools(pb.ListPoolsRequest())
    print(_json(response) if args.json else fmt.pools_table(response.pools))
    return 0


def cmd_submit(client: Client, args: argparse.Namespace) -> int:
    path = Path(args.script)
    try:
        script = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read script {args.script}: {exc.strerror}") from None
    spec = build_spec(args, script, path.name)
    response = client.federation.SubmitJob(pb.SubmitJobRequest(spec=spec))
    job_id = response.job_id
    print(job_id if args.parsable else f"Submitted federation job {job_id}")
    if not args.wait:
        return 0
    return _wait(client, job_id, quiet=args.parsable)


def _wait(client: Client, job_id: int, *, quiet: bool) -> int:
    """Follow the job to its end (sbatch --wait) and return its exit code."""
    for event in client.federation.WatchJob(pb.WatchJobRequest(job_id=job_id)):
        if not quiet:
            print(fmt.event_line(event), file=sys.stderr)
    job = client.federation.GetJob(pb.GetJobRequest(job_id=job_id))
    if job.state == "COMPLETED":
        return 0
    return job.exit_code if job.HasField("exit_code") and job.exit_code else 1


def cmd_queue(client: Client, args: argparse.Namespace) -> int:
    request = pb.ListJobsRequest(
        states=["PENDING", "PLACED", "RUNNING"], user=args.user or "", pool=args.pool or ""
    )
    jobs = list(client.list_jobs(request))
    print(_json(pb.ListJobsResponse(jobs=jobs)) if args.json else fmt.queue_table(jobs))
    return 0


def cmd_show(client: Client, args: argparse.Namespace) -> int:
    job = client.federation.GetJob(pb.GetJobRequest(job_id=resolve_job(client, args.job)))
    print(_json(job) if args.json else fmt.job_details(job))
    return 0


def cmd_explain(client: Client, args: argparse.Namespace) -> int:
    explanation = client.federation.ExplainJob(
        pb.ExplainJobRequest(job_id=resolve_job(client, args.job))
    )
    print(_json(explanation) if args.json else fmt.explanation(explanation))
    return 0


def cmd_cancel(client: Client, args: argparse.Namespace) -> int:
    if args.signal is not None:  # scancel -s: signal the jobs, do not end them
        for text in args.jobs:
            request = pb.SignalJobRequest(
                job_id=resolve_job(client, text), signal=args.signal, batch_only=args.batch
            )
            job = client.federation.SignalJob(request)
            if not args.quiet:
                print(f"job {job.id}: SIG{args.signal.upper().removeprefix('SIG')} sent")
        return 0
    if args.batch:
        raise UsageError("--batch goes with --signal")
    for text in args.jobs:
        job = client.federation.CancelJob(pb.CancelJobRequest(job_id=resolve_job(client, text)))
        if not args.quiet:
            print(f"job {job.id}: {'cancel requested' if job.cancel_requested else job.state}")
    return 0


def cmd_history(client: Client, args: argparse.Namespace) -> int:
    if args.limit is not None and not 1 <= args.limit <= MAX_LIMIT:
        raise UsageError(
            f"--limit: expected a whole number from 1 to {MAX_LIMIT}, got {args.limit}"
        )
    request = pb.ListJobsRequest(
        user=args.user or "", pool=args.pool or "", limit=args.limit or 0, newest_first=False
    )
    if args.state:
        request.states.extend(s.strip().upper() for s in args.state.split(",") if s.strip())
    for name in ("since", "until"):
        value = getattr(args, name)
        if value:
            getattr(request, name).FromDatetime(parse_when(value, option=f"--{name}"))
    jobs = list(client.list_jobs(request))
    if args.json:
        print(_json(pb.ListJobsResponse(jobs=jobs)))
    else:
        print(fmt.history_table(jobs, args.format, parsable=args.parsable))
    return 0


def cmd_watch(client: Client, args: argparse.Namespace) -> int:
    for event in client.federation.WatchJob(
        pb.WatchJobRequest(job_id=resolve_job(client, args.job))
    ):
        print(_json(event).replace("\n", "") if args.json else fmt.event_line(event), flush=True)
    return 0


def cmd_drain(client: Client, args: argparse.Namespace) -> int:
    pool = client.admin.DrainPool(pb.DrainPoolRequest(name=args.pool, reason=args.reason or ""))
    print(_json(pool) if args.json else f"pool {pool.name}: {pool.state} ({pool.reason})")
    return 0


def cmd_resume(client: Client, args: argparse.Namespace) -> int:
    pool = client.admin.ResumePool(pb.ResumePoolRequest(name=args.pool))
    print(_json(pool) if args.json else f"pool {pool.name}: {pool.state}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sfed",
        description="Use and administer the sfed federation.",
        epilog=ADDRESS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--address",
        help="sfedd address: unix:/path or host:port (without it: $SFED_ADDRESS, the client"
        f" configs below, then {DEFAULT_ADDRESS})",
    )
    parser.add_argument("--ca-file", help="CA of sfedd's certificate: TLS to a TCP address")
    parser.add_argument("--cert-file", help="client certificate for TLS (with --key-file)")
    parser.add_argument("--key-file", help="its private key")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for sfedd")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(
        name: str,
        fn: Callable[[Client, argparse.Namespace], int],
        help_text: str,
        *,
        listing: bool = False,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(fn=fn)
        if listing:
            p.add_argument("--json", action="store_true", help="print JSON")
        return p

    command("pools", cmd_pools, "capacity and state of every pool", listing=True)
    p = command("submit", cmd_submit, "submit a batch script (sbatch options and #SBATCH lines)")
    add_sbatch_options(p)
    p.add_argument("--parsable", action="store_true", help="print only the job id")
    p.add_argument(
        "-W", "--wait", action="store_true", help="wait for the job to end; exit with its code"
    )
    p.add_argument("script")
    p = command("queue", cmd_queue, "jobs waiting or running", listing=True)
    p.add_argument("-u", "--user")
    p.add_argument("--pool")
    command("show", cmd_show, "one job in detail", listing=True).add_argument("job")
    command(
        "explain", cmd_explain, "why a job waits or went where it went", listing=True
    ).add_argument("job")
    p = command("cancel", cmd_cancel, "cancel jobs, or signal them (-s, like scancel)")
    p.add_argument("jobs", nargs="+", metavar="JOB")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-s", "--signal", help="send this signal (USR1, SIGUSR1, 10) instead")
    p.add_argument("-b", "--batch", action="store_true", help="to the batch shell only")
    p = command("history", cmd_history, "finished and current jobs, like sacct", listing=True)
    p.add_argument("-u", "--user")
    p.add_argument("-s", "--state", help="comma-separated states, e.g. COMPLETED,FAILED")
    p.add_argument("--pool")
    p.add_argument("-S", "--since", help="e.g. 2026-01-31, 2026-01-31T08:00, now-2hours")
    p.add_argument("-E", "--until")
    p.add_argument("--limit", type=int)
    p.add_argument(
        "-o",
        "--format",
        default=fmt.DEFAULT_HISTORY_FORMAT,
        help=f"fields, sacct style (available: {', '.join(fmt.HISTORY_FIELDS)})",
    )
    p.add_argument("-p", "--parsable", action="store_true", help="fields separated by |")
    p = command("watch", cmd_watch, "follow a job's events until it ends", listing=True)
    p.add_argument("job")
    p = command("drain", cmd_drain, "stop placing new jobs on a pool", listing=True)
    p.add_argument("pool")
    p.add_argument("--reason")
    command("resume", cmd_resume, "place jobs on a drained pool again", listing=True).add_argument(
        "pool"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    target: Target | None = None
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            if getattr(args, "command", None) == "submit":
                raise UsageError(unknown_option_message(unknown))
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)}")
        target = resolve_address(
            args.address, ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file
        )
        with Client(target.address, timeout=args.timeout, tls=target.tls) as client:
            code: int = args.fn(client, args)
            return code
    except (UsageError, ClientConfigError) as exc:
        _say(exc)
        return 2
    except ClientError as exc:
        _say(exc)
        return 1
    except grpc.RpcError as exc:
        _say(ClientError.from_rpc(exc, target or DEFAULT_ADDRESS))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug of sfed's: still one line, never a traceback
        print(
            f"sfed: unexpected error ({type(exc).__name__}: {exc}); please report it",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
