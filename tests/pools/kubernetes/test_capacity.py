"""Table-driven tests of scheduler.pools.kubernetes.capacity: quantities, pod requests, nodes."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from scheduler.config import Toleration
from scheduler.domain import NodeSnapshot
from scheduler.pools.kubernetes.capacity import (
    NodeLabels,
    QuantityError,
    node_snapshots,
    parse_quantity,
    pod_requests,
)
from tests.pools.kubernetes.builders import container, node, pod, running, taint, terminated

GPU = "nvidia.com/gpu"


def gpu_pod(gpus: str, **kwargs: Any) -> dict[str, Any]:
    """A pod asking for `gpus` GPUs (and nothing else)."""
    return pod(containers=[container(requests={GPU: gpus}, limits={GPU: gpus})], **kwargs)


def snapshot_of(
    the_node: dict[str, Any],
    pods: Sequence[dict[str, Any]] = (),
    *,
    gpu_resource: str = GPU,
    tolerations: tuple[Toleration, ...] = (),
) -> NodeSnapshot:
    """The one snapshot node_snapshots makes of `the_node`."""
    (only,) = node_snapshots([the_node], pods, gpu_resource=gpu_resource, tolerations=tolerations)
    return only


# --- parse_quantity --------------------------------------------------------------------------


QUANTITIES: list[tuple[str | int | float, Decimal]] = [
    ("7500m", Decimal("7.5")),
    ("32Gi", Decimal(32 * 2**30)),
    ("1e3", Decimal(1000)),
    ("1E3", Decimal(1000)),
    ("1e-3", Decimal("0.001")),
    ("128974848", Decimal(128974848)),
    ("129M", Decimal(129_000_000)),
    ("123Mi", Decimal(123 * 2**20)),
    ("33554432Ki", Decimal(32 * 2**30)),
    ("1.5", Decimal("1.5")),
    ("12k", Decimal(12_000)),
    ("0", Decimal(0)),
    ("8", Decimal(8)),
    (4, Decimal(4)),
    (2.5, Decimal("2.5")),
]


@pytest.mark.parametrize(
    ("text", "expected"), [pytest.param(t, e, id=repr(t)) for t, e in QUANTITIES]
)
def test_parse_quantity_reads_base_units(text: str | int | float, expected: Decimal) -> None:
    """parse_quantity turns a Kubernetes quantity into its number of base units."""
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "abc", "12x", "1.2.3", "Gi", "1 Gi", "1K", "1ki", "m", "1Gib"],
    ids=repr,
)
def test_parse_quantity_rejects_non_quantities(text: str) -> None:
    """Text that is not a Kubernetes quantity raises QuantityError."""
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_parse_quantity_rejects_a_dangling_exponent() -> None:
    """ "1e" (an exponent without digits) raises QuantityError like any other non-quantity."""
    with pytest.raises(QuantityError):
        parse_quantity("1e")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1E", Decimal(10) ** 18), ("2Ei", Decimal(2 * 2**60))],
    ids=["exa", "exbi"],
)
def test_parse_quantity_reads_exa_suffixes(text: str, expected: Decimal) -> None:
    """The exa suffixes E and Ei, listed in the suffix table, parse like the smaller ones."""
    assert parse_quantity(text) == expected


# --- pod_requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("containers", "init_containers", "expected"),
    [
        pytest.param(
            [container(requests={"cpu": "500m", GPU: "1"})],
            [],
            {"cpu": Decimal("0.5"), GPU: Decimal(1)},
            id="one container's requests",
        ),
        pytest.param(
            [
                container("a", requests={"cpu": "500m", "memory": "1Gi"}),
                container("b", requests={"cpu": "1500m", "memory": "512Mi"}),
            ],
            [],
            {"cpu": Decimal(2), "memory": Decimal(1536 * 2**20)},
            id="containers add up",
        ),
        pytest.param(
            [container(requests={"cpu": "2"}, limits={"cpu": "4", GPU: "8"})],
            [],
            {"cpu": Decimal(2), GPU: Decimal(8)},
            id="limits stand in for missing requests, requests win",
        ),
        pytest.param(
            [container(limits={"cpu": "3", "memory": "8Gi"})],
            [],
            {"cpu": Decimal(3), "memory": Decimal(8 * 2**30)},
            id="limits only",
        ),
        pytest.param(
            [container("a", requests={"cpu": "1"}), container("b", requests={"cpu": "1"})],
            [container("init", requests={"cpu": "3"})],
            {"cpu": Decimal(3)},
            id="an init container larger than the sum wins",
        ),
        pytest.param(
            [container("a", requests={"cpu": "2"}), container("b", requests={"cpu": "2"})],
            [container("init", requests={"cpu": "3"})],
            {"cpu": Decimal(4)},
            id="the sum wins over a smaller init container",
        ),
        pytest.param(
            [container(requests={"cpu": "1"})],
            [
                container("i1", requests={"cpu": "2"}),
                container("i2", requests={"cpu": "5"}),
            ],
            {"cpu": Decimal(5)},
            id="init containers take the max, not the sum",
        ),
        pytest.param(
            [container(requests={"cpu": "1"})],
            [container("init", limits={"memory": "2Gi"})],
            {"cpu": Decimal(1), "memory": Decimal(2 * 2**30)},
            id="a resource only an init container asks for",
        ),
        pytest.param([container()], [], {}, id="no resources"),
    ],
)
def test_pod_requests(
    containers: list[dict[str, Any]],
    init_containers: list[dict[str, Any]],
    expected: dict[str, Decimal],
) -> None:
    """pod_requests is the scheduler's effective request of a pod."""
    assert pod_requests(pod(containers=containers, init_containers=init_containers)) == expected


