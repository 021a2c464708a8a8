"""Test sessions sharing the lab: one lease file per session process under `sessions/`, and
`started-by-session` while the lab runs because a session (not `deploy/lab up`) started it.

The last session out stops a lab that a session started; a lab started by `deploy/lab up`
(pinned) outlives every session.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from . import procs

# In sessions/: present while the lab runs because a test session (not `deploy/lab up`) started it.
STARTED_BY_SESSION = "started-by-session"


class Sessions:
    """The lease files under `dir` (<lab root>/sessions)."""

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self._started = dir / STARTED_BY_SESSION

    @property
    def started(self) -> bool:
        """True while the lab runs because a test session started it."""
        return self._started.exists()

    def clear_started(self) -> None:
        """Forget that a session started the lab: sessions ending will not stop it."""
        self._started.unlink(missing_ok=True)

    def live(self) -> list[int]:
        """Pids of sessions holding the lab; leases of dead processes are dropped."""
        live = []
        if self.dir.is_dir():
            for f in self.dir.iterdir():
                if f.name.isdigit():
                    if procs.pid_alive(int(f.name)):
                        live.append(int(f.name))
                    else:
                        f.unlink(missing_ok=True)
        return live

    @contextlib.contextmanager
    def hold(
        self,
        lock: Callable[[], AbstractContextManager[None]],
        *,
        is_up: Callable[[], bool],
        up: Callable[[], object],
        down: Callable[[], None],
    ) -> Iterator[None]:
        """Hold the lab for this process, under `lock`: `up` on entry (marking the lab as
        started by a session if it was down and unheld); on exit `down` if a session started
        it and no other live session still holds it."""
        lease = self.dir / str(os.getpid())
        with lock():
            self.dir.mkdir(parents=True, exist_ok=True)
            if not is_up() and not self.live():
                self._started.touch()
            try:
                up()
            except BaseException:
                if not self.live():
                    self.clear_started()
                raise
            lease.write_text(f"{os.getpid()}\n")
        try:
            yield
        finally:
            with lock():
                lease.unlink(missing_ok=True)
                if not self.live() and self.started:
                    down()
