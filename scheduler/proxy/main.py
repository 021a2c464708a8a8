"""sfed-proxy: runs as the front-door job and stands in for the federated job.

It hands the job to sfedd (idempotently: front-door cluster + job id + restart count), writes
the remote job's output to its own stdout (the user's -o file on the front door), shows the
remote state in the front-door job's comment, turns SIGTERM (scancel, time limit) into a
remote cancel, and exits with the remote job's exit code. It retries while sfedd is
unreachable, so a restart of sfedd loses and duplicates nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import grpc

from scheduler.cli.client import DEFAULT_ADDRESS, Client, ClientConfigError, ClientError, TLSFiles
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.proxy.wrapper import Wrapper, WrapperError, parse_wrapper

__all__ = ["REMOTE_TIME_MARGIN_MIN", "build_spec", "client_key", "main", "separate_streams"]

T = TypeVar("T")
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
REMOTE_TIME_MARGIN_MIN = 1
WAITING_COMMENT = "sfed: waiting for sfedd"  # plugins/job_submit.lua's, on a job without one
# Signals the door job gets (scancel -s, --signal) that go on to the remote job; TERM and INT
# (scancel, the time limit) end it instead.
FORWARDED_SIGNALS = (
    signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM,
    signal.SIGURG, signal.SIGWINCH, signal.SIGXCPU,
)  # fmt: skip
FORWARD_BATCH_ONLY = True  # what reaches the proxy at the door was sent to its batch shell
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# Slurm variables of the front-door job that the remote job needs to behave the same.
FORWARDED_ENV = ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
                 "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP")  # fmt: skip


def die_by(signum: int) -> None:
    """End this process by `signum`, as the remote batch script ended, so that Slurm records
    the door job's exit as 0:<signal>. Returns only if the signal did not end it."""
    sys.stdout.flush()
    sys.stderr.flush()
    with contextlib.suppress(OSError, ValueError):  # SIGKILL keeps its action anyway
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(1)


def say(message: str) -> None:
    """One line on the job's stderr (the user's -e or -o file)."""
    print(f"sfed-proxy: {message}", file=sys.stderr, flush=True)


