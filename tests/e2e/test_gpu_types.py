"""GPU types and node features end to end, on the real lab: alpha's GPUs are a100 (feature
a100), beta's h100 (features h100 and ib); a Kubernetes pool's nodes are labelled l40s.

Through the front door (unchanged `sbatch -p fed`) and through `sfed submit`: a typed or
constrained job lands on the pool that has the type or features, waits for it rather than
running elsewhere, and one that no pool could ever run is refused when it is submitted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sfedlab import Lab

from tests.e2e.door import FrontDoor, field
from tests.e2e.harness import Daemon, Filler, write_script
from tests.kubeapi import FakeCluster

pytestmark = pytest.mark.lab

NODES = "srun bash -c 'echo \"node=$SLURMD_NODENAME\"'\n"
NO_POOL = "no pool can ever run this job: "  # sfedd's words; the door's shim says:
DOOR_NO_POOL = "sbatch: error: sfed: no pool of the federation can ever run this job: "
V100 = "alpha: no node with GPU type v100; beta: no node with GPU type v100"


def pools_of(lines: list[str]) -> set[str]:
    """The pools of the `node=<name>` lines a job printed (alpha-n1 -> alpha)."""
    return {line.removeprefix("node=").rsplit("-n", 1)[0] for line in lines if "node=" in line}


# --- the front door ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "pool"),
    [
        pytest.param(["--gres=gpu:h100:2"], "beta", id="gres-h100"),
        pytest.param(["-C", "a100"], "alpha", id="constraint-a100"),
        pytest.param(["-N", "2", "--gpus-per-node=h100:8"], "beta", id="gpus-per-node-h100"),
        pytest.param(["-N", "2", "--gpus=h100:16"], "beta", id="gpus-h100"),
        pytest.param(["--constraint=h100&ib"], "beta", id="constraint-all"),
    ],
)
def test_typed_sbatch_lands_on_the_pool_with_them(
    door: FrontDoor, tmp_path: Path, options: list[str], pool: str
) -> None:
    """sbatch -p fed with a GPU type or -C runs, unchanged, on the pool that has them."""
    job = door.submit("-p", "fed", *options, "-o", "out-%j.txt", door.script("n.sh", NODES))
    shown = door.wait_ended(job)
    assert field(shown, "JobState") == "COMPLETED", shown
    lines = (tmp_path / f"out-{job}.txt").read_text().splitlines()
    assert pools_of(lines) == {pool}, lines


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(["--gres=gpu:v100:1"], V100, id="type-nowhere"),
        pytest.param(
            ["-C", "a100&ib"],
            "alpha: no node with features a100&ib; beta: no node with features a100&ib",
            id="features-nowhere",
        ),
        pytest.param(
            ["--gres=gpu:a100:8"],
            "alpha: only 4 GPUs per node with GPU type a100 (job needs 8); "
            "beta: no node with GPU type a100",
            id="type-too-small",
        ),
    ],
)
def test_sbatch_of_a_type_or_feature_no_pool_has_is_refused(
    door: FrontDoor, options: list[str], message: str
) -> None:
    """sbatch -p fed asking what no pool has fails at once with each pool's reason."""
    result = door.sbatch("-p", "fed", *options, door.script("n.sh", NODES))
    assert result.returncode != 0 and result.stdout == "", result
    assert DOOR_NO_POOL + message in result.stderr.splitlines(), result.stderr


def test_sbatch_constraint_is_not_the_door_s(door: FrontDoor) -> None:
    """The proxy job carries no -C: the door's own nodes need none of the pools' features."""
    job = door.submit("-p", "fed", "-C", "ib", "--hold", door.script("n.sh", NODES))
    shown = door.show(job)
    assert field(shown, "Features") == "(null)", shown


# --- sfed submit ------------------------------------------------------------------------


def test_pools_show_gpu_types_and_features(daemon: Daemon) -> None:
    """sfed pools lists each pool's GPU types and features."""
    pools = {p["name"]: p for p in json.loads(daemon.run("pools", "--json").stdout)["pools"]}
    assert (pools["alpha"]["gpu_types"], pools["alpha"]["features"]) == (["a100"], ["a100"])
    assert (pools["beta"]["gpu_types"], pools["beta"]["features"]) == (["h100"], ["h100", "ib"])


