"""Tests of scheduler.service.validate: every bad JobSpec field is named."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.service import validate
from scheduler.service.validate import (
    MAX_SCRIPT_BYTES,
    InvalidArgument,
    front_door_id,
    job_request,
)

SCRIPT = b"#!/bin/bash\nsrun hostname\n"


def spec(**fields: Any) -> pb.JobSpec:
    """A valid JobSpec with fields overridden."""
    values: dict[str, Any] = {"script": SCRIPT, "nodes": 2, "gres": "gpu:4"}
    values.update(fields)
    return pb.JobSpec(**values)


def test_valid_spec_converts() -> None:
    """A valid spec becomes a JobRequest with sbatch's defaults filled in."""
    request = job_request(spec(environment={"A": "1"}, time_limit_min=60))
    assert (request.nodes, request.gpus_per_node, request.cpus_per_task) == (2, 4, 1)
    assert request.job_name == "sbatch" and request.time_limit_min == 60
    assert request.environment == {"A": "1"} and request.script == SCRIPT


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"script": b""}, "spec.script: required"),
        ({"script": b"echo hi\n"}, "spec.script: the first line must start with #!"),
        ({"script": b"#!/bin/sh\n\0"}, "spec.script: contains a NUL byte"),
        ({"script": b"#!" + b"x" * MAX_SCRIPT_BYTES}, "spec.script: larger than"),
        ({"ntasks": 1}, "spec.ntasks: 1 tasks cannot fill 2 nodes"),
        ({"gres": "fpga:1"}, "spec.gres: unknown gres 'fpga'"),
        ({"time_limit_min": 0}, "spec.time_limit_min: must be from 1 to 52560000 minutes (got 0)"),
        ({"mem_per_node_mb": 0}, "spec.mem_per_node_mb: must be from 1 to 1073741824 MB (got 0)"),
        ({"partition": "a b"}, "spec.partition: not a valid partition name"),
        ({"chdir": "relative/dir"}, "spec.chdir: must be an absolute path"),
        ({"job_name": "two\nlines"}, "spec.job_name: must not contain control characters"),
        (
            {"environment": {"1BAD": "x"}},
            "spec.environment: not a variable name (at most 256): '1BAD'",
        ),
        ({"nodes": 100001}, "spec.nodes: must be from 1 to 100000 (got 100001)"),
        ({"separate_error": True, "error": "/tmp/e"}, "spec.separate_error: give either"),
        (
            {"time_limit_min": 4294967295},
            "spec.time_limit_min: must be from 1 to 52560000 minutes (got 4294967295)",
        ),
        ({"cpus_per_task": 4294967295}, "spec.cpus_per_task: must be from 1 to 65533"),
        ({"ntasks": 4294967295}, "spec.ntasks: must be from 1 to 10000000"),
        ({"gres": "gpu:99999"}, "spec.gres: must be from 0 to 1024 GPUs per node"),
        ({"priority": -2_000_000_000}, "spec.priority: must be from -1000000 to 1000000"),
        ({"job_name": "x" * 201}, "spec.job_name: longer than 200 characters"),
        ({"chdir": "/" + "d" * 4096}, "spec.chdir: longer than 4096 characters"),
        (
            {"environment": {"BIG": "x" * 131068}},
            "spec.environment[BIG]: BIG=value is 131072 bytes; at most 131071 can reach a process",
        ),
        (
            {"environment": {f"V{i}": "x" * 100_000 for i in range(11)}},
            "spec.environment: 1100045 bytes in all; at most 1048576",
        ),
        (
            {"environment": {f"V{i}": "" for i in range(4097)}},
            "spec.environment: more than 4096 variables (4097)",
        ),
        ({"environment": {"N" * 257: "x"}}, "spec.environment: not a variable name (at most 256)"),
    ],
    ids=[
        "empty-script",
        "no-shebang",
        "nul",
        "too-big",
        "ntasks",
        "gres",
        "time",
        "mem",
        "partition",
        "chdir",
        "name-newline",
        "env-name",
        "nodes",
        "error-twice",
        "time-infinite",
        "cpus-wrapped",
        "ntasks-wrapped",
        "gpus-huge",
        "priority",
        "name-long",
        "path-long",
        "env-entry",
        "env-total",
        "env-count",
        "env-name-long",
    ],
)
def test_bad_field_is_named(fields: dict[str, Any], message: str) -> None:
    """Each malformed field raises InvalidArgument naming that field."""
    with pytest.raises(InvalidArgument) as info:
        job_request(spec(**fields))
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("fields", "gpus", "gpu_type"),
    [
        pytest.param({"gres": "gpu:a100:4"}, 4, "a100", id="typed gres"),
        pytest.param({"gres": "gpu:a100"}, 1, "a100", id="type alone is one GPU"),
        pytest.param({"gres": "gpu:4", "gpu_type": "a100"}, 4, "a100", id="type apart"),
        pytest.param({"gres": "gpu:a100:4", "gpu_type": "a100"}, 4, "a100", id="both, equal"),
        pytest.param({"gres": "gpu:h100:2,gpu:h100:2"}, 4, "h100", id="same type twice"),
        pytest.param({"gres": "gpu:a100_3g.20gb:1"}, 1, "a100_3g.20gb", id="MIG-style name"),
        pytest.param({"gres": "gpu:4"}, 4, None, id="untyped"),
    ],
)
def test_gpu_types_are_read(fields: dict[str, Any], gpus: int, gpu_type: str | None) -> None:
    """Typed gres, or the type given apart, becomes GPUs per node and the GPU type."""
    request = job_request(spec(**fields))
    assert (request.gpus_per_node, request.gpu_type) == (gpus, gpu_type)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"gres": "gpu:a100:2,gpu:v100:2"},
            "spec.gres: one GPU type per job (got a100, v100)",
            id="two types",
        ),
        pytest.param(
            {"gres": "gpu:a100:4", "gpu_type": "h100"},
            "spec.gres: one GPU type per job (got a100, h100)",
            id="gres and type apart differ",
        ),
        pytest.param(
            {"gres": "gpu:a100:2,gpu:2"},
            "spec.gres: typed and untyped GPUs in one request",
            id="typed and untyped",
        ),
        pytest.param(
            {"gres": "gpu:a100:x"}, "spec.gres: invalid gres count in 'gpu:a100:x'", id="count"
        ),
        pytest.param({"gres": "gpu:a b:1"}, "spec.gres: not a GPU type: 'a b'", id="type name"),
        pytest.param(
            {"gres": "gpu:" + "t" * 65 + ":1"}, "spec.gres: not a GPU type", id="type too long"
        ),
        pytest.param(
            {"gres": "", "gpu_type": "a100"},
            "spec.gres: GPU type a100 without GPUs: ask gpu:a100:N",
            id="type without GPUs",
        ),
        pytest.param(
            {"constraint": "[a100|h100]"},
            "spec.constraint: matching OR in brackets ([a|b]) is not supported",
            id="constraint brackets",
        ),
        pytest.param(
            {"constraint": "a100*2"},
            "spec.constraint: feature counts (a*2) is not supported",
            id="constraint count",
        ),
        pytest.param(
            {"constraint": "a\nb"},
            "spec.constraint: 'a\\nb' is not a feature name",
            id="constraint control",
        ),
        pytest.param(
            {"constraint": "a&" * 600 + "b"},
            "spec.constraint: longer than 1024 characters",
            id="constraint long",
        ),
    ],
)
def test_bad_gpu_type_or_constraint_is_named(fields: dict[str, Any], message: str) -> None:
    """A GPU type or constraint the federation cannot keep is refused, naming the field."""
    with pytest.raises(InvalidArgument) as info:
        job_request(spec(**fields))
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("text", ["ib", "a100&ib", "a100|h100"])
def test_constraint_forms_kept_as_written(text: str) -> None:
    """One feature, a&b and a|b are accepted and kept as written."""
    assert job_request(spec(constraint=text)).constraint == text


