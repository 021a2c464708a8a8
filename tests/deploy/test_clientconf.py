"""The sfed client config the lab leaves for `sfed` (deploy/sfedlab/clientconf.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sfedlab import ClusterSpec, Lab
from sfedlab.clientconf import MARKER, user_client_conf, write_client_conf

from scheduler.cli import client

SFED = str(Path(sys.executable).parent / "sfed")
# A private lab's cluster, far from the shared lab's ports and the other tests' private ones.
DELTA = ClusterSpec("delta", 1, 2, 4, 8000, ctld_port=19818, node_port_base=19930)


def test_writes_a_file_the_cli_reads(tmp_path: Path) -> None:
    """With no file there, the lab writes one whose address the CLI reads back exactly."""
    path = tmp_path / "sfed" / "client.toml"
    address = f'unix:{tmp_path}/a "quoted" \\ dir/sfed.sock'
    assert write_client_conf(path, address) == f"sfed client config {path}: address {address}"
    assert path.read_text().splitlines()[0] == MARKER
    assert client.read_client_conf(path) == client.Target(address, str(path))


def test_says_why_it_never_overwrites_an_admins_file(tmp_path: Path) -> None:
    """The file tells its reader that the lab rewrites it only while the marker line leads."""
    path = tmp_path / "client.toml"
    write_client_conf(path, "unix:/lab.sock")
    comments = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert "never overwrite" in " ".join(comments)


def test_rewrites_a_file_it_wrote_before(tmp_path: Path) -> None:
    """A file the lab wrote earlier gets the new address."""
    path = tmp_path / "client.toml"
    write_client_conf(path, "unix:/old/sfed.sock")
    write_client_conf(path, "unix:/new/sfed.sock")
    assert client.read_client_conf(path) == client.Target("unix:/new/sfed.sock", str(path))


def test_unchanged_file_is_not_reported(tmp_path: Path) -> None:
    """Writing the same address again changes nothing and says nothing."""
    path = tmp_path / "client.toml"
    write_client_conf(path, "unix:/lab.sock")
    assert write_client_conf(path, "unix:/lab.sock") is None


def test_leaves_an_admins_file_alone(tmp_path: Path) -> None:
    """A file the lab did not write is left byte for byte, and the lab says so."""
    path = tmp_path / "client.toml"
    path.write_text('# mine\naddress = "sfed.example:50051"\n')
    said = write_client_conf(path, "unix:/lab.sock")
    assert said is not None and said.startswith(f"note: {path} was not written by the lab")
    assert path.read_text() == '# mine\naddress = "sfed.example:50051"\n'


@pytest.mark.parametrize(
    "environ",
    [
        {"HOME": "/home/ann"},
        {"HOME": "/home/ann", "XDG_CONFIG_HOME": "/xdg"},
        {"HOME": "/home/ann", "XDG_CONFIG_HOME": "relative"},
        {"HOME": "/home/ann", "XDG_CONFIG_HOME": ""},
    ],
)
def test_lab_writes_where_the_cli_reads(environ: dict[str, str]) -> None:
    """The lab's per-user path is the one the CLI reads, for every $HOME/$XDG_CONFIG_HOME."""
    assert user_client_conf(environ) == client.user_client_conf(environ)


@pytest.fixture
def private(tmp_path: Path) -> Iterator[tuple[Lab, Path]]:
    """A private one-cluster lab with its own sfedd, and the per-user client config of a HOME
    of the test's own where it leaves its address; stopped after the test."""
    root = Path(tempfile.mkdtemp(prefix="sfc-", dir="/tmp"))  # short: sockets live under it
    home = tmp_path / "home"
    path = user_client_conf({"HOME": str(home)})
    lab = Lab(root / "lab", clusters=(DELTA,), ssh_port=None, sfedd=True, client_conf=path)
    try:
        yield lab, home
    finally:
        lab.down()
        shutil.rmtree(root, ignore_errors=True)


def plain_sfed(home: Path) -> subprocess.CompletedProcess[str]:
    """`sfed pools` with no flag, no address variables, and `home` as HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("SFED_ADDRESS", "SFED_CLIENT_CONF")}
    env.pop("XDG_CONFIG_HOME", None)
    env["HOME"] = str(home)
    return subprocess.run(
        [SFED, "--timeout", "10", "pools"], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.lab
def test_plain_sfed_finds_the_labs_sfedd(private: tuple[Lab, Path]) -> None:
    """After the lab's `up` starts its sfedd, a plain `sfed pools` in the lab's HOME answers."""
    lab, home = private
    assert lab.up()["sfedd"] == "started"
    result = plain_sfed(home)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == [DELTA.name]


@pytest.mark.lab
def test_a_session_started_lab_leaves_no_client_config(private: tuple[Lab, Path]) -> None:
    """A lab that a test session starts (and will stop) leaves the user's sfed alone."""
    lab, home = private
    with lab.session():
        assert lab.sfedd.alive() is not None
        assert not user_client_conf({"HOME": str(home)}).exists()


@pytest.mark.lab
def test_pinning_a_session_started_lab_leaves_the_client_config(
    private: tuple[Lab, Path],
) -> None:
    """`deploy/lab up` or `make demo` during a test session (pin) makes the lab the user's."""
    lab, home = private
    with lab.session():
        lab.pin()
        conf = user_client_conf({"HOME": str(home)})
        assert client.read_client_conf(conf) == client.Target(lab.sfedd.address, str(conf))
