"""plugins/job_submit.lua under lua5.1, with job_desc tables as Slurm 22.05.8 builds them."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scheduler.domain import PoolSnapshot, PoolState
from scheduler.loop.capabilities import render_capabilities
from scheduler.placement import Policy, never_fits
from tests.fixtures import jobs, nodes
from tests.plugins.shim import (
    ACCESS_DENIED,
    INFINITE,
    NO_VAL,
    NO_VAL16,
    PLUGIN,
    SCRIPT,
    T0,
    Shim,
    batch_job,
    caps_text,
    request_fields,
    split_wrapper,
)

pytestmark = pytest.mark.skipif(shutil.which("lua5.1") is None, reason="needs lua5.1")

PROXY = "/opt/sfed/bin/sfed-proxy"
HEADER = [
    b"#!/bin/sh",
    b"# sfed proxy job: the federated job's own script follows the #SFED-SCRIPT line, byte for byte.",
    b'exec /opt/sfed/bin/sfed-proxy --wrapper "$0"',
]
# The bounds sfedd publishes (scheduler/limits.py LIMITS), as its capabilities header has them.
LIMITS_HEADER = (
    "max_script_bytes=4194304 max_nodes=100000 max_tasks=10000000 max_cpus_per_task=65533"
    " max_gpus_per_node=1024 max_mem_per_node_mb=1073741824 max_time_limit_min=52560000"
    " max_job_name=200 max_path=4096"
)
INTERACTIVE = (
    "sfed: the fed partition takes batch jobs only (sbatch); use srun inside the batch script"
)


@pytest.fixture
def shim(tmp_path: Path) -> Shim:
    s = Shim(tmp_path)
    s.write_caps(caps_text())
    return s


# --- jobs that are not federated ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "script"),
    [
        ("-p gpu -N 2 --gres=gpu:4 -o out-%j.txt", SCRIPT),
        ("", SCRIPT),  # no -p: the default partition, gpu here
        ("-p gpu -N 64 --gres=fpga:1 -t infinite", SCRIPT),  # nothing is checked
        ("-p gpu", None),  # srun / salloc
        ("-p fedx", SCRIPT),
    ],
)
def test_non_fed_job_untouched(shim: Shim, args: str, script: bytes | None) -> None:
    """A job for any other partition returns SUCCESS with no field written and no message."""
    job = batch_job(args)
    call = shim.submit(job, script)
    assert (call.rc, call.raised, call.writes, call.unknown_writes) == (0, None, [], [])
    assert (call.user, call.info, call.error) == ([], [], [])
    assert call.script == script
    assert all(call.fields[k] == job.get(k) for k in call.fields if k != "pn_min_memory")


def test_no_partition_with_fed_default_is_converted(shim: Shim) -> None:
    """With fed the default partition, a job without -p is federated."""
    parts = {"fed": {"flag_default": 1}, "gpu": {"flag_default": 0}}
    call = shim.submit(batch_job("-N 2"), part_list=parts)
    assert call.rc == 0
    assert call.script is not None and call.script.startswith(HEADER[0] + b"\n" + HEADER[1])


# --- the wrapper --------------------------------------------------------------------


def test_wrapper_header_exact(shim: Shim) -> None:
    """The wrapper is the fixed header, the request line, #SFED-SCRIPT, then the script."""
    call = shim.submit(batch_job("-p fed -N 2 --gres=gpu:4 -o out-%j.txt"))
    assert call.rc == 0 and call.script is not None
    head, body = split_wrapper(call.script)
    assert head[:3] == HEADER
    assert head[3] == (
        b"#SFED-REQUEST v=1 nodes=2 ntasks=- ntasks_per_node=- gpus_per_node=4 gpus=-"
        b" cpus_per_task=- mem_per_node_mb=- mem_per_cpu_mb=- time_limit_min=-"
        b" exclusive=- job_name=train.sh requeue=- gpu_type=- constraint=-"
    )
    assert head[4] == b"#SFED-SCRIPT"
    assert body == SCRIPT


