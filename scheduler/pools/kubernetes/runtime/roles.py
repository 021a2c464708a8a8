"""What each pod does.

Roles: every pod runs an agent bound to the address of its own name in SFED_NODES. Pod 0 waits
until every agent answers a ping, runs the batch script, then tells the other agents to exit and
exits with the script's status (128+signal if killed). Pods > 0 exit 0 on pod 0's "exit" request
and 143 on SIGTERM, killing their running tasks either way.
"""

from __future__ import annotations

import time

from .agent import Agent
from .batch import run_batch
from .config import ConfigError, PodConfig
from .output import error
from .procs import Signals


def main() -> int:
    signals = Signals()
    try:
        cfg = PodConfig()
        agent = Agent(cfg.nodes[cfg.index], cfg.port, cfg.token)
        agent.bind(time.monotonic() + cfg.startup_timeout, signals.event)
    except ConfigError as exc:
        if signals.received is not None:
            return 128 + signals.received
        error("sfed", str(exc))
        return 1
    agent.start()
    try:
        if cfg.index == 0:
            return run_batch(cfg, agent, signals)
        return _run_worker(agent, signals)
    finally:
        agent.close()


def _run_worker(agent: Agent, signals: Signals) -> int:
    while not agent.exit_requested.is_set() and signals.received is None:
        agent.exit_requested.wait(0.2)  # signal handlers run in this thread between waits
    agent.kill_all(grace=5.0)
    return 0 if signals.received is None else 128 + signals.received
