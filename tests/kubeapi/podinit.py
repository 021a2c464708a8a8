"""Container init, run inside `unshare --mount --uts --fork`: mounts, hostname, then exec.

Usage: python podinit.py SPEC.json. On a setup failure it writes the reason to the spec's
"start_error" file and exits 128, as a container runtime reports a StartError.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _bind(source: str, target: str, read_only: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        Path(target).touch()
    _mount("--bind", source, target)
    if read_only:
        _mount("-o", "remount,bind,ro", target)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        # Private propagation keeps every mount below inside this pod's namespace.
        _mount("--make-rprivate", "/")
        for m in spec["mounts"]:
            _bind(m["source"], m["target"], m["readOnly"])
        _bind(spec["hosts_file"], "/etc/hosts", False)
        socket.sethostname(spec["hostname"])
        os.chdir(spec["working_dir"] or "/")
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        Path(spec["start_error"]).write_text(f"failed to create containerd task: {detail.strip()}")
        sys.exit(128)
    argv = spec["argv"]
    if spec["uid"] is not None or spec["gid"] is not None:
        ids = []
        if spec["uid"] is not None:
            ids.append(f"--reuid={spec['uid']}")
        ids.append(f"--regid={spec['gid'] if spec['gid'] is not None else 0}")
        argv = ["setpriv", *ids, "--clear-groups", "--", *argv]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError:
        Path(spec["start_error"]).write_text(
            f'exec: "{spec["argv"][0]}": executable file not found in $PATH'
        )
        sys.exit(128)


if __name__ == "__main__":
    main()
