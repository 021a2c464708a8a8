"""sfedd's configuration: one TOML or YAML file, validated whole at start.

Unknown keys and bad values are rejected with the key named ("pools.1.transport: ...").
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeAlias, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from scheduler.limits import MAX_GPU_TYPE
from scheduler.placement.features import GPU_TYPE

__all__ = [
    "ENVIRONMENT_DROP_KUBERNETES",
    "ENVIRONMENT_DROP_SLURM",
    "ENVIRONMENT_KEEP",
    "Config",
    "ConfigError",
    "FederationConfig",
    "KubernetesPoolConfig",
    "KubernetesVolume",
    "LogConfig",
    "LoopConfig",
    "PoolConfig",
    "PoolConfigBase",
    "SSHConfig",
    "ServerConfig",
    "SlurmPoolConfig",
    "StoreConfig",
    "TLSConfig",
    "Toleration",
    "load_config",
    "parse_config",
]

_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$")


def _valid_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError(
            "must be lowercase letters, digits and '-', starting with a letter and not "
            "ending with '-', at most 31"
        )
    return v


# Federation and pool names appear in remote tags, logs and CLI tables.
Name = Annotated[str, AfterValidator(_valid_name)]


def _readable_file(v: str | None) -> str | None:
    if v is not None and not Path(v).is_file():
        raise ValueError(f"no such file: {v}")
    return v


ReadableFile = Annotated[str, AfterValidator(_readable_file)]


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


class TLSConfig(_Strict):
    """TLS on the TCP listener: the server's certificate, and optionally client certificates
    (mTLS) that prove a user for services that have no MUNGE."""

    cert: ReadableFile  # PEM, the server's certificate chain
    key: ReadableFile  # PEM, its private key
    client_ca: ReadableFile | None = None  # PEM: client certificates signed by it are accepted
    # A verified client certificate's common name -> the user it proves.
    client_users: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _users_need_a_ca(self) -> TLSConfig:
        if self.client_users and self.client_ca is None:
            raise ValueError("client_users needs client_ca (the CA that signs their certificates)")
        return self


def _loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerConfig(_Strict):
    socket: str | None = "/run/sfed/sfed.sock"
    tcp: str | None = None  # "host:port"
    tls: TLSConfig | None = None  # required with tcp, unless tcp_plaintext on loopback
    tcp_plaintext: bool = False  # plaintext TCP: only on a loopback address
    admins: tuple[str, ...] = ("root",)
    # As Slurm's PrivateData: "jobs" hides other users' jobs from everyone but admins.
    private_data: tuple[Literal["jobs"], ...] = ()

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
        if self.tcp and self.tls is None and not self.tcp_plaintext:
            raise ValueError(
                "tcp needs a [server.tls] table (cert, key): credentials and job environments "
                "must not cross the network in the clear (or tcp_plaintext = true on loopback)"
            )
        if self.tcp_plaintext:
            if self.tls is not None or not self.tcp:
                raise ValueError("tcp_plaintext goes with tcp and without tls")
            if not _loopback(self.tcp.rpartition(":")[0]):
                raise ValueError("tcp_plaintext is allowed on a loopback address only")
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
    key: ReadableFile  # private key file
    known_hosts: ReadableFile  # host keys are always verified


PathTarget = TypeVar("PathTarget")


class PoolConfigBase(_Strict, Generic[PathTarget]):
    """What every kind of pool declares; each kind adds its own connection settings.

    The loop and the placement core read pools only through these fields and methods.
    """

    name: Name
    price_per_gpu_hour: Annotated[float, Field(ge=0)] = 0.0
    weight: Annotated[int, Field(ge=0)] = 1  # lower is preferred, as Slurm's node Weight
    # Federation path -> where it is on this pool (a path, or a volume mounted there).
    path_map: dict[str, PathTarget] = Field(default_factory=dict)
    # Variables of a job's environment this pool does not pass on (shell patterns); the
    # job's owner is told which. Each kind has its defaults (ENVIRONMENT_DROP_*).
    environment_drop: tuple[str, ...] = ()

    @field_validator("environment_drop")
    @classmethod
    def _patterns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in v:
            if not re.fullmatch(r"[A-Za-z_*?\[][A-Za-z0-9_*?\[\]!%.-]*", pattern):
                raise ValueError(f"{pattern!r} is not a variable name pattern (e.g. LD_*)")
        return v

    def path_prefixes(self) -> dict[str, str]:
        """Federation path -> path on this pool (see scheduler.pathmap); {} = the same paths."""
        return {}

    def served_partition(self) -> str | None:
        """A partition name that selects this pool besides its own name (sbatch -p)."""
        return None

    def transport_label(self) -> str:
        """How sfedd reaches the pool, for `sfed pools`."""
        raise NotImplementedError

    def runs_as_owner(self) -> bool:
        """Whether each job runs as its owner's account on the pool."""
        raise NotImplementedError