def test_shell_metacharacters_are_kept_verbatim() -> None:
    """A job name with shell metacharacters is data, kept as typed."""
    assert job_request(spec(job_name="x; touch /tmp/pwned")).job_name == "x; touch /tmp/pwned"


@pytest.mark.parametrize(
    ("text", "prefix"),
    [("door/41", "door/41/"), ("door:41", "door/41/"), ("front.a-1/7", "front.a-1/7/")],
)
def test_front_door_ids(text: str, prefix: str) -> None:
    """<cluster>/<id> and <cluster>:<id> name a front-door job."""
    assert front_door_id(text) == prefix


@pytest.mark.parametrize("text", ["41", "door/", "door/4a", "a b/1", "door/1/2"])
def test_bad_front_door_ids(text: str) -> None:
    """Anything else is refused with the expected form named."""
    with pytest.raises(InvalidArgument, match="expected <cluster>/<job id>"):
        front_door_id(text)


@pytest.mark.parametrize(
    ("given", "name"), [("USR1", "USR1"), ("sigusr2", "USR2"), ("10", "USR1"), (" TERM ", "TERM")]
)
def test_signal_names(given: str, name: str) -> None:
    """Signals are taken by name, with or without SIG, or by number."""
    assert validate.signal_name(given) == name


@pytest.mark.parametrize("given", ["", "FOO", "99", "1" * 50, "USR1;x"])
def test_unknown_signals_are_refused(given: str) -> None:
    """Anything else is INVALID_ARGUMENT naming the signals that are sent."""
    with pytest.raises(InvalidArgument, match="signal: not a signal sfed sends"):
        validate.signal_name(given)
