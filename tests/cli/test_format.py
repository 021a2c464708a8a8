"""Tests of scheduler.cli.format: the tables sfed prints."""

from __future__ import annotations

from scheduler.cli.format import pools_table
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb


def test_pools_table_shows_gpu_types_and_features() -> None:
    """Each pool's GPU types and features are columns ("-" for none), before the reason."""
    pools = [
        pb.PoolInfo(name="alpha", gpu_types=["a100"], features=["a100"]),
        pb.PoolInfo(name="beta", gpu_types=["h100"], features=["h100", "ib"]),
        pb.PoolInfo(name="gamma", reason="no node matches"),
    ]
    for pool in pools:  # every column filled, so that the table splits on blanks
        pool.kind, pool.transport, pool.state, pool.partition = "slurm", "local", "UP", "gpu"
    header, *rows = pools_table(pools).splitlines()
    columns = header.split()
    at = columns.index("GPU-TYPES")
    assert columns[at : at + 2] == ["GPU-TYPES", "FEATURES"] and columns[-1] == "REASON"
    assert [row.split()[at : at + 2] for row in rows] == [
        ["a100", "a100"],
        ["h100", "h100,ib"],
        ["-", "-"],
    ]
