"""The front door's accounting: the lab's slurmdbd on the host's MariaDB, and `sacct` at the door."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sfedlab import LAB_DBD_PORT, TEMPLATE_DIR, ClusterPaths, ClusterSpec, Lab, LabError
from sfedlab.slurmdbd import MariaDb, SlurmDbd, database_name

from tests.deploy.helpers import door_sacct, private_lab, slurm, wait_job

REPO = Path(__file__).resolve().parents[2]
LAB_SCRIPT = REPO / "deploy" / "lab"
# A private door of these tests, far from the shared lab's ports and from test_door.py's.
PRIVATE_DOOR = ClusterSpec(
    "door", 1, 0, 4, 16000, ctld_port=19829, node_port_base=19930, partition="fed", role="door"
)
PRIVATE_DBD_PORT = 19832


@pytest.fixture
def private_door() -> Iterator[Lab]:
    """A private lab of one door (no sshd) with its own slurmdbd; stopped and its database
    dropped after the test."""
    with private_lab("sfa-", clusters=(PRIVATE_DOOR,), ssh_port=None,
                     dbd_port=PRIVATE_DBD_PORT) as (private, _):  # fmt: skip
        yield private


@pytest.mark.lab
def test_status_shows_slurmdbd_up_with_its_port_and_database(lab: Lab) -> None:
    """`deploy/lab status` shows the door's slurmdbd up, with its port and database."""
    argv = [sys.executable, "-I", str(LAB_SCRIPT), "status", "--dir", str(lab.root)]
    text = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    shown = subprocess.run(
        [*argv, "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert text.returncode == 0 and shown.returncode == 0, text.stdout + text.stderr
    database = database_name("door", LAB_DBD_PORT)
    assert f"  slurmdbd   up    :{LAB_DBD_PORT}  database {database}\n" in text.stdout
    dbd = json.loads(shown.stdout)["slurmdbd"]
    assert (dbd["state"], dbd["port"], dbd["database"]) == ("up", LAB_DBD_PORT, database)


@pytest.mark.lab
def test_door_sacct_shows_a_local_job_with_its_state_and_exit_code(
    lab: Lab, tmp_path: Path
) -> None:
    """sacct at the door shows a finished `-p local` job that exited 3 as FAILED 3:0."""
    out = tmp_path / "out.txt"
    job = slurm(lab, "door", "sbatch", "--parsable", "-p", "local", f"--output={out}",
                "--wrap", "exit 3").strip()  # fmt: skip
    assert wait_job(lab, "door", job, {"COMPLETED", "FAILED", "CANCELLED"}) == "FAILED"
    row = door_sacct(lab, job)
    assert (row["JobID"], row["Partition"], row["State"], row["ExitCode"]) == (
        job, "local", "FAILED", "3:0"
    ), row  # fmt: skip


@pytest.mark.lab
def test_slurmdbd_conf_is_private_next_to_the_doors_slurm_conf(lab: Lab) -> None:
    """slurmdbd.conf is mode 0600 beside the door's slurm.conf and names the lab's database."""
    conf = lab.slurmdbd.config
    assert conf == lab.conf_path("door").parent / "slurmdbd.conf"
    assert conf.stat().st_mode & 0o777 == 0o600
    lines = conf.read_text().splitlines()
    assert f"StorageLoc={database_name('door', LAB_DBD_PORT)}" in lines
    assert f"DbdPort={LAB_DBD_PORT}" in lines


@pytest.mark.lab
def test_door_slurm_conf_sets_accounting_once(lab: Lab) -> None:
    """The door's slurm.conf sets AccountingStorageType once (slurmdbd) and the DBD's port."""
    lines = lab.conf_path("door").read_text().splitlines()
    assert [line for line in lines if line.startswith("AccountingStorageType=")] == [
        "AccountingStorageType=accounting_storage/slurmdbd"
    ]
    assert f"AccountingStoragePort={LAB_DBD_PORT}" in lines
    pools = lab.conf_path("alpha").read_text().splitlines()
    assert "AccountingStorageType=accounting_storage/none" in pools


def test_a_door_without_a_dbd_port_is_refused(tmp_path: Path) -> None:
    """A lab whose door has no slurmdbd port is refused when it is made."""
    with pytest.raises(ValueError, match="door door needs a dbd_port"):
        Lab(tmp_path / "lab", clusters=(PRIVATE_DOOR,), ssh_port=None, dbd_port=None)


def test_mariadb_down_fails_up_saying_how_to_start_it(tmp_path: Path) -> None:
    """With no MariaDB listening, slurmdbd's `up` fails naming the address and the command that
    starts MariaDB, and starts nothing."""
    door = ClusterPaths(PRIVATE_DOOR, tmp_path / "door")
    dbd = SlurmDbd(door, tmp_path / "dbd", PRIVATE_DBD_PORT, TEMPLATE_DIR / "slurmdbd.conf.in",
                   MariaDb(port=1))  # fmt: skip
    with pytest.raises(LabError, match=r"MariaDB does not listen on 127\.0\.0\.1:1; start it "
                       r"with `start-stop-daemon --start --oknodo --background --exec "
                       r"/usr/sbin/mariadbd`"):  # fmt: skip
        dbd.up(lambda _: None)
    assert dbd.alive() is None and not dbd.pid_file.exists()


@pytest.mark.lab
def test_a_new_lab_drops_a_leftover_database_of_its_name(private_door: Lab) -> None:
    """A lab directory that never ran starts with an empty database, not a leftover one of the
    same name (whose job ids would clash with the new lab's)."""
    db = MariaDb()
    name = private_door.slurmdbd.database
    db.sql(f"CREATE DATABASE IF NOT EXISTS `{name}`; CREATE TABLE `{name}`.stale (i INT)")
    assert private_door.up()["slurmdbd"] == "started"
    tables = db.sql(f"SHOW TABLES FROM `{name}`").split()
    assert "stale" not in tables and "cluster_table" in tables, tables


@pytest.mark.lab
def test_a_lab_keeps_its_database_across_down_and_up(private_door: Lab) -> None:
    """`down` then `up` of the same lab keeps its accounting database (and so sacct's history)."""
    db = MariaDb()
    name = private_door.slurmdbd.database
    private_door.up()
    db.sql(f"CREATE TABLE `{name}`.kept (i INT)")
    private_door.down()
    assert private_door.up()["slurmdbd"] == "started"
    assert "kept" in db.sql(f"SHOW TABLES FROM `{name}`").split()
