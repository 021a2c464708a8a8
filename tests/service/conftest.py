"""Service fixtures: the store fixtures of tests/store (so API tests run on both backends), and
a real gRPC server on that store with a loop facade that never runs a pass."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from sfedlab import Lab

from scheduler import identity
from scheduler.config import parse_config
from scheduler.domain import Job, JobRequest
from scheduler.loop import NotDelivered, PoolStatus
from scheduler.proto_gen.sfed.v1 import sfed_pb2_grpc as pb_grpc
from scheduler.service.server import build_server
from scheduler.store import Store
from tests.fixtures.credentials import credential
from tests.service.certs import Certs, make_certs
from tests.store.conftest import backend, postgres, store, store_url

__all__ = [
    "Api",
    "backend",
    "certs",
    "credential",
    "postgres",
    "serve",
    "store",
    "store_url",
    "transport",
]


class StillLoop:
    """A loop facade with the given pools that never runs a pass: the API alone is under test."""

    def __init__(self, pools: tuple[PoolStatus, ...] = ()) -> None:
        self.pools = pools
        self.wakes = 0

    def pool_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.pools)

    def pool_statuses(self) -> tuple[PoolStatus, ...]:
        return self.pools

    def never_fits(self, request: JobRequest) -> str | None:
        return None

    def wake(self) -> None:
        self.wakes += 1

    async def wait_changed(self, timeout: float) -> None:
        await asyncio.sleep(timeout)

    async def read_output(self, job: Job, *, stderr: bool, offset: int, limit: int) -> bytes:
        return b""

    async def signal(self, job: Job, signal: str, *, batch_only: bool) -> None:
        raise NotDelivered(f"job {job.id} is not running on a pool")  # it never passes


class Api:
    """Stubs of one in-process server, over its Unix socket or its TLS TCP port."""

    def __init__(self, address: str, credentials: grpc.ChannelCredentials | None = None) -> None:
        self.address = address
        self.channel = (
            grpc.secure_channel(address, credentials)
            if credentials is not None
            else grpc.insecure_channel(address)
        )
        self._stubs = (
            pb_grpc.FederationStub(self.channel),
            pb_grpc.AdminStub(self.channel),
        )

    def call(self, rpc: str, request: Message, metadata: list[tuple[str, str]] | None) -> Any:
        """The unary answer, or a stream's first message (None if it ends at once)."""
        stub = next(s for s in self._stubs if hasattr(s, rpc))
        answer = getattr(stub, rpc)(request, metadata=metadata, timeout=30)
        if rpc not in ("WatchJob", "StreamOutput"):
            return answer
        first = next(answer, None)  # a watch follows the job until it ends: stop here
        answer.cancel()
        return first

    def stream(self, user: str, rpc: str, request: Message) -> list[Any]:
        """Every message of a stream that ends by itself, called as `user`."""
        stub = next(s for s in self._stubs if hasattr(s, rpc))
        metadata = [(identity.CREDENTIAL_METADATA, credential(user, rpc, request))]
        return list(getattr(stub, rpc)(request, metadata=metadata, timeout=30))

    def as_user(self, user: str, rpc: str, request: Message) -> Any:
        """The call with a fresh credential of `user` for it."""
        metadata = [(identity.CREDENTIAL_METADATA, credential(user, rpc, request))]
        return self.call(rpc, request, metadata)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA, sfedd's certificate for 127.0.0.1 and a client certificate "door-proxy"."""
    made = make_certs(tmp_path_factory.mktemp("certs"))
    made.client("door-proxy")
    return made


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["unix", "tls"])
def transport(request: pytest.FixtureRequest) -> str:
    """The listener a test's calls go through: the Unix socket or TLS on TCP."""
    return str(request.param)


@pytest.fixture
def serve(store: Store, tmp_path: Path, lab: Lab, certs: Certs) -> Iterator[Callable[..., Api]]:
    """serve(pools, via="unix"|"tls", client_cert=None, facade=None, **server_config) -> an
    Api on a real gRPC server over `store` (the lab runs munged). With via="tls" the server
    listens on TLS TCP; `client_cert` names a client certificate the Api presents; `facade`
    replaces the loop facade that never runs a pass."""
    running: list[tuple[asyncio.AbstractEventLoop, Any, threading.Thread, Api]] = []

    def start(
        pools: tuple[PoolStatus, ...] = (),
        via: str = "unix",
        client_cert: str | None = None,
        facade: Any = None,
        **server: Any,
    ) -> Api:
        socket_path = tmp_path / f"sfed-{len(running)}.sock"
        settings: dict[str, Any] = {"socket": str(socket_path), **server}
        if via == "tls":
            settings["tcp"] = f"127.0.0.1:{_free_port()}"
            settings.setdefault(
                "tls", {"cert": str(certs.server_cert), "key": str(certs.server_key)}
            )
        config = parse_config({"server": settings})
        loop = asyncio.new_event_loop()
        grpc_server, addresses = loop.run_until_complete(
            build_server(config, store, facade or StillLoop(pools))
        )
        loop.run_until_complete(grpc_server.start())
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        if via == "tls":
            pair = certs.client(client_cert) if client_cert else None
            credentials = grpc.ssl_channel_credentials(
                certs.ca.read_bytes(),
                pair[1].read_bytes() if pair else None,
                pair[0].read_bytes() if pair else None,
            )
            api = Api(settings["tcp"], credentials)
        else:
            api = Api(addresses[0])
        running.append((loop, grpc_server, thread, api))
        return api

    yield start
    for loop, grpc_server, thread, api in running:
        api.channel.close()
        asyncio.run_coroutine_threadsafe(grpc_server.stop(None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