BIG_HEREDOC = (
    b"#!/bin/bash\ncat > data.csv <<'EOF'\n"
    + b"1234567,0.125,0.250,abcdefghijklmnopqrstuvwxyz\n" * (1024 * 1024 // 48)
    + b"EOF\nsrun ./train data.csv\n"
)


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("#!/bin/bash\necho 'héllo wörld ✓ 日本'\n".encode(), id="utf-8"),
        pytest.param(
            b"#!/bin/sh\n#SFED-SCRIPT\n#SFED-REQUEST v=1 nodes=99\nexit 0\n", id="markers"
        ),
        pytest.param(
            b"#!/bin/sh\n" + bytes(b for b in range(1, 256) if b != 13) + b"\n", id="bytes"
        ),
        pytest.param(b"#!/bin/sh\necho no newline at the end", id="no-final-newline"),
        pytest.param(BIG_HEREDOC, id="1MB-heredoc"),
    ],
)
def test_original_script_bytes_intact(shim: Shim, script: bytes) -> None:
    """Everything after the wrapper's 5th newline is the original script, byte for byte."""
    call = shim.submit(batch_job("-p fed"), script)
    assert call.rc == 0 and call.script is not None
    head, body = split_wrapper(call.script)
    assert head[4] == b"#SFED-SCRIPT"
    assert body == script


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("-p fed", {"nodes": "-", "ntasks": "-", "gpus_per_node": "-", "cpus_per_task": "-"}),
        ("-p fed -N 2 --gres=gpu:4", {"nodes": "2", "gpus_per_node": "4"}),
        ("-p fed -N 2 --gpus-per-node=4", {"nodes": "2", "gpus_per_node": "4"}),
        ("-p fed --gres=gpu", {"gpus_per_node": "1"}),
        ("-p fed --gres=gpu:0", {"gpus_per_node": "0"}),
        ("-p fed -G 3", {"gpus": "3", "gpus_per_node": "-"}),
        ("-p fed -N 2 -n 8 -c 2", {"nodes": "2", "ntasks": "8", "cpus_per_task": "2"}),
        ("-p fed -N 2 --ntasks-per-node=3", {"ntasks": "6", "ntasks_per_node": "3"}),
        ("-p fed --mem=16G", {"mem_per_node_mb": "16384", "mem_per_cpu_mb": "-"}),
        ("-p fed --mem=0", {"mem_per_node_mb": "0"}),
        ("-p fed --mem-per-cpu=500", {"mem_per_cpu_mb": "500", "mem_per_node_mb": "-"}),
        ("-p fed -t 1-00:00:00", {"time_limit_min": "1440"}),
        ("-p fed -t 90", {"time_limit_min": "90"}),
        ("-p fed --requeue", {"requeue": "1"}),
        ("-p fed --no-requeue", {"requeue": "0"}),
        ("-p fed -J train-v2.1_final", {"job_name": "train-v2.1_final"}),
        ("-p fed -J -", {"job_name": "%2D"}),  # "-" alone means unset
    ],
)
def test_request_line_values(shim: Shim, args: str, expected: dict[str, str]) -> None:
    """The request line carries the request as given: integers, '-' for unset."""
    call = shim.submit(batch_job(args))
    assert call.rc == 0 and call.script is not None
    fields = request_fields(call.script)
    assert {k: fields[k] for k in expected} == expected


def test_request_line_keys_and_order(shim: Shim) -> None:
    """Every key is always present, in a fixed order, v=1 first."""
    call = shim.submit(batch_job("-p fed"))
    assert call.script is not None
    assert list(request_fields(call.script)) == [
        "v", "nodes", "ntasks", "ntasks_per_node", "gpus_per_node", "gpus", "cpus_per_task",
        "mem_per_node_mb", "mem_per_cpu_mb", "time_limit_min", "exclusive", "job_name",
        "requeue", "gpu_type", "constraint",
    ]  # fmt: skip


def test_job_name_percent_encoded(shim: Shim) -> None:
    """A hostile job name is percent-encoded and cannot break the request line."""
    job = batch_job("-p fed")
    job["name"] = "x; touch /tmp/pwned $(id) 'q\"%é"
    call = shim.submit(job)
    assert call.rc == 0 and call.script is not None
    head, body = split_wrapper(call.script)
    assert request_fields(call.script)["job_name"] == (
        "x%3B%20touch%20%2Ftmp%2Fpwned%20%24%28id%29%20%27q%22%25%C3%A9"
    )
    assert head[4] == b"#SFED-SCRIPT" and body == SCRIPT
    assert call.fields["name"] == job["name"]  # the proxy job keeps the user's name


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("name", "two\nlines", "the job name"),
        ("name", "bell\a", "the job name"),
        ("work_dir", "/home/alice/\x1b[31m", "the working directory"),
        ("std_out", "out-%j\r.txt", "the output path"),
        ("std_err", "err\x7f", "the error path"),
    ],
)
def test_control_characters_refused_at_sbatch(
    shim: Shim, field: str, value: str, what: str
) -> None:
    """Text with control characters is refused at sbatch time, as sfedd would refuse it."""
    job = batch_job("-p fed")
    job[field] = value
    call = shim.submit(job)
    assert (call.rc, call.user) == (-1, [f"sfed: {what} must not contain control characters"])


@pytest.mark.parametrize(
    ("args", "field", "value", "message"),
    [
        (
            "-p fed -N 100001",
            None,
            None,
            "sfed: the node count must be at most 100000 (got 100001)",
        ),
        (
            "-p fed -N 1 -n 10000001",
            None,
            None,
            "sfed: the task count must be at most 10000000 (got 10000001)",
        ),
        (
            "-p fed --gres=gpu:1025",
            None,
            None,
            "sfed: GPUs per node must be at most 1024 (got 1025)",
        ),
        (
            "-p fed",
            "name",
            "n" * 201,
            "sfed: the job name must be at most 200 characters (got 201)",
        ),
        (
            "-p fed",
            "work_dir",
            "/" + "d" * 4096,
            "sfed: the working directory must be at most 4096 characters (got 4097)",
        ),
    ],
)
def test_published_limits_refused_at_sbatch(
    shim: Shim, args: str, field: str | None, value: str | None, message: str
) -> None:
    """The bounds in the capabilities header refuse what sfedd's API would refuse."""
    shim.write_caps(caps_text().replace("partition=fed", f"partition=fed {LIMITS_HEADER}"))
    job = batch_job(args)
    if field is not None:
        job[field] = value
    call = shim.submit(job)
    assert (call.rc, call.user) == (-1, [message])


def test_limits_unknown_without_a_header_of_them(shim: Shim) -> None:
    """A header without bounds (an older sfedd) checks none: sfedd decides later."""
    job = batch_job("-p fed")
    job["name"] = "n" * 201
    assert shim.submit(job).rc == 0