def test_pod_requests_of_a_pod_without_spec() -> None:
    """A pod document without a spec requests nothing."""
    assert pod_requests({"metadata": {"name": "p"}}) == {}


# --- node_snapshots: GPUs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pods", "free"),
    [
        pytest.param([], 8, id="no pods"),
        pytest.param([gpu_pod("2", state=running())], 6, id="a running pod takes its request"),
        pytest.param(
            [gpu_pod("2", state=running()), gpu_pod("3", index=1, state=running())],
            3,
            id="pods add up",
        ),
        pytest.param([gpu_pod("4", phase="Pending")], 4, id="a bound Pending pod counts"),
        pytest.param(
            [gpu_pod("5", namespace="other-tenant", state=running())],
            3,
            id="a pod of another namespace counts",
        ),
        pytest.param([gpu_pod("2", phase="Unknown")], 6, id="an Unknown pod counts"),
        pytest.param([gpu_pod("8", state=terminated(0))], 8, id="a Succeeded pod does not count"),
        pytest.param([gpu_pod("8", state=terminated(1))], 8, id="a Failed pod does not count"),
        pytest.param([gpu_pod("8", node_name=None)], 8, id="an unbound pod does not count"),
        pytest.param(
            [gpu_pod("8", node_name="gpu-b", state=running())],
            8,
            id="a pod on another node does not count",
        ),
        pytest.param(
            [pod(containers=[container(limits={GPU: "2"})], state=running())],
            6,
            id="a pod with GPU limits only counts",
        ),
        pytest.param(
            [gpu_pod("6", state=running()), gpu_pod("6", index=1, state=running())],
            0,
            id="free never below 0",
        ),
    ],
)
def test_free_gpus(pods: list[dict[str, Any]], free: int) -> None:
    """Free GPUs are the allocatable ones minus the requests of the node's non-ended pods."""
    assert snapshot_of(node("gpu-a", gpus="8"), pods).gpus_free == free


def test_total_gpus_are_the_allocatable_ones() -> None:
    """gpus_total is status.allocatable, not status.capacity."""
    snap = snapshot_of(node("gpu-a", gpus="7", capacity_gpus="8"))
    assert (snap.gpus_total, snap.gpus_free) == (7, 7)


