"""Argv of the Slurm commands built from a submission: pure, no shell, one word per value."""

from __future__ import annotations

from functools import partial

import pytest

from scheduler.pools.slurm import commands
from tests.fixtures import submissions

TAG = submissions.remote_tag("fed", 12, 3)
submission = partial(submissions.submission, tag=TAG, script=b"#!/bin/sh\ntrue\n")


def test_sbatch_argv_minimal() -> None:
    """A default request gives the fixed options, in order, and nothing optional."""
    assert commands.sbatch_argv(submission(), "gpu") == [
        "sbatch",
        "--parsable",
        "--comment=sfed/fed/12/3",
        "--job-name=sbatch",
        "--nodes=1",
        "--ntasks=1",
        "--cpus-per-task=1",
        "--partition=gpu",
        "--no-requeue",
        "--export=ALL",
    ]


def test_sbatch_argv_full() -> None:
    """Every field of the request becomes its sbatch option."""
    argv = commands.sbatch_argv(
        submission(
            job_name="train",
            nodes=4,
            ntasks=16,
            cpus_per_task=6,
            gpus_per_node=8,
            mem_per_node_mb=64000,
            time_limit_min=90,
            chdir="/shared/run",
            output="/shared/out-%j.txt",
            error="/shared/err-%j.txt",
            requeue=True,
        ),
        "batch",
    )
    assert argv == [
        "sbatch",
        "--parsable",
        "--comment=sfed/fed/12/3",
        "--job-name=train",
        "--nodes=4",
        "--ntasks=16",
        "--cpus-per-task=6",
        "--gres=gpu:8",
        "--mem=64000M",
        "--time=90",
        "--partition=batch",
        "--chdir=/shared/run",
        "--output=/shared/out-%j.txt",
        "--error=/shared/err-%j.txt",
        "--requeue",
        "--export=ALL",
    ]


def test_sbatch_argv_typed_gres_and_constraint() -> None:
    """A GPU type goes into --gres=gpu:TYPE:N and the constraint into --constraint, one word."""
    argv = commands.sbatch_argv(
        submission(gpus_per_node=2, gpu_type="h100", constraint="h100&ib"), "gpu"
    )
    assert argv[7:9] == ["--gres=gpu:h100:2", "--constraint=h100&ib"]


def test_sbatch_argv_uses_pool_partition_not_request_partition() -> None:
    """The request's (virtual) partition is replaced by the pool's."""
    argv = commands.sbatch_argv(submission(partition="fed"), "gpu")
    assert "--partition=gpu" in argv and "--partition=fed" not in argv


def test_sbatch_argv_ntasks_defaults_to_one_per_node() -> None:
    """Without ntasks, one task per node is asked for."""
    assert "--ntasks=3" in commands.sbatch_argv(submission(nodes=3), "gpu")


@pytest.mark.parametrize(
    "name",
    ["x; touch /tmp/pwned", "$(touch /tmp/pwned2)", "`id`", "a b\tc", "--partition=evil", "-x"],
)
def test_sbatch_argv_job_name_is_one_word(name: str) -> None:
    """A job name with shell metacharacters or a leading dash stays inside its own word."""
    argv = commands.sbatch_argv(submission(job_name=name), "gpu")
    assert f"--job-name={name}" in argv
    assert argv.count("--partition=gpu") == 1 and "--partition=evil" not in argv


def test_sbatch_argv_has_no_environment_values() -> None:
    """Environment values never appear on the command line."""
    sub = submission(sfed_env={"SFED_JOB": "secret-1"}, environment={"TOKEN": "secret-2"})
    assert not any("secret" in word for word in commands.sbatch_argv(sub, "gpu"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nodes", 0),
        ("ntasks", 0),
        ("cpus_per_task", 0),
        ("gpus_per_node", -1),
        ("time_limit_min", 0),
    ],
)
def test_sbatch_argv_rejects_impossible_counts(field: str, value: int) -> None:
    """Counts Slurm cannot take raise ValueError instead of reaching sbatch."""
    with pytest.raises(ValueError):
        commands.sbatch_argv(submission(**{field: value}), "gpu")


