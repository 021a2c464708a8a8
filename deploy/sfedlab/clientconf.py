"""The sfed client config the lab leaves for `sfed`, as minikube leaves ~/.kube/config.

`sfed` without --address or $SFED_ADDRESS reads the address of its sfedd from
$SFED_CLIENT_CONF, then the per-user file (`user_client_conf`), then /etc/sfed/client.toml.
The lab writes the per-user file when it starts its sfedd, but only a file it wrote itself
(first line MARKER) or none: an admin's own file is never overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .files import read_text, write_if_changed

MARKER = "# Written by the sfed lab (deploy/lab up, make demo) for the sfedd it runs."


def user_client_conf(environ: Mapping[str, str] = os.environ) -> Path:
    """$XDG_CONFIG_HOME/sfed/client.toml, or ~/.config/sfed/client.toml (what `sfed` reads)."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(xdg):
        base = Path(xdg)
    else:
        base = Path(environ.get("HOME") or os.path.expanduser("~")) / ".config"
    return base / "sfed" / "client.toml"


def render(address: str) -> str:
    """The lab's client config for `address`."""
    return (
        f"{MARKER}\n"
        "# The lab rewrites this file only while the line above is its first line: remove\n"
        "# that line, or write your own file, and the lab will never overwrite it.\n"
        f"address = {json.dumps(address, ensure_ascii=False)}\n"
    )


def written_by_lab(path: Path) -> bool:
    """True if the file at `path` is one the lab wrote (and may rewrite)."""
    text = read_text(path)
    return text is not None and text.partition("\n")[0] == MARKER


def write_client_conf(path: Path, address: str) -> str | None:
    """Leave `address` in the client config at `path` unless someone else wrote that file;
    returns a line saying what changed or why not, None when the file was already right."""
    if path.exists() and not written_by_lab(path):
        return f"note: {path} was not written by the lab; left as it is ({address} not set)"
    try:
        changed = write_if_changed(path, render(address), mode=0o644)
    except OSError as e:
        return f"note: cannot write {path}: {e.strerror or e}"
    return f"sfed client config {path}: address {address}" if changed else None
