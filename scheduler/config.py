"""sfedd's configuration: one TOML or YAML file, validated whole at start.

Unknown keys and bad values are rejected with the key named ("pools.1.transport: ...").
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "Config",
    "ConfigError",
    "FederationConfig",
    "LogConfig",
    "LoopConfig",
    "PoolConfig",
    "SSHConfig",
    "ServerConfig",
    "StoreConfig",
    "load_config",
    "parse_config",
]

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def _valid_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("must be lowercase letters, digits and '-', starting with a letter")
    return v


# Federation and pool names appear in remote tags, logs and CLI tables.
Name = Annotated[str, AfterValidator(_valid_name)]


class ConfigError(Exception):
    """The configuration file cannot be used; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class FederationConfig(_Strict):
    name: Name = "sfed"  # carried in every remote job's tag; unique per federation
    virtual_partition: str = "fed"
    checkpoint_root: str | None = None  # SFED_CHECKPOINT_DIR = <root>/<job id>, mapped per pool
    # Written atomically for the front door's job_submit shim (what the pools could ever run).
    capabilities_file: str | None = None

    @field_validator("checkpoint_root", "capabilities_file")
    @classmethod
    def _abs(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError("must be an absolute path")
        return v


class StoreConfig(_Strict):
    url: str = "sqlite:///sfed.db"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not (v.startswith("sqlite:///") or v.startswith("postgresql+psycopg://")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return v


class ServerConfig(_Strict):
    socket: str | None = "/run/sfed/sfed.sock"
    tcp: str | None = None  # "host:port"
    admins: tuple[str, ...] = ("root",)

    @field_validator("tcp")
    @classmethod
    def _tcp(cls, v: str | None) -> str | None:
        if v is None:
            return v
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port with a port from 1 to 65535")
        return v

    @model_validator(mode="after")
    def _some_listener(self) -> ServerConfig:
        if not self.socket and not self.tcp:
            raise ValueError("set socket, tcp or both")
        return self


class LoopConfig(_Strict):
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    pool_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"
    file: str | None = None  # default: stderr


class SSHConfig(_Strict):
    host: str
    port: Annotated[int, Field(gt=0, lt=65536)] = 22
    user: str
    key: str  # private key file
    known_hosts: str  # host keys are always verified

    @field_validator("key", "known_hosts")
    @classmethod
    def _exists(cls, v: str) -> str:
        if not Path(v).is_file():
            raise ValueError(f"no such file: {v}")
        return v


class PoolConfig(_Strict):
    name: Name
    kind: Literal["slurm"] = "slurm"
    transport: Literal["local", "ssh"] = "local"
    partition: str
    slurm_conf: str | None = None  # the pool's SLURM_CONF (on the login node for ssh)
    ssh: SSHConfig | None = None
    path_map: dict[str, str] = Field(default_factory=dict)  # federation path -> pool path
    # Where jobs that name no output file write it on the pool (sfedd streams it back).
    spool_dir: str | None = None
    # Run each job as its owner (sbatch --uid; the pool account must be root or SlurmUser).
    # Off: jobs run as the pool account, which then sees every user's files.
    submit_as_user: bool = True
    price_per_gpu_hour: Annotated[float, Field(ge=0)] = 0.0
    weight: Annotated[int, Field(ge=0)] = 1

    @field_validator("spool_dir")
    @classmethod
    def _spool(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError("must be an absolute path")
        return v

    @field_validator("path_map")
    @classmethod
    def _paths(cls, v: dict[str, str]) -> dict[str, str]:
        for src, dst in v.items():
            if not src.startswith("/") or not dst.startswith("/"):
                raise ValueError(f"{src!r} -> {dst!r}: both sides must be absolute paths")
        return v

    @model_validator(mode="after")
    def _transport(self) -> PoolConfig:
        if self.transport == "ssh" and self.ssh is None:
            raise ValueError("transport ssh needs an [ssh] table (host, user, key, known_hosts)")
        if self.transport == "local" and self.ssh is not None:
            raise ValueError("an [ssh] table needs transport = 'ssh'")
        return self


class Config(_Strict):
    federation: FederationConfig = Field(default_factory=FederationConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    pools: tuple[PoolConfig, ...] = ()

    @field_validator("pools")
    @classmethod
    def _unique(cls, v: tuple[PoolConfig, ...]) -> tuple[PoolConfig, ...]:
        seen: set[str] = set()
        for pool in v:
            if pool.name in seen:
                raise ValueError(f"pool name {pool.name!r} is used twice")
            seen.add(pool.name)
        return v

    def pool(self, name: str) -> PoolConfig:
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(name)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        lines.append(f"{where}: {msg}")
    return "; ".join(lines)


def parse_config(data: Any, *, source: str = "config") -> Config:
    """Validate already-loaded data; raises ConfigError naming every bad key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a table of keys")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: str | Path) -> Config:
    """Read a .toml, .yaml or .yml file and validate it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"{path}: unknown format (use .toml, .yaml or .yml)")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    return parse_config(data, source=str(path))
