"""Fixtures for the Slurm pool tests that run against the real lab (tests/conftest.py `lab`)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.pools.slurm import LocalTransport, SlurmPool, SSHTransport, Transport

TRANSPORTS = ("local", "ssh")


def ssh_transport(lab: Any, slurm_conf: str, known_hosts: str | None = None) -> SSHTransport:
    endpoint = lab.ssh
    return SSHTransport(
        endpoint.host,
        endpoint.port,
        endpoint.user,
        [str(endpoint.client_key)],
        known_hosts or str(endpoint.known_hosts),
        slurm_conf,
        connect_timeout=5.0,
    )


@pytest.fixture(params=TRANSPORTS)
def transport_kind(request: pytest.FixtureRequest) -> str:
    """Each lab test using it runs once with LocalTransport and once with SSHTransport."""
    return str(request.param)


@pytest.fixture
def make_ssh_transport(lab: Any) -> Callable[..., SSHTransport]:
    """Builds an SSHTransport to the lab sshd for a slurm.conf, optionally another known_hosts."""

    def build(conf: str | Path, known_hosts: str | Path | None = None) -> SSHTransport:
        return ssh_transport(lab, str(conf), str(known_hosts) if known_hosts else None)

    return build


@pytest.fixture
def make_transport(
    transport_kind: str, make_ssh_transport: Callable[..., SSHTransport]
) -> Callable[..., Transport]:
    """Builds the parametrized kind of transport for a slurm.conf."""

    def build(conf: str | Path) -> Transport:
        if transport_kind == "local":
            return LocalTransport(str(conf))
        return make_ssh_transport(conf)

    return build


@pytest.fixture
def make_pool(lab: Any, make_transport: Callable[..., Transport]) -> Callable[..., SlurmPool]:
    """Builds a SlurmPool on a lab cluster over the parametrized transport."""

    def build(cluster: str = "beta", **kwargs: Any) -> SlurmPool:
        transport = make_transport(lab.conf_path(cluster))
        return SlurmPool(cluster, transport, lab.cluster(cluster).partition, **kwargs)

    return build


class JobTracker:
    """Remembers every lab job a test starts, to cancel them all at teardown."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.jobs: list[tuple[str, str]] = []

    def add(self, cluster: str, remote_id: str) -> str:
        self.jobs.append((cluster, remote_id))
        return remote_id

    def cancel_all(self) -> None:
        for cluster in sorted({c for c, _ in self.jobs}):
            ids = [i for c, i in self.jobs if c == cluster]
            subprocess.run(
                ["scancel", *ids],
                env=self.lab.env(cluster),
                capture_output=True,
                timeout=30,
                check=False,
            )


@pytest.fixture
def jobs(lab: Any) -> Iterator[JobTracker]:
    """Track lab jobs; every tracked job is cancelled when the test ends, pass or fail."""
    tracker = JobTracker(lab)
    yield tracker
    tracker.cancel_all()


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch directory the lab's slurmd can write job output to; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="sfed-slurm-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nothing listens on (just released)."""
    return _unused_port()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dead_conf(lab: Any, workdir: Path) -> Path:
    """beta's slurm.conf pointing at a port nothing listens on (MessageTimeout=2, so fast)."""
    source = Path(lab.conf_path("beta"))
    lines = []
    for line in source.read_text().splitlines():
        if line.startswith("SlurmctldPort="):
            line = f"SlurmctldPort={_unused_port()}"
        elif line.startswith("MessageTimeout="):
            continue
        lines.append(line)
    lines.append("MessageTimeout=2")
    conf = workdir / "dead" / "slurm.conf"
    conf.parent.mkdir()
    conf.write_text("\n".join(lines) + "\n")
    for extra in source.parent.glob("*.conf"):
        if extra.name != "slurm.conf":
            shutil.copy(extra, conf.parent / extra.name)
    return conf


@pytest.fixture
def foreign_known_hosts(lab: Any, workdir: Path) -> Path:
    """A known_hosts naming the lab sshd's address with some other host key."""
    key = workdir / "other_host_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
    )
    public = (workdir / "other_host_key.pub").read_text().split()[:2]
    endpoint = lab.ssh
    path = workdir / "known_hosts"
    path.write_text(f"[{endpoint.host}]:{endpoint.port} {' '.join(public)}\n")
    return path
