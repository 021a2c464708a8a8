"""Fixtures that run the in-pod runtime as real processes: one "pod" per loopback address.

All pods share this machine's network namespace, as in the test cluster, and differ only by their
address (127.0.0.2, 127.0.0.3, ...); each gets an $SFED_DIR laid out like the adapter's ConfigMap.
The runtime's modules are also imported here, the way sfed_pod.py imports them in a pod.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scheduler.pools.kubernetes import manifests

RUNTIME = Path(__file__).resolve().parents[4] / "scheduler" / "pools" / "kubernetes" / "runtime"
NODES = ("127.0.0.2", "127.0.0.3")
TOKEN = "0123456789abcdef-test-token"
POD_TIMEOUT_S = 30.0
SUPPORTED = (
    "supported: -n/--ntasks, -N/--nodes, --ntasks-per-node, -c/--cpus-per-task, -l/--label, "
    "-K/--kill-on-bad-exit, -u/--unbuffered, -J/--job-name, --export, --mpi=none"
)


def load_runtime(name: str) -> ModuleType:
    """The runtime's module `name`, imported through sfed_pod.py as in a pod (no package here)."""
    # No __pycache__ next to the ConfigMap's files.
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec = importlib.util.spec_from_file_location("sfed_pod", RUNTIME / "sfed_pod.py")
        assert spec is not None and spec.loader is not None
        entry = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(entry)
        module: ModuleType = entry.runtime_module(name)
    finally:
        sys.dont_write_bytecode = saved
    return module


def _runtime_fixture(name: str) -> Any:
    """A session fixture called `name`: the runtime's module of that name."""
    return pytest.fixture(scope="session", name=name)(lambda: load_runtime(name))


hostlist = _runtime_fixture("hostlist")
config = _runtime_fixture("config")
wire = _runtime_fixture("wire")
srun_options = _runtime_fixture("srun_options")
srun_layout = _runtime_fixture("srun_layout")


