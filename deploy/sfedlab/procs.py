"""Starting and stopping daemons the lab owns, tracked by pid files the lab writes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int, marker: str = "") -> bool:
    """True if `pid` runs (not a zombie) and its command line contains `marker`."""
    if pid <= 0:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _is_zombie(pid):
        return False
    if not marker:
        return True
    # A daemon rewriting its process title (sshd does) can show a torn command line for a
    # moment: look again before deciding the pid now belongs to something else.
    for _ in range(5):
        if marker in " ".join(_cmdline(pid)):
            return True
        time.sleep(0.02)
    return False


def read_pid(pid_file: Path) -> int | None:
    """The pid in `pid_file`, or None when missing or unreadable."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive_from(pid_file: Path, marker: str) -> int | None:
    """The pid recorded in `pid_file` if that process still runs and matches `marker`."""
    pid = read_pid(pid_file)
    if pid is not None and pid_alive(pid, marker):
        return pid
    return None


def spawn(
    argv: Sequence[str],
    *,
    pid_file: Path,
    out_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start a foreground daemon in its own session; write its pid to `pid_file`."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(out_file, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(f"{proc.pid}\n")
    tmp.replace(pid_file)
    return proc.pid


def stop(pid_file: Path, marker: str, timeout: float = 10.0) -> bool:
    """Stop the process recorded in `pid_file` (if it still matches), then remove the file.

    Returns True if a process was signalled.
    """
    pid = read_pid(pid_file)
    signalled = False
    if pid is not None and pid_alive(pid, marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            signalled = True
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    return signalled


def wait_all_dead(pids: Sequence[int], timeout: float) -> None:
    """Wait until none of `pids` runs any more, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def processes_named(*names: str) -> list[int]:
    """Pids of running processes whose command name is one of `names` (read-only scan)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in names and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last `lines` lines of a text file (empty if it does not exist)."""
    try:
        data = path.read_bytes()[-65536:]
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-lines:]


def port_listening(port: int) -> bool:
    """True if some socket on this host listens on TCP `port` (read from /proc, no connect)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # fields[1] is "ADDR:PORT" in hex, fields[3] the state; 0A is LISTEN.
            if (
                len(fields) > 3
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                return True
    return False


def port_free(port: int) -> bool:
    """True if TCP `port` on 127.0.0.1 can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
