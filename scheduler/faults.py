"""Named fault points, armed by the SFED_FAULTS environment variable (comma-separated).

They let the crash-recovery tests kill the daemon at an exact point with a real SIGKILL
instead of racing an outside `kill -9`. Unarmed, a fault point costs one set lookup.

- `crash-after-remote-submit`: SIGKILL the daemon right after a pool accepted a job and
  before the store recorded its remote id.
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_AFTER_REMOTE_SUBMIT", "KNOWN_FAULTS", "armed", "hit"]

CRASH_AFTER_REMOTE_SUBMIT = "crash-after-remote-submit"
KNOWN_FAULTS = frozenset({CRASH_AFTER_REMOTE_SUBMIT})


def armed() -> frozenset[str]:
    names = frozenset(filter(None, os.environ.get("SFED_FAULTS", "").split(",")))
    unknown = names - KNOWN_FAULTS
    if unknown:
        raise ValueError(f"SFED_FAULTS: unknown fault point(s): {', '.join(sorted(unknown))}")
    return names


def hit(name: str, faults: frozenset[str]) -> None:
    """Die here, as with kill -9, when `name` is armed."""
    if name in faults:
        os.kill(os.getpid(), signal.SIGKILL)
