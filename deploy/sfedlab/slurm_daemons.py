"""The slurmctld and slurmd of one lab cluster: start them, wait until every node is idle,
stop them, report their state. Each cluster's files are a `ClusterPaths`."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import procs
from .errors import LabError
from .files import read_int, write_if_changed
from .layout import ClusterPaths
from .rendering import render_cluster

SLURMCTLD = "/usr/sbin/slurmctld"
SLURMD = "/usr/sbin/slurmd"

# sinfo %t states of a node that is registered and usable.
READY_STATES = frozenset({"idle", "mix", "alloc", "comp", "plnd"})
# Responding (no "*") but administratively out: resume them.
RESUME_STATES = frozenset({"down", "drain", "drng", "fail", "failg"})
# The node registered with a config slurmctld rejects: waiting will not help.
FATAL_STATES = frozenset({"inval"})
# Slurm job ids must stay below 0x03ffffff; wrap well before.
MAX_FIRST_JOB_ID = 60_000_000
JOB_ID_SLACK = 10_000

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A Log that says nothing."""


@dataclass
class Start:
    """What one `up` started for a cluster, to watch and to undo on failure."""

    cluster: ClusterPaths
    ctld: int | None = None
    slurmd: dict[str, int] = field(default_factory=dict)
    resumed: set[str] = field(default_factory=set)
    # Wall time each slurmd was started; a warm restart waits for a registration after it.
    spawned_at: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- up


def up_cluster(
    c: ClusterPaths,
    template_dir: Path,
    actions: dict[str, str],
    log: Log,
    values: Mapping[str, Any] | None = None,
) -> Start:
    """Render the cluster's files (with the extra template `values`) and start what does not
    run: only missing slurmd when slurmctld answers with an unchanged config, otherwise a cold
    start of the whole cluster. Records "running", "started" or "restarted" in `actions`."""
    ctld = procs.alive_from(c.ctld_pid, c.ctld_marker)
    changed = render_cluster(c, template_dir, read_int(c.first_job_id, 1), values)
    if ctld is not None and not changed and _ping(c):
        missing = [
            n for n in c.spec.node_names
            if procs.alive_from(c.slurmd_pid(n), c.slurmd_marker(n)) is None
        ]  # fmt: skip
        if not missing:
            actions[c.spec.name] = "running"
            return Start(c)  # still checked for idle nodes, nothing to undo
        log(f"{c.spec.name}: restarting slurmd {', '.join(missing)}")
        start = Start(c)
        for node in missing:
            _check_port_free(c.spec.node_ports[c.spec.node_names.index(node)], f"{node} slurmd")
            start.spawned_at[node] = time.time()
            start.slurmd[node] = _spawn_slurmd(c, node)
        actions[c.spec.name] = "restarted"
        return start
    why = "config changed" if ctld is not None and changed else "cold start"
    had_any = stop_cluster(c, cancel_jobs=False)
    # New job ids start above all earlier ones; assume many jobs in case this run
    # ends without a clean stop (a clean stop records the real next id).
    first = read_int(c.job_id_floor, 1)
    if first > MAX_FIRST_JOB_ID:
        first = 1
    write_if_changed(c.first_job_id, f"{first}\n")
    write_if_changed(c.job_id_floor, f"{first + JOB_ID_SLACK}\n")
    render_cluster(c, template_dir, first, values)
    actions[c.spec.name] = "restarted" if had_any else "started"
    log(f"{c.spec.name}: {why}")
    for port, what in zip(
        c.spec.ports, ["slurmctld", *(f"{n} slurmd" for n in c.spec.node_names)], strict=True
    ):
        _check_port_free(port, f"{c.spec.name} {what}")
    # Cold start: no old jobs, node states or step sockets may linger.
    for d in (c.state, c.spool):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    c.log.mkdir(parents=True, exist_ok=True)
    for f in c.log.iterdir():
        if f.suffix in (".log", ".out"):
            f.replace(f.with_name(f.name + ".1"))
    start = Start(c)
    start.ctld = procs.spawn(
        [SLURMCTLD, "-D", "-f", str(c.conf)],
        pid_file=c.ctld_pid, out_file=c.log / "slurmctld.out",
        env=daemon_env(c), cwd=c.log,
    )  # fmt: skip
    for node in c.spec.node_names:
        start.slurmd[node] = _spawn_slurmd(c, node)
    return start


