"""sfedd: the federation daemon (gRPC API + placement loop)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import structlog

from scheduler import faults
from scheduler.config import Config, ConfigError, load_config
from scheduler.logs import configure_logging
from scheduler.loop import Loop
from scheduler.pools.base import Pool
from scheduler.pools.factory import build_pool
from scheduler.service.server import build_server, open_socket
from scheduler.store import Store

__all__ = ["main", "serve"]

DEFAULT_CONFIG = "/etc/sfed/sfed.toml"
log = structlog.get_logger("sfed.daemon")


async def serve(config: Config, *, fault_points: frozenset[str] = frozenset()) -> None:
    """Run until SIGTERM or SIGINT: migrate the store, start the API and the loop."""
    store = Store(config.store.url)
    await asyncio.to_thread(store.migrate)
    adapters: dict[str, Pool] = {
        pc.name: build_pool(
            pc, federation=config.federation.name, command_timeout=config.loop.pool_timeout_s
        )
        for pc in config.pools
    }
    loop = Loop(config, store, adapters, fault_points=fault_points)
    await loop.start()
    server, addresses = await build_server(config, store, loop)
    await server.start()
    open_socket(config)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    log.info(
        "daemon.started",
        pid=os.getpid(),
        listen=addresses,
        pools=list(adapters),
        store=config.store.url.split("://")[0],
    )
    try:
        await loop.run(stop)
    finally:
        log.info("daemon.stopping")
        await server.stop(grace=2)
        for adapter in adapters.values():
            await adapter.close()
        await asyncio.to_thread(store.close)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sfedd", description=__doc__)
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get("SFED_CONFIG", DEFAULT_CONFIG),
        help=f"configuration file, .toml or .yaml (default {DEFAULT_CONFIG}, or $SFED_CONFIG)",
    )
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        fault_points = faults.armed()
    except (ConfigError, ValueError) as exc:
        print(f"sfedd: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"sfedd: {args.config}: ok, {len(config.pools)} pool(s)")
        return 0
    configure_logging(config.log.level, config.log.format, config.log.file)
    try:
        asyncio.run(serve(config, fault_points=fault_points))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # one line for the admin; the log has the rest
        log.exception("daemon.crashed")
        print(f"sfedd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
