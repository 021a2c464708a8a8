"""The agent every pod runs: starts the tasks of authenticated srun clients and relays their
output and exit status (the protocol: wire.py).

A task is the request's command, run through TASK_WRAPPER in a process group of its own, in the
request's working directory (in /tmp, with a message on the task's stderr, where this pod lacks
it) and with stdin from /dev/null. A command that cannot be found reports status 2, as slurmstepd
does.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import Any

from .config import ConfigError
from .output import warn
from .procs import TASK_WRAPPER, exit_status, killpg, pump_pipe
from .wire import (
    MAX_REQUEST,
    ProtocolError,
    decode_json,
    recv_frame,
    send_frame,
    send_json,
    shutdown,
)

KILL_GRACE_S = 10.0
REQUEST_TIMEOUT_S = 30.0


class _Task:
    """A running task: its own process group, killed as a whole."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.finished = threading.Event()

    def terminate(self, sig: int = signal.SIGTERM, grace: float = KILL_GRACE_S) -> None:
        """Sends `sig` to the group, SIGKILL after `grace` seconds if the task still runs."""
        if self.finished.is_set():
            return
        killpg(self.proc.pid, sig)
        timer = threading.Timer(grace, self._kill_if_running)
        timer.daemon = True
        timer.start()

    def _kill_if_running(self) -> None:
        if not self.finished.is_set():
            killpg(self.proc.pid, signal.SIGKILL)


