"""Every JobRequest field survives the proto, the API and the store, on both backends.

The filled request is generated from the dataclass's own fields: a field added to JobRequest
without a value here, or lost by the proto, the validation or the store, fails these tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from scheduler.domain import JobRequest
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.service import convert, validate
from scheduler.spec import from_spec, to_spec
from scheduler.store import Store
from tests.fixtures.jobs import T0
from tests.service.conftest import Api

# One value per field, each different from the field's default and valid for the API.
FILLED: dict[str, Any] = {
    "script": b"#!/bin/bash\n#SBATCH -N 2\nsrun python train.py --lr $LR\n\xff\xfe bytes\n",
    "job_name": "train-resnet",
    "nodes": 2,
    "ntasks": 16,
    "gpus_per_node": 4,
    "cpus_per_task": 6,
    "mem_per_node_mb": 128_000,
    "time_limit_min": 90,
    "partition": "fed",
    "chdir": "/shared/runs/7",
    "output": "out-%j.txt",
    "error": "err-%j.txt",
    "environment": {"LR": "0.1", "EMPTY": "", "QUOTED": "a 'b' \"c\" $d"},
    "requeue": True,
    "priority": 5,
    "separate_error": False,  # excludes `error`; filled by SEPARATE below
    "submit_dir": "/home/alice/project",
    "gpu_type": "a100",
    "constraint": "a100&ib",
}
# The fields FILLED cannot give a non-default value at once (separate_error excludes error).
SEPARATE: dict[str, Any] = {"error": None, "separate_error": True}


def filled(**overrides: Any) -> JobRequest:
    return JobRequest(**(FILLED | overrides))


def test_every_field_is_filled() -> None:
    """FILLED (with SEPARATE) names every JobRequest field, each with a non-default value."""
    fields = {f.name: f for f in dataclasses.fields(JobRequest)}
    assert set(FILLED) == set(fields)
    for name, field in fields.items():
        default = (
            field.default_factory()
            if field.default_factory is not dataclasses.MISSING
            else field.default
        )
        value = SEPARATE.get(name, FILLED[name]) if name == "separate_error" else FILLED[name]
        assert value != default, f"{name}: give it a value other than its default"


@pytest.mark.parametrize("request_", [filled(), filled(**SEPARATE)], ids=["error", "separate"])
def test_spec_document_round_trip(request_: JobRequest) -> None:
    """to_spec then from_spec gives the same request."""
    assert from_spec(request_.script, to_spec(request_)) == request_


@pytest.mark.parametrize("request_", [filled(), filled(**SEPARATE)], ids=["error", "separate"])
def test_proto_round_trip(request_: JobRequest) -> None:
    """domain -> JobSpec -> wire bytes -> JobSpec -> validation gives the same request."""
    wire = convert.job_spec(request_, with_script=True).SerializeToString()
    assert validate.job_request(pb.JobSpec.FromString(wire)) == request_


def test_typed_gres_round_trip() -> None:
    """A typed gres (gpu:a100:4) validates to the request that converts back to the same."""
    request_ = validate.job_request(pb.JobSpec(script=FILLED["script"], gres="gpu:a100:4"))
    assert (request_.gpus_per_node, request_.gpu_type) == (4, "a100")
    assert validate.job_request(convert.job_spec(request_, with_script=True)) == request_


@pytest.mark.parametrize("request_", [filled(), filled(**SEPARATE)], ids=["error", "separate"])
def test_store_round_trip(store: Store, request_: JobRequest) -> None:
    """add_job then get_job gives the same request back."""
    job = store.add_job("alice", request_, T0)
    found = store.get_job(job.id)
    assert found is not None and found.request == request_


@pytest.mark.lab
@pytest.mark.parametrize("request_", [filled(), filled(**SEPARATE)], ids=["error", "separate"])
def test_api_round_trip(serve: Callable[..., Api], store: Store, request_: JobRequest) -> None:
    """SubmitJob stores the request whole; GetJob gives the owner every field but the script."""
    api = serve()
    spec = convert.job_spec(request_, with_script=True)
    job_id = api.as_user("root", "SubmitJob", pb.SubmitJobRequest(spec=spec)).job_id
    stored = store.get_job(job_id)
    assert stored is not None and stored.request == request_
    info = api.as_user("root", "GetJob", pb.GetJobRequest(job_id=job_id))
    back = pb.JobSpec()
    back.CopyFrom(info.spec)
    back.script = request_.script  # GetJob carries the script's hash, not the script
    assert validate.job_request(back) == request_
    assert info.script_bytes == len(request_.script)