# What must not cross from the submitting side to a Slurm pool: the Slurm settings of the
# submitting cluster (the pool's Slurm sets its own; SLURM_CONF would point the job's srun at
# the wrong cluster), stale SFED_* of an enclosing federated job, sbatch's and srun's input
# variables, the dynamic loader's (they would load code into the job's processes), and GPU
# visibility (the pool's Slurm gives each job its own GPUs). The job's array variables are
# the federation's to set (SLURM_ARRAY_* are carried, see ENVIRONMENT_KEEP).
ENVIRONMENT_DROP_SLURM: tuple[str, ...] = (
    "SLURM_*", "SFED_*", "SBATCH_*", "SALLOC_*", "SRUN_*", "LD_*", "GCONV_PATH", "GETCONF_DIR",
    "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_*", "NLSPATH", "RESOLV_HOST_CONF",
    "RES_OPTIONS", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL",
)  # fmt: skip
# A Kubernetes pod runs another image: the login node's paths and identity stay behind too,
# and the GPUs a pod sees are the device plugin's to say (NVIDIA_VISIBLE_DEVICES=all would
# expose every GPU of the node).
ENVIRONMENT_DROP_KUBERNETES: tuple[str, ...] = (
    *ENVIRONMENT_DROP_SLURM, "PATH", "HOME", "HOSTNAME", "PWD", "OLDPWD", "SHELL", "SHLVL",
    "USER", "LOGNAME", "MAIL", "TMPDIR", "DISPLAY", "TERM", "_", "SSH_*", "XDG_*",
    "KUBERNETES_*", "NVIDIA_*",
)  # fmt: skip
# Carried whatever a pool's drop list says: set by the federation for the job (an array
# task's own variables, passed on by the front door's proxy).
ENVIRONMENT_KEEP: tuple[str, ...] = ("SLURM_ARRAY_*",)


class SlurmPoolConfig(PoolConfigBase[str]):
    """One partition of one Slurm cluster."""

    kind: Literal["slurm"] = "slurm"
    environment_drop: tuple[str, ...] = ENVIRONMENT_DROP_SLURM
    transport: Literal["local", "ssh"] = "local"
    partition: str
    slurm_conf: str | None = None  # the pool's SLURM_CONF (on the login node for ssh)
    ssh: SSHConfig | None = None
    # Where jobs that name no output file write it on the pool (sfedd streams it back).
    spool_dir: str | None = None
    # Run each job as its owner (sbatch --uid; the pool account must be root or SlurmUser).
    # Off: jobs run as the pool account, which then sees every user's files.
    submit_as_user: bool = True

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
    def _transport(self) -> SlurmPoolConfig:
        if self.transport == "ssh" and self.ssh is None:
            raise ValueError("transport ssh needs an [ssh] table (host, user, key, known_hosts)")
        if self.transport == "local" and self.ssh is not None:
            raise ValueError("an [ssh] table needs transport = 'ssh'")
        return self

    def path_prefixes(self) -> dict[str, str]:
        return dict(self.path_map)

    def served_partition(self) -> str | None:
        return self.partition

    def transport_label(self) -> str:
        return self.transport

    def runs_as_owner(self) -> bool:
        return self.submit_as_user