def test_node_without_the_gpu_resource_has_no_gpus() -> None:
    """A node whose allocatable lacks the GPU resource has 0 GPUs, total and free."""
    snap = snapshot_of(node("cpu-a", gpus=None))
    assert (snap.gpus_total, snap.gpus_free) == (0, 0)


@pytest.mark.parametrize(
    ("node_resource", "pool_resource", "total"),
    [
        pytest.param("amd.com/gpu", "amd.com/gpu", 8, id="the pool's resource is counted"),
        pytest.param("amd.com/gpu", GPU, 0, id="another vendor's resource is not"),
    ],
)
def test_custom_gpu_resource(node_resource: str, pool_resource: str, total: int) -> None:
    """GPUs are counted under the pool's gpu_resource name only."""
    the_node = node("gpu-a", gpus="8", gpu_resource=node_resource)
    assert snapshot_of(the_node, gpu_resource=pool_resource).gpus_total == total


def test_custom_gpu_resource_requests_are_subtracted() -> None:
    """Pods' requests of a custom GPU resource come off the node's free count."""
    the_pod = pod(containers=[container(limits={"amd.com/gpu": "3"})], state=running())
    the_node = node("gpu-a", gpus="8", gpu_resource="amd.com/gpu")
    assert snapshot_of(the_node, [the_pod], gpu_resource="amd.com/gpu").gpus_free == 5


# --- node_snapshots: CPUs and memory ---------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "total", "free"),
    [
        pytest.param(None, 7, 7, id="7500m allocatable is 7 whole CPUs"),
        pytest.param("500m", 7, 7, id="7.0 left is 7"),
        pytest.param("600m", 7, 6, id="6.9 left is 6"),
        pytest.param("7500m", 7, 0, id="all taken"),
        pytest.param("16", 7, 0, id="overcommitted never below 0"),
    ],
)
def test_cpus_in_whole_units(requested: str | None, total: int, free: int) -> None:
    """CPUs are whole units: a fractional CPU left over is none."""
    pods = [pod(containers=[container(requests={"cpu": requested})])] if requested else []
    snap = snapshot_of(node("gpu-a", cpu="7500m"), pods)
    assert (snap.cpus_total, snap.cpus_free) == (total, free)


@pytest.mark.parametrize(
    ("allocatable", "requested", "total", "free"),
    [
        pytest.param("32Gi", None, 32768, 32768, id="Gi"),
        pytest.param("33554432Ki", None, 32768, 32768, id="Ki"),
        pytest.param("32Gi", ["1Gi", "512Mi"], 32768, 31232, id="binary requests"),
        pytest.param("32Gi", ["1G"], 32768, 31814, id="a decimal request in MiB, rounded down"),
        pytest.param("1000000000", None, 953, 953, id="plain bytes"),
        pytest.param("32Gi", ["64Gi"], 32768, 0, id="never below 0"),
    ],
)
def test_memory_in_mib(
    allocatable: str, requested: list[str] | None, total: int, free: int
) -> None:
    """Memory is reported in whole MiB (2**20 bytes)."""
    containers = [container(f"c{i}", requests={"memory": m}) for i, m in enumerate(requested or [])]
    pods = [pod(containers=containers)] if containers else []
    snap = snapshot_of(node("gpu-a", memory=allocatable), pods)
    assert (snap.mem_total_mb, snap.mem_free_mb) == (total, free)


