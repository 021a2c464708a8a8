"""Argv of the commands the adapter runs (Slurm's clients, and dd). Pure: no I/O, no shell.

Every user-chosen value (job name, paths) travels as one argv word of the `--option=value`
form, so that it can neither start a new option nor be split; the transports never hand argv to
a local shell and quote every word for a remote one. The job's environment is not on the
command line nor in sbatch's own environment: it reaches the pool on stdin, ahead of the script,
and sbatch reads it from a file (`--export-file`), see `submit_argv`. So no size of environment
runs into the kernel's argv and environment limits.

The read commands carry no filters on purpose; the adapter filters on its side. `sinfo --json`
ignores them anyway in 22.05 and returns every node once. Jobs are read with the plain-text
`squeue -O` (see `squeue_argv`), not `squeue --json`, which in 22.05 ignores every filter and
prints ~3.6 kB per remembered job (lab, 611 jobs: 2.3 MB and ~170 ms, against 77 kB and ~17 ms
in text). `--jobs` is never used: `squeue --jobs=<purged id>` fails as a whole.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

from scheduler.config import ENVIRONMENT_DROP_SLURM
from scheduler.domain import SIGNALS, RemoteSubmission
from scheduler.pools.environment import split_environment
from scheduler.pools.slurm.transport import ENV_NAME

__all__ = [
    "DD",
    "JOB_ID",
    "MAX_FILE_OFFSET",
    "READ_OUTPUT_BLOCK",
    "READ_OUTPUT_ENVIRONMENT",
    "READ_OUTPUT_MAX",
    "SQUEUE_ENVIRONMENT",
    "SQUEUE_FIELDS",
    "SQUEUE_MARKER",
    "SQUEUE_UNSET_VARIABLES",
    "USER_NAME",
    "check_job_id",
    "check_read_request",
    "export_file",
    "job_environment",
    "new_squeue_marker",
    "read_output_argv",
    "sbatch_argv",
    "scancel_argv",
    "signal_argv",
    "sinfo_argv",
    "size_argv",
    "squeue_argv",
    "submit_argv",
]

#: A Slurm job id as sbatch --parsable prints it, or an array task (`123_4`).
JOB_ID = re.compile(r"[0-9]+(?:_[0-9]+)?")
#: A POSIX user name (as useradd takes it): safe as an argument and as a path component.
USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?", re.IGNORECASE)


def job_environment(
    submission: RemoteSubmission, drop: Sequence[str] = ENVIRONMENT_DROP_SLURM
) -> tuple[dict[str, str], dict[str, str]]:
    """The variables to export into the job, and those left out with why (see
    scheduler.pools.environment): those the pool's `drop` patterns name, and those no
    environment can hold (`=` or NUL in the name, NUL in the value)."""
    return split_environment(submission, drop, _unholdable)


def _unholdable(name: str, value: str) -> str | None:
    if not ENV_NAME.fullmatch(name) or "\0" in value:
        return "no environment can hold it"
    return None


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def sbatch_argv(submission: RemoteSubmission, partition: str) -> list[str]:
    """`sbatch --parsable ...` for the submission on `partition`; the script goes on stdin."""
    request = submission.request
    argv = [
        "sbatch",
        "--parsable",
        f"--comment={submission.tag.render()}",
        f"--job-name={request.job_name}",
        f"--nodes={_positive('nodes', request.nodes)}",
        f"--ntasks={_positive('ntasks', request.tasks)}",
        f"--cpus-per-task={_positive('cpus_per_task', request.cpus_per_task)}",
    ]
    if request.gpus_per_node < 0:
        raise ValueError(f"gpus_per_node must not be negative, not {request.gpus_per_node}")
    if request.gpus_per_node:
        typed = f"{request.gpu_type}:" if request.gpu_type else ""
        argv.append(f"--gres=gpu:{typed}{request.gpus_per_node}")
    if request.constraint is not None:
        argv.append(f"--constraint={request.constraint}")
    if request.mem_per_node_mb is not None:
        argv.append(f"--mem={_positive('mem_per_node_mb', request.mem_per_node_mb)}M")
    if request.time_limit_min is not None:
        argv.append(f"--time={_positive('time_limit_min', request.time_limit_min)}")
    argv.append(f"--partition={partition}")
    if request.chdir is not None:
        argv.append(f"--chdir={request.chdir}")
    if request.output is not None:
        argv.append(f"--output={request.output}")
    if request.error is not None:
        argv.append(f"--error={request.error}")
    argv.append("--requeue" if request.requeue else "--no-requeue")
    if submission.run_as is not None:
        # Slurm lets root (or SlurmUser) submit as another user; the job then runs as them.
        if not USER_NAME.fullmatch(submission.run_as):
            raise ValueError(f"not a user name: {submission.run_as!r}")
        argv.append(f"--uid={submission.run_as}")
    argv.append("--export=ALL")
    for word in argv:
        if "\0" in word:
            raise ValueError(f"sbatch argument contains a NUL byte: {word!r}")
    return argv


# Runs on the pool (POSIX sh, GNU env and head, mktemp): the first $1 bytes of stdin are the
# job's environment, written after sbatch's own (as --export=ALL would pass it; the later
# entry of a name wins) to a private temporary file that sbatch reads with --export-file
# (which replaces, not adds to, what --export=ALL exports); the rest of stdin, the script,
# stays sbatch's stdin. The file is removed whatever happens.
# $2, when given, is a spool directory to make first (mode 0700), owned by user $3 if given;
# sbatch runs in $4 when given and there (Slurm makes it the job's SLURM_SUBMIT_DIR).
_SUBMIT_WRAPPER = (
    'f=$(mktemp "${TMPDIR:-/tmp}/sfed-env.XXXXXX") || exit 125; '
    "trap 'rm -f \"$f\"' EXIT; "
    '{ env -0 && head -c "$1"; } > "$f" || exit 125; '
    'if [ -n "$2" ]; then '
    'mkdir -p -m 0700 "$2" && chmod 0700 "$2" && { [ -z "$3" ] || chown "$3": "$2"; } '
    '|| { echo "sbatch: error: cannot prepare the spool directory $2" >&2; exit 125; }; fi; '
    'if [ -n "$4" ]; then cd "$4" 2>/dev/null || cd /; fi; '
    'shift 4; "$@" --export-file="$f"'
)


def export_file(env: dict[str, str]) -> bytes:
    """The job's variables as `--export-file` reads them: NAME=value, each ended by a NUL."""
    return b"".join(f"{k}={v}".encode("utf-8", "surrogateescape") + b"\0" for k, v in env.items())


