"""A real OpenSSH sshd on a loopback port, with generated host and client keys."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

from . import procs
from .errors import LabError
from .files import write_if_changed

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshEndpoint:
    """How a client reaches the lab's sshd."""

    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path

    def argv(self, *command: str) -> list[str]:
        """An `ssh` command line running `command` on the endpoint with strict host checking."""
        return [
            "ssh",
            "-i", str(self.client_key),
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-p", str(self.port),
            f"{self.user}@{self.host}",
            *command,
        ]  # fmt: skip


class Sshd:
    """Files and process of the lab's sshd, all under `dir`."""

    def __init__(self, dir: Path, port: int, template: Path) -> None:
        self.dir = dir
        self.port = port
        self.template = template
        self.host_key = dir / "host_ed25519"
        self.client_key = dir / "client_ed25519"
        self.authorized_keys = dir / "authorized_keys"
        self.known_hosts = dir / "known_hosts"
        self.config = dir / "sshd_config"
        self.pid_file = dir / "sshd.pid"
        self.log = dir / "sshd.log"

    @property
    def endpoint(self) -> SshEndpoint:
        """The client side: host, port, user and key files."""
        return SshEndpoint("127.0.0.1", self.port, "root", self.client_key, self.known_hosts)

    def alive(self) -> int | None:
        """The sshd pid if the lab's sshd runs."""
        return procs.alive_from(self.pid_file, str(self.config))

    def up(self) -> bool:
        """Generate keys once, render the config, start sshd if needed. True if started."""
        self._write_files()
        if self.alive() is not None and procs.port_listening(self.port):
            return False
        procs.stop(self.pid_file, str(self.config))
        if not procs.port_free(self.port):
            raise LabError(f"sshd: port 127.0.0.1:{self.port} is already taken by another process")
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        test = subprocess.run(
            [SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True, check=False
        )
        if test.returncode != 0:
            raise LabError(f"sshd: config {self.config} rejected", test.stderr.splitlines())
        self.log.unlink(missing_ok=True)
        procs.spawn(
            [SSHD, "-D", "-f", str(self.config), "-E", str(self.log)],
            pid_file=self.pid_file,
            out_file=self.dir / "sshd.out",
        )
        return True

    def wait(self, timeout: float = 10.0) -> None:
        """Wait until sshd accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive() is None:
                raise LabError(f"sshd exited (log {self.log})", procs.tail(self.log))
            if procs.port_listening(self.port):
                return
            time.sleep(0.05)
        raise LabError(
            f"sshd not listening on 127.0.0.1:{self.port} after {timeout:.0f}s",
            procs.tail(self.log),
        )

    def down(self) -> None:
        """Stop the lab's sshd (only the one its pid file names)."""
        procs.stop(self.pid_file, str(self.config))

    def _write_files(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        for key in (self.host_key, self.client_key):
            if not key.exists() or not key.with_suffix(".pub").exists():
                key.unlink(missing_ok=True)
                key.with_suffix(".pub").unlink(missing_ok=True)
                subprocess.run(
                    ["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-C", f"sfed-lab-{key.name}",
                     "-f", str(key)],
                    check=True, capture_output=True,
                )  # fmt: skip
        client_pub = self.client_key.with_suffix(".pub").read_text().strip()
        host_pub = self.host_key.with_suffix(".pub").read_text().split()
        write_if_changed(self.authorized_keys, client_pub + "\n")
        write_if_changed(self.known_hosts, f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        text = Template(self.template.read_text()).substitute(
            port=self.port,
            host_key=self.host_key,
            pid_file=self.dir / "sshd.sshd.pid",  # sshd's own; the lab tracks sshd.pid
            authorized_keys=self.authorized_keys,
        )
        write_if_changed(self.config, text)
