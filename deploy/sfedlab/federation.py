"""sfedd configuration for the lab: one Slurm pool per lab cluster."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from .layout import LabSite

__all__ = ["federation_config", "write_config"]


def federation_config(
    site: LabSite,
    *,
    store_url: str,
    socket: Path,
    ssh_pools: Collection[str] = (),
    interval_s: float = 1.0,
    name: str = "lab",
    log_file: Path | None = None,
    prices: dict[str, float] | None = None,
    capabilities: Path | None = None,
    spools: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """The lab's pools (`lab.site`); those named in `ssh_pools` are reached through its sshd.

    Prices default to a cheaper alpha, so that placement prefers it while it has room.
    """
    prices = prices or {"alpha": 1.0, "beta": 2.5}
    pools: list[dict[str, Any]] = []
    for cluster in site.pools:
        spec = cluster.spec
        pool: dict[str, Any] = {
            "name": spec.name,
            "kind": "slurm",
            "partition": spec.partition,
            "slurm_conf": str(cluster.conf),
            "price_per_gpu_hour": prices.get(spec.name, 1.0),
        }
        if spools and spec.name in spools:
            pool["spool_dir"] = str(spools[spec.name])
        if spec.name in ssh_pools:
            endpoint = site.ssh
            pool["transport"] = "ssh"
            pool["ssh"] = {
                "host": endpoint.host,
                "port": endpoint.port,
                "user": endpoint.user,
                "key": str(endpoint.client_key),
                "known_hosts": str(endpoint.known_hosts),
            }
        pools.append(pool)
    config: dict[str, Any] = {
        "federation": {"name": name},
        "store": {"url": store_url},
        "server": {"socket": str(socket)},
        "loop": {"interval_s": interval_s, "pool_timeout_s": 20.0},
        "log": {"level": "info", "format": "json"},
        "pools": pools,
    }
    if log_file is not None:
        config["log"]["file"] = str(log_file)
    if capabilities is not None:
        config["federation"]["capabilities_file"] = str(capabilities)
    return config


def write_config(config: dict[str, Any], path: Path) -> Path:
    """Write as YAML (JSON is valid YAML, and the standard library writes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
