"""The wire protocol between srun (and pod 0) and the agents: frames, and the client side.

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
import json
import os
import socket
import struct
from typing import Any

MAX_FRAME = 16 << 20
MAX_REQUEST = 4 << 20  # the first, not yet authenticated frame
_FRAME = struct.Struct("!cI")


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


class AgentError(Exception):
    """An agent refused a request."""


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


def decode_json(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(f"bad JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("JSON frame is not an object")
    return obj


def shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def connect(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request(host: str, port: int, token: bytes, op: str, timeout: float) -> dict[str, Any]:
    """One ping/exit request; raises OSError/ProtocolError if unreachable, AgentError if refused."""
    with connect(host, port, timeout) as sock:
        send_json(sock, b"H", {"token": os.fsdecode(token), "op": op})
        return read_reply(sock)


def read_reply(sock: socket.socket) -> dict[str, Any]:
    frame = recv_frame(sock)
    if frame is None or frame[0] != b"H":
        raise ProtocolError("the agent closed the connection without a reply")
    reply = decode_json(frame[1])
    if not reply.get("ok"):
        raise AgentError(str(reply.get("error", "request refused")))
    return reply
