"""The front door's accounting: a slurmdbd on the host's MariaDB, so that `sacct` at the door
shows its jobs, federated ones included, with their states, exit codes and times.

slurmdbd reads its slurmdbd.conf (slurm-conf/slurmdbd.conf.in, mode 0600) next to the door's
slurm.conf; its pid file, log and the record of its database live in their own directory. Each
lab has a database of its own, named after the door and the slurmdbd port (two labs running at
once never share a port); a lab directory that has not created it yet (a new lab, whose job ids
start again) gets it empty. The door's slurmctld registers its cluster itself when it first
connects, so slurmdbd must answer before the door's slurmctld starts.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from . import procs
from .errors import LabError
from .files import read_text, write_if_changed
from .layout import ClusterPaths
from .slurm_daemons import Log, daemon_env

__all__ = ["MariaDb", "SlurmDbd", "database_name"]

SLURMDBD = "/usr/sbin/slurmdbd"
MYSQL = "mysql"
MARIADBD = "/usr/sbin/mariadbd"


@dataclass(frozen=True)
class MariaDb:
    """The MariaDB server the lab's slurmdbd stores into (root with an empty password)."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"

    def sql(self, statement: str, timeout: float = 30.0) -> str:
        """Run SQL with the `mysql` client; its output, or LabError with its message."""
        if shutil.which(MYSQL) is None:
            raise LabError("slurmdbd: the mysql client is not installed (apt-get install "
                           "mariadb-client)")  # fmt: skip
        argv = [MYSQL, "--no-defaults", "--protocol=TCP", "-h", self.host, "-P", str(self.port),
                "-u", self.user, "--batch", "--skip-column-names", "-e", statement]  # fmt: skip
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise LabError(
                f"MariaDB at {self.host}:{self.port}: no answer in {timeout:g}s"
            ) from None
        if res.returncode != 0:
            raise LabError(f"MariaDB at {self.host}:{self.port}: {statement!r} failed",
                           res.stderr.splitlines())  # fmt: skip
        return res.stdout

    def check_up(self) -> None:
        """LabError (saying how to start it) unless the server listens."""
        if not procs.port_listening(self.port):
            raise LabError(
                f"slurmdbd: MariaDB does not listen on {self.host}:{self.port}; start it with "
                f"`start-stop-daemon --start --oknodo --background --exec {MARIADBD}`"
            )


def database_name(door: str, port: int) -> str:
    """The accounting database of the lab whose door `door` has its slurmdbd on `port`."""
    return f"sfed_lab_{door}_acct_{port}"


class SlurmDbd:
    """Files and process of the door's slurmdbd: config next to the door's slurm.conf, the
    rest under `dir`."""

    def __init__(
        self, door: ClusterPaths, dir: Path, port: int, template: Path, mariadb: MariaDb = MariaDb()
    ) -> None:
        self.door = door
        self.dir = dir
        self.port = port
        self.template = template
        self.mariadb = mariadb
        self.database = database_name(door.spec.name, port)
        self.config = door.etc / "slurmdbd.conf"
        self.pid_file = dir / "slurmdbd.pid"
        self.log = dir / "slurmdbd.log"
        self.out = dir / "slurmdbd.out"
        # Holds the database's name once this lab directory has created it.
        self.created = dir / "database"

    @property
    def values(self) -> dict[str, Any]:
        """What the door's slurm.conf needs to reach this slurmdbd (door.conf.in)."""
        return {"dbd_port": self.port}

    def alive(self) -> int | None:
        """The pid of this lab's slurmdbd, if it runs. slurmdbd takes no config argument, so
        the environment (SLURM_CONF, which names where its config is) tells labs apart."""
        pid = procs.alive_from(self.pid_file, SLURMDBD)
        if pid is None:
            return None
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if f"SLURM_CONF={self.door.conf}".encode() in environ else None

    def answers(self) -> bool:
        return self.alive() is not None and procs.port_listening(self.port)

    def up(self, log: Log) -> str:
        """Start slurmdbd unless it runs with the current config: "running", "started" or
        "restarted". Creates the lab's database first when this lab has none yet."""
        changed = self._write_config()
        if not changed and self.answers():
            return "running"
        restarted = self.down()
        if not Path(SLURMDBD).exists():
            raise LabError(f"slurmdbd: {SLURMDBD} not found (apt-get install slurmdbd)")
        self.mariadb.check_up()
        if not procs.port_free(self.port):
            raise LabError(f"slurmdbd: port {self.port} is already in use by another process")
        if read_text(self.created) != self.database + "\n":
            # A database of this name that this lab directory did not create belongs to a lab
            # that is gone (it would hold the port otherwise): its job ids would clash.
            self.mariadb.sql(
                f"DROP DATABASE IF EXISTS `{self.database}`; CREATE DATABASE `{self.database}`"
            )
            write_if_changed(self.created, self.database + "\n")
            log(f"slurmdbd: created database {self.database}")
        if self.log.exists():
            self.log.replace(self.log.with_name(self.log.name + ".1"))
        # SLURM_CONF names the door's slurm.conf: slurmdbd reads slurmdbd.conf next to it.
        procs.spawn([SLURMDBD, "-D"], pid_file=self.pid_file, out_file=self.out,
                    env=daemon_env(self.door), cwd=self.dir)  # fmt: skip
        return "restarted" if restarted else "started"

    def wait(self, timeout: float = 30.0) -> None:
        """Wait until slurmdbd listens; LabError with its log tail if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive() is None:
                raise LabError(f"slurmdbd exited (log {self.log})", self._tail())
            if procs.port_listening(self.port):
                return
            time.sleep(0.05)
        raise LabError(f"slurmdbd not listening on :{self.port} after {timeout:g}s", self._tail())

    def down(self) -> bool:
        """Stop this lab's slurmdbd (only the one its pid file names); True if one ran."""
        if self.alive() is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        return procs.stop(self.pid_file, SLURMDBD, timeout=15.0)

    def drop_database(self) -> None:
        """Drop the lab's database, for a lab that is gone for good (stop it first)."""
        if self.alive() is not None:
            raise LabError(f"slurmdbd: still running; stop it before dropping {self.database}")
        self.mariadb.sql(f"DROP DATABASE IF EXISTS `{self.database}`")
        self.created.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        return {
            "state": "up" if self.answers() else "down",
            "port": self.port,
            "database": self.database,
            "conf": str(self.config),
        }

    def _write_config(self) -> bool:
        try:
            text = Template(self.template.read_text()).substitute(
                cluster=self.door.spec.name,
                dbd_port=self.port,
                run_dir=self.dir,
                log_file=self.log,
                storage_host=self.mariadb.host,
                storage_port=self.mariadb.port,
                storage_user=self.mariadb.user,
                database=self.database,
            )
        except (OSError, KeyError, ValueError) as e:
            raise LabError(f"cannot render {self.template}: {e!r}") from None
        self.dir.mkdir(parents=True, exist_ok=True)
        changed = write_if_changed(self.config, text, mode=0o600)
        self.config.chmod(0o600)  # slurmdbd refuses a config others may read
        return changed

    def _tail(self) -> list[str]:
        out: list[str] = []
        for f in (self.log, self.out):  # the .out alone holds errors from before the log opened
            lines = procs.tail(f, 20)
            if lines:
                out.append(f"--- {f} (last {len(lines)} lines)")
                out.extend(lines)
        return out
