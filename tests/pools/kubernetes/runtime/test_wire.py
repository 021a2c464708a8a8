"""wire.py: frames over a socket pair, without an agent."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import ModuleType

import pytest


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two connected sockets: (sender, receiver)."""
    sender, receiver = socket.socketpair()
    receiver.settimeout(10)
    with sender, receiver:
        yield sender, receiver


def test_frame_arrives_as_sent(wire: ModuleType, pair: tuple[socket.socket, ...]) -> None:
    """A frame's kind and raw payload arrive unchanged, an empty payload too."""
    sender, receiver = pair
    wire.send_frame(sender, b"O", b"\xff\x00out")
    wire.send_frame(sender, b"E", b"")
    assert [wire.recv_frame(receiver), wire.recv_frame(receiver)] == [
        (b"O", b"\xff\x00out"),
        (b"E", b""),
    ]


def test_close_between_frames_reads_as_none(
    wire: ModuleType, pair: tuple[socket.socket, ...]
) -> None:
    """A peer that closes after a whole frame ends the stream: None, not an error."""
    sender, receiver = pair
    wire.send_json(sender, b"X", {"status": 0, "signal": None})
    sender.shutdown(socket.SHUT_WR)
    assert wire.recv_frame(receiver) == (b"X", b'{"status": 0, "signal": null}')
    assert wire.recv_frame(receiver) is None


def test_close_inside_a_frame_is_a_protocol_error(
    wire: ModuleType, pair: tuple[socket.socket, ...]
) -> None:
    """A frame cut short (fewer payload bytes than its length says) raises ProtocolError."""
    sender, receiver = pair
    sender.sendall(b"O\x00\x00\x00\x05abc")
    sender.shutdown(socket.SHUT_WR)
    with pytest.raises(wire.ProtocolError, match="connection closed inside a frame"):
        wire.recv_frame(receiver)


def test_frame_over_the_limit_is_refused(wire: ModuleType, pair: tuple[socket.socket, ...]) -> None:
    """A frame whose length exceeds the reader's limit raises ProtocolError before its payload."""
    sender, receiver = pair
    sender.sendall(b"H\x00\x00\x01\x00")
    with pytest.raises(wire.ProtocolError, match="frame of 256 bytes exceeds 255"):
        wire.recv_frame(receiver, 255)
