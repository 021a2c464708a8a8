"""Run plugins/job_submit.lua under lua5.1 with fakes of Slurm 22.05.8, and build job_desc
tables the way 22.05.8's slurmctld builds them for real sbatch invocations.

The field values below were read off a real 22.05.8 slurmctld whose job_submit.lua dumped
every field for real `sbatch` / `srun` / `salloc` calls (plugins/README.md lists them).
"""

from __future__ import annotations

import os
import posixpath
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.sbatch_options import parse_memory_mb, parse_time_limit_min

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "job_submit.lua"
HARNESS = Path(__file__).resolve().parent / "harness.lua"
LUA = shutil.which("lua5.1") or "lua5.1"

NO_VAL = 4294967294  # unset 32-bit field
NO_VAL16 = 65534  # unset 16-bit field
INFINITE = 4294967295  # --time=infinite
ACCESS_DENIED = 2002  # slurm.ESLURM_ACCESS_DENIED

SCRIPT = b"#!/bin/sh\nsrun hostname\n"
T0 = 1_764_000_000  # the harness's clock in most tests

CAPS = (
    "version=1 generated={generated} partition=fed\n"
    "pool=alpha nodes=2 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP\n"
    "pool=beta nodes=4 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=DRAINED\n"
)
PARTS = {"fed": {"flag_default": 0}, "gpu": {"flag_default": 1}}


def batch_job(args: str = "", *, cwd: str = "/home/alice", script_name: str = "train.sh") -> dict:
    """job_desc fields for `sbatch <args> <script_name>` as 22.05.8 hands them to Lua.

    Unset numbers are NO_VAL / NO_VAL16; unset strings are absent (nil). Memory is given as
    22.05's derived getters show it (min_mem_per_node or min_mem_per_cpu); the harness
    derives pn_min_memory from them.
    """
    job: dict[str, Any] = {
        "name": script_name,
        "min_nodes": NO_VAL,
        "max_nodes": NO_VAL,
        "num_tasks": NO_VAL,
        "ntasks_per_node": NO_VAL16,
        "cpus_per_task": NO_VAL16,
        "min_cpus": 1,
        "pn_min_cpus": NO_VAL16,
        "time_limit": NO_VAL,
        "time_min": NO_VAL,
        "std_in": "/dev/null",
        "work_dir": cwd,
        "requeue": NO_VAL16,
        "shared": NO_VAL16,
        "contiguous": 0,
        "ntasks_per_tres": NO_VAL16,
        "threads_per_core": NO_VAL16,
        "max_cpus": NO_VAL,
        "priority": NO_VAL,
        "nice": NO_VAL,
        "begin_time": 0,
        "immediate": 0,
        "user_id": 1000,
        "group_id": 1000,
        "argc": 1,
    }
    opts = shlex.split(args)
    i = 0
    while i < len(opts):
        opt = opts[i]
        if "=" in opt and opt.startswith("--"):
            opt, value = opt.split("=", 1)
        elif opt in ("--exclusive", "--requeue", "--no-requeue"):
            value = ""
        else:
            i += 1
            value = opts[i]
        i += 1
        _apply(job, opt, value, cwd)
    # sbatch fills these from the others (seen on 22.05.8).
    nodes, tasks, cpt = job["min_nodes"], job["num_tasks"], job["cpus_per_task"]
    if tasks == NO_VAL and job["ntasks_per_node"] != NO_VAL16 and nodes != NO_VAL:
        job["num_tasks"] = tasks = nodes * job["ntasks_per_node"]
    if tasks != NO_VAL:
        job["min_cpus"] = tasks * (cpt if cpt != NO_VAL16 else 1)
    elif nodes != NO_VAL:
        job["min_cpus"] = nodes
    return job


def _apply(job: dict[str, Any], opt: str, value: str, cwd: str) -> None:
    if opt in ("-p", "--partition"):
        job["partition"] = value
    elif opt in ("-J", "--job-name"):
        job["name"] = value
    elif opt in ("-N", "--nodes"):
        low, _, high = value.partition("-")
        job["min_nodes"], job["max_nodes"] = int(low), int(high or low)
    elif opt in ("-n", "--ntasks"):
        job["num_tasks"] = int(value)
    elif opt == "--ntasks-per-node":
        job["ntasks_per_node"] = int(value)
    elif opt in ("-c", "--cpus-per-task"):
        job["cpus_per_task"] = job["pn_min_cpus"] = int(value)
    elif opt == "--gres":
        job["tres_per_node"] = ",".join("gres:" + item for item in value.split(","))
    elif opt == "--gpus-per-node":
        job["tres_per_node"] = "gres:gpu:" + value
    elif opt in ("-G", "--gpus"):
        job["tres_per_job"] = "gres:gpu:" + value
    elif opt == "--gpus-per-task":
        job["tres_per_task"] = "gres:gpu:" + value
    elif opt == "--cpus-per-gpu":
        job["cpus_per_tres"] = "gres:gpu:" + value
    elif opt == "--mem-per-gpu":
        job["mem_per_tres"] = f"gres:gpu:{parse_memory_mb(value)}"
    elif opt == "--mem":
        job["min_mem_per_node"] = 0 if value == "0" else parse_memory_mb(value)
    elif opt == "--mem-per-cpu":
        job["min_mem_per_cpu"] = parse_memory_mb(value)
    elif opt in ("-t", "--time"):
        job["time_limit"] = INFINITE if value == "infinite" else parse_time_limit_min(value)
    elif opt in ("-o", "--output"):
        job["std_out"] = posixpath.join(cwd, value)
    elif opt in ("-e", "--error"):
        job["std_err"] = posixpath.join(cwd, value)
    elif opt in ("-a", "--array"):
        job["array_inx"] = value
    elif opt in ("-d", "--dependency"):
        job["dependency"] = value
    elif opt == "--comment":
        job["comment"] = value
    elif opt == "--requeue":
        job["requeue"] = 1
    elif opt == "--no-requeue":
        job["requeue"] = 0
    elif opt == "--exclusive":
        job["shared"] = 0
    elif opt in ("-C", "--constraint"):
        job["features"] = value
    else:
        raise ValueError(f"batch_job does not know {opt}")


