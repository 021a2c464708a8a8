"""An sfedd process for the lab: start it, wait until it serves, stop it, run the sfed CLI.

Shared by the demo, the end-to-end tests and the benchmarks. Needs the project's virtual
environment (grpcio); the rest of sfedlab needs only the standard library.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .errors import LabError

__all__ = ["SfeddProcess"]


class SfeddProcess:
    """sfedd with `config`, listening on the unix socket `socket`, logging to `log`."""

    def __init__(
        self, config: Path, socket: Path, log: Path, *, bin_dir: Path | None = None
    ) -> None:
        self.config, self.socket, self.log = config, socket, log
        self.bin_dir = bin_dir or Path(sys.executable).parent
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"unix:{self.socket}"

    def start(self, *, faults: str = "", detach: bool = False, timeout: float = 30.0) -> int:
        """Start sfedd and wait until its health service says SERVING; returns the pid."""
        env = dict(os.environ, SFED_FAULTS=faults)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin_dir / "sfedd"), "-c", str(self.config)], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.config.parent, start_new_session=detach,
            )  # fmt: skip
        self.wait_serving(timeout)
        return self.proc.pid

    def serving(self) -> bool:
        """True when sfedd's health service answers SERVING on the socket."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            with grpc.insecure_channel(self.address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                request = health_pb2.HealthCheckRequest(service="sfed.v1.Federation")
                reply = stub.Check(request, timeout=1)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def wait_serving(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.serving():
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"sfedd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise LabError(f"sfedd not serving after {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def sfed(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run the real `sfed` CLI against this daemon (never raises on a non-zero exit)."""
        return subprocess.run(
            [str(self.bin_dir / "sfed"), "--address", self.address, *args],
            text=True, capture_output=True, timeout=timeout, cwd=self.config.parent,
        )  # fmt: skip