# Kubernetes names and labels (apimachinery's validation rules).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _dns_label(v: str) -> str:
    if len(v) > 63 or not _DNS_LABEL.match(v):
        raise ValueError(
            f"{v!r} is not a DNS label (lowercase letters, digits and '-', at most 63, "
            "starting and ending with a letter or digit)"
        )
    return v


def _label_key(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"label key {key!r}: the prefix must be a DNS subdomain")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise ValueError(f"label key {key!r}: the name must be at most 63 of [A-Za-z0-9-_.]")
    return key


def _label_value(key: str, value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError(f"label {key}={value!r}: the value must be at most 63 of [A-Za-z0-9-_.]")
    return value


DNSLabel = Annotated[str, AfterValidator(_dns_label)]


class Toleration(_Strict):
    """A toleration of the node pool's taints, as in a pod spec."""

    key: str = ""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""

    @model_validator(mode="after")
    def _check(self) -> Toleration:
        if self.key:
            _label_key(self.key)
        if self.operator == "Exists" and self.value:
            raise ValueError("operator Exists takes no value")
        if self.operator == "Equal" and not self.key:
            raise ValueError("operator Equal needs a key")
        if self.value:
            _label_value(self.key, self.value)
        return self


class KubernetesVolume(_Strict):
    """What is mounted at one absolute path in every pod: exactly one of a PersistentVolumeClaim,
    a host directory of the node, or an NFS export."""

    pvc: DNSLabel | None = None
    host_path: str | None = None
    nfs_server: str | None = None
    nfs_path: str | None = None
    read_only: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> KubernetesVolume:
        sources = [s for s in ("pvc", "host_path", "nfs_server") if getattr(self, s) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of pvc, host_path, nfs_server (with nfs_path)")
        if (self.nfs_server is None) != (self.nfs_path is None):
            raise ValueError("nfs_server and nfs_path go together")
        for path in (self.host_path, self.nfs_path):
            if path is not None and not path.startswith("/"):
                raise ValueError(f"{path!r} must be an absolute path")
        return self


class KubernetesPoolConfig(PoolConfigBase[KubernetesVolume]):
    """A GPU node pool of a Kubernetes cluster (GKE, EKS, on-premises).

    Each federation job becomes an Indexed Job with one pod per Slurm node; see
    scheduler.pools.kubernetes.
    """

    environment_drop: tuple[str, ...] = ENVIRONMENT_DROP_KUBERNETES

    kind: Literal["kubernetes"]
    kubeconfig: ReadableFile | None = None  # None: the in-cluster service account (sfedd in a pod)
    context: str | None = None  # a context of the kubeconfig; None: its current context
    namespace: DNSLabel = "default"
    node_selector: dict[str, str] = Field(default_factory=dict)  # the node pool's labels
    tolerations: tuple[Toleration, ...] = ()  # of the node pool's taints
    image: str  # the container image the scripts run in; needs python3 (see the README)
    image_pull_secrets: tuple[DNSLabel, ...] = ()
    service_account: DNSLabel | None = None
    priority_class: str | None = None  # a PriorityClass for the pods (preemption order)
    cluster_domain: str = "cluster.local"  # the cluster's DNS domain (kubelet --cluster-domain)
    # path_map: absolute path in the pods -> its volume, mounted at the same path as on the
    # Slurm pools (so nothing is translated).
    gpu_resource: str = "nvidia.com/gpu"
    # A node's GPU type is the value of this label (e.g. "nvidia.com/gpu.product", which
    # NVIDIA's GPU feature discovery sets), through `gpu_types` when it names the value
    # (e.g. {"NVIDIA-A100-SXM4-80GB" = "a100"}), else the value itself. None: untyped GPUs.
    gpu_type_label: str | None = None
    gpu_types: dict[str, str] = Field(default_factory=dict)
    # Label keys whose values are node features (for -C), e.g. "sfed.io/interconnect".
    feature_labels: tuple[str, ...] = ()
    run_as_user: Annotated[int, Field(ge=0)] | None = None
    run_as_group: Annotated[int, Field(ge=0)] | None = None
    # Run each job's pods with its owner's uid and gid (as sfedd's host resolves the name), so
    # that files on shared volumes get the same owners as from the Slurm pools.
    run_as_owner: bool = False
    agent_port: Annotated[int, Field(gt=0, lt=65536)] = 6820
    # Finished Jobs (and their pods and logs) stay this long, then Kubernetes deletes them.
    ttl_after_finished_s: Annotated[int, Field(ge=60)] = 86400

    def transport_label(self) -> str:
        return "api"

    def runs_as_owner(self) -> bool:
        return self.run_as_owner  # else the image's user, or run_as_user

    @model_validator(mode="after")
    def _one_identity(self) -> KubernetesPoolConfig:
        if self.run_as_owner and (self.run_as_user is not None or self.run_as_group is not None):
            raise ValueError("run_as_owner and run_as_user/run_as_group exclude each other")
        return self

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v) or v != v.strip():
            raise ValueError("must be a container image reference without spaces")
        return v

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            _label_key(key)
            _label_value(key, value)
        return v

    @field_validator("gpu_type_label")
    @classmethod
    def _type_label(cls, v: str | None) -> str | None:
        return v if v is None else _label_key(v)

    @field_validator("feature_labels")
    @classmethod
    def _feature_labels(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for key in v:
            _label_key(key)
        return v

    @field_validator("gpu_types")
    @classmethod
    def _gpu_types(cls, v: dict[str, str]) -> dict[str, str]:
        for value, name in v.items():
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise ValueError(f"{value!r}: a label value is at most 63 of [A-Za-z0-9-_.]")
            if len(name) > MAX_GPU_TYPE or not GPU_TYPE.fullmatch(name):
                raise ValueError(
                    f"{value} = {name!r}: a GPU type is at most {MAX_GPU_TYPE} of [A-Za-z0-9_.-]"
                )
        return v

    @model_validator(mode="after")
    def _types_need_a_label(self) -> KubernetesPoolConfig:
        if self.gpu_types and self.gpu_type_label is None:
            raise ValueError("gpu_types maps values of gpu_type_label: set gpu_type_label too")
        return self

    @field_validator("priority_class", "cluster_domain")
    @classmethod
    def _subdomain(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > 253 or not _DNS_SUBDOMAIN.match(v)):
            raise ValueError(f"{v!r} is not a DNS subdomain (lowercase letters, digits, '-', '.')")
        return v

    @field_validator("gpu_resource")
    @classmethod
    def _resource(cls, v: str) -> str:
        if "/" not in v:
            raise ValueError("must be an extended resource name such as nvidia.com/gpu")
        _label_key(v)
        return v

    @field_validator("path_map")
    @classmethod
    def _mounts(cls, v: dict[str, KubernetesVolume]) -> dict[str, KubernetesVolume]:
        for path in v:
            if not path.startswith("/") or path.rstrip("/") in ("", "/sfed"):
                raise ValueError(f"{path!r}: must be an absolute path other than / and /sfed")
            if "/../" in f"{path}/" or "/./" in f"{path}/":
                raise ValueError(f"{path!r}: must not contain . or .. parts")
        return v


def _pool_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "slurm"))
    return str(getattr(value, "kind", "slurm"))


PoolConfig: TypeAlias = SlurmPoolConfig | KubernetesPoolConfig
_AnyPool = Annotated[
    Annotated[SlurmPoolConfig, Tag("slurm")] | Annotated[KubernetesPoolConfig, Tag("kubernetes")],
    Discriminator(_pool_kind),
]


class Config(_Strict):
    federation: FederationConfig = Field(default_factory=FederationConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    pools: tuple[_AnyPool, ...] = ()

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
        # The pool kind's tag ("pools.0.slurm.partition") says nothing the key does not.
        loc = [
            part
            for i, part in enumerate(item["loc"])
            if not (i == 2 and item["loc"][0] == "pools" and part in ("slurm", "kubernetes"))
        ]
        where = ".".join(str(part) for part in loc) or "(top level)"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        elif item["type"] == "union_tag_invalid":
            msg = "kind must be 'slurm' or 'kubernetes'"
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
