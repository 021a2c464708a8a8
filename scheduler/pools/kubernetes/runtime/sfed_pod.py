#!/usr/bin/env python3
"""sfed in-pod runtime: makes the pods of a Kubernetes Indexed Job behave like a Slurm allocation.

srun options honoured inside a batch script on a Kubernetes pool:
  -n/--ntasks, -N/--nodes, --ntasks-per-node, -c/--cpus-per-task, -l/--label,
  -K/--kill-on-bad-exit, -u/--unbuffered (output is never buffered anyway), -J/--job-name,
  --export=ALL|NONE|VAR[,VAR=value...], --mpi=none.
  Values as --opt=value, --opt value, -n4 or -n 4; short flags combine (-lK). Options end at the
  first word that is not an option, or at "--".
Rejected (srun exits 1 with one line naming the option): every other srun option, e.g.
  --gpus-per-task, --exclusive, -w/--nodelist, --mem, --pty, --het-group, --multi-prog,
  --mpi=pmix, and unique-prefix abbreviations of long options (write --ntasks, not --ntask).
Tasks are laid out block-wise like Slurm: node k of the step gets ntasks // nnodes tasks, the
first ntasks % nnodes nodes one more; a step uses the first nnodes pods of the job.
Tasks get srun's environment (after --export) plus SLURM_PROCID, SLURM_LOCALID, SLURM_NODEID,
SLURMD_NODENAME, SLURM_STEP_ID/SLURM_STEPID, SLURM_STEP_NUM_TASKS/SLURM_NTASKS/SLURM_NPROCS,
SLURM_STEP_NUM_NODES/SLURM_NNODES, SLURM_STEP_NODELIST/SLURM_NODELIST,
SLURM_STEP_TASKS_PER_NODE/SLURM_TASKS_PER_NODE, SLURM_GTIDS, SLURM_TASK_PID, and the -c/-J values;
they run in srun's working directory with stdin from /dev/null. When a task's process exits,
what it left running in its process group is killed, as when a Slurm step ends. srun exits with
the highest task status (0 if all succeeded); tasks it killed for -K do not count.
scontrol: only "scontrol show hostnames [hostlist]" (default $SLURM_JOB_NODELIST).

Runs as `python3 /sfed/sfed_pod.py` in every pod (stdlib only, Python >= 3.8); the `srun` and
`scontrol` shims in $SFED_DIR/bin import this module and call srun_main() / scontrol_main().

Environment contract (set by the adapter; a missing or invalid required one exits 1 naming it):
  JOB_COMPLETION_INDEX    this pod's node index 0..N-1 (set by Kubernetes)
  SFED_NODES              comma-separated hostnames of the N pods in index order
  SFED_AGENT_PORT         TCP port of every pod's agent
  SFED_DIR                ConfigMap mount (default /sfed): script, token, bin/srun, bin/scontrol
  SFED_TOKEN_FILE         the agents' token, when not $SFED_DIR/token (a Secret's mount)
  SFED_CHDIR              batch script working directory (missing dir: warning, /tmp);
                          unset: the container's working directory
  SFED_STDOUT/SFED_STDERR files that also receive the script's stdout/stderr (append mode);
                          SFED_STDOUT alone receives both
  SFED_STARTUP_TIMEOUT_S  how long pod 0 waits for every agent (default 600)
  SLURM_*                 passed through to the batch script and, via srun, to the tasks
The batch script additionally gets SLURM_NODEID/PROCID/LOCALID=0, SLURM_TASK_PID, PATH with
$SFED_DIR/bin first, and SFED_STEP_COUNTER (a private file srun numbers its steps with).

Roles: every pod runs an agent bound to the address of its own name in SFED_NODES. Pod 0 waits
until every agent answers a ping, runs the batch script, then tells the other agents to exit and
exits with the script's status (128+signal if killed). Pods > 0 exit 0 on pod 0's "exit" request
and 143 on SIGTERM, killing their running tasks either way.

Wire protocol (TCP, one request per connection). Every frame is
    kind (1 ASCII byte) | payload length (4 bytes, big-endian) | payload
Client -> agent:
  H  JSON request, first frame: {"token": str, "op": "ping"|"exit"|"run"}; "run" adds
     {"argv": [str], "cwd": str, "env": {str: str}} (non-UTF-8 bytes as surrogateescape).
  K  JSON {"signal": int}: send that signal to the task's process group (srun -K), SIGKILL 10 s
     later if the task still runs.
  Closing the connection before the status arrives kills the task the same way (SIGTERM, then
  SIGKILL after 10 s).
Agent -> client:
  H  JSON reply {"ok": true} or {"ok": false, "error": str}; a wrong token gets the error reply and
     the connection is closed.
  O  raw bytes the task wrote to stdout;  E  raw bytes it wrote to stderr.
  X  JSON {"status": int, "signal": int|null}: the task ended (status 128+signal if killed);
     the agent closes the connection after it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

MAX_FRAME = 16 << 20
MAX_REQUEST = 4 << 20  # the first, not yet authenticated frame
KILL_GRACE_S = 10.0
REQUEST_TIMEOUT_S = 30.0
EXIT_NOTICE_TIMEOUT_S = 3.0
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_HOSTLIST = 100_000
# Runs the target with SLURM_TASK_PID set to its own pid ($$ survives exec), as slurmd does.
TASK_WRAPPER = 'SLURM_TASK_PID=$$; export SLURM_TASK_PID; exec "$@"'
SUPPORTED_SRUN = (
    "-n/--ntasks, -N/--nodes, --ntasks-per-node, -c/--cpus-per-task, -l/--label, "
    "-K/--kill-on-bad-exit, -u/--unbuffered, -J/--job-name, --export, --mpi=none"
)

_FRAME = struct.Struct("!cI")


class ConfigError(Exception):
    """The pod's environment breaks the contract."""


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


