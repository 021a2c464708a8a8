"""The lab: real Slurm clusters (one slurmctld + several slurmd each) and an sshd on one host.

`Lab` ties the parts together: rendering (the clusters' files), slurm_daemons (their
processes), sessions (test sessions sharing the lab), ssh, munge and the lab's sfedd.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import munge, procs
from .clientconf import user_client_conf
from .errors import LabError
from .files import ensure_readable_dir
from .layout import (
    DEFAULT_BIN_DIR,
    DEFAULT_PROXY_COMMAND,
    PLUGIN_SOURCE,
    REPO_ROOT,
    TEMPLATE_DIR,
    ClusterPaths,
    LabSite,
)
from .rendering import install_plugin, render_plugin
from .sessions import Sessions
from .sfedd import LabSfedd
from .slurm_daemons import (
    Log,
    Start,
    cluster_status,
    quiet,
    stop_cluster,
    stop_started,
    up_cluster,
    wait_ready,
)
from .slurmdbd import SlurmDbd
from .spec import LAB_CLUSTERS, LAB_DBD_PORT, LAB_SSH_PORT, ClusterSpec
from .ssh import Sshd, SshEndpoint


class Lab:
    """Real Slurm clusters and an sshd under `root`; see deploy/lab for the CLI."""

    def __init__(
        self,
        root: Path,
        clusters: Sequence[ClusterSpec] = LAB_CLUSTERS,
        ssh_port: int | None = LAB_SSH_PORT,
        *,
        dbd_port: int | None = LAB_DBD_PORT,
        template_dir: Path = TEMPLATE_DIR,
        timeout: float = 60.0,
        plugin_source: Path = PLUGIN_SOURCE,
        proxy_command: Path | None = None,
        capabilities_path: Path | None = None,
        sfedd: bool = False,
        bin_dir: Path = DEFAULT_BIN_DIR,
        client_conf: Path | None = None,
    ) -> None:
        """`clusters` may hold one front door (role "door"); `plugin_source`, `proxy_command`
        (default: sfed-proxy in <repo>/.venv) and `capabilities_path` (default:
        <root>/<door>/run/capabilities) go into the door's job_submit.lua, and its accounting
        slurmdbd listens on `dbd_port` (a lab without a door runs none). With `sfedd`, the
        lab runs its own sfedd and leaves its address in `client_conf` (see clientconf),
        unless a test session started the lab."""
        self.root = Path(root).resolve()
        self.specs: tuple[ClusterSpec, ...] = tuple(clusters)
        # The pools sfed federates (what federation_config iterates); the door is `door`.
        self.clusters: tuple[ClusterSpec, ...] = tuple(c for c in self.specs if not c.is_door)
        doors = [c for c in self.specs if c.is_door]
        if len(doors) > 1:
            raise ValueError(f"a lab has at most one front door, got {[c.name for c in doors]}")
        self.door: ClusterSpec | None = doors[0] if doors else None
        if self.door is not None and dbd_port is None:
            raise ValueError(f"door {self.door.name} needs a dbd_port: its accounting slurmdbd")
        self.ssh_port = ssh_port
        self.template_dir = Path(template_dir)
        self.timeout = timeout
        self.plugin_source = Path(plugin_source)
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
        if self.door is not None and dbd_port is not None:
            ports.append(dbd_port)
        if len(set(ports)) != len(ports):
            raise ValueError(f"lab ports overlap: {sorted(ports)}")
        self._c = {c.name: ClusterPaths(c, self.root / c.name) for c in self.specs}
        self._sshd = (
            Sshd(self.root / "ssh", ssh_port, self.template_dir / "sshd_config.in")
            if ssh_port is not None
            else None
        )
        # The door's accounting (sacct): slurmdbd on the host's MariaDB.
        self._dbd: SlurmDbd | None = None
        if self.door is not None and dbd_port is not None:
            door_paths = self._c[self.door.name]
            template = self.template_dir / "slurmdbd.conf.in"
            self._dbd = SlurmDbd(door_paths, self.root / "slurmdbd", dbd_port, template)
        self._sessions = Sessions(self.root / "sessions")
        # With sfedd, the lab runs the door's federation itself and proxies reach it through
        # a launcher that knows its socket.
        self._sfedd = (
            LabSfedd(self.site, self.root / "sfed", Path(bin_dir), client_conf=client_conf)
            if sfedd
            else None
        )
        default_proxy = self._sfedd.proxy_launcher if self._sfedd else DEFAULT_PROXY_COMMAND
        self._proxy_command = Path(proxy_command or default_proxy).absolute()

    @classmethod
    def default(cls) -> Lab:
        """The shared lab: `$SFED_LAB_DIR` or `<repo>/.lab`, with LAB_CLUSTERS; its sfedd's
        address goes into the per-user sfed client config (~/.config/sfed/client.toml)."""
        env = os.environ.get("SFED_LAB_DIR")
        return cls(
            Path(env) if env else REPO_ROOT / ".lab", sfedd=True, client_conf=user_client_conf()
        )

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
    def site(self) -> LabSite:
        """What an sfedd's configuration needs of this lab (see federation_config)."""
        return LabSite(
            root=self.root,
            pools=tuple(self._c[c.name] for c in self.clusters),
            ssh_endpoint=self._sshd.endpoint if self._sshd is not None else None,
            capabilities=self._capabilities if self.door is not None else None,
        )

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
        ensure_readable_dir(self._capabilities.parent, self.root)
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
    def slurmdbd(self) -> SlurmDbd:
        """The door's slurmdbd (port, database, config), when the lab has a door."""
        if self._dbd is None:
            raise LabError("this lab has no front door (no cluster with role 'door')")
        return self._dbd

    @property
    def ssh(self) -> SshEndpoint:
        """The lab sshd, for SSH transports (root with a generated key, strict host keys)."""
        return self.site.ssh

    def _cl(self, name: str) -> ClusterPaths:
        try:
            return self._c[name]
        except KeyError:
            raise KeyError(f"no lab cluster {name!r} (have {sorted(self._c)})") from None

    # ---------------------------------------------------------------- up

    def up(self, log: Log = quiet) -> dict[str, str]:
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

        starts: list[Start] = []
        try:
            # slurmdbd starts first and must answer before the door's slurmctld starts (which
            # registers there); the pools start meanwhile.
            if self._dbd is not None:
                actions["slurmdbd"] = self._dbd.up(log)
            for c in sorted(self._c.values(), key=lambda c: c.spec.is_door):
                values: dict[str, Any] = {}
                if c.spec.is_door:
                    if plugin is not None:
                        self._install_plugin(c, plugin, log)
                    if self._dbd is not None:
                        self._dbd.wait()
                        values = self._dbd.values
                starts.append(up_cluster(c, self.template_dir, actions, log, values))
            if self._sshd is not None:
                actions["sshd"] = "started" if self._sshd.up() else "running"
            wait_ready(starts, self.timeout, log)
            if self._sshd is not None:
                self._sshd.wait()
            if self._sfedd is not None:
                actions["sfedd"] = self._sfedd.up()
                self._sfedd.wait()
        except BaseException:
            # Leave nothing half-started behind: stop what this call started.
            for s in starts:
                stop_started(s)
            if self._sshd is not None and actions.get("sshd") == "started":
                self._sshd.down()
            if self._dbd is not None and actions.get("slurmdbd") in ("started", "restarted"):
                self._dbd.down()
            if self._sfedd is not None and actions.get("sfedd") in ("started", "restarted"):
                self._sfedd.down()
            raise
        if not self._sessions.started:
            self._leave_client_conf(log)
        return actions

    def _leave_client_conf(self, log: Log) -> None:
        """Point a plain `sfed` at the lab's sfedd (see clientconf). Not done for a lab that a
        test session started and will stop: tests leave the user's sfed where it was."""
        if self._sfedd is not None and (note := self._sfedd.write_client_conf()):
            log(note)

    def _render_plugin(self) -> str:
        """The door's job_submit.lua: the plugin source with the lab's CONFIG values."""
        assert self.door is not None and self._capabilities is not None
        values = {
            "capabilities_path": str(self._capabilities),
            "proxy_command": str(self._proxy_command),
        }
        return render_plugin(self._cl(self.door.name), self.plugin_source, values)

    def _install_plugin(self, c: ClusterPaths, text: str, log: Log) -> None:
        """Write the door's job_submit.lua if it changed, next to a readable capabilities dir."""
        self.door_capabilities_path()
        said = install_plugin(c, text)
        if said is None:
            return
        log(said)
        if not self._proxy_command.exists():
            log(f"{c.spec.name}: note: proxy command {self._proxy_command} does not exist yet")

    # ---------------------------------------------------------------- down

    def down(self) -> None:
        """Stop only what the lab started (per its pid files); cancel lab jobs first."""
        with self._lock():
            self._down()

    def _down(self) -> None:
        if self._sfedd is not None:
            self._sfedd.down()
        for c in self._c.values():
            stop_cluster(c, cancel_jobs=True)
        if self._sshd is not None:
            self._sshd.down()
        if self._dbd is not None:
            self._dbd.down()  # after the door's slurmctld, which sends it the jobs' last records
        munge.stop_munged(self.root / "munged.pid")
        self._sessions.clear_started()

    # ---------------------------------------------------------------- sessions

    def pin(self, log: Log = quiet) -> None:
        """Keep the lab up after test sessions end, and leave its sfedd's address in the
        client config (what `deploy/lab up` and `make demo` do; `up` already left it unless a
        session had started the lab)."""
        if self._sessions.started:
            self._sessions.clear_started()
            self._leave_client_conf(log)

    @contextlib.contextmanager
    def session(self, log: Log = quiet) -> Iterator[Lab]:
        """Hold the lab for a test session (one per process): `up` on entry; on exit `down`
        if a session brought it up and no other live session still holds it."""
        with self._sessions.hold(
            self._lock, is_up=self.is_up, up=lambda: self._up(log), down=self._down
        ):
            yield self

    # ---------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        """Per cluster: state up/down, slurmctld, node states; sshd, slurmdbd and munged
        up/down."""
        clusters = {name: cluster_status(c) for name, c in self._c.items()}
        result: dict[str, Any] = {
            "root": str(self.root),
            "munged": {
                "state": "up" if munge.munge_ok() else "down",
                "owned": procs.alive_from(self.root / "munged.pid", "munged") is not None,
            },
            "clusters": clusters,
            "sessions": self._sessions.live(),
        }
        up = result["munged"]["state"] == "up" and all(
            v["state"] == "up" for v in clusters.values()
        )
        if self._sshd is not None:
            sshd_up = self._sshd.alive() is not None and procs.port_listening(self._sshd.port)
            result["sshd"] = {"state": "up" if sshd_up else "down", "port": self._sshd.port}
            up &= sshd_up
        if self._dbd is not None:
            result["slurmdbd"] = self._dbd.status()
            up &= result["slurmdbd"]["state"] == "up"
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
        """True if munged, every cluster (all nodes ready), sshd and slurmdbd are up."""
        return bool(self.status()["up"])

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
