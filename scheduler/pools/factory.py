"""Build pool adapters from configuration."""

from __future__ import annotations

from scheduler.config import KubernetesPoolConfig, PoolConfig
from scheduler.pathmap import PathMap
from scheduler.pools.base import Pool

__all__ = ["build_pool"]


def build_pool(
    config: PoolConfig, *, federation: str = "sfed", command_timeout: float = 30.0
) -> Pool:
    """One adapter for one configured pool; optional SDKs are imported only when used.

    Raises ConfigError when a pool cannot be set up (an SDK not installed, a bad kubeconfig).
    """
    if isinstance(config, KubernetesPoolConfig):
        from scheduler.pools.kubernetes.adapter import KubernetesPool

        return KubernetesPool(config, timeout=command_timeout)
    from scheduler.pools.slurm.adapter import SlurmPool
    from scheduler.pools.slurm.transport import LocalTransport, SSHTransport, Transport

    transport: Transport
    if config.transport == "ssh":
        assert config.ssh is not None  # the config validator guarantees it
        transport = SSHTransport(
            host=config.ssh.host,
            port=config.ssh.port,
            username=config.ssh.user,
            client_keys=[config.ssh.key],
            known_hosts=config.ssh.known_hosts,
            slurm_conf=config.slurm_conf,
        )
    else:
        transport = LocalTransport(slurm_conf=config.slurm_conf)
    return SlurmPool(
        config.name,
        transport,
        config.partition,
        command_timeout=command_timeout,
        federation=federation,
        spool_dir=config.spool_dir,
        path_map=PathMap(config.path_prefixes()),
        environment_drop=config.environment_drop,
    )