# --- the proxy job ------------------------------------------------------------------


def test_proxy_made_small(shim: Shim) -> None:
    """The proxy job gets 1 node, 1 task, 1 CPU, proxy_mem_mb and no GPUs."""
    call = shim.submit(
        batch_job("-p fed -N 2 -n 8 -c 3 --ntasks-per-node=4 --gres=gpu:4 --mem=2000")
    )
    assert call.rc == 0
    f = call.fields
    assert (f["min_nodes"], f["max_nodes"], f["num_tasks"]) == (1, 1, 1)
    assert (f["cpus_per_task"], f["min_cpus"], f["pn_min_cpus"]) == (1, 1, 1)
    assert f["ntasks_per_node"] == NO_VAL16
    assert (f["tres_per_node"], f["min_mem_per_node"], f["min_mem_per_cpu"]) == (None, 100, None)
    # Cleared with "" (22.05 stores NULL); nil would raise in slurmctld.
    assert call.written["tres_per_node"] == ""
    assert call.unknown_writes == []


def test_proxy_drops_job_gpus(shim: Shim) -> None:
    """-G and --mem-per-cpu stay in the request line, not on the proxy job."""
    call = shim.submit(batch_job("-p fed -G 2 --mem-per-cpu=500"))
    assert call.rc == 0
    f = call.fields
    assert (f["tres_per_job"], f["shared"], f["min_mem_per_node"]) == (None, NO_VAL16, 100)
    assert call.written["tres_per_job"] == ""


def test_proxy_drops_the_constraint(typed: Shim) -> None:
    """-C stays in the request line, not on the proxy job: the door's nodes lack the features."""
    call = typed.submit(batch_job("-p fed -C h100&ib"))
    assert call.rc == 0 and call.script is not None
    assert (call.fields["features"], call.written["features"]) == (None, "")
    assert request_fields(call.script)["constraint"] == "h100%26ib"


def test_proxy_keeps_user_settings(shim: Shim) -> None:
    """Output files, work dir, name, array, dependency and requeue stay as given (the time
    limit waits at the partition's longest: test_time_limit_waits_at_...)."""
    args = "-p fed -N 2 -t 60 -o out-%j.txt -e err-%j.txt -J train --array=1-3 --dependency=afterok:7 --requeue"
    job = batch_job(args)
    call = shim.submit(job)
    assert call.rc == 0
    kept = ["std_out", "std_err", "work_dir", "name", "array_inx", "dependency", "requeue", "partition"]  # fmt: skip
    assert {k: call.fields[k] for k in kept} == {k: job[k] for k in kept}
    assert not set(dict(call.writes)) & set(kept)


@pytest.mark.parametrize(
    ("comment", "expected"),
    [(None, "sfed: waiting for sfedd"), ("my experiment 42", "my experiment 42")],
)
def test_comment(shim: Shim, comment: str | None, expected: str) -> None:
    """The proxy's comment says it waits for sfedd, unless the user gave one."""
    job = batch_job("-p fed")
    if comment is not None:
        job["comment"] = comment
    assert shim.submit(job).fields["comment"] == expected


def test_already_wrapped_not_wrapped_again(shim: Shim) -> None:
    """Submitting a wrapper again leaves its script as it is and still shrinks the job."""
    first = shim.submit(batch_job("-p fed -N 2 --gres=gpu:4"))
    assert first.script is not None
    again = shim.submit(batch_job("-p fed -N 3 --gres=gpu:2"), first.script)
    assert again.rc == 0
    assert again.script == first.script
    assert "script" not in again.written
    assert (again.fields["min_nodes"], again.fields["tres_per_node"]) == (1, None)


# --- refusals -------------------------------------------------------------------------

NO_POOL = "sfed: no pool of the federation can ever run this job: "


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            "-p fed -N 6 --gres=gpu:4",
            NO_POOL + "alpha: only 2 nodes (job needs 6); beta: only 4 nodes (job needs 6)",
        ),
        (
            "-p fed --gres=gpu:16",
            NO_POOL + "alpha: only 4 GPUs per node (job needs 16); "
            "beta: only 8 GPUs per node (job needs 16)",
        ),
        (
            "-p fed -N 4 --gres=gpu:8 -c 32",
            NO_POOL + "alpha: only 2 nodes (job needs 4), only 4 GPUs per node (job needs 8), "
            "only 16 CPUs per node (job needs 32); beta: only 16 CPUs per node (job needs 32)",
        ),
        (
            "-p fed -N 1 --ntasks-per-node=8 -c 4",
            NO_POOL + "alpha: only 16 CPUs per node (job needs 32); "
            "beta: only 16 CPUs per node (job needs 32)",
        ),
        (
            "-p fed --mem=100G",
            NO_POOL + "alpha: only 64000 MB of memory per node (job needs 102400); "
            "beta: only 64000 MB of memory per node (job needs 102400)",
        ),
        (
            "-p fed -N 1 -n 16 --mem-per-cpu=8G",
            NO_POOL + "alpha: only 64000 MB of memory per node (job needs 131072); "
            "beta: only 64000 MB of memory per node (job needs 131072)",
        ),
        (
            "-p fed -G 40",
            NO_POOL + "alpha: only 8 GPUs on 2 nodes (job needs 40); "
            "beta: only 32 GPUs on 4 nodes (job needs 40)",
        ),
        (
            "-p fed -n 80",
            NO_POOL + "alpha: only 2 nodes (job needs 5); beta: only 4 nodes (job needs 5)",
        ),
    ],
)
def test_impossible_request_rejected(shim: Shim, args: str, message: str) -> None:
    """A job no pool could ever run is refused with every pool's reasons."""
    call = shim.submit(batch_job(args))
    assert (call.rc, call.user, call.writes) == (-1, [message], [])