def run_shim(shim: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs the `srun` or `scontrol` shim from the source tree with `env` (plus a PATH)."""
    return subprocess.run(
        [sys.executable, str(RUNTIME / shim), *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def free_port(nodes: tuple[str, ...] = NODES) -> int:
    """A port free on every node address (the pods all listen on the same port)."""
    while True:
        with socket.socket() as probe:
            probe.bind((nodes[0], 0))
            port: int = probe.getsockname()[1]
        try:
            for node in nodes:
                with socket.socket() as other:
                    other.bind((node, port))
        except OSError:
            continue
        return port


def oldest_python() -> str | None:
    """A Python 3.8 interpreter if this machine has one: the oldest the runtime supports."""
    found = shutil.which("python3.8")
    candidates = [found] if found else []
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def process_gone(pid: int, timeout: float) -> bool:
    """True once `pid` no longer runs (gone or a zombie) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def wait_for_files(paths: list[Path], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() and p.read_text().strip() for p in paths):
        assert time.monotonic() < deadline, f"not all of {paths} appeared"
        time.sleep(0.05)


@dataclass
class Result:
    """How a pod ended."""

    rc: int
    out: bytes
    err: bytes

    @property
    def stdout(self) -> str:
        return self.out.decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.decode(errors="replace")


@dataclass
class Pod:
    index: int
    proc: subprocess.Popen[bytes]

    def finish(self, timeout: float = POD_TIMEOUT_S) -> Result:
        out, err = self.proc.communicate(timeout=timeout)
        return Result(self.proc.returncode, out, err)


@dataclass
class Job:
    """N pods of one Indexed Job on loopback addresses, started on demand.

    With `symlinks`, the runtime's files are links into a timestamped directory behind `..data`,
    as the kubelet mounts a ConfigMap; otherwise plain files.
    """

    root: Path
    python: str
    nodes: tuple[str, ...] = NODES
    symlinks: bool = False
    port: int = 0
    pods: list[Pod] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.nodes)
        self.sfed_dir = self.root / "sfed"
        self.workdir = self.root / "work"
        self.sfed_dir.mkdir()
        self.workdir.mkdir()
        self._install_runtime()
        (self.sfed_dir / "token").write_text(TOKEN + "\n")
        # The image's python3: the shims' "#!/usr/bin/env python3" must find the chosen one.
        self.image_bin = self.root / "image-bin"
        self.image_bin.mkdir()
        (self.image_bin / "python3").symlink_to(self.python)
        self.write_script(b"#!/bin/sh\ntrue\n")

    def _install_runtime(self) -> None:
        """The files the ConfigMap ships: modules side by side, the shims in bin/."""
        data = self.sfed_dir / "..2024_01_01_00_00_00.000000000" if self.symlinks else self.sfed_dir
        (data / "bin").mkdir(parents=True)
        for name, text in manifests.runtime_files().items():
            path = data / name if name.endswith(".py") else data / "bin" / name
            path.write_text(text)
            path.chmod(0o555 if name in ("sfed_pod.py", "srun", "scontrol") else 0o444)
        if self.symlinks:
            (self.sfed_dir / "..data").symlink_to(data.name)
            for entry in data.iterdir():
                (self.sfed_dir / entry.name).symlink_to(Path("..data") / entry.name)

    def write_script(self, script: str | bytes) -> None:
        data = script.encode() if isinstance(script, str) else script
        (self.sfed_dir / "script").write_bytes(data)

    def env(self, index: int, **extra: str) -> dict[str, str]:
        """The environment the adapter (and Kubernetes) give pod `index`, plus `extra`."""
        env = {
            "PATH": f"{self.image_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root),
            "JOB_COMPLETION_INDEX": str(index),
            "SFED_NODES": ",".join(self.nodes),
            "SFED_AGENT_PORT": str(self.port),
            "SFED_DIR": str(self.sfed_dir),
            "SFED_CHDIR": str(self.workdir),
            "SFED_STARTUP_TIMEOUT_S": "20",
            "SLURM_JOB_ID": "7",
            "SLURM_JOB_NAME": "train",
            "SLURM_NNODES": str(len(self.nodes)),
            "SLURM_NTASKS": str(len(self.nodes)),
            "SLURM_JOB_NODELIST": ",".join(self.nodes),
        }
        env.update(extra)
        return env

    def start(self, index: int, env: dict[str, str] | None = None, **extra: str) -> Pod:
        """Starts pod `index` (`env` replaces the contract's environment entirely)."""
        proc = subprocess.Popen(
            [str(self.image_bin / "python3"), str(self.sfed_dir / "sfed_pod.py")],
            env=env if env is not None else self.env(index, **extra),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        pod = Pod(index, proc)
        self.pods.append(pod)
        return pod

    def start_all(self, **extra: str) -> list[Pod]:
        # Workers first, so pod 0 usually finds them at once.
        pods = [self.start(i, self.env(i, **extra)) for i in range(len(self.nodes) - 1, -1, -1)]
        return pods[::-1]

    def run(self, script: str | bytes, **extra: str) -> list[Result]:
        """Runs a batch script on all pods; the results in index order."""
        self.write_script(script)
        pods = self.start_all(**extra)
        return [pod.finish() for pod in pods]

    def stop(self) -> None:
        """SIGTERM every pod still running (they kill their tasks), SIGKILL the stubborn."""
        running = [pod for pod in self.pods if pod.proc.poll() is None]
        for pod in running:
            pod.proc.send_signal(signal.SIGTERM)
        for pod in running:
            try:
                pod.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(pod.proc.pid, signal.SIGKILL)
                pod.proc.communicate()


@pytest.fixture
def make_job(tmp_path: Path) -> Iterator[Callable[..., Job]]:
    """Builds jobs (optionally with another python3 or other node addresses); stops them."""
    jobs: list[Job] = []

    def build(
        python: str | None = None, nodes: tuple[str, ...] = NODES, symlinks: bool = False
    ) -> Job:
        root = tmp_path / f"job{len(jobs)}"
        root.mkdir()
        job = Job(root, python or os.path.realpath(sys.executable), nodes, symlinks)
        jobs.append(job)
        return job

    yield build
    for job in jobs:
        job.stop()


@pytest.fixture
def job(make_job: Callable[..., Job]) -> Job:
    """Two pods on 127.0.0.2 and 127.0.0.3, running the current Python."""
    return make_job()
