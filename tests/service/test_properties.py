"""Property-based tests of the API's input: whatever a client sends, the answer is a clear
refusal or an accepted job, never an internal error, and a refusal stores nothing.

Short in `make test`; a longer fuzz run: SFED_FUZZ_EXAMPLES=5000 .venv/bin/pytest
tests/service/test_properties.py (see README.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scheduler import limits
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.service import convert, validate
from scheduler.service.auth import METHODS
from scheduler.service.validate import InvalidArgument
from scheduler.spec import from_spec, to_spec
from scheduler.store import Store
from tests.service.conftest import Api
from tests.service.test_server import raw_call

EXAMPLES = int(os.environ.get("SFED_FUZZ_EXAMPLES", "40"))
# make test runs the same examples every time (a failure is a bug, never a coin toss); a
# longer fuzz run (SFED_FUZZ_EXAMPLES) draws new ones.
FIXED = "SFED_FUZZ_EXAMPLES" not in os.environ
PURE_EXAMPLES = max(EXAMPLES * 10, 400)
# What a well-behaved client sends...
SMALL = st.integers(1, 8)
NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)
PATHS = st.from_regex(r"(/[a-z0-9%._-]{1,8}){1,4}", fullmatch=True)
GRES = st.sampled_from(["", "gpu", "gpu:4", "gpu:2,gpu:2"])
PLAIN_SCRIPT = st.binary(max_size=64).map(lambda b: b"#!/bin/sh\n" + b.replace(b"\0", b""))
PLAIN_ENV = st.dictionaries(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True), st.text(max_size=20), max_size=8
)
# ... and what a wrapped or hostile one does: extremes, control characters, long runs,
# non-ASCII, NULs, sizes past every bound.
U32 = st.one_of(st.just(0), st.integers(0, 2**32 - 1))
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=190, max_size=4200),
    st.sampled_from(["", "rel/path", "out-%j.txt", "two\nlines", "a\0b", "a b"]),
)
BAD_SCRIPT = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"#!/bin/sh\n\0", b"#!/bin/sh\n" + b"x" * limits.MAX_SCRIPT_BYTES]),
)
BAD_GRES = st.one_of(st.sampled_from(["gpu:0", "fpga:1", "gpu:99999", "gpu:a100:2"]), TEXT)
BAD_ENV = st.dictionaries(
    st.text(max_size=8), st.one_of(st.text(max_size=20), st.just("x" * 131_100)), max_size=12
)


@st.composite
def job_specs(draw: st.DrawFn) -> pb.JobSpec:
    """A JobSpec whose every field is, independently, most often plausible and sometimes
    hostile, so that both accepted and refused requests are common."""

    def pick(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
        return draw(bad) if draw(st.integers(0, 9)) == 9 else draw(good)

    spec = pb.JobSpec(
        script=pick(PLAIN_SCRIPT, BAD_SCRIPT),
        job_name=pick(st.one_of(st.just(""), NAMES), TEXT),
        nodes=pick(SMALL, U32),
        gres=pick(GRES, BAD_GRES),
        cpus_per_task=pick(SMALL, U32),
        partition=pick(st.one_of(st.just(""), NAMES), TEXT),
        chdir=pick(st.one_of(st.just(""), PATHS), TEXT),
        output=pick(st.one_of(st.just(""), PATHS), TEXT),
        error=pick(st.just(""), st.one_of(PATHS, TEXT)),
        requeue=draw(st.booleans()),
        priority=pick(st.integers(-10, 10), st.integers(-(2**31), 2**31 - 1)),
        separate_error=pick(st.booleans(), st.just(True)),
    )
    if draw(st.booleans()):
        spec.ntasks = spec.nodes * pick(SMALL, U32) % 2**32
    if draw(st.booleans()):
        spec.time_limit_min = pick(st.integers(1, 10_000), U32)
    if draw(st.booleans()):
        spec.mem_per_node_mb = pick(st.integers(1, 10**6), st.integers(0, 2**64 - 1))
    spec.environment.update(pick(PLAIN_ENV, BAD_ENV))
    return spec


@settings(max_examples=PURE_EXAMPLES, deadline=None, derandomize=FIXED, database=None)
@given(job_specs())
def test_validation_refuses_or_gives_a_request_within_the_bounds(spec: pb.JobSpec) -> None:
    """validate.job_request raises only InvalidArgument; what it accepts is within every
    bound and round-trips through the stored document and the proto."""
    try:
        request = validate.job_request(spec)
    except InvalidArgument as exc:
        assert str(exc).startswith("spec.")
        event(f"refused: {exc.field}")
        return
    event("accepted")
    assert 1 <= request.nodes <= limits.MAX_NODES
    assert request.tasks <= limits.MAX_TASKS and request.cpus_per_task >= 1
    assert request.cpus_per_task <= limits.MAX_CPUS_PER_TASK
    assert request.gpus_per_node <= limits.MAX_GPUS_PER_NODE
    assert request.time_limit_min is None or request.time_limit_min <= limits.MAX_TIME_LIMIT_MIN
    assert from_spec(request.script, to_spec(request)) == request
    assert validate.job_request(convert.job_spec(request, with_script=True)) == request


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=FIXED,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def api(serve: Callable[..., Api]) -> Api:
    """One server for every example of a test (hypothesis runs them in one test call)."""
    return serve()


CLEAR = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # over the server's message size
}


@pytest.mark.lab  # munged comes with the lab
@FUZZ
@given(spec=job_specs(), client_key=TEXT)
def test_submit_answers_clearly_and_stores_nothing_refused(
    api: Api, store: Store, spec: pb.JobSpec, client_key: str
) -> None:
    """SubmitJob of any spec is accepted or refused with a clear status; a refusal stores
    nothing, and the server keeps answering."""
    before = len(store.list_jobs())
    request = pb.SubmitJobRequest(spec=spec, client_key=client_key)
    try:
        api.as_user("root", "SubmitJob", request)
    except grpc.RpcError as exc:
        assert exc.code() in CLEAR, (exc.code(), exc.details())
        assert len(store.list_jobs()) == before
    assert api.as_user("root", "ListPools", pb.ListPoolsRequest()) is not None


@pytest.mark.lab
@FUZZ
@given(rpc=st.sampled_from(sorted(METHODS)), body=st.binary(max_size=200))
def test_any_bytes_to_any_method_get_a_clear_answer(
    api: Api, store: Store, rpc: str, body: bytes
) -> None:
    """Arbitrary request bytes, without a credential, are refused clearly and change nothing."""
    before = len(store.list_jobs())
    error = raw_call(api, rpc, body)
    assert error.code() in CLEAR | {grpc.StatusCode.UNAUTHENTICATED}, (
        error.code(),
        error.details(),
    )
    assert len(store.list_jobs()) == before
