"""The shared munged: used if one answers, started (and owned) by the lab otherwise."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from . import procs
from .errors import LabError

MUNGED = "/usr/sbin/munged"
RUN_DIR = Path("/run/munge")
SYSTEM_PID_FILE = RUN_DIR / "munged.pid"


def munge_ok() -> bool:
    """True if `munge -n | unmunge` succeeds against the default socket."""
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=5, check=False)
        if cred.returncode != 0:
            return False
        res = subprocess.run(
            ["unmunge"], input=cred.stdout, capture_output=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def ensure_munged(pid_file: Path, out_file: Path, timeout: float = 10.0) -> bool:
    """Make sure a munged answers; start one if none runs. True if this call started it."""
    if munge_ok():
        return False
    if shutil.which("munge") is None or not Path(MUNGED).exists():
        raise LabError("munge is not installed (apt-get install munge)")
    other = procs.alive_from(SYSTEM_PID_FILE, "munged")
    if other is not None:
        raise LabError(f"munged (pid {other}) runs but `munge -n | unmunge` fails")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    shutil.chown(RUN_DIR, "munge", "munge")
    RUN_DIR.chmod(0o755)
    # --force: a stale socket left by a dead munged must not block the start.
    procs.spawn(
        [MUNGED, "--foreground", "--force"], pid_file=pid_file, out_file=out_file, user="munge"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if munge_ok():
            return True
        if procs.alive_from(pid_file, "munged") is None:
            break
        time.sleep(0.1)
    lines = procs.tail(out_file)
    procs.stop(pid_file, "munged")
    raise LabError("munged did not start", lines)


def stop_munged(pid_file: Path) -> None:
    """Stop the munged the lab started, unless Slurm daemons on this host still use one."""
    if procs.alive_from(pid_file, "munged") is None:
        pid_file.unlink(missing_ok=True)
        return
    if procs.processes_named("slurmctld", "slurmd", "slurmstepd"):
        return  # keep the pid file: a later `down` stops it once nothing needs it
    procs.stop(pid_file, "munged")
