"""Fixtures that run the in-pod runtime as real processes: one "pod" per loopback address.

All pods share this machine's network namespace, as in the test cluster, and differ only by their
address (127.0.0.2, 127.0.0.3, ...); each gets an $SFED_DIR laid out like the adapter's ConfigMap.
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

import pytest

RUNTIME = Path(__file__).resolve().parents[4] / "scheduler" / "pools" / "kubernetes" / "runtime"
NODES = ("127.0.0.2", "127.0.0.3")
TOKEN = "0123456789abcdef-test-token"
POD_TIMEOUT_S = 30.0


def load_runtime() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sfed_pod", RUNTIME / "sfed_pod.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # No __pycache__ next to the ConfigMap's files.
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


@pytest.fixture(scope="session")
def sfed_pod() -> ModuleType:
    """The runtime module, imported from its file (it is no package)."""
    return load_runtime()


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
    """N pods of one Indexed Job on loopback addresses, started on demand."""

    root: Path
    python: str
    nodes: tuple[str, ...] = NODES
    port: int = 0
    pods: list[Pod] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.nodes)
        self.sfed_dir = self.root / "sfed"
        self.workdir = self.root / "work"
        bin_dir = self.sfed_dir / "bin"
        bin_dir.mkdir(parents=True)
        self.workdir.mkdir()
        shutil.copy(RUNTIME / "sfed_pod.py", self.sfed_dir / "sfed_pod.py")
        for shim in ("srun", "scontrol"):
            shutil.copy(RUNTIME / shim, bin_dir / shim)
            (bin_dir / shim).chmod(0o555)
        (self.sfed_dir / "sfed_pod.py").chmod(0o555)
        (self.sfed_dir / "token").write_text(TOKEN + "\n")
        # The image's python3: the shims' "#!/usr/bin/env python3" must find the chosen one.
        self.image_bin = self.root / "image-bin"
        self.image_bin.mkdir()
        (self.image_bin / "python3").symlink_to(self.python)
        self.write_script(b"#!/bin/sh\ntrue\n")

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

    def build(python: str | None = None, nodes: tuple[str, ...] = NODES) -> Job:
        root = tmp_path / f"job{len(jobs)}"
        root.mkdir()
        job = Job(root, python or os.path.realpath(sys.executable), nodes)
        jobs.append(job)
        return job

    yield build
    for job in jobs:
        job.stop()


@pytest.fixture
def job(make_job: Callable[..., Job]) -> Job:
    """Two pods on 127.0.0.2 and 127.0.0.3, running the current Python."""
    return make_job()
