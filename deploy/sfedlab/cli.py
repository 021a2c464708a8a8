"""`deploy/lab up|down|status [--dir DIR] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import LabError
from .lab import Lab

EXIT_DOWN = 3


def _print_status(st: dict[str, Any]) -> None:
    print(f"lab {st['root']}")
    munged = st["munged"]
    print(f"  {'munged':<10} {munged['state']:<5} {'(lab-owned)' if munged['owned'] else ''}")
    if "sshd" in st:
        print(f"  {'sshd':<10} {st['sshd']['state']:<5} 127.0.0.1:{st['sshd']['port']}")
    if "slurmdbd" in st:
        dbd = st["slurmdbd"]
        print(f"  {'slurmdbd':<10} {dbd['state']:<5} :{dbd['port']}  database {dbd['database']}")
    if "sfedd" in st:
        print(f"  {'sfedd':<10} {st['sfedd']['state']:<5} {st['sfedd']['address']}")
    if st["sessions"]:
        print(f"  {'sessions':<10} {len(st['sessions'])} test session(s) hold the lab")
    for name, c in st["clusters"].items():
        print(
            f"  {name:<10} {c['state']:<5} slurmctld {c['slurmctld']} :{c['ctld_port']}"
            f"  SLURM_CONF={c['conf']}"
        )
        door = c.get("role") == "door"
        if door:
            print(f"    front door: partitions {', '.join(c['partitions'])}; {c['job_submit']}")
        for node, n in c["nodes"].items():
            size = f"cpu:{n['cpus']}" if door else f"gpu:{n['gpus']}"
            print(f"    {node:<12} {n['state']:<8} slurmd {n['slurmd']:<4} {size}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the lab CLI; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="deploy/lab", description="Start, stop and inspect the local Slurm lab."
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, help="lab directory (default: $SFED_LAB_DIR or .lab)")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    lab = Lab(args.dir) if args.dir else Lab.default()

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"lab: {msg}", file=sys.stderr, flush=True)

    try:
        if args.command == "up":
            t0 = time.monotonic()
            actions = lab.up(log=log)
            lab.pin(log)
            took = time.monotonic() - t0
            summary = ", ".join(f"{k} {v}" for k, v in actions.items())
            log(f"up in {took:.1f}s ({summary}); lab dir {lab.root}")
            return 0
        if args.command == "down":
            lab.down()
            log(f"down ({lab.root})")
            return 0
        st = lab.status()
        if args.json:
            print(json.dumps(st, indent=2))
        else:
            _print_status(st)
        return 0 if st["up"] else EXIT_DOWN
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # never a traceback: one line that says what broke
        print(f"lab: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
