"""Transports: LocalTransport against real local processes, SSHTransport's command line."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.pools.base import PoolUnreachable
from scheduler.pools.slurm import transport as transport_module
from scheduler.pools.slurm.transport import (
    CommandResult,
    LocalTransport,
    MissingDependencyError,
    SSHTransport,
    Transport,
)

REPO = Path(__file__).resolve().parents[3]


def run_local(
    argv: list[str], conf: str | None = "/etc/lab.conf", **kwargs: object
) -> CommandResult:
    return asyncio.run(LocalTransport(conf).run(argv, **kwargs))  # type: ignore[arg-type]


def make_executable(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def ssh_transport(**overrides: object) -> SSHTransport:
    args: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 2222,
        "username": "root",
        "client_keys": ["/nonexistent/key"],
        "known_hosts": "/nonexistent/known_hosts",
        "slurm_conf": "/etc/slurm/beta.conf",
    }
    args.update(overrides)
    return SSHTransport(**args)  # type: ignore[arg-type]


# -- LocalTransport --------------------------------------------------------------------------


def test_local_transport_is_a_transport() -> None:
    """LocalTransport satisfies the Transport protocol."""
    assert isinstance(LocalTransport(None), Transport)


def test_local_runs_argv_without_a_shell() -> None:
    """Shell metacharacters in an argument are passed verbatim, never interpreted."""
    result = run_local(["echo", "x; touch /tmp/pwned", "$(id)", "`id`"])
    assert result.stdout == b"x; touch /tmp/pwned $(id) `id`\n"


def test_local_feeds_stdin_byte_for_byte() -> None:
    """Binary stdin (every byte but NUL, invalid UTF-8 included) reaches the child unchanged."""
    payload = bytes(range(1, 256)) * 3
    assert run_local(["cat"], stdin=payload).stdout == payload


def test_local_without_stdin_gives_eof() -> None:
    """Without stdin the child reads end-of-file at once instead of hanging."""
    assert run_local(["cat"], timeout=5).stdout == b""


def test_local_nonzero_exit_is_a_result() -> None:
    """A failing command is returned with its status and stderr, not raised."""
    result = run_local(["sh", "-c", "echo oops >&2; exit 3"])
    assert (result.returncode, result.stderr, result.ok) == (3, b"oops\n", False)


def test_local_passes_env_values_verbatim() -> None:
    """Environment values reach the child unchanged, metacharacters and newlines included."""
    value = "a b $(touch /tmp/pwned) ' \" \n end"
    result = run_local(["printenv", "FOO"], env={"FOO": value})
    assert result.stdout == value.encode() + b"\n"


def test_local_slurm_conf_cannot_be_overridden_by_env() -> None:
    """The transport's SLURM_CONF wins over a SLURM_CONF in `env`."""
    result = run_local(["printenv", "SLURM_CONF"], env={"SLURM_CONF": "/evil.conf"})
    assert result.stdout == b"/etc/lab.conf\n"


def test_local_path_in_env_does_not_choose_the_binary(tmp_path: Path) -> None:
    """A PATH in `env` reaches the child but is not used to find the executable."""
    marker = tmp_path / "hijacked"
    make_executable(tmp_path / "printenv", f"touch {marker}")
    result = run_local(["printenv", "PATH"], env={"PATH": str(tmp_path)})
    assert result.stdout == f"{tmp_path}\n".encode()
    assert not marker.exists()


def test_local_bin_dir_chooses_the_binary(tmp_path: Path) -> None:
    """With bin_dir, commands are taken from that directory."""
    make_executable(tmp_path / "sinfo", "echo fake sinfo $SLURM_CONF")
    result = asyncio.run(LocalTransport("/c.conf", bin_dir=str(tmp_path)).run(["sinfo"]))
    assert result.stdout == b"fake sinfo /c.conf\n"


def test_local_missing_binary_is_unreachable(tmp_path: Path) -> None:
    """A command that does not exist cannot be run at all: PoolUnreachable."""
    with pytest.raises(PoolUnreachable, match="not found"):
        asyncio.run(LocalTransport(None, bin_dir=str(tmp_path)).run(["sbatch"]))


