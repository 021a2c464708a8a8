"""A blocking gRPC client for the CLI and the tests, and where the CLI finds its sfedd."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
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
    "TLSFiles",
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
A client config is TOML: address = "unix:/abs/path/sfed.sock" or "host:port"; for sfedd's
TLS port also ca_file = "/etc/sfed/ca.pem" (the CA of sfedd's certificate), and for a
client certificate (mTLS) cert_file and key_file. --ca-file/--cert-file/--key-file (or
$SFED_CA_FILE) win over the file's. The lab (deploy/lab up, make demo) writes the
per-user file for its own sfedd."""


@dataclass(frozen=True)
class TLSFiles:
    """What a TLS channel to sfedd needs: the CA of its certificate, and optionally a client
    certificate and key (mTLS)."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials; ClientConfigError naming a file that cannot be read."""

        def read(path: str | None) -> bytes | None:
            if path is None:
                return None
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise ClientConfigError(f"cannot read {path}: {exc.strerror}") from None

        return grpc.ssl_channel_credentials(
            read(self.ca_file), read(self.key_file), read(self.cert_file)
        )


class ClientConfigError(Exception):
    """A client config that cannot be used; str() is one line naming the file and the key."""


@dataclass(frozen=True)
class Target:
    """The address of sfedd and where it came from (a flag, a variable, a file, the default)."""

    address: str
    source: str
    tls: TLSFiles | None = None  # None: plaintext (the Unix socket, or TCP on loopback)

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


_KEYS = ("address", "ca_file", "cert_file", "key_file")


def read_client_conf(path: Path) -> Target | None:
    """The target the client config at `path` names, None when there is no such file;
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
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ClientConfigError(
            f"{path}: {unknown[0]}: unknown key (the keys are {', '.join(_KEYS)})"
        )
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
    files: dict[str, str] = {}
    for key in _KEYS[1:]:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.startswith("/"):
            raise ClientConfigError(f"{path}: {key}: must be an absolute path, got {value!r}")
        files[key] = value
    return Target(address, str(path), _tls(files, str(path)))


def _tls(files: Mapping[str, str | None], where: str) -> TLSFiles | None:
    ca, cert, key = (files.get(k) for k in _KEYS[1:])
    if (cert is None) != (key is None):
        raise ClientConfigError(f"{where}: cert_file and key_file go together")
    if ca is None:
        if cert is not None:
            raise ClientConfigError(f"{where}: cert_file needs ca_file (TLS to sfedd)")
        return None
    return TLSFiles(ca, cert, key)


def resolve_address(
    flag: str | None,
    environ: Mapping[str, str] = os.environ,
    *,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> Target:
    """sfedd's address (and TLS files), in the order of ADDRESS_HELP; files are read only
    when needed. TLS files given here (flags) or in $SFED_CA_FILE win over a config's."""
    target = _resolve(flag, environ)
    ca_file = ca_file or environ.get("SFED_CA_FILE") or None
    if ca_file is None and cert_file is None and key_file is None:
        return target
    base = target.tls
    flags = {
        "ca_file": ca_file or (base.ca_file if base else None),
        "cert_file": cert_file or (base.cert_file if base else None),
        "key_file": key_file or (base.key_file if base else None),
    }
    return Target(target.address, target.source, _tls(flags, "--ca-file/--cert-file/--key-file"))


def _resolve(flag: str | None, environ: Mapping[str, str]) -> Target:
    if flag is not None:
        return Target(flag, "--address")
    if environ.get("SFED_ADDRESS"):
        return Target(environ["SFED_ADDRESS"], "$SFED_ADDRESS")
    named = environ.get("SFED_CLIENT_CONF")
    paths = [Path(named)] if named else [user_client_conf(environ), SYSTEM_CLIENT_CONF]
    for path in paths:
        target = read_client_conf(path)
        if target is not None:
            return target
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

    def __init__(self, stub: Any, service: str, timeout: float, *, certified: bool) -> None:
        self._stub, self._timeout = stub, timeout
        self._methods = pb.DESCRIPTOR.services_by_name[service].methods_by_name
        self._certified = certified  # a client certificate may prove the caller instead

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        full_name = self._methods[name].full_name
        streaming = name in ("WatchJob", "StreamOutput")

        def call(request: Any) -> Any:
            problem: identity.IdentityError | None = None
            try:
                credential = identity.encode_for(
                    full_name, request.SerializeToString(deterministic=True)
                )
                metadata = [(identity.CREDENTIAL_METADATA, credential)]
            except identity.IdentityError as exc:
                # A client certificate may speak for the caller; otherwise the call is still
                # made, so that an sfedd that cannot be reached is what the user hears of.
                problem, metadata = exc, []
            timeout = None if streaming else self._timeout
            try:
                return method(request, timeout=timeout, metadata=metadata)
            except grpc.RpcError as exc:
                refused = exc.code() == grpc.StatusCode.UNAUTHENTICATED
                if problem is not None and refused and not self._certified:
                    raise ClientError(f"cannot prove who you are: {problem}") from None
                raise

        return call


class Client:
    """Stubs for the Federation and Admin services on one channel."""

    def __init__(self, address: str, *, timeout: float = 30.0, tls: TLSFiles | None = None) -> None:
        self.address = address
        self.channel = (
            grpc.secure_channel(address, tls.credentials())
            if tls is not None
            else grpc.insecure_channel(address)
        )
        certified = tls is not None and tls.cert_file is not None
        self.federation: Any = _Stub(
            pb_grpc.FederationStub(self.channel), "Federation", timeout, certified=certified
        )
        self.admin: Any = _Stub(
            pb_grpc.AdminStub(self.channel), "Admin", timeout, certified=certified
        )

    def list_jobs(self, request: pb.ListJobsRequest) -> Iterator[pb.JobInfo]:
        """Every job the listing names, page after page as sfedd sends them."""
        page = pb.ListJobsRequest()
        page.CopyFrom(request)
        while True:
            answer = self.federation.ListJobs(page)
            yield from answer.jobs
            if not answer.next_page_token:
                return
            page.page_token = answer.next_page_token

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
