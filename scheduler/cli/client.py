"""A blocking gRPC client for the CLI and the tests."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import grpc

from scheduler.proto_gen.sfed.v1 import sfed_pb2_grpc as pb_grpc

__all__ = ["Client", "ClientError"]


class ClientError(Exception):
    """sfedd refused the call or could not be reached; str() is one line for the user."""

    @classmethod
    def from_rpc(cls, exc: grpc.RpcError, address: str) -> ClientError:
        code: grpc.StatusCode = exc.code()
        details: str = exc.details() or code.name
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return cls(f"cannot reach sfedd at {address}: {details.splitlines()[0]}")
        return cls(details)


class _Timeout:
    """Gives every unary call a deadline; streams get none (they follow a job to its end)."""

    def __init__(self, stub: Any, timeout: float) -> None:
        self._stub, self._timeout = stub, timeout

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        if name.startswith("Watch"):
            return method
        return lambda request: method(request, timeout=self._timeout, wait_for_ready=False)


class Client:
    """Stubs for the Federation and Admin services on one channel."""

    def __init__(self, address: str, *, timeout: float = 30.0) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(address)
        self.federation: Any = _Timeout(pb_grpc.FederationStub(self.channel), timeout)
        self.admin: Any = _Timeout(pb_grpc.AdminStub(self.channel), timeout)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