def submit_argv(
    sbatch: list[str],
    environment: bytes,
    *,
    spool_dir: str = "",
    owner: str = "",
    submit_dir: str = "",
) -> list[str]:
    """`sbatch` run through the wrapper that takes its `environment` (an `export_file`) from
    the head of stdin, after making `spool_dir` (0700, `owner`'s when given), in `submit_dir`
    (or / when the pool has no such directory); stdin must be the environment, then the
    script."""
    if owner and not USER_NAME.fullmatch(owner):
        raise ValueError(f"not a user name: {owner!r}")
    return [
        "/bin/sh",
        "-c",
        _SUBMIT_WRAPPER,
        "sfed-submit",
        str(len(environment)),
        spool_dir,
        owner,
        submit_dir,
        *sbatch,
    ]


def sinfo_argv() -> list[str]:
    """Every node of the cluster with its partitions, GRES and allocations (JSON)."""
    return ["sinfo", "--json"]


#: The `squeue -O` fields read for each job, in output order. Each is printed `|`-terminated
#: (`Name:|`: no size, so neither padded nor cut), except the two free-text fields last, which
#: are terminated by the per-call marker: `id|state|status|nodes|start|end|reason<M>comment<M>`.
#: `JobID` is the job's own id (array tasks included), as sbatch --parsable prints it;
#: `exit_code` is the raw wait status of the batch script.
SQUEUE_FIELDS = ("JobID", "State", "exit_code", "NodeList", "StartTime", "EndTime")

#: A record marker: `~` and 16 random hex digits (a size in -O must not follow it: no digit
#: first; no `,`, which separates -O fields).
SQUEUE_MARKER = re.compile(r"~[0-9a-f]{16}")

