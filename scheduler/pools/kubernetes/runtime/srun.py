"""srun inside a batch script: runs one step's tasks through the agents of the job's pods.

Tasks run in srun's working directory with stdin from /dev/null. When a task's process exits,
what it left running in its process group is killed, as when a Slurm step ends. srun exits with
the highest task status (0 if all succeeded); tasks it killed for -K do not count.
Consecutive steps of one batch script get step ids 0, 1, ... (from $SFED_STEP_COUNTER).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import threading
from typing import TYPE_CHECKING, Any

from .config import ConfigError, env_int, nodes_from_env, read_token, sfed_dir_from_env
from .output import error, write_all
from .srun_layout import export_env, plan_tasks, task_env
from .srun_options import UsageError, parse_srun_args
from .wire import (
    AgentError,
    ProtocolError,
    connect,
    decode_json,
    read_reply,
    recv_frame,
    send_json,
    shutdown,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .srun_options import SrunOptions


def _next_step_id(env: dict[str, str]) -> int:
    path = env.get("SFED_STEP_COUNTER", "")
    if not path:
        return 0
    try:
        with open(path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            step = int(f.read().strip() or "0")
            f.seek(0)
            f.write(str(step + 1))
            f.truncate()
            return step
    except (OSError, ValueError):
        return 0


class _Output:
    """srun's stdout/stderr: whole writes under a lock, optional per-line "<procid>: " label."""

    def __init__(self, fd: int, label: str | None) -> None:
        self.fd = fd
        self.label = label.encode() if label is not None else None
        self.partial = b""

    def write(self, data: bytes, lock: threading.Lock) -> None:
        if self.label is None:
            with lock:
                write_all(self.fd, data)
            return
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        if lines:
            text = b"".join(self.label + line + b"\n" for line in lines)
            with lock:
                write_all(self.fd, text)

    def flush(self, lock: threading.Lock) -> None:
        if self.label is not None and self.partial:
            with lock:
                write_all(self.fd, self.label + self.partial + b"\n")
            self.partial = b""


class _StepTask:
    def __init__(self, procid: int, node_index: int, node: str, env: dict[str, str]) -> None:
        self.procid = procid
        self.node_index = node_index
        self.node = node
        self.env = env
        self.sock: socket.socket | None = None
        self.status: int | None = None
        self.signal: int | None = None
        self.killed_by_srun = False
        self.lost: str | None = None


