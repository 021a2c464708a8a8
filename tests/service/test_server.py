"""Tests of scheduler.service.server: what the server does before a servicer sees a request."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from scheduler.service.auth import METHODS
from tests.service.conftest import Api

pytestmark = pytest.mark.lab  # munged comes with the lab

GARBAGE = b"\xff\xff\xff\xff\x0f"  # a field tag whose varint never ends


def raw_call(api: Api, rpc: str, body: bytes) -> grpc.RpcError:
    service, _, name = METHODS[rpc].rpartition(".")
    stream = rpc in ("WatchJob", "StreamOutput")
    call = (api.channel.unary_stream if stream else api.channel.unary_unary)(f"/{service}/{name}")
    with pytest.raises(grpc.RpcError) as info:
        answer = call(body, timeout=10)
        if stream:
            list(answer)
    return info.value


@pytest.mark.parametrize("rpc", sorted(METHODS))
def test_unparsable_request_is_invalid_argument(rpc: str, serve: Callable[..., Api]) -> None:
    """Bytes that are not the method's message get INVALID_ARGUMENT naming the type."""
    error = raw_call(serve(), rpc, GARBAGE)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("request: not a sfed.v1.")