# --- node_snapshots: schedulable -------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_node", "tolerations", "schedulable"),
    [
        pytest.param(node("n"), (), True, id="ready"),
        pytest.param(node("n", unschedulable=True), (), False, id="cordoned"),
        pytest.param(node("n", ready="False"), (), False, id="NotReady"),
        pytest.param(node("n", ready="Unknown"), (), False, id="Ready Unknown"),
        pytest.param(node("n", ready=None), (), False, id="no Ready condition"),
        pytest.param(
            node("n", taints=[taint("dedicated", "NoSchedule", "infer")]),
            (),
            False,
            id="NoSchedule taint not tolerated",
        ),
        pytest.param(
            node("n", taints=[taint("gpu-maintenance", "NoExecute")]),
            (),
            False,
            id="NoExecute taint not tolerated",
        ),
        pytest.param(
            node("n", taints=[taint("spot", "PreferNoSchedule")]),
            (),
            True,
            id="PreferNoSchedule taint ignored",
        ),
        pytest.param(
            node("n", taints=[taint(GPU, "NoSchedule", "present")]),
            (Toleration(key=GPU, operator="Equal", value="present", effect="NoSchedule"),),
            True,
            id="Equal toleration",
        ),
        pytest.param(
            node("n", taints=[taint(GPU, "NoSchedule", "present")]),
            (Toleration(key=GPU, operator="Equal", value="absent", effect="NoSchedule"),),
            False,
            id="Equal toleration of another value",
        ),
        pytest.param(
            node("n", taints=[taint(GPU, "NoSchedule")]),
            (Toleration(key=GPU, operator="Equal", effect="NoSchedule"),),
            True,
            id="Equal toleration with empty value of a taint without value",
        ),
        pytest.param(
            node("n", taints=[taint(GPU, "NoSchedule", "present")]),
            (Toleration(key=GPU, operator="Exists", effect="NoSchedule"),),
            True,
            id="Exists toleration of the key",
        ),
        pytest.param(
            node("n", taints=[taint("dedicated", "NoSchedule", "x")]),
            (Toleration(key=GPU, operator="Exists"),),
            False,
            id="Exists toleration of another key",
        ),
        pytest.param(
            node("n", taints=[taint("a", "NoSchedule"), taint("b", "NoExecute", "v")]),
            (Toleration(operator="Exists"),),
            True,
            id="Exists toleration without key tolerates all",
        ),
        pytest.param(
            node("n", taints=[taint(GPU, "NoSchedule", "present")]),
            (Toleration(key=GPU, operator="Exists"),),
            True,
            id="toleration without effect matches any effect",
        ),
        pytest.param(
            node("n", taints=[taint(GPU, "NoExecute", "present")]),
            (Toleration(key=GPU, operator="Exists", effect="NoSchedule"),),
            False,
            id="toleration of another effect",
        ),
        pytest.param(
            node("n", taints=[taint(GPU, "NoSchedule"), taint("dedicated", "NoExecute", "x")]),
            (Toleration(key=GPU, operator="Exists"),),
            False,
            id="one of two taints not tolerated",
        ),
        pytest.param(
            node("n", taints=[taint(GPU, "NoSchedule"), taint("dedicated", "NoExecute", "x")]),
            (
                Toleration(key=GPU, operator="Exists"),
                Toleration(key="dedicated", value="x", effect="NoExecute"),
            ),
            True,
            id="each taint tolerated by its own toleration",
        ),
        pytest.param(
            node("n", unschedulable=True),
            (Toleration(operator="Exists"),),
            False,
            id="tolerations do not undo a cordon",
        ),
    ],
)
def test_schedulable(
    the_node: dict[str, Any], tolerations: tuple[Toleration, ...], schedulable: bool
) -> None:
    """A node is schedulable when Ready, not cordoned, and every hard taint is tolerated."""
    assert snapshot_of(the_node, tolerations=tolerations).schedulable is schedulable


def test_unschedulable_node_still_reports_its_resources() -> None:
    """A cordoned node keeps its totals and free counts; only schedulable changes."""
    snap = snapshot_of(node("n", unschedulable=True))
    assert snap == NodeSnapshot("n", 8, 8, 7, 7, 32768, 32768, schedulable=False)


# --- node_snapshots: the whole pool ----------------------------------------------------------