def _spawn_slurmd(c: ClusterPaths, node: str) -> int:
    (c.spool / node).mkdir(parents=True, exist_ok=True)
    return procs.spawn(
        [SLURMD, "-D", "-N", node, "-f", str(c.conf)],
        pid_file=c.slurmd_pid(node), out_file=c.log / f"slurmd-{node}.out",
        env=daemon_env(c), cwd=c.log,
    )  # fmt: skip


def daemon_env(c: ClusterPaths) -> dict[str, str]:
    """os.environ without SLURM_* variables, with SLURM_CONF naming the cluster's slurm.conf."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SLURM_CONF"] = str(c.conf)
    return env


def _check_port_free(port: int, what: str) -> None:
    if not procs.port_free(port):
        holder = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        raise LabError(f"{what}: port {port} is already in use by another process", holder)


def wait_ready(starts: Sequence[Start], timeout: float, log: Log) -> None:
    """Wait until every node of every starting cluster is ready; LabError with the daemons'
    log tails when one exits, registers with a bad config, or `timeout` passes."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    pending = list(starts)
    while pending:
        for s in list(pending):
            if _ready(s):
                pending.remove(s)
                if s.ctld is not None or s.slurmd:
                    log(f"{s.cluster.spec.name}: all nodes idle after {time.monotonic() - t0:.1f}s")
        if not pending:
            return
        if time.monotonic() > deadline:
            s = pending[0]
            states = node_states(s.cluster) or {}
            bad = [n for n in s.cluster.spec.node_names if states.get(n) not in READY_STATES]
            desc = ", ".join(f"{n}={states.get(n, '?')}" for n in bad)
            raise LabError(
                f"{s.cluster.spec.name}: nodes not idle after {timeout:.0f}s: {desc}",
                _logs(s.cluster, bad),
            )
        time.sleep(0.2)


def _ready(s: Start) -> bool:
    """One look at a starting cluster: True when all nodes are ready; raise on failure."""
    c = s.cluster
    name = c.spec.name
    if procs.alive_from(c.ctld_pid, c.ctld_marker) is None:
        raise LabError(f"{name}: slurmctld exited (log {c.ctld_log})", _logs(c, []))
    for node in s.slurmd:
        if procs.alive_from(c.slurmd_pid(node), c.slurmd_marker(node)) is None:
            raise LabError(
                f"{name}: slurmd {node} exited (log {c.slurmd_log(node)})", _logs(c, [node])
            )
    if not procs.port_listening(c.spec.ctld_port):
        return False
    states = node_states(c)
    if states is None:
        return False
    ready = True
    for node, spawned in s.spawned_at.items():
        # slurmctld still shows a restarted node as it was until the new slurmd registers.
        if _slurmd_start_time(c, node) < int(spawned):
            ready = False
    for node in c.spec.node_names:
        state = states.get(node, "")
        base = state.rstrip("*~#!%$@^-+")
        if base in READY_STATES and not state.endswith("*"):
            continue
        ready = False
        if base in FATAL_STATES:
            raise LabError(
                f"{name}: node {node} is {state} (its config does not match slurm.conf)",
                _logs(c, [node]),
            )
        if base in RESUME_STATES and not state.endswith("*") and node not in s.resumed:
            s.resumed.add(node)
            _scontrol(c, "update", f"nodename={node}", "state=resume")
    return ready


def _logs(c: ClusterPaths, nodes: Sequence[str]) -> list[str]:
    """Tails of the slurmctld log and of the given nodes' slurmd logs, with headers."""
    out: list[str] = []
    pairs = [(c.ctld_log, c.log / "slurmctld.out")]
    pairs += [(c.slurmd_log(n), c.log / f"slurmd-{n}.out") for n in nodes]
    for log, stdout in pairs:
        # The .out file (the daemon's stderr) repeats the log; it alone holds errors
        # from before the log file was opened (e.g. a slurm.conf it cannot parse).
        for f in (log, stdout):
            lines = procs.tail(f, 20)
            if lines:
                out.append(f"--- {f} (last {len(lines)} lines)")
                out.extend(lines)
                break
    return out


