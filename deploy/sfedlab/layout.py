"""Where the lab's files are: the repo's sources, each cluster's directory, the lab's site.

`LabSite` is the small frozen value that sfedd's configuration needs from a lab (its root,
the pools' directories and the sshd endpoint), so that it never needs the `Lab` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import files
from .errors import LabError
from .spec import ClusterSpec
from .ssh import SshEndpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = REPO_ROOT / "slurm-conf"
# The front door's job_submit plugin; the lab renders it next to the door's slurm.conf.
PLUGIN_SOURCE = REPO_ROOT / "plugins" / "job_submit.lua"
# sfed-proxy in the project's virtual environment next to the repo.
DEFAULT_BIN_DIR = REPO_ROOT / ".venv" / "bin"
DEFAULT_PROXY_COMMAND = DEFAULT_BIN_DIR / "sfed-proxy"


@dataclass(frozen=True)
class ClusterPaths:
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
    def sfed_spool(self) -> Path:
        """Where the lab's sfedd spools the output of jobs that name no file."""
        return self.dir / "sfed-spool"

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


@dataclass(frozen=True)
class LabSite:
    """What an sfedd needs to know of a lab: its pools' files, its sshd, the door's
    capabilities file."""

    root: Path
    pools: tuple[ClusterPaths, ...]
    ssh_endpoint: SshEndpoint | None = None
    capabilities: Path | None = None

    @property
    def ssh(self) -> SshEndpoint:
        """The lab sshd, for SSH transports."""
        if self.ssh_endpoint is None:
            raise LabError("this lab has no sshd (ssh_port=None)")
        return self.ssh_endpoint

    def capabilities_path(self) -> Path:
        """Where sfedd writes the capabilities for the door's plugin; its directory is created
        and made world-readable (r-x for all) here."""
        if self.capabilities is None:
            raise LabError("this lab has no front door (no cluster with role 'door')")
        files.ensure_readable_dir(self.capabilities.parent, self.root)
        return self.capabilities