def test_sbatch_argv_rejects_nul() -> None:
    """A NUL byte cannot be passed in argv: ValueError."""
    with pytest.raises(ValueError, match="NUL"):
        commands.sbatch_argv(submission(chdir="/tmp/a\0b"), "gpu")


def test_job_environment_merges_submission_over_request() -> None:
    """The submission's SFED_* variables are added to the request's and win on a clash."""
    sub = submission(
        sfed_env={"SFED_JOB_ID": "12", "A": "from-submission"},
        script=b"#!/bin/sh\n",
        environment={"A": "from-request", "B": "b"},
    )
    env, dropped = commands.job_environment(sub)
    assert env == {"A": "from-submission", "B": "b", "SFED_JOB_ID": "12"}
    assert dropped == {}


@pytest.mark.parametrize(
    "name",
    [
        "SLURM_CONF",
        "SLURM_CLUSTERS",
        "SBATCH_PARTITION",
        "SBATCH_ACCOUNT",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "A=B",
        "-i",
        "",
    ],
)
def test_job_environment_drops_variables_that_steer_sbatch(name: str) -> None:
    """Variables that would change which cluster or code sbatch uses are not forwarded."""
    sub = submission(script=b"#!/bin/sh\n", environment={name: "x", "K": "v"})
    env, dropped = commands.job_environment(sub)
    assert (env, list(dropped)) == ({"K": "v"}, [name])


def test_job_environment_keeps_job_variables() -> None:
    """Ordinary variables, PATH, array task variables and exported bash functions are
    forwarded."""
    keep = {
        "PATH": "/opt/bin:/usr/bin",
        "SLURM_ARRAY_TASK_ID": "3",
        "CUDA_HOME": "/cuda",
        "BASH_FUNC_module%%": "() {  eval $($LMOD_CMD bash $*)\n}",
    }
    sub = submission(script=b"#!/bin/sh\n", environment=keep)
    assert commands.job_environment(sub) == (keep, {})


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("LD_PRELOAD", "this pool's environment_drop: LD_*"),
        ("SBATCH_ACCOUNT", "this pool's environment_drop: SBATCH_*"),
        ("SLURM_JOB_ID", "this pool's environment_drop: SLURM_*"),
        ("CUDA_VISIBLE_DEVICES", "this pool's environment_drop: CUDA_VISIBLE_DEVICES"),
        ("A=B", "no environment can hold it"),
    ],
)
def test_job_environment_says_why_a_variable_is_left_out(name: str, why: str) -> None:
    """Each variable left out comes with why, for the job's owner."""
    sub = submission(script=b"#!/bin/sh\n", environment={name: "x"})
    assert commands.job_environment(sub)[1] == {name: why}


def test_read_commands_carry_no_filters() -> None:
    """sinfo --json and squeue carry no --jobs, --partition or --user filter."""
    assert commands.sinfo_argv() == ["sinfo", "--json"]
    argv = commands.squeue_argv("~0123456789abcdef")
    assert not any(
        a.startswith(("--jobs", "--partition", "--user", "-j", "-p", "-u")) for a in argv
    )


def test_squeue_argv_is_the_text_form_with_the_marker() -> None:
    """squeue lists every job in plain text: the fixed fields `|`-terminated without a size,
    then reason and comment, each terminated by the marker."""
    assert commands.squeue_argv("~0123456789abcdef") == [
        "squeue",
        "--noheader",
        "--all",
        "--array",
        "--states=all",
        "--Format=JobID:|,State:|,exit_code:|,NodeList:|,StartTime:|,EndTime:|,"
        "Reason:~0123456789abcdef,Comment:~0123456789abcdef",
    ]


@pytest.mark.parametrize(
    "marker", ["", "|", "~0123", "0123456789abcdef0", "~0123456789abcdeg", "~0123456789abcde,"]
)
def test_squeue_argv_refuses_other_markers(marker: str) -> None:
    """Only `~` and 16 hex digits: no size digits first, no `,` (it separates -O fields)."""
    with pytest.raises(ValueError):
        commands.squeue_argv(marker)


