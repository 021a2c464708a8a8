"""Tests of scheduler.proxy.wrapper and the spec the proxy builds from it."""

from __future__ import annotations

import pytest

from scheduler.proxy.main import REMOTE_TIME_MARGIN_MIN, build_spec, client_key, separate_streams
from scheduler.proxy.wrapper import WrapperError, parse_wrapper
from scheduler.service import validate

SCRIPT = b"#!/bin/bash\n#SBATCH -N 2\necho caf\xc3\xa9 \xff\n#SFED-SCRIPT\nexit 3\n"


def wrapper(
    request: str = "v=1 nodes=2 ntasks=- gpus_per_node=4 cpus_per_task=- mem_per_node_mb=- "
    "time_limit_min=60 job_name=x%3B%20touch%20%2Ftmp%2Fpwned requeue=0",
    script: bytes = SCRIPT,
) -> bytes:
    """A wrapper as the shim writes it."""
    return (
        b'#!/bin/sh\n# sfed proxy job\nexec /opt/sfed/bin/sfed-proxy --wrapper "$0"\n'
        + b"#SFED-REQUEST "
        + request.encode()
        + b"\n#SFED-SCRIPT\n"
        + script
    )


def test_script_is_returned_byte_for_byte() -> None:
    """The script after the marker comes back unchanged, even with a marker line inside."""
    assert parse_wrapper(wrapper()).script == SCRIPT


def test_request_fields_and_percent_decoding() -> None:
    """Numbers parse, '-' is unset, the job name is percent-decoded."""
    parsed = parse_wrapper(wrapper())
    assert (parsed.number("nodes"), parsed.number("ntasks"), parsed.number("time_limit_min")) == (
        2,
        None,
        60,
    )
    assert parsed.text("job_name") == "x; touch /tmp/pwned"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"#!/bin/bash\necho hi\n", "no #SFED-REQUEST line"),
        (b"#!/bin/sh\n#SFED-REQUEST v=1 nodes=1\necho\n", "no #SFED-SCRIPT line"),
        (b"#!/bin/sh\n#SFED-REQUEST v=2 nodes=1\n#SFED-SCRIPT\n", "unsupported wrapper version"),
        (b"#!/bin/sh\n#SFED-REQUEST v=1 nodes\n#SFED-SCRIPT\n", "malformed #SFED-REQUEST item"),
    ],
    ids=["plain-script", "no-marker", "version", "malformed"],
)
def test_bad_wrappers_are_refused(data: bytes, message: str) -> None:
    """Files that are not wrappers of this version are refused with the reason."""
    with pytest.raises(WrapperError, match=message):
        parse_wrapper(data)


def test_spec_carries_the_original_request() -> None:
    """The spec has the original size, the script, and the environment sbatch exported, less
    the front-door job's own Slurm variables (the array task's stay)."""
    env = {"SLURM_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "3", "HOME": "/root", "LR": "0.1"}
    spec = build_spec(parse_wrapper(wrapper()), env, "/home/u")
    assert (spec.nodes, spec.gres, spec.chdir) == (2, "gpu:4", "/home/u")
    assert spec.time_limit_min == 60 + REMOTE_TIME_MARGIN_MIN  # the front door's limit decides
    assert spec.script == SCRIPT and spec.job_name == "x; touch /tmp/pwned"
    assert dict(spec.environment) == {
        "SLURM_ARRAY_TASK_ID": "3",
        "HOME": "/root",
        "LR": "0.1",
        "SFED_FRONT_DOOR_JOB_ID": "41",
    }


def test_spec_submit_dir_is_the_front_door_s() -> None:
    """SLURM_SUBMIT_DIR of the front-door job becomes the job's submit directory."""
    env = {"SLURM_JOB_ID": "41", "SLURM_SUBMIT_DIR": "/home/u/exp"}
    assert build_spec(parse_wrapper(wrapper()), env, "/home/u/run").submit_dir == "/home/u/exp"


def test_ntasks_per_node_sets_total_tasks() -> None:
    """ntasks-per-node becomes the total task count across the nodes."""
    parsed = parse_wrapper(wrapper("v=1 nodes=2 ntasks_per_node=4 job_name=j"))
    assert build_spec(parsed, {}, "/").ntasks == 8


def test_client_key_includes_the_restart_count() -> None:
    """A requeued front-door job is a new federation job; a retried proxy is the same one."""
    env = {"SLURM_CLUSTER_NAME": "door", "SLURM_JOB_ID": "41"}
    assert client_key(env) == "door/41/0"
    assert client_key({**env, "SLURM_RESTART_COUNT": "2"}) == "door/41/2"


def test_job_gpus_spread_over_nodes() -> None:
    """-G 6 on 2 nodes asks 3 GPUs per node (rounded up when uneven)."""
    parsed = parse_wrapper(wrapper("v=1 nodes=2 gpus_per_node=- gpus=6 job_name=j"))
    assert build_spec(parsed, {}, "/").gres == "gpu:3"
    uneven = parse_wrapper(wrapper("v=1 nodes=2 gpus_per_node=- gpus=3 job_name=j"))
    assert build_spec(uneven, {}, "/").gres == "gpu:2"


def test_gpu_type_and_constraint_reach_the_spec() -> None:
    """The request line's GPU type and percent-encoded constraint become the spec's."""
    parsed = parse_wrapper(
        wrapper("v=1 nodes=2 gpus_per_node=- gpus=16 gpu_type=h100 constraint=h100%26ib job_name=j")
    )
    spec = build_spec(parsed, {}, "/")
    assert (spec.gres, spec.gpu_type, spec.constraint) == ("gpu:8", "h100", "h100&ib")
    assert validate.job_request(spec).gpu_type == "h100"


def test_no_gpu_type_or_constraint_when_not_asked() -> None:
    """'-' (and a request line of an older shim, without the keys) asks neither."""
    for line in ("v=1 nodes=1 gpu_type=- constraint=- job_name=j", "v=1 nodes=1 job_name=j"):
        spec = build_spec(parse_wrapper(wrapper(line)), {}, "/")
        assert (spec.gpu_type, spec.constraint) == ("", "")


def test_memory_per_cpu_becomes_memory_per_node() -> None:
    """--mem-per-cpu=500 with 4 tasks of 2 CPUs on 2 nodes is 2000 MB per node."""
    parsed = parse_wrapper(
        wrapper(
            "v=1 nodes=2 ntasks=4 cpus_per_task=2 mem_per_node_mb=- mem_per_cpu_mb=500 job_name=j"
        )
    )
    assert build_spec(parsed, {}, "/").mem_per_node_mb == 2000


@pytest.mark.parametrize(
    ("stdout", "stderr", "separate"),
    [
        ("/w/out-7.txt", "/w/out-7.txt", False),
        ("/w/out-7.txt", "/w/err-7.txt", True),
        ("/w/out-7.txt", "", False),
    ],
    ids=["joined", "apart", "no-stderr-line"],
)
def test_separate_streams_from_scontrol(stdout: str, stderr: str, separate: bool) -> None:
    """The proxy splits streams only when its own job has an -e file apart from -o."""
    shown = f"JobId=7 JobName=t\n   StdErr={stderr}\n   StdIn=/dev/null\n   StdOut={stdout}\n"
    if not stderr:
        shown = shown.replace("   StdErr=\n", "")
    assert separate_streams(shown) is separate
