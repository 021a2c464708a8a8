"""Tests of scheduler.loop.capabilities: the file the front door's shim reads."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from scheduler.domain import PoolSnapshot, PoolState
from scheduler.loop.capabilities import render_capabilities, write_atomically
from tests.fixtures import nodes

NOW = datetime(2026, 1, 1, tzinfo=UTC)
node = partial(nodes.node, cpus=16, mem=64_000)  # idle, 16 CPUs and 64 GB unless told


def test_one_line_per_pool_and_gpu_size() -> None:
    """A pool with 4- and 8-GPU nodes gets a line for each size, counting the larger nodes too."""
    pools = [
        PoolSnapshot("alpha", PoolState.UP, (node("a1", gpus=4), node("a2", gpus=4))),
        PoolSnapshot("beta", PoolState.DRAINED, (node("b1", gpus=8, cpus=32), node("b2", gpus=4))),
    ]
    assert render_capabilities(pools, "fed", NOW).splitlines() == [
        f"version=1 generated={int(NOW.timestamp())} partition=fed max_script_bytes=4194304"
        " max_nodes=100000 max_tasks=10000000 max_cpus_per_task=65533 max_gpus_per_node=1024"
        " max_mem_per_node_mb=1073741824 max_time_limit_min=52560000 max_job_name=200"
        " max_path=4096 max_gpu_type=64 max_constraint=1024",
        "pool=alpha nodes=2 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP",
        "pool=beta nodes=1 gpus_per_node=8 cpus_per_node=32 mem_mb_per_node=64000 state=DRAINED",
        "pool=beta nodes=2 gpus_per_node=4 cpus_per_node=32 mem_mb_per_node=64000 state=DRAINED",
    ]


def test_typed_pool_gets_lines_per_kind_of_node() -> None:
    """A pool with GPU types or features also gets its lines per GPU type and feature set."""
    pools = [
        PoolSnapshot(
            "beta",
            PoolState.UP,
            (
                node("b1", gpus=8, gpu_type="h100", features=["ib", "h100"]),
                node("b2", gpus=8, gpu_type="h100", features=["ib", "h100"]),
                node("b3", gpus=4),
            ),
        )
    ]
    assert render_capabilities(pools, "fed", NOW).splitlines()[1:] == [
        "pool=beta nodes=2 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=UP",
        "pool=beta nodes=3 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP",
        "pool=beta nodes=1 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP"
        " gpu_type=- features=-",
        "pool=beta nodes=2 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=UP"
        " gpu_type=h100 features=h100,ib",
    ]


def test_a_type_no_job_can_name_is_written_as_none() -> None:
    """A node with GPUs of two types (a100,v100) is listed without a type: no job names it."""
    pools = [PoolSnapshot("alpha", PoolState.UP, (node("a1", gpus=4, gpu_type="a100,v100"),))]
    assert render_capabilities(pools, "fed", NOW).splitlines()[1:] == [
        "pool=alpha nodes=1 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP",
    ]


def test_pool_without_nodes_has_no_line() -> None:
    """A pool never reached contributes nothing."""
    text = render_capabilities([PoolSnapshot("gamma", PoolState.UNREACHABLE, ())], "fed", NOW)
    assert text.splitlines()[1:] == []


def test_write_replaces_whole_file_readable(tmp_path: Path) -> None:
    """The file is replaced in one rename, world-readable, with no temp file left behind."""
    path = tmp_path / "run" / "capabilities"
    write_atomically(path, "one\n")
    write_atomically(path, "two\n")
    assert path.read_text() == "two\n"
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["capabilities"]
