"""The lab's clusters, in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_NAME = re.compile(r"^[a-z][a-z0-9]{0,30}$")
_PARTITION = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_GPU_TYPE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,30}$")  # a Slurm gres type, e.g. a100
_FEATURE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,30}$")  # a node feature, e.g. ib

Role = Literal["pool", "door"]


@dataclass(frozen=True)
class ClusterSpec:
    """One lab Slurm cluster: a slurmctld plus `nodes` slurmd on this host.

    A "pool" runs the federation's jobs in `partition`. A "door" is the front door: its nodes
    are proxy nodes (no GPUs), `partition` is the federated virtual partition whose jobs the
    job_submit Lua plugin turns into proxy jobs, and `local_partition` (the default) takes
    ordinary jobs on the same nodes. A pool's GPUs may have a type (gres `gpu:<type>:N`), and
    its nodes features (slurm.conf `Features=`), which `--gres=gpu:<type>:N` and `-C` ask for.
    """

    name: str
    nodes: int
    gpus_per_node: int
    cpus_per_node: int
    mem_mb_per_node: int
    ctld_port: int
    node_port_base: int
    partition: str = "gpu"
    role: Role = "pool"
    local_partition: str = "local"  # door only
    gpu_type: str = ""  # "" = untyped GPUs
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"cluster name {self.name!r} must match {_NAME.pattern}")
        if self.role not in ("pool", "door"):
            raise ValueError(f"cluster {self.name}: role must be 'pool' or 'door'")
        for part in (self.partition, self.local_partition):
            if not _PARTITION.match(part):
                raise ValueError(
                    f"cluster {self.name}: partition {part!r} must match {_PARTITION.pattern}"
                )
        if self.role == "door":
            if self.gpus_per_node:
                raise ValueError(f"door {self.name}: proxy nodes have no GPUs")
            if self.local_partition == self.partition:
                raise ValueError(f"door {self.name}: local_partition must differ from partition")
        if self.gpu_type and (not self.gpus_per_node or not _GPU_TYPE.match(self.gpu_type)):
            raise ValueError(
                f"cluster {self.name}: a GPU type needs GPUs and must match {_GPU_TYPE.pattern}"
            )
        for feature in self.features:
            if not _FEATURE.match(feature):
                raise ValueError(
                    f"cluster {self.name}: feature {feature!r} must match {_FEATURE.pattern}"
                )
        if self.nodes < 1:
            raise ValueError(f"cluster {self.name}: nodes must be >= 1")
        if self.gpus_per_node < 0 or self.cpus_per_node < 1 or self.mem_mb_per_node < 1:
            raise ValueError(f"cluster {self.name}: bad node size")
        for port in (self.ctld_port, self.node_port_base, self.node_port_base + self.nodes - 1):
            if not 1024 <= port <= 65535:
                raise ValueError(f"cluster {self.name}: port {port} out of range")

    @property
    def is_door(self) -> bool:
        """True for the front door."""
        return self.role == "door"

    @property
    def node_prefix(self) -> str:
        """What node names start with before their number: "alpha-n", or "door-p" (proxy)."""
        return f"{self.name}-{'p' if self.is_door else 'n'}"

    @property
    def node_names(self) -> tuple[str, ...]:
        """Node names, e.g. ("alpha-n1", "alpha-n2"), or ("door-p1", "door-p2") for a door."""
        return tuple(f"{self.node_prefix}{i}" for i in range(1, self.nodes + 1))

    @property
    def partitions(self) -> tuple[str, ...]:
        """The partitions of the cluster: a door's federated one first, then its local one."""
        return (self.partition, self.local_partition) if self.is_door else (self.partition,)

    @property
    def proxy_slots(self) -> int:
        """How many proxy jobs a door runs at once (one CPU each); 0 for a pool."""
        return self.nodes * self.cpus_per_node if self.is_door else 0

    @property
    def node_ports(self) -> tuple[int, ...]:
        """The slurmd port of each node, in node_names order."""
        return tuple(self.node_port_base + i for i in range(self.nodes))

    @property
    def ports(self) -> tuple[int, ...]:
        """Every TCP port this cluster listens on."""
        return (self.ctld_port, *self.node_ports)


LAB_CLUSTERS: tuple[ClusterSpec, ...] = (
    ClusterSpec(
        name="alpha",
        nodes=2,
        gpus_per_node=4,
        cpus_per_node=16,
        mem_mb_per_node=64000,
        ctld_port=17817,
        node_port_base=17900,
        gpu_type="a100",
        features=("a100",),
    ),
    ClusterSpec(
        name="beta",
        nodes=4,
        gpus_per_node=8,
        cpus_per_node=16,
        mem_mb_per_node=64000,
        ctld_port=17818,
        node_port_base=17910,
        gpu_type="h100",
        features=("h100", "ib"),
    ),
    # The front door: `sbatch -p fed` there becomes a 1-CPU proxy job. Memory covers the
    # default 4000 MB per CPU of every CPU, so CPUs, not memory, bound the proxy jobs.
    ClusterSpec(
        name="door",
        nodes=2,
        gpus_per_node=0,
        cpus_per_node=64,
        mem_mb_per_node=64 * 4000,
        ctld_port=17819,
        node_port_base=17920,
        partition="fed",
        role="door",
        local_partition="local",
    ),
)

LAB_SSH_PORT = 17022
# The front door's slurmdbd (accounting), next to the slurmctld ports.
LAB_DBD_PORT = 17820
