"""The gRPC server: Federation, Admin and the standard health service, on a Unix socket and/or TCP."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from scheduler.config import Config
from scheduler.loop import LoopFacade
from scheduler.proto_gen.sfed.v1 import sfed_pb2_grpc as pb_grpc
from scheduler.service.servicers import AdminServicer, FederationServicer
from scheduler.service.validate import MAX_SCRIPT_BYTES
from scheduler.store import Store

__all__ = ["SERVICE_NAMES", "build_server", "open_socket"]

SERVICE_NAMES = ("sfed.v1.Federation", "sfed.v1.Admin")
MAX_MESSAGE = MAX_SCRIPT_BYTES + 1024 * 1024  # a full-size script plus the rest of the request


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
    pb_grpc.add_FederationServicer_to_server(FederationServicer(store, loop, config), server)
    pb_grpc.add_AdminServicer_to_server(AdminServicer(store, loop, config), server)
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
        server.add_insecure_port(address)
    for name in (*SERVICE_NAMES, ""):
        # Serving from the start: the loop, not the API, waits on pools.
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, addresses


def open_socket(config: Config) -> None:
    """Let every local user reach the socket; who may do what is checked per call."""
    if config.server.socket and os.path.exists(config.server.socket):
        os.chmod(config.server.socket, 0o666)
