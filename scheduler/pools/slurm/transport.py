"""How Slurm client commands reach a cluster: a local subprocess or a command over SSH.

A transport runs one argv (never through a local shell) and returns its exit status and raw
output. A non-zero exit is a result, not an exception: only "the command could not be run at
all" (binary missing, connection refused, authentication failure, host key mismatch, timeout)
raises `PoolUnreachable`.

Trust boundary: `env` may carry values chosen by a user (the job's environment). It reaches the
child's environment and nothing else: the executable is resolved with the transport's own
PATH (LocalTransport) or with the remote login PATH before the job environment is applied
(SSHTransport), and a SLURM_CONF in `env` never replaces the transport's, so that a job
cannot choose which binary runs or which cluster receives the command.

`unset` names variables to remove from the command's environment (the transport's own or the
remote login's) before `env` applies, for settings a login profile may hold that would change
what a command prints (squeue's SQUEUE_USERS, SQUEUE_PARTITION, ... filters). SLURM_CONF is
never removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from scheduler.pools.base import PoolUnreachable

if TYPE_CHECKING:
    import asyncssh

__all__ = [
    "ENV_NAME",
    "CommandResult",
    "LocalTransport",
    "MissingDependencyError",
    "SSHTransport",
    "Transport",
    "check_env",
    "check_unset",
]

#: Names accepted for environment variables: they start like a shell name (so env(1) can never
#: read one as an option) and hold no `=` or NUL; `%%` etc. stay allowed for the exported bash
#: functions (`BASH_FUNC_module%%`) that module systems put in users' environments.
ENV_NAME = re.compile(r"[A-Za-z_][^=\0]*")

_ASYNCSSH_HINT = "the SSH transport needs asyncssh: pip install asyncssh"


class MissingDependencyError(ImportError):
    """An optional dependency of a transport is not installed."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command returned: its exit status and its raw output."""

    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