def build_spec(wrapper: Wrapper, environ: dict[str, str], cwd: str) -> pb.JobSpec:
    """The federated job's spec: the original request, the unchanged script."""
    spec = pb.JobSpec(
        script=wrapper.script, job_name=wrapper.text("job_name") or "sbatch", chdir=cwd
    )
    submit_dir = environ.get("SLURM_SUBMIT_DIR", "")
    if submit_dir.startswith("/"):  # where the user ran sbatch: SLURM_SUBMIT_DIR everywhere
        spec.submit_dir = submit_dir
    spec.nodes = wrapper.number("nodes") or 1
    ntasks = wrapper.number("ntasks")
    per_node = wrapper.number("ntasks_per_node")
    if ntasks is None and per_node is not None:
        ntasks = per_node * spec.nodes
    if ntasks is not None:
        spec.ntasks = ntasks
    gpus = wrapper.number("gpus_per_node")
    job_gpus = wrapper.number("gpus")
    if gpus is None and job_gpus:
        # sbatch -G N: GPUs for the whole job, spread over its nodes (rounded up per node).
        gpus = -(-job_gpus // spec.nodes)
    spec.gres = f"gpu:{gpus}" if gpus else ""
    spec.gpu_type = wrapper.text("gpu_type") or ""  # --gres=gpu:TYPE:N, --gpus=TYPE:N
    spec.constraint = wrapper.text("constraint") or ""  # -C, which the shim took off the proxy
    spec.cpus_per_task = wrapper.number("cpus_per_task") or 1
    mem = wrapper.number("mem_per_node_mb")
    mem_per_cpu = wrapper.number("mem_per_cpu_mb")
    if mem is None and mem_per_cpu is not None:
        # --mem-per-cpu: memory per node = per CPU x the CPUs one node runs.
        tasks_per_node = -(-(spec.ntasks if spec.HasField("ntasks") else spec.nodes) // spec.nodes)
        mem = mem_per_cpu * tasks_per_node * spec.cpus_per_task
    if mem:  # 0 (sbatch --mem=0, "all of the node") asks for no particular amount
        spec.mem_per_node_mb = mem
    limit = wrapper.number("time_limit_min")
    if limit is not None:
        # The front door's own limit decides (its job ends TIMEOUT and the proxy cancels the
        # remote job): the remote limit is a little later, because each slurmctld checks
        # limits on its own ~30 s clock and the pool's must not fire first.
        spec.time_limit_min = limit + REMOTE_TIME_MARGIN_MIN
    spec.requeue = wrapper.fields.get("requeue") == "1"
    # The job's environment is the proxy's: sbatch exported it as the user asked (--export,
    # ALL by default). The front door's own Slurm variables describe the proxy job, not the
    # user's: the pool's Slurm sets its own. The array task's variables are the job's.
    spec.environment.update(
        {k: v for k, v in environ.items() if not k.startswith("SLURM_") or k in FORWARDED_ENV}
    )
    spec.environment["SFED_FRONT_DOOR_JOB_ID"] = environ.get("SLURM_JOB_ID", "")
    return spec


def separate_streams(scontrol_show_job: str) -> bool:
    """True when the front-door job writes stderr to a file of its own (sbatch -e)."""
    paths = dict(
        item.split("=", 1)
        for line in scontrol_show_job.splitlines()
        for item in [line.strip()]
        if item.startswith(("StdOut=", "StdErr="))
    )
    return bool(paths.get("StdErr")) and paths.get("StdErr") != paths.get("StdOut")


def client_key(environ: dict[str, str]) -> str:
    """Front-door cluster + job id + restart count: one federation job per run of the proxy
    job, however often this proxy retries or is restarted."""
    cluster = environ.get("SLURM_CLUSTER_NAME", "door")
    return f"{cluster}/{environ['SLURM_JOB_ID']}/{environ.get('SLURM_RESTART_COUNT', '0')}"


class Proxy:
    def __init__(self, client: Client, environ: dict[str, str], retry_for: float) -> None:
        self.client, self.environ, self.retry_for = client, environ, retry_for
        self.cancel = threading.Event()
        self.done = threading.Event()
        self.job_id = 0
        self.user_comment = ""
        self.signals: list[str] = []  # signals the door job got, to send on
        self.started = time.monotonic()
        self.limit_min: int | None = None  # the user's time limit, counted from the run's start
        self.clock_set = False
        self.wake = threading.Event()  # a cancel or a signal: act before the next poll

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        """Call until sfedd answers (it may be restarting), for at most retry_for seconds."""
        deadline, delay, warned = time.monotonic() + self.retry_for, 0.5, False
        while True:
            try:
                return call()
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE or time.monotonic() > deadline:
                    raise
                if not warned:
                    say(f"sfedd unreachable ({what}); retrying")
                    warned = True
            except ClientError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def set_comment(self, text: str) -> None:
        """Show the remote state in the front-door job (squeue -o %k, scontrol show job),
        after the user's own comment when the job has one."""
        job = self.environ.get("SLURM_JOB_ID")
        if job:
            shown = f"{self.user_comment} | {text}" if self.user_comment else text
            subprocess.run(["scontrol", "update", f"jobid={job}", f"comment={shown}"],
                           capture_output=True, timeout=30, check=False)  # fmt: skip

    def start_the_clock(self) -> None:
        """The remote job runs: the door job's time limit becomes the time waited so far plus
        the user's limit, so that the limit counts the job's run, as in Slurm, and not its wait
        in queues. (The job_submit shim gives the door job no limit until then; an owner may
        lower a limit, so this works as the user.) The remote job's own limit is a little
        longer: the door's decides, and the proxy then cancels the remote job."""
        self.clock_set = True
        job = self.environ.get("SLURM_JOB_ID")
        if not job or self.limit_min is None:
            return
        # Whole minutes waited, rounded down: the door's limit then ends at most the user's
        # limit after the remote start, before the remote job's own (a minute longer).
        waited = int(time.monotonic() - self.started) // 60
        subprocess.run(["scontrol", "update", f"jobid={job}", f"TimeLimit={waited + self.limit_min}"],
                       capture_output=True, timeout=30, check=False)  # fmt: skip

    def read_user_comment(self) -> str:
        """The comment the user gave (sbatch --comment), "" when none: the shim marks a job
        without one with its waiting comment, which the proxy's status replaces."""
        job = self.environ.get("SLURM_JOB_ID")
        if not job:
            return ""
        shown = subprocess.run(["squeue", "-h", "-j", job, "-o", "%k"], capture_output=True,
                               text=True, timeout=30, check=False).stdout.strip()  # fmt: skip
        return "" if shown in ("", "(null)", WAITING_COMMENT) else shown

    def own_job_splits_streams(self) -> bool:
        """Whether this front-door job has its own -e file (then stderr is streamed apart)."""
        job = self.environ.get("SLURM_JOB_ID")
        if not job:
            return False
        shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True,
                               timeout=30, check=False)  # fmt: skip
        return separate_streams(shown.stdout)

    def stream_output(self, stderr: bool = False) -> None:
        """Copy the remote output (or error) file to stdout (or stderr), resuming at the last
        byte after a reconnect."""
        out, offset = (sys.stderr if stderr else sys.stdout).buffer, 0
        while not self.done.is_set():
            request = pb.StreamOutputRequest(
                job_id=self.job_id, offset=offset, follow=True, stderr=stderr
            )
            try:
                for chunk in self.client.federation.StreamOutput(request):
                    if chunk.offset != offset:  # a new attempt starts its file anew
                        offset = chunk.offset
                    out.write(chunk.data)
                    out.flush()
                    offset += len(chunk.data)
                return
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE:
                    say(f"output not available: {exc.details()}")
                    return
            except ClientError:
                pass
            time.sleep(1.0)

    def follow_state(self) -> pb.JobInfo:
        """Wait for the job to end, updating the comment and honouring a cancel."""
        last, cancel_sent = "", False
        while True:
            if self.cancel.is_set() and not cancel_sent:
                self.retrying("cancel", lambda: self.client.federation.CancelJob(
                    pb.CancelJobRequest(job_id=self.job_id)))  # fmt: skip
                cancel_sent = True
            self.forward_signals()
            job: pb.JobInfo = self.retrying(
                "state", lambda: self.client.federation.GetJob(pb.GetJobRequest(job_id=self.job_id))
            )
            if job.state == "RUNNING" and not self.clock_set:
                self.start_the_clock()
            where = f" on {job.pool} (job {job.remote_id})" if job.remote_id else ""
            state = f"sfed {job.id}: {job.state}{where}"
            if state != last:
                self.set_comment(state)
                last = state
            if job.state in TERMINAL:
                return job
            if cancel_sent:
                time.sleep(0.5)  # the cancel event stays set: wait() would not wait
            else:
                self.wake.wait(1.0)
                self.wake.clear()

    def on_signal(self, signum: int, frame: Any) -> None:
        """A signal for the job (scancel -s at the door): queued for the remote job."""
        self.signals.append(signal.Signals(signum).name.removeprefix("SIG"))
        self.wake.set()

    def forward_signals(self) -> None:
        """Send the queued signals to the remote job; one it cannot get is said in stderr
        (the door job keeps running either way)."""
        while self.signals:
            name = self.signals.pop(0)
            request = pb.SignalJobRequest(
                job_id=self.job_id, signal=name, batch_only=FORWARD_BATCH_ONLY
            )
            try:
                self.retrying("signal", partial(self.client.federation.SignalJob, request))
            except grpc.RpcError as exc:
                say(f"SIG{name} not delivered: {exc.details()}")

    def run(self, wrapper: Wrapper) -> int:
        self.user_comment = self.read_user_comment()
        spec = build_spec(wrapper, self.environ, os.getcwd())
        self.limit_min = wrapper.number("time_limit_min")
        spec.separate_error = self.own_job_splits_streams()
        request = pb.SubmitJobRequest(spec=spec, client_key=client_key(self.environ))
        try:
            reply = self.retrying("submit", lambda: self.client.federation.SubmitJob(request))
        except grpc.RpcError as exc:
            say(f"the federation refused the job: {exc.details()}")
            self.set_comment(f"sfed: refused: {exc.details()}"[:200])
            return 1
        self.job_id = reply.job_id  # shown in the job's comment, not in the user's output
        streams = [False, True] if spec.separate_error else [False]
        streamers = [threading.Thread(target=self.stream_output, args=(err,), daemon=True)
                     for err in streams]  # fmt: skip
        for streamer in streamers:
            streamer.start()
        job = self.follow_state()
        for streamer in streamers:
            streamer.join(timeout=30)  # the rest of the output, read after the end
        self.done.set()
        if job.state == "COMPLETED":
            return 0
        if job.state == "CANCELLED":
            say(f"federation job {job.id} cancelled")
            return 143
        code = job.exit_code if job.HasField("exit_code") else 0
        say(f"federation job {job.id} {job.state}" + (f": {job.reason}" if job.reason else ""))
        if job.HasField("exit_signal"):
            die_by(job.exit_signal)  # the door shows 0:<signal>, as for a local job
        return code if code else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sfed-proxy", description=__doc__)
    parser.add_argument("--wrapper", required=True, help="the proxy job's own script ($0)")
    parser.add_argument("--address", default=os.environ.get("SFED_ADDRESS", DEFAULT_ADDRESS))
    parser.add_argument(
        "--ca-file",
        default=os.environ.get("SFED_CA_FILE"),
        help="CA of sfedd's certificate, for TLS to a TCP address ($SFED_CA_FILE)",
    )
    parser.add_argument("--cert-file", help="client certificate (mTLS), with --key-file")
    parser.add_argument("--key-file", help="its private key")
    parser.add_argument(
        "--retry-for",
        type=float,
        default=3600.0,
        help="seconds to keep retrying while sfedd is unreachable",
    )
    args = parser.parse_args(argv)
    if (args.cert_file is None) != (args.key_file is None) or (args.cert_file and not args.ca_file):
        say("--cert-file and --key-file go together, and need --ca-file")
        return 2
    try:
        wrapper = parse_wrapper(Path(args.wrapper).read_bytes())
    except (OSError, WrapperError) as exc:
        say(f"cannot read the job: {exc}")
        return 1
    environ = dict(os.environ)
    if "SLURM_JOB_ID" not in environ:
        say("not running as a Slurm job (no SLURM_JOB_ID)")
        return 1
    tls = TLSFiles(args.ca_file, args.cert_file, args.key_file) if args.ca_file else None
    try:
        client = Client(args.address, timeout=30.0, tls=tls)
    except ClientConfigError as exc:
        say(str(exc))
        return 2
    with client:
        proxy = Proxy(client, environ, args.retry_for)

        def on_term(signum: int, frame: Any) -> None:
            proxy.cancel.set()
            proxy.wake.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        for forwarded in FORWARDED_SIGNALS:
            signal.signal(forwarded, proxy.on_signal)
        return proxy.run(wrapper)


if __name__ == "__main__":
    sys.exit(main())
