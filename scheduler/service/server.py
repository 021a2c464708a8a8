"""The gRPC server: Federation, Admin and the standard health service, on a Unix socket and/or TCP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from scheduler.config import Config, TLSConfig
from scheduler.limits import MAX_ENV_BYTES, MAX_SCRIPT_BYTES
from scheduler.loop import LoopFacade
from scheduler.proto_gen.sfed.v1 import sfed_pb2_grpc as pb_grpc
from scheduler.service.servicers import AdminServicer, FederationServicer
from scheduler.service.status import abort
from scheduler.store import Store

__all__ = ["SERVICE_NAMES", "build_server", "open_socket"]

SERVICE_NAMES = ("sfed.v1.Federation", "sfed.v1.Admin")
# A full-size script and environment, plus the rest of the request.
MAX_MESSAGE = MAX_SCRIPT_BYTES + MAX_ENV_BYTES + 1024 * 1024


async def build_server(
    config: Config, store: Store, loop: LoopFacade
) -> tuple[grpc.aio.Server, list[str]]:
    """A started-ready server and the addresses it will listen on."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ]
    )
    guarded = _RequestGuard(server)
    pb_grpc.add_FederationServicer_to_server(FederationServicer(store, loop, config), guarded)
    pb_grpc.add_AdminServicer_to_server(AdminServicer(store, loop, config), guarded)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    addresses = []
    if config.server.socket:
        path = Path(config.server.socket)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_socket():
            path.unlink()  # left by a daemon that died; bind fails otherwise
        addresses.append(f"unix:{path}")
    if config.server.tcp:
        addresses.append(config.server.tcp)
    for address in addresses:
        if address == config.server.tcp and config.server.tls is not None:
            server.add_secure_port(address, _tls_credentials(config.server.tls))
        else:  # the Unix socket, or plaintext TCP on loopback (the config allows no other)
            server.add_insecure_port(address)
    for name in (*SERVICE_NAMES, ""):
        # Serving from the start: the loop, not the API, waits on pools.
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, addresses


def _tls_credentials(tls: TLSConfig) -> grpc.ServerCredentials:
    """The server's certificate; with a client CA, every TCP client must present a
    certificate it signed (gRPC cannot ask for one without requiring it)."""
    ca = Path(tls.client_ca).read_bytes() if tls.client_ca else None
    return grpc.ssl_server_credentials(
        [(Path(tls.key).read_bytes(), Path(tls.cert).read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


class _Unreadable:
    """Stands for request bytes that are not a message of the method's type."""

    def __init__(self, kind: str, error: str) -> None:
        self.kind, self.error = kind, error


def _reading(parse: Callable[[bytes], Any], kind: str) -> Callable[[bytes], Any]:
    def read(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError as exc:
            return _Unreadable(kind, str(exc))

    return read


def _refusing(behavior: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
    async def refuse(request: _Unreadable, context: Any) -> None:
        await abort(
            context,
            grpc.StatusCode.INVALID_ARGUMENT,
            f"request: not a {request.kind} message ({request.error})",
        )

    if streaming:

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if isinstance(request, _Unreadable):
                await refuse(request, context)
            async for item in behavior(request, context):
                yield item

        return stream

    async def unary(request: Any, context: Any) -> Any:
        if isinstance(request, _Unreadable):
            await refuse(request, context)
        return await behavior(request, context)

    return unary


class _RequestGuard:
    """Registers the generated handlers on `server` so that request bytes that do not parse
    are refused with INVALID_ARGUMENT naming the message type, not an opaque UNKNOWN."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the registered handlers below serve every method

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        guarded = {name: self._guard(handler) for name, handler in handlers.items()}
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, guarded),)
        )

    @staticmethod
    def _guard(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        parse = handler.request_deserializer
        kind = getattr(parse, "__self__", None)
        name = getattr(kind, "DESCRIPTOR", None)
        read = _reading(parse, name.full_name if name is not None else "request")
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _refusing(handler.unary_unary, streaming=False),
                request_deserializer=read,
                response_serializer=handler.response_serializer,
            )
        assert handler.unary_stream is not None  # the API has no client streams
        return grpc.unary_stream_rpc_method_handler(
            _refusing(handler.unary_stream, streaming=True),
            request_deserializer=read,
            response_serializer=handler.response_serializer,
        )


def open_socket(config: Config) -> None:
    """Let every local user reach the socket; who may do what is checked per call."""
    if config.server.socket and os.path.exists(config.server.socket):
        os.chmod(config.server.socket, 0o666)