def test_squeue_markers_are_fresh() -> None:
    """Each call gets its own marker of the accepted form."""
    markers = {commands.new_squeue_marker() for _ in range(100)}
    assert len(markers) == 100
    assert all(commands.SQUEUE_MARKER.fullmatch(m) for m in markers)


def test_squeue_environment_pins_time_zone_and_format() -> None:
    """squeue prints times in UTC in the standard form; the SQUEUE_* filters are removed."""
    assert commands.SQUEUE_ENVIRONMENT == {"TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}
    assert set(commands.SQUEUE_UNSET_VARIABLES) == {
        "SQUEUE_ACCOUNT",
        "SQUEUE_LICENSES",
        "SQUEUE_NAMES",
        "SQUEUE_PARTITION",
        "SQUEUE_QOS",
        "SQUEUE_USERS",
    }


def test_scancel_takes_the_id_as_one_word() -> None:
    """scancel takes the job id as one plain word."""
    assert commands.scancel_argv("123") == ["scancel", "123"]


@pytest.mark.parametrize("bad", ["", "12 13", "-1", "--signal=KILL", "12;id", "abc", "1_"])
def test_job_commands_reject_non_ids(bad: str) -> None:
    """Anything but a job id (or array task id) is refused with ValueError."""
    with pytest.raises(ValueError):
        commands.scancel_argv(bad)


def test_array_task_id_is_accepted() -> None:
    """An array task id `123_4` is a job id."""
    assert commands.scancel_argv("123_4") == ["scancel", "123_4"]


# -- read_output: dd ---------------------------------------------------------------------------

MIB = 1024 * 1024


def dd(path: str, skip: int, count: int, bs: int) -> list[str]:
    return [
        "/bin/dd",
        f"if={path}",
        "iflag=skip_bytes,count_bytes,fullblock,nonblock",
        f"skip={skip}",
        f"count={count}",
        f"bs={bs}",
        "status=none",
    ]


@pytest.mark.parametrize(
    ("path", "offset", "limit", "argv"),
    [
        ("/spool/out.txt", 0, 1, dd("/spool/out.txt", 0, 1, 1)),
        ("/spool/out.txt", 0, 4096, dd("/spool/out.txt", 0, 4096, 4096)),
        ("/spool/out.txt", 123, MIB, dd("/spool/out.txt", 123, MIB, MIB)),
        ("/spool/out.txt", 5, MIB + 1, dd("/spool/out.txt", 5, MIB + 1, MIB)),
        ("/spool/out.txt", 7, 4 * MIB, dd("/spool/out.txt", 7, 4 * MIB, MIB)),
        ("/spool/out.txt", 7, 4 * MIB + 1, dd("/spool/out.txt", 7, 4 * MIB, MIB)),
        ("/spool/out.txt", 0, 10**12, dd("/spool/out.txt", 0, 4 * MIB, MIB)),
        ("/o", 2**63 - 1, 1, dd("/o", 2**63 - 1, 1, 1)),
    ],
    ids=["one-byte", "small", "one-mib", "over-one-mib", "max", "cut-to-max", "huge", "max-off"],
)
def test_read_output_argv(path: str, offset: int, limit: int, argv: list[str]) -> None:
    """dd counts bytes (skip_bytes,count_bytes), at most 4 MiB, with a buffer of at most 1 MiB."""
    assert commands.read_output_argv(path, offset, limit) == argv


@pytest.mark.parametrize(
    "path",
    [
        "/tmp/x; touch /tmp/pwned",
        "/tmp/$(touch /tmp/pwned2)/`id`",
        "/tmp/a b\tc'd\"e",
        "/tmp/of=/etc/passwd",
        "/tmp/ count=1 /x",
        "/tmp/caf\u00e9/\udcff",
        "/-x",
        "//--help",
    ],
)
def test_read_output_argv_path_is_one_if_word(path: str) -> None:
    """Any absolute path, metacharacters and `=` included, is only the value of `if=`."""
    argv = commands.read_output_argv(path, 0, 10)
    assert argv[1] == f"if={path}"
    assert argv[0] == "/bin/dd" and argv[2:] == dd(path, 0, 10, 10)[2:]


@pytest.mark.parametrize(
    ("path", "offset", "limit", "match"),
    [
        ("spool/out.txt", 0, 1, "absolute"),
        ("", 0, 1, "absolute"),
        ("-out.txt", 0, 1, "absolute"),
        ("~/out.txt", 0, 1, "absolute"),
        ("/spool/a\0b", 0, 1, "NUL"),
        ("/spool/a\nb", 0, 1, "newline"),
        ("/spool/out.txt", -1, 1, "offset"),
        ("/spool/out.txt", 2**63, 1, "offset"),
        ("/spool/out.txt", 0, -1, "limit"),
    ],
)
def test_check_read_request_refuses(path: str, offset: int, limit: int, match: str) -> None:
    """Relative paths, NUL or newline in the path, negative or off_t-overflowing numbers fail."""
    with pytest.raises(ValueError, match=match):
        commands.check_read_request(path, offset, limit)
    with pytest.raises(ValueError, match=match):
        commands.read_output_argv(path, offset, limit)


def test_check_read_request_accepts_a_zero_limit() -> None:
    """A zero limit is a valid request (nothing to read), but no dd argv exists for it."""
    commands.check_read_request("/spool/out.txt", 0, 0)
    with pytest.raises(ValueError, match="at least 1"):
        commands.read_output_argv("/spool/out.txt", 0, 0)


def test_read_output_environment_pins_the_messages_language() -> None:
    """dd runs with LC_ALL=C so that its error messages can be recognised."""
    assert commands.READ_OUTPUT_ENVIRONMENT == {"LC_ALL": "C"}
    assert (commands.READ_OUTPUT_MAX, commands.READ_OUTPUT_BLOCK) == (4 * MIB, MIB)


def test_sbatch_argv_runs_as_the_owner() -> None:
    """A submission with run_as submits with --uid, so the job runs as its owner."""
    sub = submission(run_as="alice")
    assert "--uid=alice" in commands.sbatch_argv(sub, "gpu")
    assert not any(a.startswith("--uid") for a in commands.sbatch_argv(submission(), "gpu"))


@pytest.mark.parametrize("name", ["alice; rm", "-x", "a b", ""])
def test_sbatch_argv_refuses_bad_owner_names(name: str) -> None:
    """An owner that is not a user name is refused before anything runs."""
    with pytest.raises(ValueError, match="not a user name"):
        commands.sbatch_argv(submission(run_as=name), "gpu")


def test_a_pool_s_own_drop_list_replaces_the_defaults() -> None:
    """With environment_drop = ["HOME"], HOME stays behind and LD_LIBRARY_PATH goes."""
    sub = submission(
        script=b"#!/bin/sh\n", environment={"HOME": "/home/u", "LD_LIBRARY_PATH": "/opt/lib"}
    )
    env, left_out = commands.job_environment(sub, ["HOME"])
    assert (env, left_out) == (
        {"LD_LIBRARY_PATH": "/opt/lib"},
        {"HOME": "this pool's environment_drop: HOME"},
    )


def test_the_federation_s_own_variables_are_never_dropped() -> None:
    """SFED_* set by the federation go whatever the drop list; a user's stale ones do not."""
    sub = submission(
        sfed_env={"SFED_JOB_ID": "12"},
        script=b"#!/bin/sh\n",
        environment={"SFED_JOB_ID": "7", "SFED_POOL": "old"},
    )
    env, left_out = commands.job_environment(sub)
    assert (env, list(left_out)) == ({"SFED_JOB_ID": "12"}, ["SFED_POOL"])


@pytest.mark.parametrize(
    ("batch_only", "which"), [(True, "--batch"), (False, "--full")], ids=["batch", "full"]
)
def test_signal_argv(batch_only: bool, which: str) -> None:
    """A signal goes as scancel --signal, to the batch shell or to every process."""
    argv = commands.signal_argv("42", "USR1", batch_only=batch_only)
    assert argv == ["scancel", "--signal=USR1", which, "42"]


def test_signal_argv_refuses_an_unknown_signal() -> None:
    """Only the signals sfed sends reach scancel."""
    with pytest.raises(ValueError, match="not a signal sfed sends"):
        commands.signal_argv("42", "USR1; reboot", batch_only=True)
