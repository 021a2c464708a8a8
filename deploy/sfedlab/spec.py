"""The lab's clusters, in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"^[a-z][a-z0-9]{0,30}$")


@dataclass(frozen=True)
class ClusterSpec:
    """One lab Slurm cluster: a slurmctld plus `nodes` slurmd on this host."""

    name: str
    nodes: int
    gpus_per_node: int
    cpus_per_node: int
    mem_mb_per_node: int
    ctld_port: int
    node_port_base: int
    partition: str = "gpu"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"cluster name {self.name!r} must match {_NAME.pattern}")
        if self.nodes < 1:
            raise ValueError(f"cluster {self.name}: nodes must be >= 1")
        if self.gpus_per_node < 0 or self.cpus_per_node < 1 or self.mem_mb_per_node < 1:
            raise ValueError(f"cluster {self.name}: bad node size")
        for port in (self.ctld_port, self.node_port_base, self.node_port_base + self.nodes - 1):
            if not 1024 <= port <= 65535:
                raise ValueError(f"cluster {self.name}: port {port} out of range")

    @property
    def node_names(self) -> tuple[str, ...]:
        """Node names, e.g. ("alpha-n1", "alpha-n2")."""
        return tuple(f"{self.name}-n{i}" for i in range(1, self.nodes + 1))

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
    ),
    ClusterSpec(
        name="beta",
        nodes=4,
        gpus_per_node=8,
        cpus_per_node=16,
        mem_mb_per_node=64000,
        ctld_port=17818,
        node_port_base=17910,
    ),
)

LAB_SSH_PORT = 17022
