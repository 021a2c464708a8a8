"""A blocking gRPC client for the CLI and the tests, and where the CLI finds its sfedd."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from scheduler import identity
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.proto_gen.sfed.v1 import sfed_pb2_grpc as pb_grpc

__all__ = [
    "ADDRESS_HELP",
    "DEFAULT_ADDRESS",
    "SYSTEM_CLIENT_CONF",
    "Client",
    "ClientConfigError",
    "ClientError",
    "Target",
    "read_client_conf",
    "resolve_address",
    "user_client_conf",
]

DEFAULT_ADDRESS = "unix:/run/sfed/sfed.sock"
SYSTEM_CLIENT_CONF = Path("/etc/sfed/client.toml")
ADDRESS_HELP = f"""\
where sfed finds sfedd: the first of these that is given, set or present
  1. --address ADDRESS
  2. $SFED_ADDRESS
  3. the client config named by $SFED_CLIENT_CONF (it must exist)
  4. ~/.config/sfed/client.toml ($XDG_CONFIG_HOME/sfed/client.toml when set)
  5. {SYSTEM_CLIENT_CONF}
  6. {DEFAULT_ADDRESS}
A client config is TOML with one key: address = "unix:/abs/path/sfed.sock" or "host:port".
The lab (deploy/lab up, make demo) writes the per-user file for its own sfedd."""


class ClientConfigError(Exception):
    """A client config that cannot be used; str() is one line naming the file and the key."""


@dataclass(frozen=True)
class Target:
    """The address of sfedd and where it came from (a flag, a variable, a file, the default)."""

    address: str
    source: str

    def __str__(self) -> str:
        if self.source == "--address":
            return self.address
        if self.source == "default":
            return f"{self.address} (the default; see sfed --help)"
        return f"{self.address} (from {self.source})"


def user_client_conf(environ: Mapping[str, str] = os.environ) -> Path:
    """$XDG_CONFIG_HOME/sfed/client.toml when that is an absolute path, else
    ~/.config/sfed/client.toml."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "sfed" / "client.toml"
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".config" / "sfed" / "client.toml"


def read_client_conf(path: Path) -> str | None:
    """The address in the client config at `path`, None when there is no such file;
    ClientConfigError if it cannot be read or is malformed."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ClientConfigError(f"cannot read client config {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ClientConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"address"})
    if unknown:
        raise ClientConfigError(f"{path}: {unknown[0]}: unknown key (the only key is address)")
    if "address" not in data:
        raise ClientConfigError(f'{path}: address: missing (e.g. address = "{DEFAULT_ADDRESS}")')
    address = data["address"]
    if not isinstance(address, str) or not address.strip() or address != address.strip():
        raise ClientConfigError(
            f'{path}: address: must be a string like "{DEFAULT_ADDRESS}" or "host:port", '
            f"got {address!r}"
        )
    if address.startswith("unix:") and not address.startswith("unix:/"):
        raise ClientConfigError(
            f"{path}: address: the socket path must be absolute, got {address!r}"
        )
    return address


def resolve_address(flag: str | None, environ: Mapping[str, str] = os.environ) -> Target:
    """sfedd's address, in the order of ADDRESS_HELP; files are read only when needed."""
    if flag is not None:
        return Target(flag, "--address")
    if environ.get("SFED_ADDRESS"):
        return Target(environ["SFED_ADDRESS"], "$SFED_ADDRESS")
    named = environ.get("SFED_CLIENT_CONF")
    paths = [Path(named)] if named else [user_client_conf(environ), SYSTEM_CLIENT_CONF]
    for path in paths:
        address = read_client_conf(path)
        if address is not None:
            return Target(address, str(path))
    if named:
        raise ClientConfigError(f"$SFED_CLIENT_CONF: {named} does not exist")
    return Target(DEFAULT_ADDRESS, "default")


class ClientError(Exception):
    """sfedd refused the call or could not be reached; str() is one line for the user."""

    @classmethod
    def from_rpc(cls, exc: grpc.RpcError, address: str | Target) -> ClientError:
        code: grpc.StatusCode = exc.code()
        details: str = exc.details() or code.name
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return cls(f"cannot reach sfedd at {address}: {details.splitlines()[0]}")
        return cls(details)


class _Stub:
    """Gives every unary call a deadline (streams follow a job to its end and get none) and a
    fresh MUNGE credential bound to that very call: its payload is the digest of the method
    and the request (munged refuses replays; sfedd refuses a credential for another call)."""

    def __init__(self, stub: Any, service: str, timeout: float) -> None:
        self._stub, self._timeout = stub, timeout
        self._methods = pb.DESCRIPTOR.services_by_name[service].methods_by_name

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        full_name = self._methods[name].full_name
        streaming = name in ("WatchJob", "StreamOutput")

        def call(request: Any) -> Any:
            try:
                credential = identity.encode_for(
                    full_name, request.SerializeToString(deterministic=True)
                )
            except identity.IdentityError as exc:
                raise ClientError(f"cannot prove who you are: {exc}") from None
            timeout = None if streaming else self._timeout
            metadata = [(identity.CREDENTIAL_METADATA, credential)]
            return method(request, timeout=timeout, metadata=metadata)

        return call


class Client:
    """Stubs for the Federation and Admin services on one channel."""

    def __init__(self, address: str, *, timeout: float = 30.0) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(address)
        self.federation: Any = _Stub(pb_grpc.FederationStub(self.channel), "Federation", timeout)
        self.admin: Any = _Stub(pb_grpc.AdminStub(self.channel), "Admin", timeout)

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
