"""agent.py: a worker pod's agent, spoken to directly in the wire protocol."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.pools.kubernetes.runtime.conftest import (
    NODES,
    TOKEN,
    Job,
    process_gone,
    wait_for_files,
)


@pytest.fixture
def agent(job: Job, wire: ModuleType) -> Job:
    """Worker pod 1 alone: just its agent, on NODES[1]; ready once it answers a ping."""
    job.start(1)
    deadline = time.monotonic() + 10
    while True:
        try:
            wire.request(NODES[1], job.port, TOKEN.encode(), "ping", 1.0)
            return job
        except OSError:
            assert time.monotonic() < deadline, "the agent did not come up"
            time.sleep(0.05)


def open_run(wire: ModuleType, job: Job, argv: list[str], token: str = TOKEN) -> Any:
    """A connection with a "run" request sent; the caller reads the reply."""
    sock = socket.create_connection((NODES[1], job.port), timeout=10)
    request = {"token": token, "op": "run", "argv": argv, "cwd": "/", "env": {"PATH": "/bin"}}
    wire.send_json(sock, b"H", request)
    return sock


def frames(wire: ModuleType, sock: socket.socket) -> list[tuple[bytes, bytes]]:
    result = []
    while (frame := wire.recv_frame(sock)) is not None:
        result.append(frame)
    return result


def test_wrong_token_is_refused(agent: Job, wire: ModuleType) -> None:
    """A ping with the wrong token gets the authentication error."""
    with pytest.raises(wire.AgentError, match="authentication failed"):
        wire.request(NODES[1], agent.port, b"not-the-token", "ping", 5.0)


def test_wrong_token_runs_nothing(agent: Job, wire: ModuleType, tmp_path: Path) -> None:
    """A run request with the wrong token is refused and its command never starts."""
    marker = tmp_path / "ran"
    with open_run(wire, agent, ["/bin/touch", str(marker)], token="guess") as sock:
        kind, payload = wire.recv_frame(sock)
        assert (kind, json.loads(payload)["ok"]) == (b"H", False)
        assert wire.recv_frame(sock) is None
    time.sleep(0.2)
    assert not marker.exists()


def test_run_streams_output_then_status(agent: Job, wire: ModuleType) -> None:
    """A run request gets the OK, stdout/stderr frames with raw bytes, then the exit status."""
    argv = ["/bin/sh", "-c", "printf 'o\\377'; printf e >&2; exit 5"]
    with open_run(wire, agent, argv) as sock:
        got = frames(wire, sock)
    assert got[0] == (b"H", b'{"ok": true}')
    assert b"".join(p for k, p in got if k == b"O") == b"o\xff"
    assert b"".join(p for k, p in got if k == b"E") == b"e"
    assert got[-1][0] == b"X" and json.loads(got[-1][1]) == {"status": 5, "signal": None}


def test_signal_death_reports_128_plus_signal(agent: Job, wire: ModuleType) -> None:
    """A task killed by SIGKILL reports status 137 and the signal."""
    with open_run(wire, agent, ["/bin/sh", "-c", "kill -9 $$"]) as sock:
        kind, payload = frames(wire, sock)[-1]
    assert (kind, json.loads(payload)) == (b"X", {"status": 137, "signal": 9})


def test_missing_command_reports_exit_2(agent: Job, wire: ModuleType) -> None:
    """A command that does not exist: an execve error on stderr and status 2, as slurmstepd."""
    with open_run(wire, agent, ["no-such-command"]) as sock:
        got = frames(wire, sock)
    assert b"execve(): no-such-command: No such file or directory" in got[1][1]
    assert json.loads(got[-1][1])["status"] == 2


def test_dropped_connection_kills_the_task(agent: Job, wire: ModuleType, tmp_path: Path) -> None:
    """When srun's connection drops, the agent kills the task's process group."""
    pid_file = tmp_path / "pid"
    argv = ["/bin/sh", "-c", f"echo $$ > {pid_file}; exec sleep 300"]
    with open_run(wire, agent, argv) as sock:
        wire.recv_frame(sock)
        wait_for_files([pid_file])
    assert process_gone(int(pid_file.read_text()), timeout=5.0)