#: Added to squeue's environment: times in UTC, `YYYY-MM-DDTHH:MM:SS`, whatever the login
#: environment says (squeue prints local time in the SLURM_TIME_FORMAT form).
SQUEUE_ENVIRONMENT = {"TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}

#: Removed from squeue's environment: filters a login profile may set that the text form obeys
#: (the command line cannot widen them back), which would hide jobs from poll and find.
#: SQUEUE_FORMAT/FORMAT2/STATES/ARRAY/ALL are overridden by the options of `squeue_argv`.
SQUEUE_UNSET_VARIABLES = (
    "SQUEUE_ACCOUNT",
    "SQUEUE_LICENSES",
    "SQUEUE_NAMES",
    "SQUEUE_PARTITION",
    "SQUEUE_QOS",
    "SQUEUE_USERS",
)


def new_squeue_marker() -> str:
    """A fresh record marker for one squeue call."""
    return "~" + secrets.token_hex(8)


def squeue_argv(marker: str) -> list[str]:
    """Every job the controller remembers, one record per job, in `SQUEUE_FIELDS` order.

    `--states=all` includes finished jobs (until MinJobAge), `--all` hidden partitions and
    `--array` one record per array task (otherwise pending tasks are folded into one line).
    Reason and comment come last, each terminated by `marker`: a comment (any user's: free text,
    `|` and newlines included) cannot forge a record or a field boundary without knowing the
    marker, which is drawn afresh for each call (`new_squeue_marker`).
    """
    if not SQUEUE_MARKER.fullmatch(marker):
        raise ValueError(f"not a squeue record marker: {marker!r}")
    fixed = ",".join(f"{name}:|" for name in SQUEUE_FIELDS)
    return [
        "squeue",
        "--noheader",
        "--all",
        "--array",
        "--states=all",
        f"--Format={fixed},Reason:{marker},Comment:{marker}",
    ]


def check_job_id(remote_id: str) -> str:
    """`remote_id` when it is a Slurm job id, else ValueError (it would not be one argv word)."""
    if not JOB_ID.fullmatch(remote_id):
        raise ValueError(f"not a Slurm job id: {remote_id!r}")
    return remote_id


def scancel_argv(remote_id: str) -> list[str]:
    """`scancel <id>`: 22.05 exits 0 for unknown and finished ids."""
    return ["scancel", check_job_id(remote_id)]


def signal_argv(remote_id: str, signal: str, *, batch_only: bool) -> list[str]:
    """`scancel --signal=SIG --batch|--full <id>`: the batch shell only, or the batch shell
    and every step (the job's every process, whether or not it runs steps)."""
    if signal not in SIGNALS:
        raise ValueError(f"not a signal sfed sends: {signal!r}")
    which = "--batch" if batch_only else "--full"
    return ["scancel", f"--signal={signal}", which, check_job_id(remote_id)]


# -- reading a file on the pool (job output) -------------------------------------------------

#: GNU dd, by absolute path: /bin/dd exists on merged-/usr and classic layouts alike (Debian,
#: RHEL, SUSE), and an absolute argv[0] is run as is by both transports, so neither the
#: transports' `bin_dir` (Slurm's own directory, which holds no dd) nor a remote PATH lookup
#: is involved.
DD = "/bin/dd"

#: The most bytes one read_output call returns; a larger `limit` is cut to it.
READ_OUTPUT_MAX = 4 * 1024 * 1024

#: dd's block size for a read (its buffer): min(limit, this).
READ_OUTPUT_BLOCK = 1024 * 1024

#: The largest offset a file can have (off_t); dd refuses larger numbers.
MAX_FILE_OFFSET = 2**63 - 1

#: dd's messages in English whatever the login's locale, so that the adapter can tell
#: "No such file or directory" (nothing to read yet) from a real failure.
READ_OUTPUT_ENVIRONMENT = {"LC_ALL": "C"}


def check_read_request(path: str, offset: int, limit: int) -> None:
    """ValueError unless `path` is absolute and one line (no NUL, no newline) and `offset`
    (at most MAX_FILE_OFFSET) and `limit` are not negative."""
    if not path.startswith("/"):
        raise ValueError(f"not an absolute path: {path!r}")
    if "\0" in path or "\n" in path:
        raise ValueError(f"path contains a NUL byte or a newline: {path!r}")
    if not 0 <= offset <= MAX_FILE_OFFSET:
        raise ValueError(f"offset must be between 0 and {MAX_FILE_OFFSET}, not {offset}")
    if limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}")


#: GNU stat, by absolute path as DD: a file's size, to tell a file started anew.
STAT = "/usr/bin/stat"


def size_argv(path: str) -> list[str]:
    """`stat` printing the size of `path` (following links)."""
    check_read_request(path, 0, 0)
    return [STAT, "--dereference", "--format=%s", "--", path]


def read_output_argv(path: str, offset: int, limit: int) -> list[str]:
    """`dd` printing bytes [offset, offset + min(limit, READ_OUTPUT_MAX)) of `path` on stdout.

    `skip_bytes,count_bytes` make skip= and count= byte counts (bs is only the buffer size),
    `fullblock` keeps reading after short reads (pipes, network filesystems) until count or
    the end of the file, `nonblock` opens with O_NONBLOCK so that a FIFO at `path` ends the read
    instead of blocking until the timeout (no effect on regular files), and `status=none`
    silences the transfer summary (and GNU dd's "cannot skip to specified offset" for an
    offset past the end). The path travels as the single word `if=<path>`: never an operand
    or an option. `limit` must be at least 1 (dd has no zero-sized block).
    """
    check_read_request(path, offset, limit)
    count = min(limit, READ_OUTPUT_MAX)
    if count < 1:
        raise ValueError("limit must be at least 1")
    return [
        DD,
        f"if={path}",
        "iflag=skip_bytes,count_bytes,fullblock,nonblock",
        f"skip={offset}",
        f"count={count}",
        f"bs={min(count, READ_OUTPUT_BLOCK)}",
        "status=none",
    ]