@pytest.mark.parametrize(
    "args",
    [
        "-p fed -N 4 --gres=gpu:8",  # only beta, and beta is drained: it may resume
        "-p fed -N 2 --gres=gpu:4 -c 16 --mem=64000",  # alpha exactly
        "-p fed -n 64",  # no -N: 64 tasks pack onto beta's 4 x 16 CPUs
        "-p fed -G 32",  # 4 x 8 on beta
        "-p fed --mem=0 -N 2",  # --mem=0 is the whole node
    ],
)
def test_possible_request_accepted(shim: Shim, args: str) -> None:
    """A job that some pool (in any state) could run is accepted and converted."""
    call = shim.submit(batch_job(args))
    assert (call.rc, call.user) == (0, [])
    assert call.script is not None and call.script.startswith(HEADER[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("-p fed --gres=fpga:1", "sfed: unknown gres 'fpga': the federation schedules only gpu"),
        (
            "-p fed --gres=gpu:2,fpga:1",
            "sfed: unknown gres 'fpga': the federation schedules only gpu",
        ),
        (
            "-p fed --gres=gpu:a100:2,gpu:h100:2",
            "sfed: one GPU type per job (got a100 and h100)",
        ),
        (
            "-p fed --gres=gpu:a100:2 --gpus=h100:4",
            "sfed: one GPU type per job (got a100 and h100)",
        ),
        (
            "-p fed --gres=gpu:a100:2,gpu:2",
            "sfed: typed and untyped GPUs in one request (gpu:a100:2,gpu:2): one GPU type per job",
        ),
        (
            "-p fed --gres=gpu:a%b:1",
            "sfed: 'a%b' in gres 'gpu:a%b:1' is not a GPU type (letters, digits, _ . - only)",
        ),
    ],
)
def test_gres_rejected(shim: Shim, args: str, message: str) -> None:
    """A gres other than gpu, or GPUs of two types in one job, is refused with a clear message."""
    call = shim.submit(batch_job(args))
    assert (call.rc, call.user, call.writes) == (-1, [message], [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            "-p fed -n 2 --gpus-per-task=1",
            "sfed: --gpus-per-task is not supported on the fed partition; ask for GPUs per node"
            " with --gres=gpu:N",
        ),
        (
            "-p fed --gres=gpu:2 --cpus-per-gpu=4",
            "sfed: --cpus-per-gpu is not supported on the fed partition; ask for GPUs per node"
            " with --gres=gpu:N",
        ),
        (
            "-p fed --gres=gpu:2 --mem-per-gpu=2G",
            "sfed: --mem-per-gpu is not supported on the fed partition; ask for GPUs per node"
            " with --gres=gpu:N",
        ),
        (
            "-p fed -N 2-3",
            "sfed: a node range (-N 2-3) is not supported on the fed partition: a federated job"
            " runs on an exact node count",
        ),
        (
            "-p fed --exclusive",
            "sfed: --exclusive is not supported on the fed partition; a federated job gets the"
            " GPUs, CPUs and memory it asks per node",
        ),
        (
            "-p fed -t infinite",
            "sfed: an unlimited time limit is not accepted on the fed partition; give a limit such"
            " as --time=1-00:00:00",
        ),
        (
            "-p fed,gpu",
            "sfed: the fed partition cannot be combined with other partitions (got -p fed,gpu)",
        ),
        (
            "-p gpu,fed,x%d%s",  # a '%' reaches slurm.log_user intact
            "sfed: the fed partition cannot be combined with other partitions (got -p gpu,fed,x%d%s)",
        ),
    ],
)
def test_unsupported_option_rejected(shim: Shim, args: str, message: str) -> None:
    """Options a federated job cannot carry are refused rather than silently dropped."""
    call = shim.submit(batch_job(args))
    assert (call.rc, call.raised, call.user, call.writes) == (-1, None, [message], [])


def test_script_too_large_once_wrapped_rejected(tmp_path: Path) -> None:
    """A script that fits max_script_size only without the wrapper is refused clearly."""
    shim = Shim(tmp_path, max_script_bytes=2000)
    shim.write_caps(caps_text())
    fits = shim.submit(batch_job("-p fed"), b"#!/bin/sh\n" + b"#" * 1000 + b"\n")
    assert fits.rc == 0
    script = b"#!/bin/sh\n" + b"#" * 1900 + b"\n"
    call = shim.submit(batch_job("-p fed"), script)
    assert (call.rc, call.writes) == (-1, [])
    assert call.user == [
        "sfed: the script is too large for the fed partition: 1911 bytes, and with sfed's "
        f"{len(fits.script or b'') - 1011}-byte header it exceeds Slurm's max_script_size (2000 bytes)"
    ]


def test_interactive_job_rejected(shim: Shim) -> None:
    """srun / salloc on fed (no script) is refused."""
    call = shim.submit(batch_job("-p fed -N 2"), None)
    assert (call.rc, call.user, call.writes) == (-1, [INTERACTIVE], [])


# --- capabilities that cannot be used -----------------------------------------------