class _Step:
    """One srun: a connection per task, a reader thread per connection."""

    def __init__(self, opts: SrunOptions, tasks: list[_StepTask], port: int, token: bytes):
        self.opts = opts
        self.tasks = tasks
        self.port = port
        self.token = token
        self.locks = {1: threading.Lock(), 2: threading.Lock()}
        self.interrupted: int | None = None
        self.kill_lock = threading.Lock()
        self.killing = False

    def launch(self) -> str | None:
        """Starts every task; None on success, else why not (the started ones are dropped)."""
        cwd = os.fsdecode(os.getcwdb())
        for task in self.tasks:
            if self.interrupted is not None:
                self.drop()
                return "interrupted"
            try:
                sock = connect(task.node, self.port, 30.0)
                task.sock = sock
                send_json(
                    sock,
                    b"H",
                    {
                        "token": os.fsdecode(self.token),
                        "op": "run",
                        "argv": self.opts.command,
                        "cwd": cwd,
                        "env": task.env,
                    },
                )
                read_reply(sock)
                sock.settimeout(None)
            except (OSError, ProtocolError, AgentError) as exc:
                self.drop()
                return (
                    f"cannot start task {task.procid} on node {task.node}: the sfed agent at "
                    f"port {self.port} failed: {exc}"
                )
        return None

    def drop(self) -> None:
        """Closes every connection: the agents kill the tasks."""
        for task in self.tasks:
            if task.sock is not None:
                shutdown(task.sock)

    def read(self, task: _StepTask) -> None:
        width = len(str(len(self.tasks) - 1))
        label = f"{task.procid:>{width}}: " if self.opts.label else None
        outputs = {b"O": _Output(1, label), b"E": _Output(2, label)}
        assert task.sock is not None
        try:
            while True:
                frame = recv_frame(task.sock)
                if frame is None:
                    task.lost = "the agent closed the connection"
                    break
                kind, payload = frame
                if kind in outputs:
                    fd = outputs[kind].fd
                    outputs[kind].write(payload, self.locks[fd])
                elif kind == b"X":
                    result = decode_json(payload)
                    task.status = int(result.get("status", 1))
                    sig = result.get("signal")
                    task.signal = int(sig) if sig is not None else None
                    break
        except (OSError, ProtocolError, ValueError, TypeError) as exc:
            task.lost = str(exc) or type(exc).__name__
        for output in outputs.values():
            output.flush(self.locks[output.fd])
        task.sock.close()
        if task.status and self.interrupted is None and not task.killed_by_srun:
            self._report_failure(task)

    def _report_failure(self, task: _StepTask) -> None:
        if task.signal is not None:
            what = f"Killed by signal {task.signal}"
        else:
            what = f"Exited with exit code {task.status}"
        error("srun", f"{task.node}: task {task.procid}: {what}")
        if self.opts.kill_on_bad_exit:
            self._kill_others(task)

    def _kill_others(self, failed: _StepTask) -> None:
        with self.kill_lock:
            if self.killing:
                return
            self.killing = True
        error("srun", f"task {failed.procid} failed: terminating the step (--kill-on-bad-exit)")
        for task in self.tasks:
            if task is failed or task.status is not None or task.sock is None:
                continue
            task.killed_by_srun = True
            with contextlib.suppress(OSError):
                send_json(task.sock, b"K", {"signal": int(signal.SIGTERM)})

    def exit_status(self) -> int:
        if self.interrupted is not None:
            return 128 + self.interrupted
        lost = [t for t in self.tasks if t.status is None]
        for task in lost:
            error("srun", f"{task.node}: task {task.procid}: lost: {task.lost}")
        own = [t.status or 0 for t in self.tasks if not t.killed_by_srun and t.status is not None]
        rc = max([*own, 0])
        if rc == 0 and any(t.killed_by_srun and t.status for t in self.tasks):
            rc = 1
        return max(rc, 1) if lost else rc


def run_srun(args: Sequence[str]) -> int:
    """srun inside a batch script: runs the command's tasks via the agents; the exit status."""
    try:
        opts = parse_srun_args(args)
        alloc = nodes_from_env()
        port = env_int("SFED_AGENT_PORT", None, 1, 65535)
        token = read_token(sfed_dir_from_env())
    except (UsageError, ConfigError) as exc:
        error("srun", str(exc))
        return 1
    env = {os.fsdecode(k): os.fsdecode(v) for k, v in os.environb.items()}
    try:
        counts = plan_tasks(opts, len(alloc), env)
    except UsageError as exc:
        error("srun", str(exc))
        return 1
    nodes = alloc[: len(counts)]
    step_id = _next_step_id(env)
    tasks = [
        _StepTask(procid, node_index, nodes[node_index], environ)
        for procid, (node_index, environ) in enumerate(
            task_env(export_env(opts.export, env), opts, step_id, nodes, counts)
        )
    ]
    step = _Step(opts, tasks, port, token)

    def on_signal(signum: int, frame: Any) -> None:
        step.interrupted = signum
        step.drop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    problem = step.launch()
    if step.interrupted is not None:
        step.drop()
        return 128 + step.interrupted
    if problem is not None:
        error("srun", problem)
        return 1
    readers = [threading.Thread(target=step.read, args=(t,), daemon=True) for t in tasks]
    for reader in readers:
        reader.start()
    for reader in readers:
        while reader.is_alive():
            reader.join(0.5)  # short joins keep the main thread responsive to signals
    return step.exit_status()
