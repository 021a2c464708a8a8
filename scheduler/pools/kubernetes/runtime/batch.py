"""The batch step, on pod 0: waits for every agent, runs the batch script, then ends the job.

Environment contract, for the batch step (the rest: config.py):
  SFED_CHDIR              batch script working directory (missing dir: warning, /tmp);
                          unset: the container's working directory
  SFED_STDOUT/SFED_STDERR files that also receive the script's stdout/stderr (append mode);
                          SFED_STDOUT alone receives both
  SLURM_*                 passed through to the batch script and, via srun, to the tasks
The batch script additionally gets SLURM_NODEID/PROCID/LOCALID=0, SLURM_TASK_PID, PATH with
$SFED_DIR/bin first, and SFED_STEP_COUNTER (a private file srun numbers its steps with).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import IO, TYPE_CHECKING

from .output import error, warn, write_all
from .procs import TASK_WRAPPER, exit_status, killpg, pump_pipe
from .wire import AgentError, ProtocolError, request

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .agent import Agent
    from .config import PodConfig
    from .procs import Signals


EXIT_NOTICE_TIMEOUT_S = 3.0
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _wait_for_agents(cfg: PodConfig, signals: Signals) -> str | None:
    """None once every agent answered a ping, else why not."""
    deadline = time.monotonic() + cfg.startup_timeout
    for index, name in enumerate(cfg.nodes):
        delay = 0.05
        while True:
            remaining = deadline - time.monotonic()
            try:
                request(name, cfg.port, cfg.token, "ping", max(0.2, min(5.0, remaining)))
                break
            except AgentError as exc:
                return f"the agent of node {name} (index {index}) refused pod 0: {exc}"
            except (OSError, ProtocolError) as exc:
                # Normal while the peer starts: its name may not resolve yet, or nothing listens.
                last = str(exc) or type(exc).__name__
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return (
                    f"the agent of node {name} (index {index}) did not answer on port "
                    f"{cfg.port} within {cfg.startup_timeout:g} s "
                    f"(SFED_STARTUP_TIMEOUT_S); last error: {last}"
                )
            if signals.event.wait(min(delay, remaining)):
                return None
            delay = min(delay * 2, 2.0)
    return None


def _open_outputs() -> tuple[list[int], list[int]]:
    """File descriptors that also get the script's stdout and stderr (Slurm's -o/-e)."""
    opened: dict[str, int] = {}

    def open_once(var: str) -> list[int]:
        path = os.environ.get(var, "")
        if not path:
            return []
        if path not in opened:
            try:
                opened[path] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError as exc:
                warn(f"cannot open {path} ({var}): {exc.strerror}; writing to the pod log only")
                return []
        return [opened[path]]

    out = open_once("SFED_STDOUT")
    err = open_once("SFED_STDERR") if os.environ.get("SFED_STDERR") else out
    return out, err


def _tee(pipe: IO[bytes], fds: Sequence[int]) -> None:
    live = list(fds)

    def sink(data: bytes) -> None:
        live[:] = [fd for fd in live if write_all(fd, data)]

    pump_pipe(pipe, sink)


def _batch_env(cfg: PodConfig, counter: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SLURM_NODEID="0",
        SLURM_PROCID="0",
        SLURM_LOCALID="0",
        SFED_STEP_COUNTER=counter,
        PATH=os.path.join(cfg.sfed_dir, "bin") + ":" + env.get("PATH", DEFAULT_PATH),
    )
    return env


def run_batch(cfg: PodConfig, agent: Agent, signals: Signals) -> int:
    problem = _wait_for_agents(cfg, signals)
    if signals.received is not None:
        _tell_workers_to_exit(cfg)
        return 128 + signals.received
    if problem is not None:
        error("sfed", problem)
        _tell_workers_to_exit(cfg)
        return 1
    workdir = tempfile.mkdtemp(prefix="sfed-job-")
    try:
        return _run_script(cfg, workdir, signals)
    finally:
        agent.kill_all(grace=5.0)
        _tell_workers_to_exit(cfg)
        shutil.rmtree(workdir, ignore_errors=True)


def _run_script(cfg: PodConfig, workdir: str, signals: Signals) -> int:
    source = os.path.join(cfg.sfed_dir, "script")
    script = os.path.join(workdir, "slurm_script")  # the name slurmd gives it, for $0
    try:
        with open(source, "rb") as f:
            body = f.read()
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.chmod(script, 0o700)  # regardless of the umask
    except OSError as exc:
        error("sfed", f"cannot copy the batch script {source} (SFED_DIR): {exc.strerror}")
        return 1
    counter = os.path.join(workdir, "steps")
    with open(counter, "w") as f:
        f.write("0")
    cwd = os.environ.get("SFED_CHDIR", "") or os.getcwd()
    if not os.path.isdir(cwd):
        warn(f"couldn't chdir to `{cwd}' (SFED_CHDIR): going to /tmp instead")
        cwd = "/tmp"
    target = [script] if body.startswith(b"#!") else ["/bin/sh", script]
    out_fds, err_fds = _open_outputs()
    if signals.received is not None:
        return 128 + signals.received
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", TASK_WRAPPER, "sfed-batch", *target],
            cwd=cwd,
            env=_batch_env(cfg, counter),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        error("sfed", f"cannot start the batch script: {exc}")
        return 1
    signals.forward_to = proc.pid
    if signals.received is not None:  # arrived between the checks and forward_to
        killpg(proc.pid, signals.received)
    assert proc.stdout is not None and proc.stderr is not None
    tees = [
        threading.Thread(target=_tee, args=(proc.stdout, [1, *out_fds]), daemon=True),
        threading.Thread(target=_tee, args=(proc.stderr, [2, *err_fds]), daemon=True),
    ]
    for tee in tees:
        tee.start()
    status, _ = exit_status(proc.wait())
    signals.forward_to = None
    # Like the end of a Slurm job: processes the script left behind die with it.
    killpg(proc.pid, signal.SIGKILL)
    for tee in tees:
        tee.join(5.0)
    for fd in set(out_fds + err_fds):
        os.close(fd)
    return status


def _tell_workers_to_exit(cfg: PodConfig) -> None:
    """Best effort and in parallel: a worker that does not answer is left to Kubernetes."""

    def notify(name: str) -> None:
        with contextlib.suppress(OSError, ProtocolError, AgentError):
            request(name, cfg.port, cfg.token, "exit", EXIT_NOTICE_TIMEOUT_S)

    threads = [threading.Thread(target=notify, args=(name,), daemon=True) for name in cfg.nodes[1:]]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + EXIT_NOTICE_TIMEOUT_S + 1.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