@pytest.mark.parametrize(
    ("caps", "why"),
    [
        (None, "cannot open it ("),
        ("", "it is empty"),
        (caps_text() + "pool=gamma nodes=two gpus_per_node=1\n", "line 4 does not parse"),
        (caps_text() + "garbage\n", "line 4 does not parse"),
        (caps_text().replace("version=1", "version=2"), "unsupported version 2"),
        (caps_text().replace("partition=fed", "partition=gpu"), "the file is for partition gpu"),
        (
            "pool=alpha nodes=2 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=1 state=UP\n",
            "line 1 is not the version header",
        ),
        (caps_text(generated=T0 - 301), "it is stale (generated 301 s ago, limit 300 s)"),
        ("x" * 70000, "larger than 65536 bytes"),
    ],
)
def test_unusable_capabilities_accept_and_log(shim: Shim, caps: str | None, why: str) -> None:
    """Missing, malformed or stale capabilities: the job is converted, one log_info says why."""
    if caps is None:
        shim.caps.unlink()
    else:
        shim.write_caps(caps)
    call = shim.submit(batch_job("-p fed -N 64 --gres=gpu:64"))
    assert (call.rc, call.user, call.error) == (0, [], [])
    assert len(call.info) == 1 and why in call.info[0], call.info
    assert call.info[0].startswith(
        f"sfed: capability check skipped for a job of uid 1000: capabilities file {shim.caps}: "
    )
    assert call.script is not None and call.script.startswith(HEADER[0])


def test_capabilities_directory_accept_and_log(shim: Shim) -> None:
    """A capabilities path that is a directory is unusable, not an error."""
    shim.caps.unlink()
    shim.caps.mkdir()
    call = shim.submit(batch_job("-p fed -N 64"))
    assert (call.rc, call.error, len(call.info)) == (0, [], 1)
    assert "cannot read it" in call.info[0]


def test_capabilities_several_lines_per_pool(shim: Shim) -> None:
    """sfedd writes one line per pool and GPU size; any line that fits admits the job."""
    shim.write_caps(
        f"version=1 generated={T0} partition=fed\n"
        "pool=alpha nodes=1 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=UP\n"
        "pool=alpha nodes=3 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP\n"
    )
    assert shim.submit(batch_job("-p fed -N 1 --gres=gpu:8")).rc == 0
    assert shim.submit(batch_job("-p fed -N 3 --gres=gpu:4")).rc == 0
    call = shim.submit(batch_job("-p fed -N 2 --gres=gpu:8"))
    assert call.user == [
        NO_POOL + "alpha: only 1 nodes (job needs 2); alpha: only 4 GPUs per node (job needs 8)"
    ]


def test_capabilities_comments_and_blank_lines(shim: Shim) -> None:
    """Comments, blank lines and unknown keys are allowed; the check still applies."""
    shim.write_caps(
        f"# written by sfedd\n\nversion=1 generated={T0} partition=fed future=yes\n"
        "# pools\npool=alpha nodes=2 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP zone=a\n"
    )
    call = shim.submit(batch_job("-p fed -N 3"))
    assert (call.rc, call.user) == (-1, [NO_POOL + "alpha: only 2 nodes (job needs 3)"])


def test_capabilities_without_pools_accept_and_log(shim: Shim) -> None:
    """A file with no pool line (sfedd knows no nodes yet) skips the check."""
    shim.write_caps(f"version=1 generated={T0} partition=fed\n")
    call = shim.submit(batch_job("-p fed -N 64"))
    assert (call.rc, call.user, len(call.info)) == (0, [], 1)
    assert call.info[0].endswith(": it lists no pools")


def test_capabilities_reread_after_reload_interval(shim: Shim) -> None:
    """The file is read at most once per capabilities_reload_s; a change shows after that."""
    smaller = caps_text(generated=T0 + 4).replace("pool=beta nodes=4", "pool=beta nodes=2")
    step = {
        "call": "submit",
        "job": batch_job("-p fed -N 3"),
        "part_list": {"fed": {}},
        "script": SCRIPT,
    }
    calls = shim.run(
        [
            {**step, "now": T0},  # beta has 4 nodes: accepted
            {"write": [str(shim.caps), smaller]},
            {**step, "now": T0 + 4},  # the file read at T0 still counts
            {**step, "now": T0 + 5},  # re-read: no pool has 3 nodes any more
        ]
    )
    assert [c.rc for c in calls] == [0, 0, -1]
    assert calls[2].user == [
        NO_POOL + "alpha: only 2 nodes (job needs 3); beta: only 2 nodes (job needs 3)"
    ]


# --- robustness ---------------------------------------------------------------------


@pytest.mark.parametrize("script", [42, {"a": 1}, True])
def test_internal_error_on_fed_job_does_not_raise(shim: Shim, script: object) -> None:
    """A script of a wrong type on fed: no error escapes; the job is refused and logged."""
    step = {
        "call": "submit",
        "now": T0,
        "job": batch_job("-p fed"),
        "script": script,
        "part_list": {"fed": {}},
    }
    [call] = shim.run([step])
    assert (call.raised, call.rc) == (None, -1)
    assert call.user == [
        "sfed: internal error in the submit shim; the job was not submitted (ask the admins)"
    ]
    assert len(call.error) == 1 and "job_desc.script is a" in call.error[0]


def test_internal_error_on_other_job_accepts_untouched(shim: Shim) -> None:
    """A getter failing before the partition is known: the job is accepted untouched."""
    call = shim.submit(batch_job("-p gpu"), raise_on="partition")
    assert (call.raised, call.rc, call.writes, call.user) == (None, 0, [], [])
    assert len(call.error) == 1


