"""The sfed local lab: real Slurm 22.05 clusters and an sshd on this one host (stdlib only)."""

from .errors import LabError
from .lab import Lab
from .layout import (
    DEFAULT_PROXY_COMMAND,
    PLUGIN_SOURCE,
    REPO_ROOT,
    TEMPLATE_DIR,
    ClusterPaths,
    LabSite,
)
from .rendering import render_job_submit
from .spec import LAB_CLUSTERS, LAB_DBD_PORT, LAB_SSH_PORT, ClusterSpec
from .ssh import SshEndpoint

__all__ = [
    "DEFAULT_PROXY_COMMAND",
    "LAB_CLUSTERS",
    "LAB_DBD_PORT",
    "LAB_SSH_PORT",
    "PLUGIN_SOURCE",
    "REPO_ROOT",
    "TEMPLATE_DIR",
    "ClusterPaths",
    "ClusterSpec",
    "Lab",
    "LabError",
    "LabSite",
    "SshEndpoint",
    "render_job_submit",
]
