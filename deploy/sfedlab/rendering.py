"""The lab's rendered files: each cluster's slurm.conf and gres.conf (from the templates in
slurm-conf/), its fake GPU device files, and the front door's job_submit.lua."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any

from .errors import LabError
from .files import read_text, write_if_changed
from .layout import ClusterPaths

# Checks the rendered plugin's syntax before slurmctld sees it, where installed (lua5.1 package).
LUAC = "luac5.1"


def _hostlist(prefix: str, count: int) -> str:
    return f"{prefix}1" if count == 1 else f"{prefix}[1-{count}]"


def _range(first: int, count: int) -> str:
    return str(first) if count == 1 else f"{first}-{first + count - 1}"


def render_cluster(
    c: ClusterPaths, template_dir: Path, first_job_id: int, extra: Mapping[str, Any] | None = None
) -> bool:
    """Write slurm.conf, gres.conf and fake GPU files; True if a config file changed. `extra`
    holds template values from outside the cluster's spec (the door's slurmdbd port)."""
    s = c.spec
    node_range = _hostlist(s.node_prefix, s.nodes)
    gpu_files = str(c.dev / ("gpu0" if s.gpus_per_node == 1 else f"gpu[0-{s.gpus_per_node - 1}]"))
    typed = f"{s.gpu_type}:" if s.gpu_type else ""  # Gres=gpu:a100:4 with Type=a100 in gres.conf
    gres_type = f" Type={s.gpu_type}" if s.gpu_type else ""
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
        "gres": f"Gres=gpu:{typed}{s.gpus_per_node}" if s.gpus_per_node else "",
        "features": f"Features={','.join(s.features)}" if s.features else "",
        "gpus": s.gpus_per_node,
        "partition": s.partition,
        # A door's default partition is its local one (door.conf.in).
        "partition_default": "NO" if s.is_door else "YES",
        "local_partition": s.local_partition,
        "gres_lines": (
            f"NodeName={node_range} Name=gpu{gres_type} File={gpu_files}" if s.gpus_per_node else ""
        ),
        **(extra or {}),
    }
    changed = False
    parts = {"slurm.conf.in": c.conf, "gres.conf.in": c.gres_conf}
    if s.is_door:
        parts["door.conf.in"] = c.conf  # appended to slurm.conf
    texts: dict[Path, str] = {}
    for name, target in parts.items():
        template = template_dir / name
        try:
            text = Template(template.read_text()).substitute(values)
        except (OSError, KeyError, ValueError) as e:
            raise LabError(f"cannot render {template}: {e!r}") from None
        texts[target] = _append(texts.get(target, ""), text)
    for target, text in texts.items():
        changed |= write_if_changed(target, text)
    for d in (c.dev, c.run, c.log, c.state, c.spool):
        d.mkdir(parents=True, exist_ok=True)
    for i in range(s.gpus_per_node):
        (c.dev / f"gpu{i}").touch()
    return changed


# Keys that may appear on many lines of slurm.conf; any other key is one setting.
_REPEATED_KEYS = frozenset({"NodeName", "PartitionName", "NodeSet", "DownNodes", "FrontendName"})
_SETTING = re.compile(r"^(?P<key>[A-Za-z]+)=", re.M)


def _append(base: str, part: str) -> str:
    """`part` after `base`, where a setting of `part` (the door's) replaces the same setting of
    `base`: that line is commented out, since slurmctld logs an error for a key set twice."""
    keys = {m["key"] for m in _SETTING.finditer(part)} - _REPEATED_KEYS
    if keys:
        base = _SETTING.sub(
            lambda m: f"# (set again below) {m[0]}" if m["key"] in keys else m[0], base
        )
    return base + part


def render_plugin(door: ClusterPaths, source: Path, values: Mapping[str, str]) -> str:
    """The door's job_submit.lua: the plugin `source` with the lab's CONFIG `values`."""
    try:
        text = source.read_text()
    except FileNotFoundError:
        raise LabError(
            f"{door.spec.name}: job_submit plugin {source} does not exist "
            "(the front door's slurmctld runs with JobSubmitPlugins=lua)"
        ) from None
    except OSError as e:
        raise LabError(f"{door.spec.name}: cannot read job_submit plugin {source}: {e}") from None
    rendered = render_job_submit(text, values, origin=str(source))
    rendered += f"-- Rendered by deploy/lab from {source}, with the lab's CONFIG values.\n"
    if read_text(door.job_submit) != rendered:
        _check_lua(rendered, source)
    return rendered


def install_plugin(door: ClusterPaths, text: str) -> str | None:
    """Write the door's job_submit.lua if it changed (then say so); a running slurmctld
    re-reads it at the next submission (it compares the file's mtime, in seconds, with the
    loaded one)."""
    target = door.job_submit
    old = read_text(target)
    if old == text:
        return None
    old_mtime = int(target.stat().st_mtime) if old is not None else 0
    write_if_changed(target, text)
    new_mtime = target.stat().st_mtime
    if int(new_mtime) <= old_mtime:
        # Rewritten within the second of the last load: slurmctld would keep the old script.
        os.utime(target, (new_mtime, old_mtime + 1))
    return f"{door.spec.name}: {'rendered' if old is None else 're-rendered'} {target}"


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