def stop_started(s: Start) -> None:
    """Stop what one `up_cluster` started."""
    c = s.cluster
    for node in s.slurmd:
        procs.stop(c.slurmd_pid(node), c.slurmd_marker(node))
    if s.ctld is not None:
        procs.stop(c.ctld_pid, c.ctld_marker)


# ---------------------------------------------------------------- down


def stop_cluster(c: ClusterPaths, cancel_jobs: bool) -> bool:
    """Stop the cluster's lab-owned daemons; True if any was running."""
    ctld = procs.alive_from(c.ctld_pid, c.ctld_marker)
    if cancel_jobs and ctld is not None and procs.port_listening(c.spec.ctld_port):
        _cancel_jobs(c)
    if ctld is not None and procs.port_listening(c.spec.ctld_port):
        _record_next_job_id(c)
    any_running = ctld is not None
    for node in c.spec.node_names:
        any_running |= procs.stop(c.slurmd_pid(node), c.slurmd_marker(node))
    procs.stop(c.ctld_pid, c.ctld_marker)
    return any_running


def _record_next_job_id(c: ClusterPaths) -> None:
    out = _scontrol(c, "show", "config") or ""
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "NEXT_JOB_ID" and value.strip().isdigit():
            write_if_changed(c.job_id_floor, f"{int(value)}\n")
            return


def _cancel_jobs(c: ClusterPaths) -> None:
    """Cancel running jobs so their slurmstepd do not outlive the cluster."""
    active = "PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING"
    ids = _run(c, "squeue", "-h", "-t", active, "-o", "%A")
    if ids is None or not ids.split():
        return
    _run(c, "scancel", *ids.split())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = _run(c, "squeue", "-h", "-t", "RUNNING,COMPLETING", "-o", "%A")
        if not left or not left.split():
            return
        time.sleep(0.2)


# ---------------------------------------------------------------- status


def cluster_status(c: ClusterPaths) -> dict[str, Any]:
    """State up/down, slurmctld, and every node's state; up when all nodes are ready."""
    ctld = procs.alive_from(c.ctld_pid, c.ctld_marker)
    answering = ctld is not None and procs.port_listening(c.spec.ctld_port)
    states = node_states(c) if answering else None
    nodes: dict[str, Any] = {}
    all_ok = states is not None
    for node in c.spec.node_names:
        pid = procs.alive_from(c.slurmd_pid(node), c.slurmd_marker(node))
        state = (states or {}).get(node, "-")
        ok = pid is not None and state in READY_STATES
        all_ok &= ok
        nodes[node] = {
            "state": state,
            "slurmd": "up" if pid else "down",
            "gpus": c.spec.gpus_per_node,
            "cpus": c.spec.cpus_per_node,
        }
    status: dict[str, Any] = {
        "state": "up" if all_ok else "down",
        "role": c.spec.role,
        "slurmctld": "up" if answering else "down",
        "ctld_port": c.spec.ctld_port,
        "conf": str(c.conf),
        "partition": c.spec.partition,
        "partitions": list(c.spec.partitions),
        "nodes": nodes,
    }
    if c.spec.is_door:
        status["job_submit"] = str(c.job_submit)
    return status


# ---------------------------------------------------------------- Slurm clients


def _run(c: ClusterPaths, *argv: str, timeout: float = 15.0) -> str | None:
    try:
        res = subprocess.run(
            list(argv), env=daemon_env(c), capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def _scontrol(c: ClusterPaths, *args: str) -> str | None:
    return _run(c, "scontrol", *args)


def _ping(c: ClusterPaths) -> bool:
    if not procs.port_listening(c.spec.ctld_port):
        return False
    out = _scontrol(c, "ping")
    return out is not None and "is UP" in out


def _slurmd_start_time(c: ClusterPaths, node: str) -> float:
    """SlurmdStartTime of `node` as slurmctld knows it (epoch seconds; 0 if unknown)."""
    out = _scontrol(c, "-o", "show", "node", node) or ""
    for field_ in out.split():
        key, _, value = field_.partition("=")
        if key == "SlurmdStartTime":
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                return 0.0
    return 0.0


def node_states(c: ClusterPaths) -> dict[str, str] | None:
    """sinfo's %t state of every node, or None when slurmctld does not answer."""
    out = _run(c, "sinfo", "-h", "-N", "-o", "%N %t")
    if out is None:
        return None
    states: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            states[parts[0]] = parts[1]
    return states