def test_internal_error_reading_fed_request_refuses(shim: Shim) -> None:
    """A getter failing on a fed job's request: refused, never accepted unconverted."""
    call = shim.submit(batch_job("-p fed --gres=gpu:1"), raise_on="tres_per_node")
    assert (call.raised, call.rc, call.writes) == (None, -1, [])
    assert call.user and call.user[0].startswith("sfed: internal error")


def test_misconfigured_proxy_command_refuses_fed_jobs(tmp_path: Path) -> None:
    """A proxy_command that is not a plain absolute path is never written into a script."""
    shim = Shim(tmp_path, proxy_command="sfed-proxy; rm -rf /")
    shim.write_caps(caps_text())
    fed = shim.submit(batch_job("-p fed"))
    assert (fed.rc, fed.writes) == (-1, [])
    assert fed.user == [
        "sfed: the submit shim is misconfigured; the job was not submitted (ask the admins)"
    ]
    assert shim.submit(batch_job("-p gpu")).rc == 0


def test_config_lines_are_templatable() -> None:
    """Each CONFIG value sits alone on one `key = value,` line, for the lab's templating."""
    text = PLUGIN.read_text()
    for key, value in [
        ("capabilities_path", '"/run/sfed/capabilities"'),
        ("fed_partition", '"fed"'),
        ("stale_after_s", "300"),
        ("proxy_mem_mb", "100"),
        ("capabilities_reload_s", "5"),
        ("max_script_bytes", "4194304"),
    ]:
        assert re.findall(rf"^\s*{key} = (.*),$", text, re.M) == [value]
    assert len(re.findall(r"^\s*proxy_command = \"/[^\"]+\",$", text, re.M)) == 1


def test_config_values_applied(tmp_path: Path) -> None:
    """Another partition name and proxy memory from CONFIG take effect."""
    shim = Shim(tmp_path, fed_partition="federation", proxy_mem_mb=256)
    shim.write_caps(caps_text().replace("partition=fed", "partition=federation"))
    call = shim.submit(batch_job("-p federation -N 2"), part_list={"federation": {}})
    assert (call.rc, call.fields["min_mem_per_node"]) == (0, 256)
    assert shim.submit(batch_job("-p fed -N 2")).writes == []


# --- slurm_job_modify ---------------------------------------------------------------


def _modify(**changes: object) -> dict:
    """An update message as 22.05.8 gives it to job_modify: unchanged fields unset."""
    job = {
        "min_nodes": NO_VAL, "max_nodes": NO_VAL, "num_tasks": NO_VAL, "min_cpus": NO_VAL,
        "ntasks_per_node": NO_VAL16, "cpus_per_task": NO_VAL16, "pn_min_cpus": NO_VAL16,
        "time_limit": NO_VAL,
    }  # fmt: skip
    job.update(changes)
    return job


@pytest.mark.parametrize(
    ("partition", "changes", "rc"),
    [
        ("fed", {"comment": "sfed: running on alpha"}, 0),
        ("fed", {"time_limit": 30}, 0),
        ("fed", {"min_nodes": 3}, ACCESS_DENIED),
        ("fed", {"tres_per_node": "gres:gpu:8"}, ACCESS_DENIED),
        ("fed", {"min_mem_per_node": 1000}, ACCESS_DENIED),
        ("fed", {"features": "a100"}, ACCESS_DENIED),
        ("fed", {"partition": "gpu"}, ACCESS_DENIED),
        ("gpu", {"partition": "fed"}, ACCESS_DENIED),
        ("gpu", {"min_nodes": 3, "partition": "gpu"}, 0),
        ("gpu", {"time_limit": INFINITE}, 0),
    ],
)
def test_modify(shim: Shim, partition: str, changes: dict, rc: int) -> None:
    """Size changes on fed jobs and moves into or out of fed are refused; the rest passes."""
    step = {"call": "modify", "job": _modify(**changes), "job_rec": {"partition": partition}}
    [call] = shim.run([step])
    assert (call.raised, call.rc, call.writes) == (None, rc, [])
    assert len(call.info) == (1 if rc else 0)


# --- GPU types and node features -----------------------------------------------------------

# The lab's pools as sfedd writes them: alpha's GPUs are a100 (feature a100), beta's h100
# (features h100 and ib); a line with gpu_type= describes one kind of node of its pool.
TYPED_CAPS = (
    f"version=1 generated={T0} partition=fed\n"
    "pool=alpha nodes=2 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP\n"
    "pool=alpha nodes=2 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP"
    " gpu_type=a100 features=a100\n"
    "pool=beta nodes=4 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=DRAINED\n"
    "pool=beta nodes=4 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=DRAINED"
    " gpu_type=h100 features=h100,ib\n"
)


@pytest.fixture
def typed(tmp_path: Path) -> Shim:
    s = Shim(tmp_path)
    s.write_caps(TYPED_CAPS)
    return s


