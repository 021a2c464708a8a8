"""The lab's front door: proxy nodes, partitions fed and local, and the job_submit Lua plugin."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sfedlab import LAB_CLUSTERS, ClusterSpec, Lab, LabError, render_job_submit
from sfedlab.federation import federation_config

from tests.deploy.helpers import job_field, private_lab, slurm, slurm_bytes, wait_job

DOOR = next(c for c in LAB_CLUSTERS if c.is_door)
# A private door for the tests that restart or reconfigure one; far from the shared lab's ports
# and from test_lab.py's gamma (19817, 19900-19901).
PRIVATE_DOOR = ClusterSpec(
    "door", 2, 0, 8, 32000, ctld_port=19819, node_port_base=19920, partition="fed", role="door"
)
PRIVATE_DBD_PORT = 19822  # the private door's slurmdbd
# A script whose exact bytes the door must store: tabs, trailing blanks, non-ASCII, no final newline.
SCRIPT = b'#!/bin/bash\n#SBATCH -N 2\n#SBATCH --gres=gpu:2\n\techo "h\xc3\xa9llo"  \necho done'
LOCAL_SCRIPT = b'#!/bin/bash\n#SBATCH -N 1\n\techo "h\xc3\xa9llo"  \necho $SLURM_JOB_PARTITION'
TEST_PLUGIN = """\
CONFIG = {
    capabilities_path = "/unset",
    proxy_command = "/unset",
    tag = "TAG",
}

function slurm_job_submit(job_desc, part_list, submit_uid)
    job_desc.comment = CONFIG.tag .. "@" .. CONFIG.proxy_command
    return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
    return slurm.SUCCESS
end
"""


def config_value(plugin: str, key: str) -> str:
    """The string value of `key = "...",` in a Lua plugin."""
    m = re.search(rf'^\s*{key}\s*=\s*"([^"]*)",', plugin, re.M)
    assert m, f"no {key} line"
    return m[1]


def submit(lab: Lab, script: Path, *args: str) -> str:
    """sbatch on the door; returns the job id."""
    return slurm(lab, "door", "sbatch", "--parsable", *args, str(script)).strip().split(";")[0]


@pytest.fixture
def held_fed_job(lab: Lab, tmp_path: Path) -> Iterator[str]:
    """A held `sbatch -p fed` job on the shared door (never runs), cancelled after the test."""
    script = tmp_path / "job.sh"
    script.write_bytes(SCRIPT)
    job = submit(lab, script, "--hold", "-p", "fed", f"--output={tmp_path}/out-%j.txt")
    yield job
    subprocess.run(["scancel", job], env=lab.env("door"), capture_output=True, check=False)


@pytest.fixture
def private_door() -> Iterator[Lab]:
    """A private lab of one door (no sshd) with TEST_PLUGIN, stopped after the test."""

    def plugin(root: Path) -> Path:
        path = root / "job_submit.lua"
        path.write_text(TEST_PLUGIN)
        return path

    with private_lab(
        "sfd-", clusters=(PRIVATE_DOOR,), ssh_port=None, dbd_port=PRIVATE_DBD_PORT,
        plugin_source=plugin, proxy_command=Path("/opt/sfed/bin/sfed-proxy"),
    ) as (private, _):  # fmt: skip
        yield private


@pytest.mark.lab
def test_door_nodes_idle_with_fed_and_local_partitions(lab: Lab) -> None:
    """door-p1 and door-p2 are idle without GPUs, in partitions fed and local (the default)."""
    lines = slurm(lab, "door", "sinfo", "-h", "-N", "-o", "%N %P %t").split("\n")
    rows = sorted(tuple(line.split()) for line in lines if line)
    nodes = ("door-p1", "door-p2")
    assert {r[0] for r in rows} == set(nodes)
    assert sorted(r[:2] for r in rows) == [(n, p) for n in nodes for p in ("fed", "local*")]
    assert {r[2] for r in rows} <= {"idle", "mix"}, rows
    for node in nodes:
        shown = slurm(lab, "door", "scontrol", "show", "node", node)
        assert "Gres=(null)\n" in shown
        assert f"CPUTot={DOOR.cpus_per_node} " in shown


@pytest.mark.lab
def test_door_is_not_a_pool(lab: Lab, tmp_path: Path) -> None:
    """The door is `lab.door`, not one of `lab.clusters`, so sfedd's lab config leaves it out."""
    assert lab.door == DOOR
    assert "door" not in [c.name for c in lab.clusters]
    config = federation_config(lab.site, store_url="sqlite://", socket=tmp_path / "s")
    assert [p["name"] for p in config["pools"]] == ["alpha", "beta"]


