"""A blocking gRPC client for the CLI and the tests."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import grpc

from scheduler import identity
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


class _Stub:
    """Gives every unary call a deadline (streams follow a job to its end and get none) and a
    fresh MUNGE credential on the calls that need one (munged refuses replays)."""

    # Calls that change something or read a job's output prove the caller.
    PROVEN = frozenset({"SubmitJob", "CancelJob", "DrainPool", "ResumePool", "StreamOutput"})

    def __init__(self, stub: Any, timeout: float) -> None:
        self._stub, self._timeout = stub, timeout

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        streaming = name in ("WatchJob", "StreamOutput")

        def call(request: Any) -> Any:
            metadata = None
            if name in self.PROVEN:
                try:
                    metadata = [(identity.CREDENTIAL_METADATA, identity.encode())]
                except identity.IdentityError as exc:
                    raise ClientError(f"cannot prove who you are: {exc}") from None
            timeout = None if streaming else self._timeout
            return method(request, timeout=timeout, metadata=metadata)

        return call


class Client:
    """Stubs for the Federation and Admin services on one channel."""

    def __init__(self, address: str, *, timeout: float = 30.0) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(address)
        self.federation: Any = _Stub(pb_grpc.FederationStub(self.channel), timeout)
        self.admin: Any = _Stub(pb_grpc.AdminStub(self.channel), timeout)

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