def test_snapshots_sorted_by_name() -> None:
    """node_snapshots returns one snapshot per node, sorted by name."""
    nodes = [node("gpu-c"), node("gpu-a"), node("gpu-b")]
    assert [s.name for s in node_snapshots(nodes, [], gpu_resource=GPU)] == [
        "gpu-a",
        "gpu-b",
        "gpu-c",
    ]


def test_snapshots_charge_each_pod_to_its_own_node() -> None:
    """Each pod's requests come off the node it is bound to, and only that one."""
    pods = [
        gpu_pod("2", node_name="gpu-a", state=running()),
        gpu_pod("5", index=1, node_name="gpu-b", state=running()),
        gpu_pod("1", index=2, node_name="gone-node", state=running()),
    ]
    snaps = node_snapshots([node("gpu-b"), node("gpu-a")], pods, gpu_resource=GPU)
    assert {s.name: s.gpus_free for s in snaps} == {"gpu-a": 6, "gpu-b": 3}


def test_no_nodes_no_snapshots() -> None:
    """An empty node list gives an empty tuple, whatever the pods."""
    assert node_snapshots([], [gpu_pod("1", state=running())], gpu_resource=GPU) == ()


@pytest.mark.parametrize(
    ("nodes", "pods"),
    [
        pytest.param([node("n", gpus="eight")], [], id="node allocatable"),
        pytest.param([node("n")], [gpu_pod("two", state=running())], id="pod request"),
    ],
)
def test_unreadable_quantity_raises(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]]
) -> None:
    """An unreadable quantity in a node or a bound pod raises QuantityError."""
    with pytest.raises(QuantityError):
        node_snapshots(nodes, pods, gpu_resource=GPU)


# --- node_snapshots: GPU types and features --------------------------------------------------

PRODUCT = "nvidia.com/gpu.product"
LABELS = NodeLabels(
    gpu_type_label=PRODUCT,
    gpu_types={"NVIDIA-H100-80GB-HBM3": "h100", "NVIDIA-A100-SXM4-80GB": "a100"},
    feature_labels=("sfed.io/net", "sfed.io/disk"),
)


@pytest.mark.parametrize(
    ("labels", "node_labels", "gpu_type", "features"),
    [
        pytest.param(LABELS, {}, "h100", (), id="mapped product"),
        pytest.param(LABELS, {PRODUCT: "NVIDIA-A100-SXM4-80GB"}, "a100", (), id="other product"),
        pytest.param(LABELS, {PRODUCT: "Tesla-T4"}, "Tesla-T4", (), id="unmapped: the value"),
        pytest.param(NodeLabels(gpu_type_label="none.io/x"), {}, "", (), id="label absent"),
        pytest.param(NodeLabels(), {}, "", (), id="no label configured: untyped"),
        pytest.param(
            LABELS,
            {"sfed.io/net": "ib", "sfed.io/disk": "nvme", "other": "x"},
            "h100",
            ("ib", "nvme"),
            id="feature labels' values",
        ),
        pytest.param(LABELS, {"sfed.io/net": ""}, "h100", (), id="empty value is no feature"),
    ],
)
def test_gpu_type_and_features_from_labels(
    labels: NodeLabels, node_labels: dict[str, str], gpu_type: str, features: tuple[str, ...]
) -> None:
    """The type label's value (mapped when the map names it) and the feature labels' values."""
    (only,) = node_snapshots([node("n", labels=node_labels)], [], gpu_resource=GPU, labels=labels)
    assert (only.gpu_type, only.features) == (gpu_type, features)


@pytest.mark.parametrize(
    ("gpu_type", "values"),
    [
        pytest.param("h100", ["NVIDIA-H100-80GB-HBM3", "h100"], id="mapped and as itself"),
        pytest.param("Tesla-T4", ["Tesla-T4"], id="unmapped"),
    ],
)
def test_label_values_of_a_gpu_type(gpu_type: str, values: list[str]) -> None:
    """The label values meaning a type: those mapped to it, and itself unless it is mapped."""
    assert LABELS.type_values(gpu_type) == values
