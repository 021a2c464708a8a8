"""Job output from pod logs, followed once per job instead of downloaded again per read.

The log API has no byte offset: reading from offset N downloads the N bytes before it again,
and a job followed to its end (the front door follows every job) would download its log
over and over. So the first read of a job's log starts one streaming request (follow=true)
in a worker thread that appends to a spool file, and reads are served from that file. The
stream ends when the container ends (the file is then the whole log and outlives the pod) or
fails, or stays silent for READ_TIMEOUT_S (a later read starts it again and skips what the
file holds). Tails unused for IDLE_S are dropped with their files.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

__all__ = ["ENDED_WAIT_S", "FIRST_WAIT_S", "IDLE_S", "READ_TIMEOUT_S", "LogTails"]

IDLE_S = 600.0
READ_TIMEOUT_S = 300.0
ENDED_WAIT_S = 10.0  # how long a read of an ended container's log waits for the rest
FIRST_WAIT_S = 1.0  # how long a read that started a stream waits for its first bytes
_CHUNK = 64 * 1024


@dataclass
class _Tail:
    pod: str
    path: Path
    size: int = 0  # bytes in the file, all readable
    streaming: bool = False
    complete: bool = False  # the container ended and the stream delivered all of it
    used: float = field(default_factory=time.monotonic)
    response: Any = None


class LogTails:
    """Followed logs of the first pods of jobs, keyed by remote id (thread-safe)."""

    def __init__(self, core_api: Any, namespace: str, container: str, connect_timeout: float):
        self._core = core_api
        self._namespace = namespace
        self._container = container
        self._connect_timeout = connect_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="sfed-podlogs-"))
        self._tails: dict[str, _Tail] = {}
        self._lock = threading.Lock()
        self._grew = threading.Condition(self._lock)  # a tail got bytes or its stream ended
        self._log = structlog.get_logger()

    def read(
        self, remote_id: str, pod: str | None, offset: int, limit: int, *, ended: bool = False
    ) -> bytes:
        """Up to `limit` bytes from `offset` of the log of `pod` (the job's first pod, its
        container started; None when the pod is gone), starting or restarting its stream as
        needed. No request to the API server unless a stream must start. `ended`: the
        container has terminated, so a read past what has arrived waits (ENDED_WAIT_S at
        most) for the rest rather than answer b"" as if the log ended there."""
        now = time.monotonic()
        with self._lock:
            self._sweep(now)
            tail = self._tails.get(remote_id)
            if tail is None or (pod is not None and tail.pod != pod):
                if pod is None:
                    return b""
                if tail is not None:
                    self._drop(remote_id)
                tail = _Tail(pod, self._dir / f"{remote_id}.log")
                tail.path.touch()
                self._tails[remote_id] = tail
            tail.used = now
            wait = 0.0
            if not tail.streaming and not tail.complete and pod is not None:
                tail.streaming = True
                threading.Thread(
                    target=self._follow, args=(tail,), name=f"log-{pod}", daemon=True
                ).start()
                wait = FIRST_WAIT_S
            if ended:
                wait = ENDED_WAIT_S
            deadline = now + wait
            while offset >= tail.size and tail.streaming and time.monotonic() < deadline:
                self._grew.wait(deadline - time.monotonic())
            size = tail.size
        if offset >= size:
            return b""
        with open(tail.path, "rb") as f:
            f.seek(offset)
            return f.read(min(limit, size - offset))

    def _follow(self, tail: _Tail) -> None:
        """Stream the log into the file, skipping the bytes it already holds."""
        skip = tail.size
        finished = False
        try:
            response = self._core.read_namespaced_pod_log(
                tail.pod,
                self._namespace,
                container=self._container,
                follow=True,
                _preload_content=False,
                _request_timeout=(self._connect_timeout, READ_TIMEOUT_S),
            )
            tail.response = response
            with open(tail.path, "ab") as out:
                for chunk in response.stream(_CHUNK):
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    if chunk:
                        out.write(chunk)
                        out.flush()
                        with self._lock:
                            tail.size += len(chunk)
                            self._grew.notify_all()
            finished = True
        except Exception as exc:  # any failure: the next read starts a new stream
            self._log.info("kube.log_stream_ended", pod=tail.pod, error=str(exc))
        finally:
            with self._lock:
                tail.streaming = False
                tail.response = None
                # A follow stream ends by itself when its container has ended: all is here.
                tail.complete = finished
                self._grew.notify_all()

    def _sweep(self, now: float) -> None:
        for remote_id, tail in list(self._tails.items()):
            if now - tail.used > IDLE_S and not tail.streaming:
                self._drop(remote_id)

    def _drop(self, remote_id: str) -> None:
        tail = self._tails.pop(remote_id)
        tail.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop every stream and remove the spool files. Idempotent."""
        with self._lock:
            for tail in self._tails.values():
                if tail.response is not None:
                    with contextlib.suppress(Exception):  # already closed by its thread
                        tail.response.close()
            self._tails.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