def test_local_timeout_kills_the_child(tmp_path: Path) -> None:
    """A command past its timeout raises PoolUnreachable and is killed."""
    pid_file = tmp_path / "pid"
    with pytest.raises(PoolUnreachable, match="did not finish"):
        run_local(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"], timeout=0.5)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("env", [{"-i": "x"}, {"A=B": "x"}, {"": "x"}, {"A": "nul\0"}])
def test_local_rejects_unsafe_env(env: dict[str, str]) -> None:
    """Names that are not variable names, and NUL in values, raise ValueError."""
    with pytest.raises(ValueError):
        run_local(["true"], env=env)


def test_local_unset_removes_inherited_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables named in `unset` are removed from what the child inherits; `env` still adds."""
    monkeypatch.setenv("SQUEUE_USERS", "nobody")
    monkeypatch.setenv("SQUEUE_QOS", "low")
    result = run_local(
        ["sh", "-c", 'echo "${SQUEUE_USERS-unset} ${SQUEUE_QOS-unset} $TZ"'],
        env={"TZ": "UTC"},
        unset=["SQUEUE_USERS", "SQUEUE_QOS"],
    )
    assert result.stdout == b"unset unset UTC\n"


def test_local_unset_never_removes_slurm_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    """SLURM_CONF cannot be removed through `unset`, even without a transport SLURM_CONF."""
    monkeypatch.setenv("SLURM_CONF", "/login.conf")
    result = run_local(["printenv", "SLURM_CONF"], conf=None, unset=["SLURM_CONF"])
    assert result.stdout == b"/login.conf\n"


@pytest.mark.parametrize("unset", [["-i"], ["A=B"], [""], "SQUEUE_USERS"])
def test_local_rejects_unsafe_unset(unset: list[str] | str) -> None:
    """Names that are not variable names (or a bare string) raise ValueError."""
    with pytest.raises(ValueError):
        run_local(["true"], unset=unset)


def test_local_passes_exported_bash_functions() -> None:
    """A `BASH_FUNC_name%%` variable (module systems export them) reaches the child."""
    result = run_local(["printenv", "BASH_FUNC_module%%"], env={"BASH_FUNC_module%%": "() { :\n}"})
    assert result.stdout == b"() { :\n}\n"


def test_local_rejects_nul_in_argv() -> None:
    """A NUL byte in an argument raises ValueError."""
    with pytest.raises(ValueError, match="NUL"):
        run_local(["echo", "a\0b"])


# -- SSHTransport (no server needed) ---------------------------------------------------------


def test_ssh_command_line_quotes_every_word() -> None:
    """The remote command line splits back into exactly the intended words."""
    line = ssh_transport().command_line(
        ["/usr/bin/sbatch", "--job-name=x; touch /tmp/pwned", "--chdir=$(id)"],
        {"FOO": "a 'b' \"c\" $HOME `id`\nz"},
    )
    assert shlex.split(line) == [
        "env",
        "SLURM_CONF=/etc/slurm/beta.conf",
        "FOO=a 'b' \"c\" $HOME `id`\nz",
        "/usr/bin/sbatch",
        "--job-name=x; touch /tmp/pwned",
        "--chdir=$(id)",
    ]


def test_ssh_command_line_ignores_slurm_conf_from_env() -> None:
    """A SLURM_CONF in `env` cannot replace the transport's."""
    line = ssh_transport().command_line(["squeue"], {"SLURM_CONF": "/evil"})
    assert shlex.split(line) == ["env", "SLURM_CONF=/etc/slurm/beta.conf", "squeue"]


def test_ssh_command_line_unsets_before_assigning() -> None:
    """`unset` becomes `env -u NAME` words before the assignments; SLURM_CONF stays."""
    line = ssh_transport().command_line(
        ["/usr/bin/squeue", "-h"], {"TZ": "UTC"}, ["SQUEUE_USERS", "SLURM_CONF", "SQUEUE_QOS"]
    )
    assert shlex.split(line) == [
        "env",
        "-u",
        "SQUEUE_USERS",
        "-u",
        "SQUEUE_QOS",
        "SLURM_CONF=/etc/slurm/beta.conf",
        "TZ=UTC",
        "/usr/bin/squeue",
        "-h",
    ]


def test_ssh_command_line_unset_only() -> None:
    """`unset` alone still goes through env."""
    line = ssh_transport(slurm_conf=None).command_line(["squeue"], None, ["SQUEUE_USERS"])
    assert shlex.split(line) == ["env", "-u", "SQUEUE_USERS", "squeue"]


def test_ssh_command_line_without_env() -> None:
    """Without SLURM_CONF or env the command runs as is, still quoted."""
    line = ssh_transport(slurm_conf=None).command_line(["scancel", "12"])
    assert line == "scancel 12"


def test_ssh_refuses_to_run_without_known_hosts() -> None:
    """Host keys are always checked: an empty known_hosts is refused at construction."""
    with pytest.raises(ValueError, match="known_hosts"):
        ssh_transport(known_hosts="")


def test_ssh_without_asyncssh_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without asyncssh, building an SSHTransport says how to install it."""
    monkeypatch.setitem(sys.modules, "asyncssh", None)
    with pytest.raises(MissingDependencyError, match="pip install asyncssh"):
        ssh_transport()


def test_transport_module_imports_without_asyncssh() -> None:
    """transport.py imports in an interpreter where asyncssh cannot be imported."""
    code = (
        "import sys; sys.modules['asyncssh'] = None; "
        "import scheduler.pools.slurm.transport as t; "
        "import scheduler.pools.slurm as s; print(t.LocalTransport.__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (0, "LocalTransport\n"), done.stderr


def test_ssh_transport_is_a_transport() -> None:
    """SSHTransport satisfies the Transport protocol."""
    assert isinstance(ssh_transport(), Transport)


def test_module_exports() -> None:
    """The transport module exports its public names."""
    assert {"CommandResult", "LocalTransport", "SSHTransport", "Transport"} <= set(
        transport_module.__all__
    )


# -- SSHTransport session handling, with a stand-in connection -------------------------------


class FakeProcess:
    def __init__(
        self, stdout: bytes = b"ok\n", returncode: int | None = 0, fail: Exception | None = None
    ) -> None:
        self.stdout = stdout
        self.final_returncode = returncode
        self.returncode: int | None = None
        self.fail = fail
        self.killed = False
        self.closed = False

    async def communicate(self) -> tuple[bytes, bytes]:
        if self.fail is not None:
            raise self.fail
        if self.final_returncode is None:
            await asyncio.sleep(3600)
        self.returncode = self.final_returncode
        return self.stdout, b""

    def kill(self) -> None:
        self.killed = True

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    def __init__(self, *outcomes: FakeProcess | Exception) -> None:
        self.outcomes = list(outcomes)
        self.commands: list[tuple[str, dict[str, object]]] = []
        self.closed = False

    async def create_process(self, command: str, **kwargs: object) -> FakeProcess:
        self.commands.append((command, kwargs))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


def wired(*connections: FakeConnection) -> tuple[SSHTransport, list[FakeConnection]]:
    """An SSHTransport whose connects hand out `connections` in turn."""
    transport = ssh_transport(bin_dir="/usr/bin")
    pending = list(connections)
    handed: list[FakeConnection] = []

    async def connect() -> FakeConnection:
        handed.append(pending.pop(0))
        return handed[-1]

    transport._connect = connect  # type: ignore[method-assign,assignment]
    return transport, handed


def lost() -> Exception:
    import asyncssh

    return asyncssh.ConnectionLost("connection lost")


def test_ssh_reuses_one_connection() -> None:
    """Consecutive commands share one SSH connection."""
    transport, handed = wired(FakeConnection(FakeProcess(), FakeProcess()))

    async def scenario() -> None:
        await transport.run(["sinfo"])
        await transport.run(["squeue"])

    asyncio.run(scenario())
    assert len(handed) == 1 and len(handed[0].commands) == 2


def test_ssh_reconnects_once_when_a_session_cannot_open() -> None:
    """A connection found dead when opening the session is replaced once, and the command runs."""
    transport, handed = wired(FakeConnection(lost()), FakeConnection(FakeProcess(b"42\n")))
    result = asyncio.run(transport.run(["sbatch"], stdin=b"#!/bin/sh\n"))
    assert result.stdout == b"42\n"
    assert handed[0].closed and len(handed[1].commands) == 1


def test_ssh_gives_up_after_one_reconnect() -> None:
    """Two failed session openings in a row raise PoolUnreachable."""
    transport, _ = wired(FakeConnection(lost()), FakeConnection(lost()))
    with pytest.raises(PoolUnreachable, match="cannot open a session"):
        asyncio.run(transport.run(["sinfo"]))


def test_ssh_never_reruns_a_started_command() -> None:
    """A connection lost while the command runs raises PoolUnreachable without a second run."""
    transport, handed = wired(FakeConnection(FakeProcess(fail=lost())), FakeConnection())
    with pytest.raises(PoolUnreachable, match="connection lost"):
        asyncio.run(transport.run(["sbatch"], stdin=b"#!/bin/sh\n"))
    assert len(handed) == 1 and len(handed[0].commands) == 1


def test_ssh_feeds_stdin_as_bytes() -> None:
    """stdin goes to the session as raw bytes (encoding=None), without stdin DEVNULL is used."""
    import asyncssh

    transport, handed = wired(FakeConnection(FakeProcess(), FakeProcess()))

    async def scenario() -> None:
        await transport.run(["sbatch"], stdin=b"\xff\xfe")
        await transport.run(["squeue"])

    asyncio.run(scenario())
    (_, with_stdin), (_, without) = handed[0].commands
    assert with_stdin == {"encoding": None, "input": b"\xff\xfe"}
    assert without == {"encoding": None, "stdin": asyncssh.DEVNULL}


def test_ssh_runs_the_quoted_command_line() -> None:
    """The session runs `env SLURM_CONF=... K=V /bin_dir/cmd args`, every word quoted."""
    transport, handed = wired(FakeConnection(FakeProcess()))
    asyncio.run(transport.run(["sbatch", "--job-name=a b"], env={"K": "$(id)"}))
    command, _ = handed[0].commands[0]
    assert shlex.split(command) == [
        "env",
        "SLURM_CONF=/etc/slurm/beta.conf",
        "K=$(id)",
        "/usr/bin/sbatch",
        "--job-name=a b",
    ]


def test_ssh_runs_unset_through_env() -> None:
    """`unset` reaches the session's command line as `env -u NAME`."""
    transport, handed = wired(FakeConnection(FakeProcess()))
    asyncio.run(transport.run(["squeue"], env={"TZ": "UTC"}, unset=["SQUEUE_USERS"]))
    command, _ = handed[0].commands[0]
    assert shlex.split(command) == [
        "env",
        "-u",
        "SQUEUE_USERS",
        "SLURM_CONF=/etc/slurm/beta.conf",
        "TZ=UTC",
        "/usr/bin/squeue",
    ]


def test_ssh_rejects_unsafe_unset() -> None:
    """A name env(1) could read as an option is refused before anything runs."""
    transport, handed = wired(FakeConnection(FakeProcess()))
    with pytest.raises(ValueError):
        asyncio.run(transport.run(["squeue"], unset=["-i"]))
    assert handed == []


def test_ssh_timeout_kills_the_remote_command() -> None:
    """A command outlasting its timeout is signalled, closed, and raises PoolUnreachable."""
    process = FakeProcess(returncode=None)
    transport, _ = wired(FakeConnection(process))
    with pytest.raises(PoolUnreachable, match="did not finish"):
        asyncio.run(transport.run(["sinfo"], timeout=0.1))
    assert process.killed and process.closed


def test_ssh_signal_exit_is_128_plus_signal() -> None:
    """A remote command killed by a signal reports 128+signal, like a shell."""
    transport, _ = wired(FakeConnection(FakeProcess(returncode=-9)))
    assert asyncio.run(transport.run(["sinfo"])).returncode == 137


def test_ssh_resolves_the_command_once_without_job_environment() -> None:
    """Without bin_dir the remote path comes from `command -v`, asked once per command."""
    transport = ssh_transport()
    conn = FakeConnection(
        FakeProcess(b"/usr/bin/sbatch\n"), FakeProcess(b"1\n"), FakeProcess(b"2\n")
    )

    async def connect() -> FakeConnection:
        return conn

    transport._connect = connect  # type: ignore[method-assign,assignment]

    async def scenario() -> None:
        await transport.run(["sbatch"], env={"PATH": "/home/u/bin"})
        await transport.run(["sbatch"], env={"PATH": "/home/u/bin"})

    asyncio.run(scenario())
    commands = [shlex.split(c) for c, _ in conn.commands]
    assert commands[0] == ["command", "-v", "sbatch"]
    assert commands[1][-1] == commands[2][-1] == "/usr/bin/sbatch"


def test_ssh_keeps_a_live_connection_that_refuses_a_session() -> None:
    """A session refused on a live connection (MaxSessions) fails without dropping it."""
    import asyncssh

    refused = asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "no more")
    transport, handed = wired(FakeConnection(refused), FakeConnection())
    with pytest.raises(PoolUnreachable, match="cannot open a session"):
        asyncio.run(transport.run(["sinfo"]))
    assert len(handed) == 1 and not handed[0].closed
