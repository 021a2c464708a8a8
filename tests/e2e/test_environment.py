"""The job's environment and whereabouts as sbatch promises them, through the front door and
through `sfed submit`: --export, SLURM_SUBMIT_DIR, what a pool leaves out (told to the
owner), the user's comment, and nothing of sfed's in the user's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sfedlab import Lab

from tests.e2e.door import FrontDoor, field
from tests.e2e.harness import Daemon, write_script

pytestmark = pytest.mark.lab

PRINT_ENV = 'echo "LR=${LR-unset} SECRET=${SECRET-unset} SUBMIT=$SLURM_SUBMIT_DIR"\n'
SECRET = "s3cr3t 'quoted' $HOME"


def door_output(door: FrontDoor, tmp_path: Path, *argv: str, env: dict[str, str]) -> str:
    """Submit at the door with `env` in sbatch's environment; the job's output once ended."""
    script = door.script("env.sh", PRINT_ENV)
    job = door.submit("-p", "fed", "-o", "out-%j.txt", *argv, script, env=env)
    shown = door.wait_ended(job)
    assert field(shown, "JobState") == "COMPLETED", shown
    return (tmp_path / f"out-{job}.txt").read_text()


def test_door_carries_the_submitting_shell_s_environment(door: FrontDoor, tmp_path: Path) -> None:
    """`export LR=0.1; sbatch -p fed` reaches the pool with LR (sbatch's default --export=ALL),
    and the output holds only what the job printed."""
    out = door_output(door, tmp_path, env={"LR": "0.1", "SECRET": SECRET})
    assert out == f"LR=0.1 SECRET={SECRET} SUBMIT={tmp_path}\n"


def test_door_export_list_carries_only_those(door: FrontDoor, tmp_path: Path) -> None:
    """--export=LR=0.2 carries LR=0.2 and nothing else of the shell's."""
    out = door_output(door, tmp_path, "--export=LR=0.2", env={"SECRET": SECRET})
    assert out.startswith("LR=0.2 SECRET=unset ")


def test_door_export_none_carries_nothing(door: FrontDoor, tmp_path: Path) -> None:
    """--export=NONE carries none of the shell's variables."""
    out = door_output(door, tmp_path, "--export=NONE", env={"LR": "0.1"})
    assert out.startswith("LR=unset SECRET=unset ")


def test_door_keeps_the_user_s_comment(door: FrontDoor, lab: Lab) -> None:
    """The user's --comment stays visible, with the federation's status after it."""
    script = door.script("s.sh", "sleep 300\n")
    job = door.submit("-p", "fed", "--comment=my experiment 7", "-o", "/dev/null", script)
    door.wait_comment(job, {"RUNNING"})
    assert door.comment(job).startswith("my experiment 7 | sfed ")


def sfed_output(daemon: Daemon, tmp_path: Path, *options: str, env: dict[str, str]) -> str:
    """Submit with sfed submit, `env` in its environment; the job's output once ended."""
    script = write_script(tmp_path, "env.sh", PRINT_ENV)
    out = tmp_path / "out.txt"
    submitted = daemon.run("submit", "--parsable", "-o", str(out), *options, str(script), env=env)
    job = daemon.wait_state(int(submitted.stdout.strip()))
    assert job["state"] == "COMPLETED", job
    return out.read_text()


def test_sfed_submit_carries_the_environment_and_submit_dir(daemon: Daemon, tmp_path: Path) -> None:
    """sfed submit carries the client's environment (ALL by default) and its working
    directory as SLURM_SUBMIT_DIR, whatever -D says."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_dir.chmod(0o777)
    out = sfed_output(daemon, tmp_path, "-D", str(run_dir), env={"LR": "0.3"})
    assert out == f"LR=0.3 SECRET=unset SUBMIT={daemon.cwd}\n"


def test_left_out_variables_are_shown_to_the_owner(daemon: Daemon, tmp_path: Path) -> None:
    """A variable the pool leaves out (LD_PRELOAD) is named in sfed show, with why."""
    script = write_script(tmp_path, "t.sh", "true\n")
    env = {"LD_PRELOAD": "/nonexistent.so"}
    submitted = daemon.run("submit", "--parsable", "-o", "/dev/null", str(script), env=env)
    job_id = int(submitted.stdout.strip())
    daemon.wait_state(job_id)
    notes = json.loads(daemon.run("show", str(job_id), "--json").stdout).get("notes", [])
    assert any("LD_PRELOAD (this pool's environment_drop: LD_*)" in n for n in notes), notes
