"""The pod's environment contract, read and validated.

Environment contract (set by the adapter; a missing or invalid required one exits 1 naming it):
  JOB_COMPLETION_INDEX    this pod's node index 0..N-1 (set by Kubernetes)
  SFED_NODES              comma-separated hostnames of the N pods in index order
  SFED_AGENT_PORT         TCP port of every pod's agent
  SFED_DIR                ConfigMap mount (default /sfed): script, token, bin/srun, bin/scontrol,
                          and the runtime's modules
  SFED_TOKEN_FILE         the agents' token, when not $SFED_DIR/token (a Secret's mount)
  SFED_STARTUP_TIMEOUT_S  how long pod 0 waits for every agent (default 600)
What the batch step reads besides (SFED_CHDIR, SFED_STDOUT/SFED_STDERR, SLURM_*): batch.py.
"""

from __future__ import annotations

import os


class ConfigError(Exception):
    """The pod's environment breaks the contract."""


def _env_required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value.strip():
        raise ConfigError(f"{name} is not set")
    return value.strip()


def env_int(name: str, default: int | None, low: int, high: int | None = None) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        if default is None:
            raise ConfigError(f"{name} is not set")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name}={raw!r} is out of range ({bound})")
    return value


def sfed_dir_from_env() -> str:
    return os.environ.get("SFED_DIR", "").strip() or "/sfed"


def read_token(sfed_dir: str) -> bytes:
    path = os.environ.get("SFED_TOKEN_FILE", "").strip() or os.path.join(sfed_dir, "token")
    try:
        with open(path, "rb") as f:
            token = f.read().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the token {path} (SFED_TOKEN_FILE, SFED_DIR): {exc.strerror}"
        ) from None
    if not token:
        raise ConfigError(f"the token {path} (SFED_TOKEN_FILE, SFED_DIR) is empty")
    return token


def nodes_from_env() -> list[str]:
    nodes = [n.strip() for n in _env_required("SFED_NODES").split(",")]
    if not all(nodes):
        raise ConfigError("SFED_NODES has an empty hostname")
    return nodes


class PodConfig:
    """The contract's environment, validated."""

    def __init__(self) -> None:
        self.nodes = nodes_from_env()
        self.index = env_int("JOB_COMPLETION_INDEX", None, 0, len(self.nodes) - 1)
        self.port = env_int("SFED_AGENT_PORT", None, 1, 65535)
        self.sfed_dir = sfed_dir_from_env()
        self.token = read_token(self.sfed_dir)
        self.startup_timeout = float(env_int("SFED_STARTUP_TIMEOUT_S", 600, 1))
