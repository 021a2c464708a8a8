"""The local Slurm lab (deploy/lab, deploy/sfedlab) against real Slurm 22.05 daemons."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sfedlab import LAB_CLUSTERS, TEMPLATE_DIR, ClusterSpec, Lab, LabError, procs

from tests.deploy.helpers import job_field, slurm, wait_job

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB_SCRIPT = REPO / "deploy" / "lab"
# Private labs of these tests: ports far from the shared lab's (17xxx) and from each other.
GAMMA = ClusterSpec("gamma", 2, 2, 4, 8000, ctld_port=19817, node_port_base=19900)


def wait_dead(pid: int) -> None:
    """Wait until a killed process is gone (reaped, or a zombie)."""
    deadline = time.monotonic() + 10
    while procs.pid_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still alive"
        time.sleep(0.02)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory (slurmstepd puts unix sockets under the spool dir)."""
    path = Path(tempfile.mkdtemp(prefix="sfl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def gamma(short_tmp: Path) -> Iterator[Lab]:
    """A private one-cluster lab (no sshd) on its own ports, stopped after the test."""
    private = Lab(short_tmp / "lab", clusters=(GAMMA,), ssh_port=None)
    try:
        yield private
    finally:
        private.down()


def test_every_node_registered_with_its_gpus(lab: Lab) -> None:
    """Every node of every lab cluster is up (idle unless running jobs) with its GPU count."""
    for spec in LAB_CLUSTERS:
        states = dict(
            line.split() for line in slurm(lab, spec.name, "sinfo", "-h", "-N", "-o", "%N %t")
            .splitlines()
        )  # fmt: skip
        assert sorted(states) == sorted(spec.node_names)
        assert all(s in {"idle", "mix", "alloc"} for s in states.values()), states
        for node in spec.node_names:
            shown = slurm(lab, spec.name, "scontrol", "show", "node", node)
            typed = f"{spec.gpu_type}:" if spec.gpu_type else ""  # gpu:a100:4 on alpha
            gres = f"gpu:{typed}{spec.gpus_per_node}" if spec.gpus_per_node else "(null)"
            assert f"Gres={gres}\n" in shown


def test_two_node_batch_job_runs_srun_on_alpha(lab: Lab, tmp_path: Path) -> None:
    """A 2-node sbatch job with `srun hostname` runs on alpha and completes with exit 0."""
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH -N 2\n#SBATCH --gres=gpu:1\nsrun hostname\n")
    out = tmp_path / "job.out"
    job = slurm(lab, "alpha", "sbatch", "--parsable", f"--output={out}", str(script)).strip()
    assert wait_job(lab, "alpha", job, {"COMPLETED", "FAILED", "CANCELLED"}) == "COMPLETED"
    assert job_field(lab, "alpha", job, "NodeList") == "alpha-n[1-2]"
    assert job_field(lab, "alpha", job, "ExitCode") == "0:0"
    assert len(out.read_text().split()) == 2


def test_second_up_is_fast_and_keeps_jobs(lab: Lab) -> None:
    """`up` on a running lab changes nothing: fast, all "running", earlier jobs still visible."""
    job = slurm(lab, "beta", "sbatch", "--parsable", "--output=/dev/null", "--wrap", "true").strip()
    t0 = time.monotonic()
    actions = lab.up()
    assert time.monotonic() - t0 < 3
    assert set(actions.values()) == {"running"}, actions
    assert job_field(lab, "beta", job, "JobId") == job


def test_sshd_runs_slurm_commands_with_strict_host_keys(lab: Lab) -> None:
    """The lab sshd runs `sinfo` on beta for the client key, with host key verification."""
    ep = lab.ssh
    argv = [
        "ssh", "-i", str(ep.client_key), "-o", f"UserKnownHostsFile={ep.known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(ep.port),
        f"{ep.user}@{ep.host}", "env", f"SLURM_CONF={lab.conf_path('beta')}",
        "sinfo", "-h", "-N", "-o", "%N",
    ]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 0, res.stderr
    assert sorted(res.stdout.split()) == ["beta-n1", "beta-n2", "beta-n3", "beta-n4"]
    assert ep.argv("true")[-2:] == [f"root@{ep.host}", "true"]


def test_status_json_reports_everything_up(lab: Lab) -> None:
    """`deploy/lab status --json` (plain python3, stdlib only) exits 0 and shows all up."""
    res = subprocess.run(
        [sys.executable, "-I", str(LAB_SCRIPT), "status", "--json", "--dir", str(lab.root)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    st = json.loads(res.stdout)
    assert st["sshd"]["state"] == "up"
    assert {n: c["state"] for n, c in st["clusters"].items()} == {
        "alpha": "up",
        "beta": "up",
        "door": "up",
    }


def test_cli_error_is_one_line_without_traceback(lab: Lab, short_tmp: Path) -> None:
    """`deploy/lab up` whose ports are taken fails with exit 1 and a one-line error."""
    res = subprocess.run([str(LAB_SCRIPT), "up", "-q", "--dir", str(short_tmp)],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert res.returncode == 1
    first = res.stderr.splitlines()[0]
    # slurmdbd starts first (before the door's slurmctld), so its port is the first one taken.
    assert first.startswith("lab: error: slurmdbd: port 17820 is already in use"), first
    assert "Traceback" not in res.stderr
    st = lab.status()
    assert st["up"], st


def test_status_of_a_stopped_lab_exits_3(short_tmp: Path) -> None:
    """`deploy/lab status` on a lab that is not running exits 3."""
    res = subprocess.run([str(LAB_SCRIPT), "status", "--dir", str(short_tmp)],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert res.returncode == 3, res.stdout + res.stderr
    assert "alpha      down" in res.stdout


def test_broken_template_fails_with_slurmctld_log_lines(short_tmp: Path) -> None:
    """A slurm.conf slurmctld cannot parse fails `up` with a clear message and its log lines."""
    templates = short_tmp / "templates"
    shutil.copytree(TEMPLATE_DIR, templates)
    with open(templates / "slurm.conf.in", "a") as f:
        f.write("BogusOption=1\n")
    broken = Lab(short_tmp / "lab", clusters=(GAMMA,), ssh_port=None, template_dir=templates)
    try:
        with pytest.raises(LabError) as err:
            broken.up()
    finally:
        broken.down()
    assert err.value.message.startswith("gamma: slurmctld exited")
    assert any("unrecognized key: BogusOption" in line for line in err.value.details)
    assert "BogusOption" in str(err.value)


def test_port_in_use_fails_clearly(gamma: Lab) -> None:
    """A slurmd port held by another process fails `up` naming the port; nothing is left running."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", GAMMA.node_port_base + 1))
        holder.listen()
        with pytest.raises(LabError, match=r"gamma-n2 slurmd: port 19901 is already in use"):
            gamma.up()
    assert gamma.status()["clusters"]["gamma"]["slurmctld"] == "down"


def test_up_restarts_a_dead_slurmd(gamma: Lab) -> None:
    """After a slurmd dies, `up` restarts only that slurmd and its node is idle again."""
    gamma.up()
    pid = int((gamma.root / "gamma" / "run" / "slurmd-gamma-n2.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    actions = gamma.up()
    assert actions["gamma"] == "restarted"
    nodes = gamma.status()["clusters"]["gamma"]["nodes"]
    assert {n["state"] for n in nodes.values()} == {"idle"}


def test_cold_start_drops_old_jobs_and_never_reuses_ids(gamma: Lab) -> None:
    """A cold start over stale state shows no old jobs and hands out higher job ids."""
    gamma.up()
    old = int(
        slurm(gamma, "gamma", "sbatch", "--parsable", "--output=/dev/null", "--wrap", "sleep 300")
    )
    pid = int((gamma.root / "gamma" / "run" / "slurmctld.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    assert gamma.up()["gamma"] == "restarted"
    assert slurm(gamma, "gamma", "squeue", "-h", "-t", "all", "-o", "%i").split() == []
    new = int(slurm(gamma, "gamma", "sbatch", "--parsable", "--output=/dev/null", "--wrap", "true"))
    assert new > old


def test_down_is_idempotent_and_spares_other_labs(lab: Lab, gamma: Lab) -> None:
    """`down` twice on a private lab stops it and leaves the shared lab running."""
    gamma.up()
    gamma.down()
    gamma.down()
    assert gamma.status()["clusters"]["gamma"]["state"] == "down"
    st = lab.status()
    assert st["up"], st


def test_last_session_out_stops_a_session_started_lab(gamma: Lab) -> None:
    """Sessions share a lab: it stops when the last session that holds it ends, not before."""
    other = subprocess.Popen(["sleep", "60"])  # stands in for another test session's process
    try:
        with gamma.session():
            (gamma.root / "sessions" / str(other.pid)).write_text(f"{other.pid}\n")
        assert gamma.status()["clusters"]["gamma"]["state"] == "up"
    finally:
        other.kill()
        other.wait()
    with gamma.session():
        assert gamma.status()["sessions"] == [os.getpid()]
    assert gamma.status()["clusters"]["gamma"]["state"] == "down"


def test_explicit_up_pins_the_lab_past_sessions(gamma: Lab) -> None:
    """A lab that was up before a session started (`deploy/lab up`) stays up after it."""
    gamma.up()
    gamma.pin()
    with gamma.session():
        pass
    assert gamma.status()["clusters"]["gamma"]["state"] == "up"