class Agent:
    """Runs tasks for authenticated srun clients; one thread per connection."""

    def __init__(self, host: str, port: int, token: bytes) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.exit_requested = threading.Event()
        self._tasks: set[_Task] = set()
        self._lock = threading.Lock()
        self._server: socket.socket | None = None

    def bind(self, deadline: float, stop: threading.Event) -> None:
        """Binds to the address `host` resolves to, retrying while the name does not resolve."""
        delay = 0.1
        while True:
            try:
                infos = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)
                break
            except socket.gaierror as exc:
                if time.monotonic() >= deadline or stop.is_set():
                    raise ConfigError(
                        f"this pod's name {self.host!r} (SFED_NODES[JOB_COMPLETION_INDEX]) "
                        f"does not resolve: {exc}"
                    ) from None
                stop.wait(delay)
                delay = min(delay * 2, 2.0)
        family, socktype, proto, _, address = infos[0]
        server = socket.socket(family, socktype, proto)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(address)
            server.listen(128)
        except OSError as exc:
            server.close()
            raise ConfigError(
                f"the agent cannot listen on {address[0]} port {self.port} (SFED_AGENT_PORT): "
                f"{exc.strerror}"
            ) from None
        self._server = server

    def start(self) -> None:
        threading.Thread(target=self._accept_loop, name="sfed-agent", daemon=True).start()

    def _accept_loop(self) -> None:
        assert self._server is not None
        while True:
            try:
                conn, peer = self._server.accept()
            except OSError:
                if self._server.fileno() < 0:
                    return
                time.sleep(0.1)  # e.g. EMFILE: do not spin
                continue
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def _serve(self, conn: socket.socket, peer: Any) -> None:
        with conn:
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.settimeout(REQUEST_TIMEOUT_S)
                frame = recv_frame(conn, MAX_REQUEST)
                if frame is None or frame[0] != b"H":
                    return
                req = decode_json(frame[1])
                token = req.get("token")
                if not isinstance(token, str) or not hmac.compare_digest(
                    os.fsencode(token), self.token
                ):
                    warn(f"agent: refused a request with a wrong token from {peer[0]}")
                    send_json(conn, b"H", {"ok": False, "error": "authentication failed"})
                    return
                conn.settimeout(None)
                op = req.get("op")
                if op == "ping":
                    send_json(conn, b"H", {"ok": True})
                elif op == "exit":
                    send_json(conn, b"H", {"ok": True})
                    self.exit_requested.set()
                elif op == "run":
                    self._run(conn, req)
                else:
                    send_json(conn, b"H", {"ok": False, "error": f"unknown op {op!r}"})
            except (OSError, ProtocolError):
                return

    def _run(self, conn: socket.socket, req: dict[str, Any]) -> None:
        argv, env, cwd = req.get("argv"), req.get("env"), req.get("cwd")
        if (
            not isinstance(argv, list)
            or not argv
            or not all(isinstance(a, str) for a in argv)
            or not isinstance(env, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
            or not isinstance(cwd, str)
        ):
            send_json(conn, b"H", {"ok": False, "error": "malformed run request"})
            return
        send_json(conn, b"H", {"ok": True})
        send_lock = threading.Lock()

        def send(kind: bytes, payload: bytes) -> None:
            # After a send fails the client is gone; the watcher kills the task.
            with send_lock, contextlib.suppress(OSError):
                send_frame(conn, kind, payload)

        if not os.path.isdir(cwd):
            msg = f"sfed: error: couldn't chdir to `{cwd}': going to /tmp instead\n"
            send(b"E", msg.encode(errors="surrogateescape"))
            cwd = "/tmp"
        path = env.get("PATH", os.defpath)
        exe = argv[0] if "/" not in argv[0] else os.path.join(cwd, argv[0])
        try:
            found = shutil.which(exe, path=path)
        except ValueError:  # e.g. an embedded NUL: Popen below refuses it with a message
            found = exe
        if found is None:
            msg = f"sfed: error: execve(): {argv[0]}: No such file or directory\n"
            send(b"E", msg.encode(errors="surrogateescape"))
            send_json(conn, b"X", {"status": 2, "signal": None})  # what slurmstepd reports
            return
        try:
            proc = subprocess.Popen(
                # str with surrogateescape: Popen encodes argv and env back to the exact bytes
                ["/bin/sh", "-c", TASK_WRAPPER, "sfed-task", *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            msg = f"sfed: error: cannot start the task: {exc}\n"
            send(b"E", msg.encode(errors="surrogateescape"))
            send_json(conn, b"X", {"status": 2, "signal": None})
            return
        task = _Task(proc)
        with self._lock:
            self._tasks.add(task)
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=pump_pipe, args=(proc.stdout, lambda b: send(b"O", b))),
            threading.Thread(target=pump_pipe, args=(proc.stderr, lambda b: send(b"E", b))),
        ]
        for pump in pumps:
            pump.daemon = True
            pump.start()
        threading.Thread(target=_watch_client, args=(conn, task), daemon=True).start()
        status, sig = exit_status(proc.wait())
        task.finished.set()
        # Like Slurm ending a step: whatever the task left running in its group dies with it.
        killpg(proc.pid, signal.SIGKILL)
        for pump in pumps:
            pump.join(5.0)
        with self._lock:
            self._tasks.discard(task)
        with send_lock, contextlib.suppress(OSError):
            send_json(conn, b"X", {"status": status, "signal": sig})
        shutdown(conn)  # also wakes the watcher thread blocked in recv()

    def kill_all(self, grace: float) -> None:
        """SIGTERM to every running task, SIGKILL to those still running after `grace` s."""
        with self._lock:
            tasks = list(self._tasks)
        for task in tasks:
            killpg(task.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for task in tasks:
            with contextlib.suppress(subprocess.TimeoutExpired):
                task.proc.wait(max(0.0, deadline - time.monotonic()))
            killpg(task.proc.pid, signal.SIGKILL)


def _watch_client(conn: socket.socket, task: _Task) -> None:
    """Kills the task when srun asks (K frame) or when its connection drops."""
    while True:
        try:
            frame = recv_frame(conn, MAX_REQUEST)
        except (OSError, ProtocolError):
            frame = None
        if frame is None:
            task.terminate()
            return
        if frame[0] == b"K":
            try:
                sig = int(decode_json(frame[1]).get("signal", signal.SIGTERM))
                task.terminate(sig)
            except (ProtocolError, ValueError, TypeError):
                task.terminate()
