"""Free and total resources of a node pool from its Node and Pod objects. Pure.

A node counts when it is Ready, not cordoned, carries the pool's labels (the API call filters
by the node selector) and has no NoSchedule/NoExecute taint the pool does not tolerate. Its
free GPUs are its allocatable GPUs minus the requests of the pods bound to it that have not
ended, whoever owns them: other tenants' pods take GPUs too. Its GPU type and features come
from its labels, as the pool's config names them (`NodeLabels`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from scheduler.config import KubernetesPoolConfig, Toleration
from scheduler.domain import NodeSnapshot

__all__ = [
    "NodeLabels",
    "QuantityError",
    "node_snapshots",
    "parse_quantity",
    "pod_requests",
    "tolerates",
]

_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
# A number, then a decimal exponent ("1e3") or a suffix ("Ei" and "E" are suffixes, not exponents).
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE])?)$"
)
_ENDED = frozenset({"Succeeded", "Failed"})


class QuantityError(ValueError):
    """Not a Kubernetes resource quantity."""


def parse_quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity ("7500m", "32Gi", "1e3", 4) as a number of base units."""
    if isinstance(text, int | float):
        return Decimal(str(text))
    return _parse_text(text)


@functools.lru_cache(maxsize=4096)  # a cluster repeats a few dozen quantities many times
def _parse_text(text: str) -> Decimal:
    match = _QUANTITY.match(text.strip())
    if not match:
        raise QuantityError(f"not a quantity: {text!r}")
    number, exponent, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise QuantityError(f"not a quantity: {text!r}") from None
    if exponent:
        return value * Decimal(10) ** int(exponent[1:])
    return value * _SUFFIX[suffix or ""]


def pod_requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """What a pod takes from its node: the sum over its containers, or the largest init
    container when that is more (the scheduler's rule). Limits stand in for missing requests."""

    def of(containers: Iterable[Mapping[str, Any]]) -> list[dict[str, Decimal]]:
        out = []
        for container in containers:
            res = container.get("resources") or {}
            merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
            out.append({k: parse_quantity(v) for k, v in merged.items()})
        return out

    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for req in of(spec.get("containers") or ()):
        for key, value in req.items():
            total[key] = total.get(key, Decimal(0)) + value
    for req in of(spec.get("initContainers") or ()):
        for key, value in req.items():
            total[key] = max(total.get(key, Decimal(0)), value)
    return total


@dataclass(frozen=True, slots=True)
class NodeLabels:
    """Which node labels say a node's GPU type and features (the pool's `gpu_type_label`,
    `gpu_types` and `feature_labels`)."""

    gpu_type_label: str | None = None
    gpu_types: Mapping[str, str] = field(default_factory=dict)  # label value -> type name
    feature_labels: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: KubernetesPoolConfig) -> NodeLabels:
        return cls(config.gpu_type_label, dict(config.gpu_types), config.feature_labels)

    def gpu_type(self, labels: Mapping[str, str]) -> str:
        """The type named by the label's value, mapped when the map has it; "" without it."""
        if self.gpu_type_label is None:
            return ""
        value = labels.get(self.gpu_type_label) or ""
        return self.gpu_types.get(value, value)

    def type_values(self, gpu_type: str) -> list[str]:
        """The label values that mean `gpu_type` (for a node affinity), sorted."""
        values = {value for value, name in self.gpu_types.items() if name == gpu_type}
        if gpu_type not in self.gpu_types:
            values.add(gpu_type)  # an unmapped value is its own type
        return sorted(values)

    def features(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        """The values of the feature labels the node has."""
        return tuple(sorted({labels[k] for k in self.feature_labels if labels.get(k)}))


def tolerates(tolerations: Sequence[Toleration], taint: Mapping[str, Any]) -> bool:
    """Whether one of the tolerations lets pods onto a node with `taint`."""
    for t in tolerations:
        if t.effect and t.effect != taint.get("effect"):
            continue
        if t.operator == "Exists" and (not t.key or t.key == taint.get("key")):
            return True
        if (
            t.operator == "Equal"
            and t.key == taint.get("key")
            and t.value == taint.get("value", "")
        ):
            return True
    return False


def _unusable(node: Mapping[str, Any], tolerations: Sequence[Toleration]) -> str:
    """Why pods of the pool cannot go to the node now, or "" when they can."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    if spec.get("unschedulable"):
        return "cordoned"
    ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
    if not ready or ready[0].get("status") != "True":
        return "not ready"
    for taint in spec.get("taints") or ():
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return f"taint {taint.get('key')}"
    return ""


def _amounts(
    allocatable: Mapping[str, Any],
    taken: Mapping[str, Decimal],
    key: str,
    scale: Decimal = Decimal(1),
) -> tuple[int, int]:
    """Total and free whole units of `key` (CPUs, MiB, GPUs); a fractional CPU left is none."""
    total = parse_quantity(allocatable.get(key, "0")) / scale
    free = total - taken.get(key, Decimal(0)) / scale
    return int(total), max(0, int(free))


def node_snapshots(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    *,
    gpu_resource: str,
    tolerations: Sequence[Toleration] = (),
    labels: NodeLabels | None = None,
) -> tuple[NodeSnapshot, ...]:
    """One NodeSnapshot per node, sorted by name; QuantityError for an unreadable quantity.
    With `labels`, each node's GPU type and features come from its labels."""
    labels = labels or NodeLabels()
    used: dict[str, dict[str, Decimal]] = {}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or (pod.get("status") or {}).get("phase") in _ENDED:
            continue
        bucket = used.setdefault(node_name, {})
        for key, value in pod_requests(pod).items():
            bucket[key] = bucket.get(key, Decimal(0)) + value
    out = []
    for node in nodes:
        name = node["metadata"]["name"]
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        taken = used.get(name, {})

        gpus_total, gpus_free = _amounts(allocatable, taken, gpu_resource)
        cpus_total, cpus_free = _amounts(allocatable, taken, "cpu")
        mem_total, mem_free = _amounts(allocatable, taken, "memory", Decimal(2) ** 20)
        node_labels = node["metadata"].get("labels") or {}
        out.append(
            NodeSnapshot(
                name=name,
                gpus_total=gpus_total,
                gpus_free=gpus_free,
                cpus_total=cpus_total,
                cpus_free=cpus_free,
                mem_total_mb=mem_total,
                mem_free_mb=mem_free,
                schedulable=not _unusable(node, tolerations),
                gpu_type=labels.gpu_type(node_labels),
                features=labels.features(node_labels),
            )
        )
    return tuple(sorted(out, key=lambda n: n.name))