@pytest.mark.parametrize(
    ("options", "pool"),
    [
        pytest.param(["--gres=gpu:h100:2"], "beta", id="gres-h100"),
        pytest.param(["-C", "a100"], "alpha", id="constraint-a100"),
        pytest.param(["-C", "ib"], "beta", id="constraint-ib"),
        pytest.param(["-N", "2", "-G", "h100:16"], "beta", id="gpus-h100"),
    ],
)
def test_typed_submit_lands_on_the_pool_with_them(
    daemon: Daemon, tmp_path: Path, options: list[str], pool: str
) -> None:
    """sfed submit with a GPU type or -C runs on the pool that has them."""
    job = daemon.submit(write_script(tmp_path, "n.sh", NODES), *options)
    done = daemon.wait_state(job)
    assert (done["state"], done["pool"]) == ("COMPLETED", pool), done
    assert pools_of(daemon.output(job).decode().splitlines()) == {pool}


def test_submit_of_a_type_no_pool_has_is_refused(daemon: Daemon, tmp_path: Path) -> None:
    """sfed submit --gres=gpu:v100:1 fails with each pool's reason, in one line."""
    script = write_script(tmp_path, "n.sh", NODES)
    result = daemon.run("submit", "--gres=gpu:v100:1", str(script), check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert f"{NO_POOL}{V100}" in result.stderr


def test_typed_job_waits_for_its_pool_rather_than_running_elsewhere(
    daemon: Daemon, filler: Filler, tmp_path: Path
) -> None:
    """With alpha full, a -C a100 job waits (beta lacks the feature), then runs on alpha."""
    filler.fill("alpha", nodes=2, gpus=4)
    job = daemon.submit(write_script(tmp_path, "n.sh", NODES), "-C", "a100", "--gres=gpu:1")
    waiting = daemon.wait_state(job, {"PENDING"})
    explained = daemon.run("explain", str(job)).stdout
    assert "beta: no node with features a100" in explained, explained
    assert "pool" not in waiting  # on no pool yet
    filler.release()
    done = daemon.wait_state(job)
    assert (done["state"], done["pool"]) == ("COMPLETED", "alpha"), done


# --- a Kubernetes pool, typed by its node labels -----------------------------------------

L40S = "NVIDIA-L40S"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    """Two 8-GPU nodes whose product label says L40S, one of them with interconnect=roce."""
    with FakeCluster(tmp_path_factory.mktemp("kube-typed")) as c:
        c.add_namespace("typed")
        product = "nvidia.com/gpu.product"
        c.add_node("l40s-1", gpus=8, labels={"pool": "l40s", product: L40S})
        c.add_node(
            "l40s-2",
            gpus=8,
            labels={"pool": "l40s", product: L40S, "sfed.io/interconnect": "roce"},
        )
        yield c


def typed_kube_pool(cluster: FakeCluster) -> dict[str, Any]:
    return {
        "name": "kube",
        "kind": "kubernetes",
        "kubeconfig": str(cluster.kubeconfig),
        "namespace": "typed",
        "node_selector": {"pool": "l40s"},
        "image": "python:3.11",
        "gpu_type_label": "nvidia.com/gpu.product",
        "gpu_types": {L40S: "l40s"},
        "feature_labels": ["sfed.io/interconnect"],
    }


@pytest.fixture(scope="module")
def kdaemon(
    lab: Lab, labelled: FakeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Daemon]:
    """sfedd over alpha, beta and the labelled Kubernetes pool."""
    d = Daemon(
        lab, tmp_path_factory.mktemp("sfedd-typed"), extra_pools=(typed_kube_pool(labelled),)
    )
    d.start()
    yield d
    d.stop()


def test_kubernetes_pool_types_come_from_node_labels(kdaemon: Daemon) -> None:
    """The Kubernetes pool's GPU type is its mapped product label; its feature a label's value."""
    pools = {p["name"]: p for p in json.loads(kdaemon.run("pools", "--json").stdout)["pools"]}
    assert (pools["kube"]["gpu_types"], pools["kube"]["features"]) == (["l40s"], ["roce"])


def test_typed_job_runs_on_the_labelled_kubernetes_node(kdaemon: Daemon, tmp_path: Path) -> None:
    """--gres=gpu:l40s:1 -C roce runs on the Kubernetes pool, on the node labelled roce."""
    script = write_script(tmp_path, "k.sh", "echo on=$(hostname)\n")
    job = kdaemon.submit(script, "--gres=gpu:l40s:1", "-C", "roce")
    done = kdaemon.wait_state(job)
    assert (done["state"], done["pool"]) == ("COMPLETED", "kube"), done
    assert done["attempts"][-1]["nodelist"] == "l40s-2", done


def test_capabilities_list_the_kinds_of_node(lab: Lab) -> None:
    """The lab sfedd's capabilities file lists alpha's and beta's kinds of node, for the shim."""
    caps = lab.door_capabilities_path().read_text()
    assert " gpu_type=a100 features=a100" in caps and " gpu_type=h100 features=h100,ib" in caps
