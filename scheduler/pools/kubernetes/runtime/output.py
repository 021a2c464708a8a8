"""Writing to file descriptors: whole writes that outlive a gone reader, one-line messages."""

from __future__ import annotations

import os


def write_all(fd: int, data: bytes) -> bool:
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


def warn(message: str) -> None:
    write_all(2, f"sfed: warning: {message}\n".encode(errors="surrogateescape"))


def error(prog: str, message: str) -> None:
    write_all(2, f"{prog}: error: {message}\n".encode(errors="surrogateescape"))