@pytest.mark.parametrize(
    "args",
    [
        pytest.param("-p fed --gres=gpu:a100:4", id="typed gres"),
        pytest.param("-p fed -N 4 --gpus-per-node=h100:8", id="typed gpus-per-node"),
        pytest.param("-p fed --gpus=h100:16", id="typed gpus for the job"),
        pytest.param("-p fed -C a100", id="one feature"),
        pytest.param("-p fed -C h100&ib", id="all features"),
        pytest.param("-p fed -N 2 -C a100|ib", id="any feature"),
        pytest.param("-p fed --gres=gpu:h100:2 -C ib", id="type and feature"),
        pytest.param("-p fed -N 4 --gres=gpu:8 -C ib", id="untyped GPUs with a feature"),
        pytest.param("-p fed -N 4 --gres=gpu:4", id="untyped GPUs fit typed ones"),
    ],
)
def test_typed_request_a_pool_has_is_accepted(typed: Shim, args: str) -> None:
    """A GPU type or features some pool's nodes have (in any state) are accepted."""
    call = typed.submit(batch_job(args))
    assert (call.rc, call.user) == (0, [])
    assert call.script is not None and call.script.startswith(HEADER[0])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            "-p fed --gres=gpu:a100:4", {"gpus_per_node": "4", "gpu_type": "a100"}, id="gres"
        ),
        pytest.param(
            "-p fed --gres=gpu:a100",
            {"gpus_per_node": "1", "gpu_type": "a100"},
            id="gres type alone",
        ),
        pytest.param(
            "-p fed --gpus-per-node=h100:8",
            {"gpus_per_node": "8", "gpu_type": "h100"},
            id="gpus-per-node",
        ),
        pytest.param(
            "-p fed --gpus=h100:16",
            {"gpus": "16", "gpus_per_node": "-", "gpu_type": "h100"},
            id="gpus",
        ),
        pytest.param("-p fed -C a100", {"constraint": "a100", "gpu_type": "-"}, id="one feature"),
        pytest.param("-p fed --constraint=h100&ib", {"constraint": "h100%26ib"}, id="all, encoded"),
        pytest.param("-p fed -C a100|h100", {"constraint": "a100%7Ch100"}, id="any, encoded"),
    ],
)
def test_request_line_carries_gpu_type_and_constraint(
    typed: Shim, args: str, expected: dict[str, str]
) -> None:
    """The GPU type and the constraint travel in the request line, percent-encoded."""
    call = typed.submit(batch_job(args))
    assert call.rc == 0 and call.script is not None
    fields = request_fields(call.script)
    assert {k: fields[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            "-p fed --gres=gpu:v100:1",
            "alpha: no node with GPU type v100; beta: no node with GPU type v100",
            id="type no pool has",
        ),
        pytest.param(
            "-p fed -C a100&ib",
            "alpha: no node with features a100&ib; beta: no node with features a100&ib",
            id="features no node has together",
        ),
        pytest.param(
            "-p fed --gres=gpu:a100:1 -C ib",
            "alpha: no node with features ib; beta: no node with GPU type a100",
            id="type here, feature there",
        ),
        pytest.param(
            "-p fed --gres=gpu:a100:8",
            "alpha: only 4 GPUs per node with GPU type a100 (job needs 8); "
            "beta: no node with GPU type a100",
            id="type too small",
        ),
        pytest.param(
            "-p fed -N 3 --gres=gpu:a100:1",
            "alpha: only 2 nodes with GPU type a100 (job needs 3); beta: no node with GPU type a100",
            id="too few nodes of the type",
        ),
    ],
)
def test_typed_request_no_pool_has_is_rejected(typed: Shim, args: str, message: str) -> None:
    """A GPU type or features no pool's nodes have is refused, naming what each pool lacks."""
    call = typed.submit(batch_job(args))
    assert (call.rc, call.user, call.writes) == (-1, [NO_POOL + message], [])


def test_typed_request_sums_the_kinds_of_node_of_a_pool(tmp_path: Path) -> None:
    """Nodes of one type in two feature sets count together for a job of that type."""
    shim = Shim(tmp_path)
    shim.write_caps(
        f"version=1 generated={T0} partition=fed\n"
        "pool=gamma nodes=3 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=UP\n"
        "pool=gamma nodes=2 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=UP"
        " gpu_type=h100 features=ib\n"
        "pool=gamma nodes=1 gpus_per_node=8 cpus_per_node=16 mem_mb_per_node=64000 state=UP"
        " gpu_type=h100 features=-\n"
    )
    assert shim.submit(batch_job("-p fed -N 3 --gres=gpu:h100:8")).rc == 0
    call = shim.submit(batch_job("-p fed -N 3 --gres=gpu:h100:8 -C ib"))
    assert call.user == [
        NO_POOL + "gamma: only 2 nodes with GPU type h100 and features ib (job needs 3)"
    ]


def test_untyped_pool_has_no_gpu_type(shim: Shim) -> None:
    """Pools whose file lines name no GPU type (untyped GPUs, no features) have none."""
    call = shim.submit(batch_job("-p fed --gres=gpu:a100:1"))
    assert call.user == [
        NO_POOL + "alpha: no node with GPU type a100; beta: no node with GPU type a100"
    ]