@pytest.mark.lab
def test_local_job_passes_the_shim_untouched_and_runs(lab: Lab, tmp_path: Path) -> None:
    """A `-p local` job keeps its exact script bytes and runs to completion on a proxy node."""
    script = tmp_path / "job.sh"
    script.write_bytes(LOCAL_SCRIPT)
    out = tmp_path / "job.out"
    job = submit(lab, script, "-p", "local", f"--output={out}")
    assert slurm_bytes(lab, "door", "scontrol", "write", "batch_script", job, "-") == LOCAL_SCRIPT
    assert wait_job(lab, "door", job, {"COMPLETED", "FAILED", "CANCELLED"}) == "COMPLETED"
    assert out.read_bytes() == "héllo\nlocal\n".encode()


@pytest.mark.lab
def test_fed_job_script_is_wrapped_around_the_original(lab: Lab, held_fed_job: str) -> None:
    """A `-p fed` job's stored script is the proxy wrapper followed by the original bytes."""
    stored = slurm_bytes(lab, "door", "scontrol", "write", "batch_script", held_fed_job, "-")
    lines = stored.split(b"\n", 5)
    assert lines[0] == b"#!/bin/sh"
    assert lines[1].startswith(b"#")
    assert lines[2] == f'exec {lab.proxy_command} --wrapper "$0"'.encode()
    assert lines[3].startswith(b"#SFED-REQUEST ")
    assert lines[4] == b"#SFED-SCRIPT"
    assert lines[5] == SCRIPT


@pytest.mark.lab
def test_fed_proxy_job_is_one_node_without_gres(lab: Lab, held_fed_job: str) -> None:
    """The shim shrinks a 2-node GPU fed job to a 1-node proxy job without gres."""
    assert job_field(lab, "door", held_fed_job, "NumNodes") in {"1", "1-1"}
    assert job_field(lab, "door", held_fed_job, "Partition") == "fed"
    shown = slurm(lab, "door", "scontrol", "show", "job", held_fed_job)
    assert "gpu" not in shown, shown


@pytest.mark.lab
def test_rendered_plugin_has_lab_capabilities_path_and_proxy_command(lab: Lab) -> None:
    """The door's job_submit.lua holds the lab's capabilities path and proxy command."""
    rendered = lab.door_plugin_path()
    assert rendered == lab.conf_path("door").parent / "job_submit.lua"
    text = rendered.read_text()
    assert config_value(text, "capabilities_path") == str(lab.door_capabilities_path())
    assert config_value(text, "proxy_command") == str(lab.proxy_command)
    assert lab.door_capabilities_path() == lab.root / "door" / "run" / "capabilities"
    assert lab.proxy_command == lab.sfedd.proxy_launcher  # the launcher that knows sfedd's socket
    assert f"--address {lab.sfedd.address}" in lab.proxy_command.read_text()


@pytest.mark.lab
def test_capabilities_directory_is_world_readable(lab: Lab) -> None:
    """The directory sfedd writes the capabilities file into exists and all may read it."""
    directory = lab.door_capabilities_path().parent
    assert directory.is_dir()
    assert directory.stat().st_mode & 0o005 == 0o005


def test_door_spec_has_proxy_slots_and_no_gpus() -> None:
    """A door counts one proxy slot per CPU; a door with GPUs is refused."""
    assert DOOR.proxy_slots == DOOR.nodes * DOOR.cpus_per_node >= 100
    with pytest.raises(ValueError, match="proxy nodes have no GPUs"):
        ClusterSpec("door", 1, 1, 8, 8000, ctld_port=19819, node_port_base=19920, role="door")