def caps_text(generated: int = T0, extra: str = "") -> str:
    """The lab's two pools: alpha 2 x (4 GPUs, 16 CPUs, 64000 MB) UP, beta 4 x 8 GPUs DRAINED."""
    return CAPS.format(generated=generated) + extra


@dataclass
class Call:
    """What one call of slurm_job_submit / slurm_job_modify did."""

    rc: int | None
    raised: str | None = None
    user: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    error: list[str] = field(default_factory=list)
    writes: list[tuple[str, Any]] = field(default_factory=list)
    unknown_writes: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    script: bytes | None = None

    @property
    def written(self) -> dict[str, Any]:
        return dict(self.writes)


def lua_literal(value: Any) -> str:
    """A Lua 5.1 literal for None, bool, int, float, str, bytes, list and dict."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return '"' + "".join(f"\\{b}" for b in value) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        items = (f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


class Shim:
    """The plugin under a fresh lua5.1 per run, its CONFIG pointed at files in a temp dir."""

    def __init__(self, tmp: Path, **config: Any) -> None:
        self.tmp = tmp
        self.caps = tmp / "capabilities"
        self.config: dict[str, Any] = {
            "capabilities_path": str(self.caps),
            "proxy_command": "/opt/sfed/bin/sfed-proxy",
            **config,
        }

    def write_caps(self, text: str) -> None:
        self.caps.write_text(text)

    def run(self, steps: list[dict[str, Any]]) -> list[Call]:
        """Runs the steps (see harness.lua) in one Lua process; returns one Call per call."""
        spec = self.tmp / "spec.lua"
        prepared = []
        for n, step in enumerate(steps):
            step = dict(step)
            if isinstance(step.get("script"), bytes):
                path = self.tmp / f"in-{n}.sh"
                path.write_bytes(step.pop("script"))
                step["script_file"] = str(path)
            prepared.append(step)
        spec.write_text(f"return {lua_literal({'config': self.config, 'steps': prepared})}\n")
        out = self.tmp / "out"
        out.mkdir(exist_ok=True)
        proc = subprocess.run(
            [LUA, str(HARNESS), "run", str(PLUGIN), str(spec), str(out)],
            capture_output=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
        if proc.returncode != 0:
            raise AssertionError(f"harness failed: {proc.stderr.decode(errors='replace')}")
        return _parse(proc.stdout.decode())

    def submit(
        self,
        job: dict[str, Any],
        script: bytes | None = SCRIPT,
        *,
        now: int = T0,
        part_list: dict[str, Any] | None = None,
        **step: Any,
    ) -> Call:
        """One slurm_job_submit call (script None: an srun/salloc job)."""
        full = {"call": "submit", "now": now, "job": job, "part_list": part_list or PARTS, **step}
        if script is not None:
            full["script"] = script
        return self.run([full])[0]


def _parse(output: str) -> list[Call]:
    calls: list[Call] = []
    for line in output.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "step":
            parts = dict(p.split("=") for p in rest.split()[1:])
            calls.append(Call(rc=None if parts["rc"] == "nil" else int(parts["rc"])))
            continue
        call = calls[-1]
        if kind == "raised":
            call.raised = bytes.fromhex(rest).decode(errors="replace")
        elif kind in ("user", "info", "error"):
            getattr(call, kind).append(bytes.fromhex(rest).decode(errors="replace"))
        elif kind == "unknown_write":
            call.unknown_writes.append(rest)
        elif kind in ("write", "field"):
            name, value = _value(rest)
            if kind == "write":
                call.writes.append((name, value))
            else:
                call.fields[name] = value
        elif kind == "script":
            call.script = Path(rest).read_bytes()
    return calls


def _value(rest: str) -> tuple[str, Any]:
    name, kind, *value = rest.split(" ")
    if kind == "nil":
        return name, None
    if kind == "s":
        return name, bytes.fromhex(value[0]).decode(errors="surrogateescape") if value else ""
    number = float(value[0])
    return name, int(number) if number.is_integer() else number


def split_wrapper(script: bytes) -> tuple[list[bytes], bytes]:
    """The wrapper's five header lines and the user's script: everything after the 5th newline."""
    *head, body = script.split(b"\n", 5)
    return head, body


def request_fields(script: bytes) -> dict[str, str]:
    """The #SFED-REQUEST line of a wrapper as a dict."""
    head, _ = split_wrapper(script)
    tag, *pairs = head[3].decode().split(" ")
    assert tag == "#SFED-REQUEST"
    return dict(p.split("=", 1) for p in pairs)
