"""The lab: real Slurm clusters (one slurmctld + several slurmd each) and an sshd on one host."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from string import Template
from typing import Any

from . import munge, procs
from .errors import LabError
from .sfedd import LabSfedd
from .spec import LAB_CLUSTERS, LAB_SSH_PORT, ClusterSpec
from .ssh import Sshd, SshEndpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = REPO_ROOT / "slurm-conf"
SLURMCTLD = "/usr/sbin/slurmctld"
SLURMD = "/usr/sbin/slurmd"
# The front door's job_submit plugin; the lab renders it next to the door's slurm.conf.
PLUGIN_SOURCE = REPO_ROOT / "plugins" / "job_submit.lua"
# sfed-proxy in the project's virtual environment next to the repo.
DEFAULT_BIN_DIR = REPO_ROOT / ".venv" / "bin"
DEFAULT_PROXY_COMMAND = DEFAULT_BIN_DIR / "sfed-proxy"
# Checks the rendered plugin's syntax before slurmctld sees it, where installed (lua5.1 package).
LUAC = "luac5.1"

# sinfo %t states of a node that is registered and usable.
READY_STATES = frozenset({"idle", "mix", "alloc", "comp", "plnd"})
# Responding (no "*") but administratively out: resume them.
RESUME_STATES = frozenset({"down", "drain", "drng", "fail", "failg"})
# The node registered with a config slurmctld rejects: waiting will not help.
FATAL_STATES = frozenset({"inval"})
# Slurm job ids must stay below 0x03ffffff; wrap well before.
MAX_FIRST_JOB_ID = 60_000_000
JOB_ID_SLACK = 10_000
# In sessions/: present while the lab runs because a test session (not `deploy/lab up`) started it.
STARTED_BY_SESSION = "started-by-session"

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class _Cluster:
    """Paths of one cluster under the lab directory."""

    spec: ClusterSpec
    dir: Path

    @property
    def etc(self) -> Path:
        return self.dir / "etc"

    @property
    def conf(self) -> Path:
        return self.etc / "slurm.conf"

    @property
    def gres_conf(self) -> Path:
        return self.etc / "gres.conf"

    @property
    def job_submit(self) -> Path:
        """Where slurmctld looks for the Lua plugin: next to slurm.conf."""
        return self.etc / "job_submit.lua"

    @property
    def state(self) -> Path:
        return self.dir / "state"

    @property
    def spool(self) -> Path:
        return self.dir / "spool"

    @property
    def log(self) -> Path:
        return self.dir / "log"

    @property
    def run(self) -> Path:
        return self.dir / "run"

    @property
    def dev(self) -> Path:
        return self.dir / "dev"

    @property
    def first_job_id(self) -> Path:
        """The FirstJobId in the current slurm.conf."""
        return self.dir / "first_job_id"

    @property
    def job_id_floor(self) -> Path:
        """The FirstJobId for the next cold start: above every job id handed out so far."""
        return self.dir / "job_id_floor"

    @property
    def ctld_pid(self) -> Path:
        return self.run / "slurmctld.pid"

    @property
    def ctld_log(self) -> Path:
        return self.log / "slurmctld.log"

    @property
    def ctld_marker(self) -> str:
        return f"-f {self.conf}"

    def slurmd_pid(self, node: str) -> Path:
        return self.run / f"slurmd-{node}.pid"

    def slurmd_log(self, node: str) -> Path:
        return self.log / f"slurmd-{node}.log"

    def slurmd_marker(self, node: str) -> str:
        return f"-N {node} -f {self.conf}"


@dataclass
class _Start:
    """What one `up` started for a cluster, to watch and to undo on failure."""

    cluster: _Cluster
    ctld: int | None = None
    slurmd: dict[str, int] = field(default_factory=dict)
    resumed: set[str] = field(default_factory=set)
    # Wall time each slurmd was started; a warm restart waits for a registration after it.
    spawned_at: dict[str, float] = field(default_factory=dict)


def _hostlist(prefix: str, count: int) -> str:
    return f"{prefix}1" if count == 1 else f"{prefix}[1-{count}]"


def _range(first: int, count: int) -> str:
    return str(first) if count == 1 else f"{first}-{first + count - 1}"


class Lab:
    """Real Slurm clusters and an sshd under `root`; see deploy/lab for the CLI."""

    def __init__(
        self,
        root: Path,
        clusters: Sequence[ClusterSpec] = LAB_CLUSTERS,
        ssh_port: int | None = LAB_SSH_PORT,
        *,
        template_dir: Path = TEMPLATE_DIR,
        timeout: float = 60.0,
        plugin_source: Path = PLUGIN_SOURCE,
        proxy_command: Path | None = None,
        capabilities_path: Path | None = None,
        sfedd: bool = False,
        bin_dir: Path = DEFAULT_BIN_DIR,
    ) -> None:
        """`clusters` may hold one front door (role "door"); `plugin_source`, `proxy_command`
        (default: sfed-proxy in <repo>/.venv) and `capabilities_path` (default:
        <root>/<door>/run/capabilities) go into the door's job_submit.lua."""
        self.root = Path(root).resolve()
        self.specs: tuple[ClusterSpec, ...] = tuple(clusters)
        # The pools sfed federates (what federation_config iterates); the door is `door`.
        self.clusters: tuple[ClusterSpec, ...] = tuple(c for c in self.specs if not c.is_door)
        doors = [c for c in self.specs if c.is_door]
        if len(doors) > 1:
            raise ValueError(f"a lab has at most one front door, got {[c.name for c in doors]}")
        self.door: ClusterSpec | None = doors[0] if doors else None
        self.ssh_port = ssh_port
        self.template_dir = Path(template_dir)
        self.timeout = timeout
        self.plugin_source = Path(plugin_source)
        # With sfedd, the lab runs the door's federation itself and proxies reach it through
        # a launcher that knows its socket.
        self._sfedd = LabSfedd(self, self.root / "sfed", Path(bin_dir)) if sfedd else None
        default_proxy = self._sfedd.proxy_launcher if self._sfedd else DEFAULT_PROXY_COMMAND
        self._proxy_command = Path(proxy_command or default_proxy).absolute()
        self._capabilities = (
            Path(capabilities_path).absolute()
            if capabilities_path is not None
            else self.root / doors[0].name / "run" / "capabilities"
            if doors
            else None
        )
        names = [c.name for c in self.specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate cluster names in {names}")
        ports = [p for c in self.specs for p in c.ports]
        if ssh_port is not None:
            ports.append(ssh_port)
        if len(set(ports)) != len(ports):
            raise ValueError(f"lab ports overlap: {sorted(ports)}")
        self._c = {c.name: _Cluster(c, self.root / c.name) for c in self.specs}
        self._sshd = (
            Sshd(self.root / "ssh", ssh_port, self.template_dir / "sshd_config.in")
            if ssh_port is not None
            else None
        )

    @classmethod
    def default(cls) -> Lab:
        """The shared lab: `$SFED_LAB_DIR` or `<repo>/.lab`, with LAB_CLUSTERS."""
        env = os.environ.get("SFED_LAB_DIR")
        return cls(Path(env) if env else REPO_ROOT / ".lab", sfedd=True)

    def __repr__(self) -> str:
        return f"Lab({str(self.root)!r}, clusters={[c.name for c in self.specs]})"

    # ---------------------------------------------------------------- accessors

    def cluster(self, name: str) -> ClusterSpec:
        """The spec of cluster `name`."""
        return self._cl(name).spec

    def conf_path(self, name: str) -> Path:
        """The slurm.conf of cluster `name`."""
        return self._cl(name).conf

    def log_dir(self, name: str) -> Path:
        """Where the daemons of cluster `name` log."""
        return self._cl(name).log

    def env(self, name: str) -> dict[str, str]:
        """A copy of os.environ with SLURM_CONF pointing at cluster `name`."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf_path(name))
        return env

    @property
    def proxy_command(self) -> Path:
        """The sfed-proxy the door's job_submit.lua wraps fed jobs around (may not exist yet)."""
        return self._proxy_command

    def door_capabilities_path(self) -> Path:
        """Where sfedd must write the federation's capabilities for the door's plugin to read.

        Its directory is created and made world-readable (r-x for all) here.
        """
        if self._capabilities is None:
            raise LabError("this lab has no front door (no cluster with role 'door')")
        self._ensure_capabilities_dir()
        return self._capabilities

    def door_plugin_path(self) -> Path:
        """The door's rendered job_submit.lua (next to its slurm.conf)."""
        if self.door is None:
            raise LabError("this lab has no front door (no cluster with role 'door')")
        return self._cl(self.door.name).job_submit

    @property
    def sfedd(self) -> LabSfedd:
        """The lab's own sfedd (address, store URL, log), when the lab runs one."""
        if self._sfedd is None:
            raise LabError("this lab runs no sfedd (sfedd=False)")
        return self._sfedd

    @property
    def ssh(self) -> SshEndpoint:
        """The lab sshd, for SSH transports (root with a generated key, strict host keys)."""
        if self._sshd is None:
            raise LabError("this lab has no sshd (ssh_port=None)")
        return self._sshd.endpoint

    def _cl(self, name: str) -> _Cluster:
        try:
            return self._c[name]
        except KeyError:
            raise KeyError(f"no lab cluster {name!r} (have {sorted(self._c)})") from None

    # ---------------------------------------------------------------- up

    def up(self, log: Log = _quiet) -> dict[str, str]:
        """Start whatever is not running; wait until every node is idle.

        Idempotent: running clusters are left alone. Returns what happened per component
        ("running", "started", "restarted"). Raises LabError with log lines on failure.
        """
        with self._lock():
            return self._up(log)

    def _up(self, log: Log) -> dict[str, str]:
        actions: dict[str, str] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        # A door without its plugin fails here, before anything starts.
        plugin = self._render_plugin() if self.door is not None else None
        if self._sfedd is not None:
            self._sfedd.write_files()  # the proxy launcher the plugin names
        started = munge.ensure_munged(self.root / "munged.pid", self.root / "munged.out")
        actions["munged"] = "started" if started else "running"
        if started:
            log("munged started")

        starts: list[_Start] = []
        try:
            for c in self._c.values():
                if c.spec.is_door and plugin is not None:
                    self._install_plugin(c, plugin, log)
                starts.append(self._up_cluster(c, actions, log))
            if self._sshd is not None:
                actions["sshd"] = "started" if self._sshd.up() else "running"
            self._wait_ready(starts, log)
            if self._sshd is not None:
                self._sshd.wait()
            if self._sfedd is not None:
                actions["sfedd"] = self._sfedd.up()
                self._sfedd.wait()
        except BaseException:
            # Leave nothing half-started behind: stop what this call started.
            for s in starts:
                self._stop_started(s)
            if self._sshd is not None and actions.get("sshd") == "started":
                self._sshd.down()
            if self._sfedd is not None and actions.get("sfedd") in ("started", "restarted"):
                self._sfedd.down()
            raise
        return actions

    def _up_cluster(self, c: _Cluster, actions: dict[str, str], log: Log) -> _Start:
        ctld = procs.alive_from(c.ctld_pid, c.ctld_marker)
        changed = self._render(c, _read_int(c.first_job_id, 1))
        if ctld is not None and not changed and self._ping(c):
            missing = [
                n for n in c.spec.node_names
                if procs.alive_from(c.slurmd_pid(n), c.slurmd_marker(n)) is None
            ]  # fmt: skip
            if not missing:
                actions[c.spec.name] = "running"
                return _Start(c)  # still checked for idle nodes, nothing to undo
            log(f"{c.spec.name}: restarting slurmd {', '.join(missing)}")
            start = _Start(c)
            for node in missing:
                self._check_port_free(
                    c.spec.node_ports[c.spec.node_names.index(node)], f"{node} slurmd"
                )
                start.spawned_at[node] = time.time()
                start.slurmd[node] = self._spawn_slurmd(c, node)
            actions[c.spec.name] = "restarted"
            return start
        why = "config changed" if ctld is not None and changed else "cold start"
        had_any = self._stop_cluster(c, cancel_jobs=False)
        # New job ids start above all earlier ones; assume many jobs in case this run
        # ends without a clean stop (a clean stop records the real next id).
        first = _read_int(c.job_id_floor, 1)
        if first > MAX_FIRST_JOB_ID:
            first = 1
        _write_if_changed(c.first_job_id, f"{first}\n")
        _write_if_changed(c.job_id_floor, f"{first + JOB_ID_SLACK}\n")
        self._render(c, first)
        actions[c.spec.name] = "restarted" if had_any else "started"
        log(f"{c.spec.name}: {why}")
        for port, what in zip(
            c.spec.ports, ["slurmctld", *(f"{n} slurmd" for n in c.spec.node_names)], strict=True
        ):
            self._check_port_free(port, f"{c.spec.name} {what}")
        # Cold start: no old jobs, node states or step sockets may linger.
        for d in (c.state, c.spool):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        c.log.mkdir(parents=True, exist_ok=True)
        for f in c.log.iterdir():
            if f.suffix in (".log", ".out"):
                f.replace(f.with_name(f.name + ".1"))
        start = _Start(c)
        start.ctld = procs.spawn(
            [SLURMCTLD, "-D", "-f", str(c.conf)],
            pid_file=c.ctld_pid, out_file=c.log / "slurmctld.out",
            env=self._daemon_env(c), cwd=c.log,
        )  # fmt: skip
        for node in c.spec.node_names:
            start.slurmd[node] = self._spawn_slurmd(c, node)
        return start

    def _spawn_slurmd(self, c: _Cluster, node: str) -> int:
        (c.spool / node).mkdir(parents=True, exist_ok=True)
        return procs.spawn(
            [SLURMD, "-D", "-N", node, "-f", str(c.conf)],
            pid_file=c.slurmd_pid(node), out_file=c.log / f"slurmd-{node}.out",
            env=self._daemon_env(c), cwd=c.log,
        )  # fmt: skip

    def _daemon_env(self, c: _Cluster) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = str(c.conf)
        return env

    def _check_port_free(self, port: int, what: str) -> None:
        if not procs.port_free(port):
            holder = subprocess.run(
                ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
            ).stdout.splitlines()
            raise LabError(f"{what}: port {port} is already in use by another process", holder)

    def _render(self, c: _Cluster, first_job_id: int) -> bool:
        """Write slurm.conf, gres.conf and fake GPU files; True if a config file changed."""
        s = c.spec
        node_range = _hostlist(s.node_prefix, s.nodes)
        gpu_files = str(
            c.dev / ("gpu0" if s.gpus_per_node == 1 else f"gpu[0-{s.gpus_per_node - 1}]")
        )
        values: dict[str, Any] = {
            "cluster": s.name,
            "first_job_id": first_job_id,
            "ctld_port": s.ctld_port,
            "slurmd_port": s.node_port_base,
            "state_dir": c.state,
            "spool_dir": c.spool,
            "run_dir": c.run,
            "log_dir": c.log,
            "node_range": node_range,
            "port_range": _range(s.node_port_base, s.nodes),
            "cpus": s.cpus_per_node,
            "mem_mb": s.mem_mb_per_node,
            "gres": f"Gres=gpu:{s.gpus_per_node}" if s.gpus_per_node else "",
            "gpus": s.gpus_per_node,
            "partition": s.partition,
            # A door's default partition is its local one (door.conf.in).
            "partition_default": "NO" if s.is_door else "YES",
            "local_partition": s.local_partition,
            "gres_lines": (
                f"NodeName={node_range} Name=gpu File={gpu_files}" if s.gpus_per_node else ""
            ),
        }
        changed = False
        parts = {"slurm.conf.in": c.conf, "gres.conf.in": c.gres_conf}
        if s.is_door:
            parts["door.conf.in"] = c.conf  # appended to slurm.conf
        texts: dict[Path, str] = {}
        for name, target in parts.items():
            template = self.template_dir / name
            try:
                text = Template(template.read_text()).substitute(values)
            except (OSError, KeyError, ValueError) as e:
                raise LabError(f"cannot render {template}: {e!r}") from None
            texts[target] = texts.get(target, "") + text
        for target, text in texts.items():
            changed |= _write_if_changed(target, text)
        for d in (c.dev, c.run, c.log, c.state, c.spool):
            d.mkdir(parents=True, exist_ok=True)
        for i in range(s.gpus_per_node):
            (c.dev / f"gpu{i}").touch()
        return changed

    def _render_plugin(self) -> str:
        """The door's job_submit.lua: the plugin source with the lab's CONFIG values."""
        assert self.door is not None and self._capabilities is not None
        src = self.plugin_source
        try:
            text = src.read_text()
        except FileNotFoundError:
            raise LabError(
                f"{self.door.name}: job_submit plugin {src} does not exist "
                "(the front door's slurmctld runs with JobSubmitPlugins=lua)"
            ) from None
        except OSError as e:
            raise LabError(f"{self.door.name}: cannot read job_submit plugin {src}: {e}") from None
        values = {
            "capabilities_path": str(self._capabilities),
            "proxy_command": str(self._proxy_command),
        }
        rendered = render_job_submit(text, values, origin=str(src))
        rendered += f"-- Rendered by deploy/lab from {src}, with the lab's CONFIG values.\n"
        if _read_text(self._cl(self.door.name).job_submit) != rendered:
            _check_lua(rendered, src)
        return rendered

    def _install_plugin(self, c: _Cluster, text: str, log: Log) -> None:
        """Write the door's job_submit.lua if it changed; a running slurmctld re-reads it at
        the next submission (it compares the file's mtime, in seconds, with the loaded one)."""
        self._ensure_capabilities_dir()
        target = c.job_submit
        old = _read_text(target)
        if old == text:
            return
        old_mtime = int(target.stat().st_mtime) if old is not None else 0
        _write_if_changed(target, text)
        new_mtime = target.stat().st_mtime
        if int(new_mtime) <= old_mtime:
            # Rewritten within the second of the last load: slurmctld would keep the old script.
            os.utime(target, (new_mtime, old_mtime + 1))
        log(f"{c.spec.name}: {'rendered' if old is None else 're-rendered'} {target}")
        if not self._proxy_command.exists():
            log(f"{c.spec.name}: note: proxy command {self._proxy_command} does not exist yet")

    def _ensure_capabilities_dir(self) -> None:
        """Create the capabilities file's directory, readable by all (as are the lab's own)."""
        assert self._capabilities is not None
        d = self._capabilities.parent
        d.mkdir(parents=True, exist_ok=True)
        chain = [d]
        if d.is_relative_to(self.root):  # lab-owned directories up to the root
            chain += [p for p in d.parents if p.is_relative_to(self.root)]
        for p in chain:
            mode = p.stat().st_mode & 0o7777
            if mode & 0o755 != 0o755:
                p.chmod(mode | 0o755)

    def _wait_ready(self, starts: Sequence[_Start], log: Log) -> None:
        t0 = time.monotonic()
        deadline = t0 + self.timeout
        pending = list(starts)
        while pending:
            for s in list(pending):
                if self._ready(s):
                    pending.remove(s)
                    if s.ctld is not None or s.slurmd:
                        log(
                            f"{s.cluster.spec.name}: all nodes idle after "
                            f"{time.monotonic() - t0:.1f}s"
                        )
            if not pending:
                return
            if time.monotonic() > deadline:
                s = pending[0]
                states = self._node_states(s.cluster) or {}
                bad = [n for n in s.cluster.spec.node_names if states.get(n) not in READY_STATES]
                desc = ", ".join(f"{n}={states.get(n, '?')}" for n in bad)
                raise LabError(
                    f"{s.cluster.spec.name}: nodes not idle after {self.timeout:.0f}s: {desc}",
                    self._logs(s.cluster, bad),
                )
            time.sleep(0.2)

    def _ready(self, s: _Start) -> bool:
        """One look at a starting cluster: True when all nodes are ready; raise on failure."""
        c = s.cluster
        name = c.spec.name
        if procs.alive_from(c.ctld_pid, c.ctld_marker) is None:
            raise LabError(f"{name}: slurmctld exited (log {c.ctld_log})", self._logs(c, []))
        for node in s.slurmd:
            if procs.alive_from(c.slurmd_pid(node), c.slurmd_marker(node)) is None:
                raise LabError(
                    f"{name}: slurmd {node} exited (log {c.slurmd_log(node)})",
                    self._logs(c, [node]),
                )
        if not procs.port_listening(c.spec.ctld_port):
            return False
        states = self._node_states(c)
        if states is None:
            return False
        ready = True
        for node, spawned in s.spawned_at.items():
            # slurmctld still shows a restarted node as it was until the new slurmd registers.
            if self._slurmd_start_time(c, node) < int(spawned):
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
                    self._logs(c, [node]),
                )
            if base in RESUME_STATES and not state.endswith("*") and node not in s.resumed:
                s.resumed.add(node)
                self._scontrol(c, "update", f"nodename={node}", "state=resume")
        return ready

    def _logs(self, c: _Cluster, nodes: Sequence[str]) -> list[str]:
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

    def _stop_started(self, s: _Start) -> None:
        c = s.cluster
        for node in s.slurmd:
            procs.stop(c.slurmd_pid(node), c.slurmd_marker(node))
        if s.ctld is not None:
            procs.stop(c.ctld_pid, c.ctld_marker)

    # ---------------------------------------------------------------- down

    def down(self) -> None:
        """Stop only what the lab started (per its pid files); cancel lab jobs first."""
        with self._lock():
            self._down()

    def _down(self) -> None:
        if self._sfedd is not None:
            self._sfedd.down()
        for c in self._c.values():
            self._stop_cluster(c, cancel_jobs=True)
        if self._sshd is not None:
            self._sshd.down()
        munge.stop_munged(self.root / "munged.pid")
        (self._leases / STARTED_BY_SESSION).unlink(missing_ok=True)

    # ---------------------------------------------------------------- sessions

    @property
    def _leases(self) -> Path:
        return self.root / "sessions"

    def pin(self) -> None:
        """Keep the lab up after test sessions end (what `deploy/lab up` does)."""
        (self._leases / STARTED_BY_SESSION).unlink(missing_ok=True)

    @contextlib.contextmanager
    def session(self, log: Log = _quiet) -> Iterator[Lab]:
        """Hold the lab for a test session (one per process): `up` on entry; on exit `down`
        if a session brought it up and no other live session still holds it."""
        lease = self._leases / str(os.getpid())
        with self._lock():
            self._leases.mkdir(parents=True, exist_ok=True)
            started = self._leases / STARTED_BY_SESSION
            if not self.status()["up"] and not self._live_leases():
                started.touch()
            try:
                self._up(log)
            except BaseException:
                if not self._live_leases():
                    started.unlink(missing_ok=True)
                raise
            lease.write_text(f"{os.getpid()}\n")
        try:
            yield self
        finally:
            with self._lock():
                lease.unlink(missing_ok=True)
                if not self._live_leases() and (self._leases / STARTED_BY_SESSION).exists():
                    self._down()

    def _live_leases(self) -> list[int]:
        """Pids of sessions holding the lab; leases of dead processes are dropped."""
        live = []
        if self._leases.is_dir():
            for f in self._leases.iterdir():
                if f.name.isdigit():
                    if procs.pid_alive(int(f.name)):
                        live.append(int(f.name))
                    else:
                        f.unlink(missing_ok=True)
        return live

    def _stop_cluster(self, c: _Cluster, cancel_jobs: bool) -> bool:
        """Stop the cluster's lab-owned daemons; True if any was running."""
        ctld = procs.alive_from(c.ctld_pid, c.ctld_marker)
        if cancel_jobs and ctld is not None and procs.port_listening(c.spec.ctld_port):
            self._cancel_jobs(c)
        if ctld is not None and procs.port_listening(c.spec.ctld_port):
            self._record_next_job_id(c)
        any_running = ctld is not None
        for node in c.spec.node_names:
            any_running |= procs.stop(c.slurmd_pid(node), c.slurmd_marker(node))
        procs.stop(c.ctld_pid, c.ctld_marker)
        return any_running

    def _record_next_job_id(self, c: _Cluster) -> None:
        out = self._scontrol(c, "show", "config") or ""
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "NEXT_JOB_ID" and value.strip().isdigit():
                _write_if_changed(c.job_id_floor, f"{int(value)}\n")
                return

    def _cancel_jobs(self, c: _Cluster) -> None:
        """Cancel running jobs so their slurmstepd do not outlive the cluster."""
        active = "PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING"
        ids = self._run(c, "squeue", "-h", "-t", active, "-o", "%A")
        if ids is None or not ids.split():
            return
        self._run(c, "scancel", *ids.split())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = self._run(c, "squeue", "-h", "-t", "RUNNING,COMPLETING", "-o", "%A")
            if not left or not left.split():
                return
            time.sleep(0.2)

    # ---------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        """Per cluster: state up/down, slurmctld, node states; sshd and munged up/down."""
        clusters: dict[str, Any] = {}
        for name, c in self._c.items():
            ctld = procs.alive_from(c.ctld_pid, c.ctld_marker)
            answering = ctld is not None and procs.port_listening(c.spec.ctld_port)
            states = self._node_states(c) if answering else None
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
            clusters[name] = {
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
                clusters[name]["job_submit"] = str(c.job_submit)
        result: dict[str, Any] = {
            "root": str(self.root),
            "munged": {
                "state": "up" if munge.munge_ok() else "down",
                "owned": procs.alive_from(self.root / "munged.pid", "munged") is not None,
            },
            "clusters": clusters,
            "sessions": self._live_leases(),
        }
        up = result["munged"]["state"] == "up" and all(
            v["state"] == "up" for v in clusters.values()
        )
        if self._sshd is not None:
            sshd_up = self._sshd.alive() is not None and procs.port_listening(self._sshd.port)
            result["sshd"] = {"state": "up" if sshd_up else "down", "port": self._sshd.port}
            up &= sshd_up
        if self._sfedd is not None:
            sfedd_up = self._sfedd.alive() is not None
            result["sfedd"] = {
                "state": "up" if sfedd_up else "down",
                "address": self._sfedd.address,
            }
            up &= sfedd_up
        result["up"] = up
        return result

    def is_up(self) -> bool:
        """True if munged, every cluster (all nodes ready) and sshd are up."""
        return bool(self.status()["up"])

    # ---------------------------------------------------------------- helpers

    def _run(self, c: _Cluster, *argv: str, timeout: float = 15.0) -> str | None:
        env = self._daemon_env(c)
        try:
            res = subprocess.run(
                list(argv), env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return res.stdout if res.returncode == 0 else None

    def _scontrol(self, c: _Cluster, *args: str) -> str | None:
        return self._run(c, "scontrol", *args)

    def _ping(self, c: _Cluster) -> bool:
        if not procs.port_listening(c.spec.ctld_port):
            return False
        out = self._scontrol(c, "ping")
        return out is not None and "is UP" in out

    def _slurmd_start_time(self, c: _Cluster, node: str) -> float:
        """SlurmdStartTime of `node` as slurmctld knows it (epoch seconds; 0 if unknown)."""
        out = self._scontrol(c, "-o", "show", "node", node) or ""
        for field_ in out.split():
            key, _, value = field_.partition("=")
            if key == "SlurmdStartTime":
                try:
                    return datetime.fromisoformat(value).timestamp()
                except ValueError:
                    return 0.0
        return 0.0

    def _node_states(self, c: _Cluster) -> dict[str, str] | None:
        out = self._run(c, "sinfo", "-h", "-N", "-o", "%N %t")
        if out is None:
            return None
        states: dict[str, str] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:
                states[parts[0]] = parts[1]
        return states

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


_LUA_CONFIG = re.compile(
    r"^(?:local[ \t]+)?CONFIG[ \t]*=[ \t]*\{[^\n]*\n(?P<body>.*?)^\}", re.M | re.S
)


def render_job_submit(source: str, values: Mapping[str, str], *, origin: str) -> str:
    """Set the values of `key = "value",` lines in the plugin's top-level `CONFIG = {` table
    (which closes with a `}` line at column 0). LabError if the table or a key is missing."""
    table = _LUA_CONFIG.search(source)
    if table is None:
        raise LabError(
            f"{origin}: no top-level `CONFIG = {{` table (closed by a `}}` line) to set "
            f"{', '.join(values)} in"
        )
    body = table.group("body")
    for key, value in values.items():
        line = re.compile(
            rf'^(?P<lead>[ \t]*{re.escape(key)}[ \t]*=[ \t]*)"(?:[^"\\\n]|\\.)*"(?P<tail>[ \t]*,)',
            re.M,
        )
        found = list(line.finditer(body))
        if len(found) != 1:
            raise LabError(
                f'{origin}: the CONFIG table needs exactly one `{key} = "...",` line, '
                f"found {len(found)}"
            )
        m = found[0]
        body = body[: m.end("lead")] + _lua_string(value) + body[m.start("tail") :]
    return source[: table.start("body")] + body + source[table.end("body") :]


def _lua_string(value: str) -> str:
    if any(ord(ch) < 32 for ch in value):
        raise LabError(f"cannot put {value!r} in a Lua string: control character")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_lua(text: str, origin: Path) -> None:
    """Fail on a Lua syntax error (slurmctld would not start, or keep an older script)."""
    luac = shutil.which(LUAC)
    if luac is None:
        return
    res = subprocess.run(
        [luac, "-p", "-"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    if res.returncode != 0:
        detail = res.stderr.strip().replace("stdin:", f"{origin.name}:")
        raise LabError(f"job_submit plugin {origin} does not compile: {detail}")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_int(path: Path, default: int) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return default


def _write_if_changed(path: Path, text: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True