def test_render_sets_only_the_config_values() -> None:
    """Rendering replaces the two CONFIG values and keeps every other line where it was."""
    values = {"capabilities_path": '/a "b"/caps', "proxy_command": "/venv/bin/sfed-proxy"}
    out = render_job_submit(TEST_PLUGIN, values, origin="t.lua")
    assert config_value(out, "proxy_command") == "/venv/bin/sfed-proxy"
    assert 'capabilities_path = "/a \\"b\\"/caps",' in out
    changed = [
        (a, b)
        for a, b in zip(TEST_PLUGIN.splitlines(), out.splitlines(), strict=True)
        if a != b
    ]  # fmt: skip
    assert [a.split("=")[0].strip() for a, _ in changed] == ["capabilities_path", "proxy_command"]


def test_render_without_a_config_key_names_it() -> None:
    """A plugin whose CONFIG table lacks proxy_command fails with an error naming the key."""
    plugin = TEST_PLUGIN.replace('    proxy_command = "/unset",\n', "")
    with pytest.raises(LabError, match=r't\.lua: .* exactly one `proxy_command = "\.\.\.",` line'):
        render_job_submit(plugin, {"proxy_command": "/x"}, origin="t.lua")


def test_render_ignores_keys_outside_the_config_table() -> None:
    """A `proxy_command = "...",` line outside the top-level CONFIG table does not count."""
    plugin = TEST_PLUGIN.replace('    proxy_command = "/unset",\n', "") + (
        'local other = {\n    proxy_command = "/elsewhere",\n}\n'
    )
    with pytest.raises(LabError, match="found 0"):
        render_job_submit(plugin, {"proxy_command": "/x"}, origin="t.lua")


def test_up_without_the_plugin_fails_naming_its_path(tmp_path: Path) -> None:
    """`up` of a door whose plugin file is missing fails at once, naming the file."""
    missing = tmp_path / "plugins" / "job_submit.lua"
    door = Lab(
        tmp_path / "lab", clusters=(PRIVATE_DOOR,), ssh_port=None, dbd_port=PRIVATE_DBD_PORT,
        plugin_source=missing,
    )  # fmt: skip
    with pytest.raises(
        LabError, match=f"job_submit plugin {re.escape(str(missing))} does not exist"
    ):
        door.up()
    assert door.status()["clusters"]["door"]["slurmctld"] == "down"


@pytest.mark.skipif(shutil.which("luac5.1") is None, reason="needs luac5.1 (package lua5.1)")
def test_up_with_a_lua_syntax_error_fails_with_the_line(tmp_path: Path) -> None:
    """`up` of a door whose plugin does not compile fails with luac's message and line."""
    plugin = tmp_path / "job_submit.lua"
    plugin.write_text(TEST_PLUGIN.replace("return slurm.SUCCESS\nend", "return slurm.SUCCESS\n", 1))
    door = Lab(
        tmp_path / "lab", clusters=(PRIVATE_DOOR,), ssh_port=None, dbd_port=PRIVATE_DBD_PORT,
        plugin_source=plugin,
    )  # fmt: skip
    with pytest.raises(LabError, match=r"does not compile: .*job_submit\.lua:\d+: 'end' expected"):
        door.up()
    assert door.status()["clusters"]["door"]["slurmctld"] == "down"


@pytest.mark.lab
def test_plugin_change_reaches_a_running_door_without_restart(private_door: Lab) -> None:
    """A changed plugin is re-rendered on `up` and slurmctld uses it at once, not restarted."""
    assert private_door.up()["door"] == "started"
    ctld_pid = (private_door.root / "door" / "run" / "slurmctld.pid").read_text()
    for tag in ("first", "second", "third"):  # likely within one second: mtime must advance
        private_door.plugin_source.write_text(TEST_PLUGIN.replace('"TAG"', f'"{tag}"'))
        assert private_door.up()["door"] == "running"
        job = slurm(private_door, "door", "sbatch", "--parsable", "--hold", "--wrap", "true")
        assert job_field(private_door, "door", job.strip(), "Comment") == (
            f"{tag}@/opt/sfed/bin/sfed-proxy"
        )
        slurm(private_door, "door", "scancel", job.strip())
    assert (private_door.root / "door" / "run" / "slurmctld.pid").read_text() == ctld_pid
