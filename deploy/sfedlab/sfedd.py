"""The lab's own sfedd: the federation behind the door, on its embedded SQLite store.

It federates the lab's pools (beta through the lab's sshd, to exercise the SSH transport),
publishes the capabilities file the door's job_submit shim reads, and listens on a Unix
socket that the door's proxy jobs reach through a small `sfed-proxy` launcher script.
Stdlib only: sfedd itself runs from the project's virtual environment.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import procs
from .clientconf import write_client_conf
from .errors import LabError
from .federation import federation_config, write_config
from .files import write_if_changed
from .layout import LabSite

__all__ = ["LabSfedd"]


class LabSfedd:
    """Files and process of the lab's sfedd, all under `dir`; with `client_conf`, the client
    config that lets a plain `sfed` find it (see clientconf)."""

    def __init__(
        self, site: LabSite, dir: Path, bin_dir: Path, *, client_conf: Path | None = None
    ) -> None:
        self.site = site
        self.dir = dir
        self.bin_dir = bin_dir
        self.config = dir / "sfed.yaml"
        self.socket = dir / "sfed.sock"
        self.pid_file = dir / "sfedd.pid"
        self.log = dir / "sfedd.log"
        self.store_url = f"sqlite:///{dir / 'sfed.db'}"
        self.proxy_launcher = dir / "bin" / "sfed-proxy"
        self.client_conf = client_conf

    @property
    def address(self) -> str:
        return f"unix:{self.socket}"

    def alive(self) -> int | None:
        return procs.alive_from(self.pid_file, str(self.config))

    def write_files(self) -> bool:
        """The config and the proxy launcher; True when the config changed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        spools = {}
        for cluster in self.site.pools:
            spool = cluster.sfed_spool
            spool.mkdir(parents=True, exist_ok=True)
            spool.chmod(0o1777)  # jobs of every user write their output here, as in /tmp
            spools[cluster.spec.name] = spool
        config = federation_config(
            self.site,
            store_url=self.store_url,
            socket=self.socket,
            ssh_pools=("beta",),
            name="lab",
            log_file=self.log,
            capabilities=self.site.capabilities_path() if self.site.capabilities else None,
            spools=spools,
        )
        before = self.config.read_text() if self.config.exists() else None
        write_config(config, self.config)
        self._write_launcher(self.address)
        return before != self.config.read_text()

    def _write_launcher(self, address: str) -> None:
        launcher = (
            "#!/bin/sh\n# The door's proxy jobs reach the lab's sfedd through this launcher.\n"
            f'exec {self.bin_dir / "sfed-proxy"} --address {address} "$@"\n'
        )
        # A proxy job starting now sees one launcher or the other, never a part.
        write_if_changed(self.proxy_launcher, launcher, mode=0o755)
        self.proxy_launcher.chmod(0o755)

    @contextmanager
    def proxies_to(self, address: str) -> Iterator[None]:
        """For a while, the door's proxy jobs that start reach the sfedd at `address` (a test's
        own, with pools the lab's sfedd does not have); then the lab's again."""
        self._write_launcher(address)
        try:
            yield
        finally:
            self._write_launcher(self.address)

    def up(self) -> str:
        """Start sfedd unless it runs with the current config; returns what it did."""
        sfedd = self.bin_dir / "sfedd"
        if not sfedd.exists():
            raise LabError(f"sfedd: {sfedd} not found: install the project first (make venv)")
        changed = self.write_files()
        if self.alive() is not None and not changed and self._answers():
            return "running"
        restarted = procs.stop(self.pid_file, str(self.config))
        self.socket.unlink(missing_ok=True)
        procs.spawn([str(sfedd), "-c", str(self.config)], pid_file=self.pid_file,
                    out_file=self.dir / "sfedd.out", env=dict(os.environ, SFED_FAULTS=""))  # fmt: skip
        return "restarted" if restarted else "started"

    def wait(self, timeout: float = 30.0) -> None:
        """Wait until sfedd accepts connections on its socket."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive() is None:
                raise LabError(f"sfedd exited (log {self.log})",
                               procs.tail(self.dir / "sfedd.out") + procs.tail(self.log))  # fmt: skip
            if self._answers():
                return
            time.sleep(0.1)
        raise LabError(
            f"sfedd not listening on {self.socket} after {timeout:.0f}s", procs.tail(self.log)
        )

    def write_client_conf(self) -> str | None:
        """Leave this sfedd's address in the client config, if the lab has one and wrote it
        (or none is there); returns a line to log when something changed or was refused."""
        if self.client_conf is None:
            return None
        return write_client_conf(self.client_conf, self.address)

    def down(self) -> None:
        procs.stop(self.pid_file, str(self.config), timeout=15.0)
        self.socket.unlink(missing_ok=True)

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(str(self.socket))
            except OSError:
                return False
            return True
