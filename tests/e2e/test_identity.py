"""Who may do what: MUNGE-proven callers against a real sfedd."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from scheduler import identity
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.proto_gen.sfed.v1 import sfed_pb2_grpc as pb_grpc
from tests.deploy.helpers import slurm
from tests.e2e.harness import Daemon, write_script
from tests.fixtures.credentials import proven

pytestmark = pytest.mark.lab
OTHER_USER = "nobody"  # an ordinary account every Debian system has


def other_user_credential(rpc: str, request: Message) -> list[tuple[str, str]]:
    """Metadata with a real credential that munged issues to OTHER_USER for this call."""
    return proven(rpc, request, OTHER_USER)


def refused(call: Callable[[], object]) -> grpc.RpcError:
    """The RpcError a call raises (fails the test when it succeeds)."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.fixture
def stub(daemon: Daemon) -> Iterator[pb_grpc.FederationStub]:
    """A raw Federation stub on the daemon's socket."""
    with grpc.insecure_channel(daemon.address) as channel:
        yield pb_grpc.FederationStub(channel)


@pytest.fixture
def running_root_job(daemon: Daemon, tmp_path: Path) -> Iterator[int]:
    """A job of root's, running; cancelled at the end."""
    job_id = daemon.submit(write_script(tmp_path, "r.sh", "sleep 300\n"), "-o", "/dev/null")
    daemon.wait_state(job_id, {"RUNNING"})
    yield job_id
    daemon.run("cancel", str(job_id))


def test_submit_without_credential_is_unauthenticated(stub: pb_grpc.FederationStub) -> None:
    """A SubmitJob with no credential is refused UNAUTHENTICATED, naming the metadata key."""
    spec = pb.JobSpec(script=b"#!/bin/sh\ntrue\n")
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitJob(pb.SubmitJobRequest(spec=spec), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert identity.CREDENTIAL_METADATA in info.value.details()


def test_replayed_credential_is_refused(stub: pb_grpc.FederationStub) -> None:
    """A credential used once cannot be used again."""
    request = pb.CancelJobRequest(job_id=999999)
    metadata = proven("CancelJob", request)
    with pytest.raises(grpc.RpcError) as first:
        stub.CancelJob(request, timeout=10, metadata=metadata)
    assert first.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as again:
        stub.CancelJob(request, timeout=10, metadata=metadata)
    assert again.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Replayed credential" in again.value.details()


def test_claimed_user_must_match_the_credential(stub: pb_grpc.FederationStub) -> None:
    """A body naming another user than the credential proves is refused."""
    request = pb.SubmitJobRequest(spec=pb.JobSpec(script=b"#!/bin/sh\n"), user="alice")
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitJob(request, timeout=10, metadata=proven("SubmitJob", request))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "names user 'alice' but the credential proves 'root'" in info.value.details()


def test_client_key_returns_the_same_job(stub: pb_grpc.FederationStub, daemon: Daemon) -> None:
    """Two submissions with one client key make one job."""
    spec = pb.JobSpec(script=b"#!/bin/sh\ntrue\n", output="/dev/null", chdir="/tmp")
    key = f"test/{os.getpid()}/{daemon.federation}"
    request = pb.SubmitJobRequest(spec=spec, client_key=key)
    first = stub.SubmitJob(request, timeout=10, metadata=proven("SubmitJob", request))
    again = stub.SubmitJob(request, timeout=10, metadata=proven("SubmitJob", request))
    assert first.job_id == again.job_id
    daemon.wait_state(first.job_id)


def test_other_user_cannot_cancel_a_job(
    stub: pb_grpc.FederationStub, daemon: Daemon, running_root_job: int
) -> None:
    """Another (non-admin) user's cancel is refused and the job keeps running."""
    request = pb.CancelJobRequest(job_id=running_root_job)
    metadata = other_user_credential("CancelJob", request)
    error = refused(lambda: stub.CancelJob(request, timeout=10, metadata=metadata))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"job {running_root_job} belongs to root" in error.details()
    assert daemon.show(running_root_job)["state"] == "RUNNING"


def test_other_user_cannot_drain(daemon: Daemon) -> None:
    """Draining a pool is for admins only."""
    with grpc.insecure_channel(daemon.address) as channel:
        admin = pb_grpc.AdminStub(channel)
        request = pb.DrainPoolRequest(name="alpha")
        metadata = other_user_credential("DrainPool", request)
        error = refused(lambda: admin.DrainPool(request, timeout=10, metadata=metadata))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only admins (root) may drain" in error.details()
    assert daemon.run("pools", "--json").stdout.count('"DRAINED"') == 0


def test_other_user_submits_as_themself(stub: pb_grpc.FederationStub, daemon: Daemon) -> None:
    """A job submitted with another user's credential is theirs in the history and on the pool."""
    spec = pb.JobSpec(script=b"#!/bin/sh\ntrue\n", output="/dev/null", chdir="/tmp")
    request = pb.SubmitJobRequest(spec=spec)
    reply = stub.SubmitJob(
        request, timeout=10, metadata=other_user_credential("SubmitJob", request)
    )
    job = daemon.wait_state(reply.job_id)
    assert (job["user"], job["state"]) == (OTHER_USER, "COMPLETED")
    shown = slurm(daemon.lab, job["pool"], "scontrol", "show", "job", job["remote_id"])
    assert f"UserId={OTHER_USER}(" in shown