class AgentError(Exception):
    """An agent refused a request."""


# ---------------------------------------------------------------------------------------------
# Hostlists


def _split_top_level(expr: str) -> list[str]:
    items: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(expr):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"nested '[' in hostlist {expr!r}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in hostlist {expr!r}")
        elif ch == "," and depth == 0:
            items.append(expr[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '[' in hostlist {expr!r}")
    items.append(expr[start:])
    return [item.strip() for item in items if item.strip()]


def _expand_ranges(spec: str, expr: str) -> list[str]:
    values: list[str] = []
    for part in spec.split(","):
        lo, sep, hi = part.strip().partition("-")
        hi = hi if sep else lo
        if not (lo.isdigit() and hi.isdigit()) or int(hi) < int(lo):
            raise ValueError(f"bad range {part!r} in hostlist {expr!r}")
        if len(values) + int(hi) - int(lo) >= MAX_HOSTLIST:
            raise ValueError(f"hostlist {expr!r} has more than {MAX_HOSTLIST} names")
        # Slurm keeps the zero padding of the range's first number.
        values.extend(str(n).zfill(len(lo)) for n in range(int(lo), int(hi) + 1))
    return values


def expand_hostlist(expr: str) -> list[str]:
    """Expands a Slurm hostlist ("a-[0-3,5],b-[01-02]") to names, in order, padding kept."""
    names: list[str] = []
    for item in _split_top_level(expr):
        results = [""]
        pos = 0
        while pos < len(item):
            open_at = item.find("[", pos)
            if open_at < 0:
                results = [r + item[pos:] for r in results]
                break
            close_at = item.index("]", open_at)
            literal = item[pos:open_at]
            values = _expand_ranges(item[open_at + 1 : close_at], expr)
            results = [r + literal + v for r in results for v in values]
            pos = close_at + 1
        names.extend(results)
        if len(names) > MAX_HOSTLIST:
            raise ValueError(f"hostlist {expr!r} has more than {MAX_HOSTLIST} names")
    return names


_NUMBERED = re.compile(r"(.*?)(\d+)")


def compress_hostlist(names: Sequence[str]) -> str:
    """Writes names as a Slurm hostlist ("t-[0-1]"); expand_hostlist() gives back the same list.

    Only neighbours with the same prefix share brackets, so the order of the names is kept.
    """
    items: list[str] = []
    prefix: str | None = None
    ranges: list[list[str]] = []  # [first digits, last digits]

    def flush() -> None:
        if prefix is None:
            return
        if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
            items.append(prefix + ranges[0][0])
        else:
            spec = ",".join(lo if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
            items.append(f"{prefix}[{spec}]")

    for name in names:
        if not name or any(ch in name for ch in "[],") or name != name.strip():
            raise ValueError(f"{name!r} cannot be written in a hostlist")
        match = _NUMBERED.fullmatch(name)
        if match is None:
            flush()
            prefix, ranges = None, []
            items.append(name)
            continue
        head, digits = match.group(1), match.group(2)
        if head == prefix:
            last = ranges[-1]
            # Extends the range only if expansion (padded to the first number) yields `digits`.
            if int(digits) == int(last[1]) + 1 and str(int(digits)).zfill(len(last[0])) == digits:
                last[1] = digits
            else:
                ranges.append([digits, digits])
        else:
            flush()
            prefix, ranges = head, [[digits, digits]]
    flush()
    return ",".join(items)


def _tasks_per_node_string(counts: Sequence[int]) -> str:
    """Slurm's SLURM_TASKS_PER_NODE form: [2, 2, 1] -> "2(x2),1"."""
    parts: list[str] = []
    i = 0
    while i < len(counts):
        j = i
        while j < len(counts) and counts[j] == counts[i]:
            j += 1
        parts.append(str(counts[i]) if j - i == 1 else f"{counts[i]}(x{j - i})")
        i = j
    return ",".join(parts)


# ---------------------------------------------------------------------------------------------
# Frames


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(_FRAME.pack(kind, len(payload)) + payload)


def send_json(sock: socket.socket, kind: bytes, obj: dict[str, Any]) -> None:
    send_frame(sock, kind, json.dumps(obj).encode("ascii"))


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            if remaining == size:
                return None
            raise ProtocolError("connection closed inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket, limit: int = MAX_FRAME) -> tuple[bytes, bytes] | None:
    """The next (kind, payload), or None when the peer closed the connection between frames."""
    head = _recv_exact(sock, _FRAME.size)
    if head is None:
        return None
    kind, size = _FRAME.unpack(head)
    if size > limit:
        raise ProtocolError(f"frame of {size} bytes exceeds {limit}")
    payload = _recv_exact(sock, size) if size else b""
    if payload is None:
        raise ProtocolError("connection closed inside a frame")
    return kind, payload


def _decode_json(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(f"bad JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("JSON frame is not an object")
    return obj


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request(host: str, port: int, token: bytes, op: str, timeout: float) -> dict[str, Any]:
    """One ping/exit request; raises OSError/ProtocolError if unreachable, AgentError if refused."""
    with _connect(host, port, timeout) as sock:
        send_json(sock, b"H", {"token": os.fsdecode(token), "op": op})
        return _read_reply(sock)


def _read_reply(sock: socket.socket) -> dict[str, Any]:
    frame = recv_frame(sock)
    if frame is None or frame[0] != b"H":
        raise ProtocolError("the agent closed the connection without a reply")
    reply = _decode_json(frame[1])
    if not reply.get("ok"):
        raise AgentError(str(reply.get("error", "request refused")))
    return reply


# ---------------------------------------------------------------------------------------------
# Small helpers


def _write_all(fd: int, data: bytes) -> bool:
    """Writes everything; False once the fd is unusable (e.g. reader gone), so callers go on."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except InterruptedError:
            continue
        except OSError:
            return False
    return True


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _status(returncode: int) -> tuple[int, int | None]:
    """(exit status, signal) of a Popen return code: signal deaths become 128+signal."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def _env_required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value.strip():
        raise ConfigError(f"{name} is not set")
    return value.strip()


def _env_int(name: str, default: int | None, low: int, high: int | None = None) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        if default is None:
            raise ConfigError(f"{name} is not set")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name}={raw!r} is out of range ({bound})")
    return value


def _sfed_dir() -> str:
    return os.environ.get("SFED_DIR", "").strip() or "/sfed"


def _read_token(sfed_dir: str) -> bytes:
    path = os.environ.get("SFED_TOKEN_FILE", "").strip() or os.path.join(sfed_dir, "token")
    try:
        with open(path, "rb") as f:
            token = f.read().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the token {path} (SFED_TOKEN_FILE, SFED_DIR): {exc.strerror}"
        ) from None
    if not token:
        raise ConfigError(f"the token {path} (SFED_TOKEN_FILE, SFED_DIR) is empty")
    return token


def _nodes_from_env() -> list[str]:
    nodes = [n.strip() for n in _env_required("SFED_NODES").split(",")]
    if not all(nodes):
        raise ConfigError("SFED_NODES has an empty hostname")
    return nodes


class PodConfig:
    """The contract's environment, validated."""

    def __init__(self) -> None:
        self.nodes = _nodes_from_env()
        self.index = _env_int("JOB_COMPLETION_INDEX", None, 0, len(self.nodes) - 1)
        self.port = _env_int("SFED_AGENT_PORT", None, 1, 65535)
        self.sfed_dir = _sfed_dir()
        self.token = _read_token(self.sfed_dir)
        self.startup_timeout = float(_env_int("SFED_STARTUP_TIMEOUT_S", 600, 1))


def _warn(message: str) -> None:
    _write_all(2, f"sfed: warning: {message}\n".encode(errors="surrogateescape"))


def _error(prog: str, message: str) -> None:
    _write_all(2, f"{prog}: error: {message}\n".encode(errors="surrogateescape"))


# ---------------------------------------------------------------------------------------------
# Agent


class _Task:
    """A running task: its own process group, killed as a whole."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.finished = threading.Event()

    def terminate(self, sig: int = signal.SIGTERM, grace: float = KILL_GRACE_S) -> None:
        """Sends `sig` to the group, SIGKILL after `grace` seconds if the task still runs."""
        if self.finished.is_set():
            return
        _killpg(self.proc.pid, sig)
        timer = threading.Timer(grace, self._kill_if_running)
        timer.daemon = True
        timer.start()

    def _kill_if_running(self) -> None:
        if not self.finished.is_set():
            _killpg(self.proc.pid, signal.SIGKILL)


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
                req = _decode_json(frame[1])
                token = req.get("token")
                if not isinstance(token, str) or not hmac.compare_digest(
                    os.fsencode(token), self.token
                ):
                    _warn(f"agent: refused a request with a wrong token from {peer[0]}")
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
            threading.Thread(target=_pump, args=(proc.stdout, lambda b: send(b"O", b))),
            threading.Thread(target=_pump, args=(proc.stderr, lambda b: send(b"E", b))),
        ]
        for pump in pumps:
            pump.daemon = True
            pump.start()
        threading.Thread(target=_watch_client, args=(conn, task), daemon=True).start()
        status, sig = _status(proc.wait())
        task.finished.set()
        # Like Slurm ending a step: whatever the task left running in its group dies with it.
        _killpg(proc.pid, signal.SIGKILL)
        for pump in pumps:
            pump.join(5.0)
        with self._lock:
            self._tasks.discard(task)
        with send_lock, contextlib.suppress(OSError):
            send_json(conn, b"X", {"status": status, "signal": sig})
        _shutdown(conn)  # also wakes the watcher thread blocked in recv()

    def kill_all(self, grace: float) -> None:
        """SIGTERM to every running task, SIGKILL to those still running after `grace` s."""
        with self._lock:
            tasks = list(self._tasks)
        for task in tasks:
            _killpg(task.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for task in tasks:
            with contextlib.suppress(subprocess.TimeoutExpired):
                task.proc.wait(max(0.0, deadline - time.monotonic()))
            _killpg(task.proc.pid, signal.SIGKILL)


def _pump(pipe: IO[bytes], sink: Callable[[bytes], None]) -> None:
    fd = pipe.fileno()
    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                return
            sink(data)
    except OSError:
        return
    finally:
        pipe.close()


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
                sig = int(_decode_json(frame[1]).get("signal", signal.SIGTERM))
                task.terminate(sig)
            except (ProtocolError, ValueError, TypeError):
                task.terminate()


# ---------------------------------------------------------------------------------------------
# Pod main


class _Signals:
    """SIGTERM/SIGINT handling of the pod's main thread: forwarded to a process group if set."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.event = threading.Event()
        self.forward_to: int | None = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        self.event.set()
        if self.forward_to is not None:
            _killpg(self.forward_to, signum)


def main() -> int:
    signals = _Signals()
    try:
        cfg = PodConfig()
        agent = Agent(cfg.nodes[cfg.index], cfg.port, cfg.token)
        agent.bind(time.monotonic() + cfg.startup_timeout, signals.event)
    except ConfigError as exc:
        if signals.received is not None:
            return 128 + signals.received
        _error("sfed", str(exc))
        return 1
    agent.start()
    try:
        if cfg.index == 0:
            return _run_batch(cfg, agent, signals)
        return _run_worker(agent, signals)
    finally:
        agent.close()


def _run_worker(agent: Agent, signals: _Signals) -> int:
    while not agent.exit_requested.is_set() and signals.received is None:
        agent.exit_requested.wait(0.2)  # signal handlers run in this thread between waits
    agent.kill_all(grace=5.0)
    return 0 if signals.received is None else 128 + signals.received


def _wait_for_agents(cfg: PodConfig, signals: _Signals) -> str | None:
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
                _warn(f"cannot open {path} ({var}): {exc.strerror}; writing to the pod log only")
                return []
        return [opened[path]]

    out = open_once("SFED_STDOUT")
    err = open_once("SFED_STDERR") if os.environ.get("SFED_STDERR") else out
    return out, err


def _tee(pipe: IO[bytes], fds: Sequence[int]) -> None:
    live = list(fds)

    def sink(data: bytes) -> None:
        live[:] = [fd for fd in live if _write_all(fd, data)]

    _pump(pipe, sink)


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


def _run_batch(cfg: PodConfig, agent: Agent, signals: _Signals) -> int:
    problem = _wait_for_agents(cfg, signals)
    if signals.received is not None:
        _tell_workers_to_exit(cfg)
        return 128 + signals.received
    if problem is not None:
        _error("sfed", problem)
        _tell_workers_to_exit(cfg)
        return 1
    workdir = tempfile.mkdtemp(prefix="sfed-job-")
    try:
        return _run_script(cfg, workdir, signals)
    finally:
        agent.kill_all(grace=5.0)
        _tell_workers_to_exit(cfg)
        shutil.rmtree(workdir, ignore_errors=True)


def _run_script(cfg: PodConfig, workdir: str, signals: _Signals) -> int:
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
        _error("sfed", f"cannot copy the batch script {source} (SFED_DIR): {exc.strerror}")
        return 1
    counter = os.path.join(workdir, "steps")
    with open(counter, "w") as f:
        f.write("0")
    cwd = os.environ.get("SFED_CHDIR", "") or os.getcwd()
    if not os.path.isdir(cwd):
        _warn(f"couldn't chdir to `{cwd}' (SFED_CHDIR): going to /tmp instead")
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
        _error("sfed", f"cannot start the batch script: {exc}")
        return 1
    signals.forward_to = proc.pid
    if signals.received is not None:  # arrived between the checks and forward_to
        _killpg(proc.pid, signals.received)
    assert proc.stdout is not None and proc.stderr is not None
    tees = [
        threading.Thread(target=_tee, args=(proc.stdout, [1, *out_fds]), daemon=True),
        threading.Thread(target=_tee, args=(proc.stderr, [2, *err_fds]), daemon=True),
    ]
    for tee in tees:
        tee.start()
    status, _ = _status(proc.wait())
    signals.forward_to = None
    # Like the end of a Slurm job: processes the script left behind die with it.
    _killpg(proc.pid, signal.SIGKILL)
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


# ---------------------------------------------------------------------------------------------
# srun


class UsageError(Exception):
    """A bad srun command line."""


class SrunOptions:
    """What srun's command line asked for."""

    def __init__(self) -> None:
        self.ntasks: int | None = None
        self.nodes: int | None = None
        self.ntasks_per_node: int | None = None
        self.cpus_per_task: int | None = None
        self.label = False
        self.kill_on_bad_exit = False
        self.job_name: str | None = None
        self.export = "ALL"
        self.command: list[str] = []


# long name -> (short letter or "", takes a value)
_SRUN_OPTIONS: dict[str, tuple[str, bool]] = {
    "ntasks": ("n", True),
    "nodes": ("N", True),
    "ntasks-per-node": ("", True),
    "cpus-per-task": ("c", True),
    "label": ("l", False),
    "kill-on-bad-exit": ("K", False),
    "unbuffered": ("u", False),
    "job-name": ("J", True),
    "export": ("", True),
    "mpi": ("", True),
}
_SRUN_SHORT = {short: long for long, (short, _) in _SRUN_OPTIONS.items() if short}


def _unsupported(option: str) -> UsageError:
    return UsageError(
        f"option {option} is not supported on Kubernetes pools (sfed); supported: {SUPPORTED_SRUN}"
    )


def _positive(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise UsageError(f"invalid --{name} value {value!r}: a positive integer is needed")
    return number


def _set_option(opts: SrunOptions, name: str, value: str | None) -> None:
    if name == "ntasks":
        opts.ntasks = _positive(name, value or "")
    elif name == "nodes":
        # Slurm allows a range "min-max"; a fixed count is all a step on fixed pods needs.
        opts.nodes = _positive(name, value or "")
    elif name == "ntasks-per-node":
        opts.ntasks_per_node = _positive(name, value or "")
    elif name == "cpus-per-task":
        opts.cpus_per_task = _positive(name, value or "")
    elif name == "job-name":
        opts.job_name = value or ""
    elif name == "export":
        opts.export = value or ""
    elif name == "mpi":
        if value != "none":
            raise _unsupported(f"--mpi={value}")
    elif name == "label":
        opts.label = True
    elif name == "kill-on-bad-exit":
        opts.kill_on_bad_exit = True
    # unbuffered: nothing to do, output is relayed as it arrives


def parse_srun_args(args: Sequence[str]) -> SrunOptions:
    """Parses srun's command line; raises UsageError with srun's message."""
    opts = SrunOptions()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg.startswith("--"):
            name, has_value, value = arg[2:].partition("=")
            if name not in _SRUN_OPTIONS:
                raise _unsupported("--" + name)
            if _SRUN_OPTIONS[name][1]:
                if not has_value:
                    i += 1
                    if i >= len(args):
                        raise UsageError(f"option --{name} requires an argument")
                    value = args[i]
                _set_option(opts, name, value)
            elif has_value:
                raise UsageError(f"option --{name} does not take an argument")
            else:
                _set_option(opts, name, None)
            i += 1
            continue
        if not arg.startswith("-") or arg == "-":
            break
        j = 1
        while j < len(arg):
            letter = arg[j]
            if letter not in _SRUN_SHORT:
                raise _unsupported("-" + letter)
            name = _SRUN_SHORT[letter]
            if _SRUN_OPTIONS[name][1]:
                value = arg[j + 1 :]
                if not value:
                    i += 1
                    if i >= len(args):
                        raise UsageError(f"option -{letter} requires an argument")
                    value = args[i]
                _set_option(opts, name, value)
                break
            _set_option(opts, name, None)
            j += 1
        i += 1
    opts.command = list(args[i:])
    if not opts.command:
        raise UsageError("no command to run was given")
    return opts


def plan_tasks(opts: SrunOptions, alloc_nodes: int, env: dict[str, str]) -> list[int]:
    """Tasks per node of the step (its first len() pods), block distribution like Slurm."""
    nodes = opts.nodes
    if nodes is not None and nodes > alloc_nodes:
        raise UsageError(
            f"--nodes={nodes} is more than the {alloc_nodes} node(s) of the job's allocation"
        )
    if opts.ntasks is not None:
        tasks = opts.ntasks
    elif opts.ntasks_per_node is not None:
        tasks = opts.ntasks_per_node * (nodes or alloc_nodes)
    else:
        tasks = _positive_env(env, "SLURM_NTASKS") or nodes or alloc_nodes
    if nodes is None:
        # Without -N Slurm uses the allocation, shrunk to one node per task.
        nodes = min(alloc_nodes, tasks, _positive_env(env, "SLURM_NNODES") or alloc_nodes)
    elif tasks < nodes:
        raise UsageError(f"cannot run {tasks} task(s) on {nodes} nodes: every node needs a task")
    if opts.ntasks_per_node is not None and tasks > opts.ntasks_per_node * nodes:
        raise UsageError(
            f"{tasks} tasks do not fit {nodes} node(s) with --ntasks-per-node="
            f"{opts.ntasks_per_node}"
        )
    base, extra = divmod(tasks, nodes)
    return [base + (1 if k < extra else 0) for k in range(nodes)]


def _positive_env(env: dict[str, str], name: str) -> int | None:
    try:
        value = int(env.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def export_env(spec: str, env: dict[str, str]) -> dict[str, str]:
    """The tasks' base environment for --export (Slurm: NONE and VAR lists keep SLURM_*)."""
    items = [item for item in spec.split(",") if item]
    if "ALL" in items:
        result = dict(env)
    else:
        result = {k: v for k, v in env.items() if k.startswith("SLURM_")}
    for item in items:
        if item in ("ALL", "NONE"):
            continue
        name, has_value, value = item.partition("=")
        if has_value:
            result[name] = value
        elif name in env:
            result[name] = env[name]
    return result


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
                _write_all(self.fd, data)
            return
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        if lines:
            text = b"".join(self.label + line + b"\n" for line in lines)
            with lock:
                _write_all(self.fd, text)

    def flush(self, lock: threading.Lock) -> None:
        if self.label is not None and self.partial:
            with lock:
                _write_all(self.fd, self.label + self.partial + b"\n")
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
                sock = _connect(task.node, self.port, 30.0)
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
                _read_reply(sock)
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
                _shutdown(task.sock)

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
                    result = _decode_json(payload)
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
        _error("srun", f"{task.node}: task {task.procid}: {what}")
        if self.opts.kill_on_bad_exit:
            self._kill_others(task)

    def _kill_others(self, failed: _StepTask) -> None:
        with self.kill_lock:
            if self.killing:
                return
            self.killing = True
        _error("srun", f"task {failed.procid} failed: terminating the step (--kill-on-bad-exit)")
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
            _error("srun", f"{task.node}: task {task.procid}: lost: {task.lost}")
        own = [t.status or 0 for t in self.tasks if not t.killed_by_srun and t.status is not None]
        rc = max([*own, 0])
        if rc == 0 and any(t.killed_by_srun and t.status for t in self.tasks):
            rc = 1
        return max(rc, 1) if lost else rc


def _task_env(
    base: dict[str, str],
    opts: SrunOptions,
    step_id: int,
    nodes: list[str],
    counts: list[int],
) -> list[tuple[int, dict[str, str]]]:
    """(node index, environment) of every task, in procid order."""
    total = sum(counts)
    nodelist = compress_hostlist(nodes)
    per_node = _tasks_per_node_string(counts)
    common = dict(base)
    common.update(
        SLURM_STEP_ID=str(step_id),
        SLURM_STEPID=str(step_id),
        SLURM_STEP_NUM_TASKS=str(total),
        SLURM_NTASKS=str(total),
        SLURM_NPROCS=str(total),
        SLURM_STEP_NUM_NODES=str(len(nodes)),
        SLURM_NNODES=str(len(nodes)),
        SLURM_STEP_NODELIST=nodelist,
        SLURM_NODELIST=nodelist,
        SLURM_STEP_TASKS_PER_NODE=per_node,
        SLURM_TASKS_PER_NODE=per_node,
    )
    if opts.cpus_per_task is not None:
        common["SLURM_CPUS_PER_TASK"] = str(opts.cpus_per_task)
    if opts.job_name is not None:
        common["SLURM_JOB_NAME"] = opts.job_name
    result: list[tuple[int, dict[str, str]]] = []
    procid = 0
    for node_index, count in enumerate(counts):
        gtids = ",".join(str(procid + k) for k in range(count))
        for localid in range(count):
            env = dict(common)
            env.update(
                SLURM_PROCID=str(procid),
                SLURM_LOCALID=str(localid),
                SLURM_NODEID=str(node_index),
                SLURMD_NODENAME=nodes[node_index],
                SLURM_GTIDS=gtids,
            )
            result.append((node_index, env))
            procid += 1
    return result


def run_srun(args: Sequence[str]) -> int:
    """srun inside a batch script: runs the command's tasks via the agents; the exit status."""
    try:
        opts = parse_srun_args(args)
        alloc = _nodes_from_env()
        port = _env_int("SFED_AGENT_PORT", None, 1, 65535)
        token = _read_token(_sfed_dir())
    except (UsageError, ConfigError) as exc:
        _error("srun", str(exc))
        return 1
    env = {os.fsdecode(k): os.fsdecode(v) for k, v in os.environb.items()}
    try:
        counts = plan_tasks(opts, len(alloc), env)
    except UsageError as exc:
        _error("srun", str(exc))
        return 1
    nodes = alloc[: len(counts)]
    step_id = _next_step_id(env)
    tasks = [
        _StepTask(procid, node_index, nodes[node_index], task_env)
        for procid, (node_index, task_env) in enumerate(
            _task_env(export_env(opts.export, env), opts, step_id, nodes, counts)
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
        _error("srun", problem)
        return 1
    readers = [threading.Thread(target=step.read, args=(t,), daemon=True) for t in tasks]
    for reader in readers:
        reader.start()
    for reader in readers:
        while reader.is_alive():
            reader.join(0.5)  # short joins keep the main thread responsive to signals
    return step.exit_status()


def srun_main() -> None:
    sys.exit(run_srun(sys.argv[1:]))


# ---------------------------------------------------------------------------------------------
# scontrol


def run_scontrol(args: Sequence[str]) -> int:
    """scontrol show hostnames [hostlist]: one name per line; anything else is refused."""
    if len(args) not in (2, 3) or args[0] != "show" or args[1] not in ("hostnames", "hostname"):
        _error("scontrol", 'only "scontrol show hostnames" is available on Kubernetes pools (sfed)')
        return 1
    expr = args[2] if len(args) == 3 else os.environ.get("SLURM_JOB_NODELIST", "")
    if not expr:
        _error("scontrol", "no hostlist given and SLURM_JOB_NODELIST is not set")
        return 1
    try:
        names = expand_hostlist(expr)
    except ValueError as exc:
        _error("scontrol", str(exc))
        return 1
    _write_all(1, "".join(name + "\n" for name in names).encode(errors="surrogateescape"))
    return 0


def scontrol_main() -> None:
    sys.exit(run_scontrol(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