@pytest.mark.parametrize(
    ("constraint", "form"),
    [
        pytest.param("[a100|h100]", "matching OR in brackets ([a|b])", id="brackets"),
        pytest.param("a100*2", "feature counts (a*2)", id="count"),
        pytest.param("(a|b)&c", "parentheses", id="parentheses"),
        pytest.param("!a100", "negation (!a)", id="negation"),
        pytest.param("a,b", "commas (use & for all of several features)", id="comma"),
    ],
)
def test_constraint_forms_refused_by_name(shim: Shim, constraint: str, form: str) -> None:
    """-C forms the federation cannot keep are refused at sbatch time, naming the form."""
    call = shim.submit(batch_job(f"-p fed -C {constraint}"))
    assert call.user == [
        f"sfed: --constraint {form} is not supported in '{constraint}': give one feature, a&b"
        " (all) or a|b (any)"
    ]


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        pytest.param(
            "a&b|c",
            "sfed: --constraint & mixed with | is not supported in 'a&b|c': use one operator, a&b"
            " or a|b",
            id="mixed operators",
        ),
        pytest.param(
            "a&&b",
            "sfed: --constraint an empty feature name in 'a&&b': names are letters, digits and"
            " _ . : + - only",
            id="empty name",
        ),
    ],
)
def test_malformed_constraint_refused(shim: Shim, constraint: str, message: str) -> None:
    """A constraint with mixed operators or an empty name is refused with the API's words."""
    assert shim.submit(batch_job(f"-p fed -C {constraint}")).user == [message]


def test_constraint_longer_than_the_published_bound_refused(shim: Shim) -> None:
    """max_constraint from the capabilities header bounds -C, as the API does."""
    shim.write_caps(caps_text().replace("partition=fed", "partition=fed max_constraint=10"))
    call = shim.submit(batch_job("-p fed -C abcdef&ghijkl"))
    assert call.user == ["sfed: --constraint must be at most 10 characters (got 13)"]


# The same pools as sfedd sees them, with a pool of mixed nodes: its capabilities file, as
# sfedd renders it, must let the shim refuse exactly what sfedd's never_fits refuses.
MIXED_POOLS = [
    PoolSnapshot("alpha", PoolState.UP, nodes.pool_nodes("alpha", 2, gpus=4, cpus=16, gpu_type="a100", features=["a100"])),
    PoolSnapshot("beta", PoolState.DRAINED, nodes.pool_nodes("beta", 4, gpus=8, cpus=16, gpu_type="h100", features=["h100", "ib"])),
    PoolSnapshot(
        "gamma",
        PoolState.UP,
        (
            nodes.node("gamma-1", gpus=8, cpus=16, gpu_type="h100", features=["ib"]),
            nodes.node("gamma-2", gpus=8, cpus=16, gpu_type="h100", features=["nvme"]),
            nodes.node("gamma-3", gpus=2, cpus=16),
        ),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        pytest.param("-N 6 --gres=gpu:h100:8", {"nodes": 6, "gpus": 8, "gpu_type": "h100"}, id="6 h100 nodes"),
        pytest.param("-N 5 --gres=gpu:h100:8", {"nodes": 5, "gpus": 8, "gpu_type": "h100"}, id="5 h100 nodes"),
        pytest.param("-N 2 --gres=gpu:h100:8 -C nvme|ib", {"nodes": 2, "gpus": 8, "gpu_type": "h100", "constraint": "nvme|ib"}, id="gamma, either"),
        pytest.param("-N 2 --gres=gpu:h100:8 -C nvme", {"nodes": 2, "gpus": 8, "gpu_type": "h100", "constraint": "nvme"}, id="one nvme node"),
        pytest.param("-N 3 --gres=gpu:2", {"nodes": 3, "gpus": 2}, id="gamma, untyped over kinds"),
        pytest.param("-N 3 --gres=gpu:2 -C ib|nvme", {"nodes": 3, "gpus": 2, "constraint": "ib|nvme"}, id="3 nodes with either"),
        pytest.param("--gres=gpu:a100:8", {"gpus": 8, "gpu_type": "a100"}, id="a100 too small"),
        pytest.param("-C a100&ib", {"constraint": "a100&ib"}, id="features never together"),
        pytest.param("--gres=gpu:v100:1", {"gpus": 1, "gpu_type": "v100"}, id="type nowhere"),
    ],
)  # fmt: skip
def test_shim_refuses_what_sfedd_refuses(tmp_path: Path, args: str, fields: dict[str, Any]) -> None:
    """On sfedd's own capabilities file the shim accepts a typed job iff never_fits does."""
    shim = Shim(tmp_path)
    shim.write_caps(render_capabilities(MIXED_POOLS, "fed", datetime.fromtimestamp(T0, UTC)))
    call = shim.submit(batch_job(f"-p fed {args}"))
    refused = never_fits(jobs.request(**fields), MIXED_POOLS, Policy())
    assert (call.rc == 0, call.user == []) == (refused is None, refused is None)


@pytest.mark.parametrize(
    ("parts", "limit"),
    [
        ({"fed": {"flag_default": 0}}, INFINITE),
        ({"fed": {"flag_default": 0, "max_time": 4320}}, 4320),
    ],
    ids=["unlimited-partition", "partition-max"],
)
def test_time_limit_waits_at_the_partition_s_longest(
    shim: Shim, parts: dict[str, dict[str, int]], limit: int
) -> None:
    """A fed job's own limit travels in the request; the door job gets the longest the fed
    partition allows until the proxy starts its clock (when the remote job runs)."""
    call = shim.submit(batch_job("-p fed -t 90"), part_list=parts)
    assert call.rc == 0 and call.script is not None
    assert request_fields(call.script)["time_limit_min"] == "90"
    assert call.fields["time_limit"] == limit


def test_no_time_limit_is_left_as_it_is(shim: Shim) -> None:
    """A fed job without --time keeps the partition's default, as before."""
    call = shim.submit(batch_job("-p fed"))
    assert ("time_limit", INFINITE) not in call.writes