@runtime_checkable
class Transport(Protocol):
    """Runs Slurm client commands against one cluster."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        unset: Collection[str] = (),
        timeout: float = 30.0,
    ) -> CommandResult:
        """Run `argv` with `stdin` fed byte for byte, the variables named in `unset` removed
        from its environment and `env` added to it.

        Returns whatever exit status the command had. Raises PoolUnreachable when the command
        could not be run or did not finish within `timeout` seconds (the command is then
        stopped), ValueError when argv or env cannot be passed safely (NUL bytes, bad names).
        """
        ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...


def check_env(env: Mapping[str, str]) -> None:
    """Raise ValueError unless every name is a plain variable name and no value holds a NUL."""
    for key, value in env.items():
        if not ENV_NAME.fullmatch(key):
            raise ValueError(f"invalid environment variable name {key!r}")
        if "\0" in value:
            raise ValueError(f"environment variable {key} contains a NUL byte")


def check_unset(names: Collection[str]) -> None:
    """Raise ValueError unless every name is a plain variable name."""
    if isinstance(names, str):
        raise ValueError("unset takes a collection of names, not one string")
    for name in names:
        if not ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name {name!r}")


def _check_argv(argv: Sequence[str]) -> None:
    if not argv:
        raise ValueError("empty argv")
    for arg in argv:
        if "\0" in arg:
            raise ValueError(f"argument contains a NUL byte: {arg!r}")


def _check_call(argv: Sequence[str], env: Mapping[str, str] | None, unset: Collection[str]) -> None:
    """What every transport checks before running anything (ValueError on bad input)."""
    _check_argv(argv)
    check_env(env or {})
    check_unset(unset)


class LocalTransport:
    """Runs the Slurm commands of this host with `asyncio.create_subprocess_exec` (no shell)."""

    def __init__(self, slurm_conf: str | None, bin_dir: str | None = None) -> None:
        self.slurm_conf = slurm_conf
        self.bin_dir = bin_dir

    def __repr__(self) -> str:
        return f"LocalTransport(slurm_conf={self.slurm_conf!r}, bin_dir={self.bin_dir!r})"

    def _resolve(self, command: str) -> str:
        """Absolute path of `command`, looked up in bin_dir or in this process's PATH.

        Never in the child's PATH: the child's environment may come from a user.
        """
        if os.sep in command:
            return command
        found = shutil.which(command, path=self.bin_dir or os.environ.get("PATH", os.defpath))
        if found is None:
            where = self.bin_dir or "PATH"
            raise PoolUnreachable(f"cannot run {command}: not found in {where}")
        return os.path.abspath(found)

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        unset: Collection[str] = (),
        timeout: float = 30.0,
    ) -> CommandResult:
        _check_call(argv, env, unset)
        child_env = {k: v for k, v in os.environ.items() if k not in unset or k == "SLURM_CONF"}
        child_env.update(env or {})
        if self.slurm_conf is not None:
            child_env["SLURM_CONF"] = self.slurm_conf
        executable = self._resolve(argv[0])
        try:
            proc = await asyncio.create_subprocess_exec(
                executable,
                *argv[1:],
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=child_env,
            )
        except OSError as exc:
            raise PoolUnreachable(f"cannot run {argv[0]}: {exc}") from exc
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(stdin or None), timeout)
        except TimeoutError as exc:
            raise PoolUnreachable(f"{argv[0]} did not finish within {timeout:g} s") from exc
        finally:
            # Timeout or cancellation: never leave the child behind.
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    await proc.wait()
        assert proc.returncode is not None
        return CommandResult(proc.returncode, stdout, stderr)

    async def close(self) -> None:
        return None


def _import_asyncssh() -> Any:
    try:
        import asyncssh
    except ImportError as exc:  # pragma: no cover - exercised only without asyncssh
        raise MissingDependencyError(_ASYNCSSH_HINT) from exc
    return asyncssh


class SSHTransport:
    """Runs the Slurm commands of a remote login node over one reused SSH connection.

    The host key is always checked against `known_hosts` (a file in OpenSSH format; for a
    non-default port the host is written `[host]:port`). Only the given client keys are
    offered: no agent, no password, no ~/.ssh/config. The remote command line is
    `shlex.join(["env", "-u", "NAME", ..., "SLURM_CONF=...", "K=V", ..., "/abs/path/cmd", *args])`,
    so the remote login shell must be POSIX (sh, bash, dash, zsh). The command's absolute path
    is resolved once per name with `command -v` (before any job environment applies) unless
    `bin_dir` is given.
    """

    #: sshd's default MaxSessions is 10 channels per connection.
    max_sessions = 8

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        client_keys: Sequence[str],
        known_hosts: str,
        slurm_conf: str | None,
        connect_timeout: float = 10.0,
        *,
        bin_dir: str | None = None,
        keepalive_interval: float = 30.0,
    ) -> None:
        if not known_hosts:
            raise ValueError("SSHTransport needs a known_hosts file: host keys are always checked")
        if not client_keys:
            raise ValueError("SSHTransport needs at least one client key")
        self._asyncssh = _import_asyncssh()
        self.host = host
        self.port = port
        self.username = username
        self.client_keys = tuple(client_keys)
        self.known_hosts = known_hosts
        self.slurm_conf = slurm_conf
        self.connect_timeout = connect_timeout
        self.bin_dir = bin_dir
        self.keepalive_interval = keepalive_interval
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self._sessions = asyncio.Semaphore(self.max_sessions)
        self._paths: dict[str, str] = {}

    def __repr__(self) -> str:
        where = f"{self.username}@{self.host}:{self.port}"
        return f"SSHTransport({where}, slurm_conf={self.slurm_conf!r})"

    # -- connection --------------------------------------------------------------------------

    async def _connect(self) -> asyncssh.SSHClientConnection:
        ssh = self._asyncssh
        where = f"{self.username}@{self.host}:{self.port}"
        try:
            conn: asyncssh.SSHClientConnection = await ssh.connect(
                self.host,
                port=self.port,
                username=self.username,
                client_keys=list(self.client_keys),
                known_hosts=self.known_hosts,
                config=None,
                agent_path=None,
                password=None,
                kbdint_auth=False,
                host_based_auth=False,
                gss_auth=False,
                x509_trusted_certs=None,
                connect_timeout=self.connect_timeout,
                login_timeout=self.connect_timeout,
                keepalive_interval=self.keepalive_interval,
                keepalive_count_max=3,
            )
        except ssh.HostKeyNotVerifiable as exc:
            raise PoolUnreachable(f"ssh {where}: host key not verifiable: {exc}") from exc
        except ssh.PermissionDenied as exc:
            raise PoolUnreachable(f"ssh {where}: authentication failed: {exc}") from exc
        except (ssh.Error, OSError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            raise PoolUnreachable(f"ssh {where}: cannot connect: {detail}") from exc
        return conn

    async def _connection(
        self, replacing: asyncssh.SSHClientConnection | None = None
    ) -> asyncssh.SSHClientConnection:
        """The shared connection, opened when there is none or it closed.

        `replacing` is a connection the caller found broken: it is dropped unless another
        caller has already replaced it, so concurrent callers reconnect only once.
        """
        async with self._lock:
            if replacing is not None and self._conn is replacing:
                replacing.close()
                self._conn = None
            if self._conn is None or self._conn.is_closed():
                self._conn = await self._connect()
            return self._conn

    # -- commands ----------------------------------------------------------------------------

    def command_line(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        unset: Collection[str] = (),
    ) -> str:
        """The remote command line, every word quoted; `env` and `unset` cannot replace or
        remove SLURM_CONF. Variables are removed with `env -u NAME` (GNU, BSD and BusyBox env)."""
        removals = [w for name in unset if name != "SLURM_CONF" for w in ("-u", name)]
        assignments = [f"SLURM_CONF={self.slurm_conf}"] if self.slurm_conf is not None else []
        assignments += [f"{k}={v}" for k, v in (env or {}).items() if k != "SLURM_CONF"]
        if not removals and not assignments:
            return shlex.join(argv)
        return shlex.join(["env", *removals, *assignments, *argv])

    async def _start(self, command: str, stdin: bytes | None) -> asyncssh.SSHClientProcess[bytes]:
        """Open a session running `command`; reconnect once when the connection dropped.

        A failure here means the command never started, so one retry cannot run it twice.
        A live connection refusing a session (e.g. sshd's MaxSessions) is not torn down:
        other sessions may be running on it.
        """
        ssh = self._asyncssh
        feed: dict[str, Any] = {"input": stdin} if stdin else {"stdin": ssh.DEVNULL}
        conn = await self._connection()
        for attempt in range(2):
            try:
                process: asyncssh.SSHClientProcess[bytes] = await conn.create_process(
                    command, encoding=None, **feed
                )
                return process
            except (ssh.ChannelOpenError, ssh.DisconnectError, OSError) as exc:
                dropped = isinstance(exc, ssh.DisconnectError | OSError) or conn.is_closed()
                if attempt or not dropped:
                    raise PoolUnreachable(
                        f"ssh {self.host}:{self.port}: cannot open a session: {exc}"
                    ) from exc
            conn = await self._connection(replacing=conn)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _resolve(self, command: str, timeout: float) -> str:
        if "/" in command:
            return command
        if self.bin_dir is not None:
            return f"{self.bin_dir.rstrip('/')}/{command}"
        if command not in self._paths:
            result = await self._exec(shlex.join(["command", "-v", command]), None, timeout)
            path = result.stdout_text().strip()
            if result.returncode != 0 or not path.startswith("/"):
                raise PoolUnreachable(f"{command} not found on {self.host}")
            self._paths[command] = path
        return self._paths[command]

    async def _exec(self, command: str, stdin: bytes | None, timeout: float) -> CommandResult:
        async with self._sessions:
            process = await self._start(command, stdin)
            try:
                stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
            except TimeoutError as exc:
                raise PoolUnreachable(
                    f"ssh {self.host}: command did not finish within {timeout:g} s"
                ) from exc
            except (self._asyncssh.Error, OSError) as exc:
                raise PoolUnreachable(f"ssh {self.host}: connection lost: {exc}") from exc
            finally:
                if process.returncode is None:
                    with contextlib.suppress(Exception):
                        process.kill()
                    process.close()
        returncode = process.returncode
        if returncode is None:  # the server sent no exit status
            raise PoolUnreachable(f"ssh {self.host}: no exit status for the command")
        if returncode < 0:  # killed by a signal, as subprocess reports it
            returncode = 128 - returncode
        return CommandResult(returncode, stdout or b"", stderr or b"")

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        unset: Collection[str] = (),
        timeout: float = 30.0,
    ) -> CommandResult:
        _check_call(argv, env, unset)
        if self.slurm_conf is not None and "\0" in self.slurm_conf:
            raise ValueError("SLURM_CONF contains a NUL byte")
        executable = await self._resolve(argv[0], timeout)
        command = self.command_line([executable, *argv[1:]], env, unset)
        return await self._exec(command, stdin, timeout)

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
