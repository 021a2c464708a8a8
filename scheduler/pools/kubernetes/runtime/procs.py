"""The processes the runtime starts (batch script, tasks) and the signals the pod receives.

Each runs in its own process group, killed as a whole; a death by signal is reported as
128+signal, as Slurm does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


# Runs the target with SLURM_TASK_PID set to its own pid ($$ survives exec), as slurmd does.
TASK_WRAPPER = 'SLURM_TASK_PID=$$; export SLURM_TASK_PID; exec "$@"'


def killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def exit_status(returncode: int) -> tuple[int, int | None]:
    """(exit status, signal) of a Popen return code: signal deaths become 128+signal."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def pump_pipe(pipe: IO[bytes], sink: Callable[[bytes], None]) -> None:
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


class Signals:
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
            killpg(self.forward_to, signum)
