"""The sfed local lab: real Slurm 22.05 clusters and an sshd on this one host (stdlib only)."""

from .errors import LabError
from .lab import REPO_ROOT, TEMPLATE_DIR, Lab
from .spec import LAB_CLUSTERS, LAB_SSH_PORT, ClusterSpec
from .ssh import SshEndpoint

__all__ = [
    "LAB_CLUSTERS",
    "LAB_SSH_PORT",
    "REPO_ROOT",
    "TEMPLATE_DIR",
    "ClusterSpec",
    "Lab",
    "LabError",
    "SshEndpoint",
]
