"""Who may call what: every RPC against every kind of caller, on a real server and store.

Callers: the job's owner (nobody), another user (daemon), an admin (root), and three that
prove nothing: no credential, a replayed credential, and a credential issued for another
request. Every refused cell must leave the store exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from scheduler import identity
from scheduler.cli.client import Client, ClientError
from scheduler.domain import JobRequest
from scheduler.loop import PoolStatus
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.service import convert
from scheduler.service.auth import METHODS
from scheduler.store import Store
from tests.fixtures.credentials import no_munged
from tests.fixtures.jobs import T0
from tests.service.certs import Certs
from tests.service.conftest import Api, credential

pytestmark = pytest.mark.lab  # munged comes with the lab

OWNER, OTHER, ADMIN = "nobody", "daemon", "root"
SECRET = {"SECRET_TOKEN": "hunter2"}
POOL = PoolStatus("beta", "slurm", "local", "gpu", 0.0, 1, (), True, "", None)
OK = "ok"
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
HIDDEN = grpc.StatusCode.NOT_FOUND
NOT_RUNNING = grpc.StatusCode.FAILED_PRECONDITION


def requests(job_id: int) -> dict[str, Message]:
    """One request per RPC, about the owner's job or the pool."""
    spec = convert.job_spec(JobRequest(script=b"#!/bin/sh\ntrue\n"), with_script=True)
    return {
        "SubmitJob": pb.SubmitJobRequest(spec=spec),
        "GetJob": pb.GetJobRequest(job_id=job_id),
        "ListJobs": pb.ListJobsRequest(),
        "CancelJob": pb.CancelJobRequest(job_id=job_id),
        "SignalJob": pb.SignalJobRequest(job_id=job_id, signal="USR1"),
        "WatchJob": pb.WatchJobRequest(job_id=job_id),
        "ExplainJob": pb.ExplainJobRequest(job_id=job_id),
        "StreamOutput": pb.StreamOutputRequest(job_id=job_id),
        "ListPools": pb.ListPoolsRequest(),
        "DrainPool": pb.DrainPoolRequest(name="beta", reason="maintenance"),
        "ResumePool": pb.ResumePoolRequest(name="beta"),
    }


# rpc -> (owner, other user, admin), without and with private_data = ["jobs"].
MATRIX: dict[str, tuple[Any, Any, Any]] = {
    "SubmitJob": (OK, OK, OK),
    "GetJob": (OK, OK, OK),
    "ListJobs": (OK, OK, OK),
    "CancelJob": (OK, DENIED, OK),
    # Authorized, but the owner's job is still pending: nothing to signal yet.
    "SignalJob": (NOT_RUNNING, DENIED, NOT_RUNNING),
    "WatchJob": (OK, OK, OK),
    "ExplainJob": (OK, OK, OK),
    "StreamOutput": (OK, DENIED, OK),
    "ListPools": (OK, OK, OK),
    "DrainPool": (DENIED, DENIED, OK),
    "ResumePool": (DENIED, DENIED, OK),
}
PRIVATE = MATRIX | {
    "GetJob": (OK, HIDDEN, OK),
    "CancelJob": (OK, HIDDEN, OK),
    "SignalJob": (NOT_RUNNING, HIDDEN, NOT_RUNNING),
    "WatchJob": (OK, HIDDEN, OK),
    "ExplainJob": (OK, HIDDEN, OK),
    "StreamOutput": (OK, HIDDEN, OK),
}


def test_matrix_covers_every_rpc() -> None:
    """Every RPC of the API has its row: a new one cannot be left out of the matrix."""
    assert set(MATRIX) == set(PRIVATE) == set(METHODS)


@dataclass(frozen=True)
class Cell:
    rpc: str
    user: str
    expected: Any
    private: bool

    def __str__(self) -> str:
        return f"{self.rpc}-{self.user}{'-private' if self.private else ''}"


CELLS = [
    Cell(rpc, user, expected, private)
    for private, matrix in ((False, MATRIX), (True, PRIVATE))
    for rpc, row in matrix.items()
    for user, expected in zip((OWNER, OTHER, ADMIN), row, strict=True)
]


def dump(store: Store) -> Any:
    """Everything the store holds that a call could change."""
    jobs = store.list_jobs()
    return (
        jobs,
        [store.events(j.id) for j in jobs],
        [store.attempts(j.id) for j in jobs],
        store.pools(),
    )


def outcome(call: Callable[[], Any]) -> Any:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return OK


@pytest.fixture
def owned(store: Store) -> int:
    """The owner's pending job, with a secret in its environment; the pool row of beta."""
    store.ensure_pools(["beta"], T0)
    job = store.add_job(OWNER, JobRequest(script=b"#!/bin/sh\n", environment=SECRET), T0)
    return job.id


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_matrix(
    cell: Cell, serve: Callable[..., Api], store: Store, owned: int, transport: str
) -> None:
    """Each caller gets exactly its cell's answer, on the socket and on TLS; a refused call
    changes nothing."""
    server = {"private_data": ["jobs"]} if cell.private else {}
    api = serve((POOL,), via=transport, **server)
    before = dump(store)
    got = outcome(lambda: api.as_user(cell.user, cell.rpc, requests(owned)[cell.rpc]))
    assert got == cell.expected
    if got != OK:
        assert dump(store) == before


@pytest.mark.parametrize("rpc", list(MATRIX))
def test_no_credential_is_refused(
    rpc: str, serve: Callable[..., Api], store: Store, owned: int
) -> None:
    """A call without a credential is UNAUTHENTICATED and changes nothing."""
    api = serve((POOL,))
    before = dump(store)
    assert outcome(lambda: api.call(rpc, requests(owned)[rpc], None)) == UNAUTH
    assert dump(store) == before


@pytest.mark.parametrize("rpc", list(MATRIX))
def test_replayed_credential_is_refused(
    rpc: str, serve: Callable[..., Api], store: Store, owned: int, transport: str
) -> None:
    """A credential already used once is UNAUTHENTICATED the second time."""
    api = serve((POOL,), via=transport)
    request = requests(owned)[rpc]
    metadata = [(identity.CREDENTIAL_METADATA, credential(ADMIN, rpc, request))]
    outcome(lambda: api.call(rpc, request, metadata))  # the first use, whatever it answers
    before = dump(store)
    assert outcome(lambda: api.call(rpc, request, metadata)) == UNAUTH
    assert dump(store) == before


@pytest.mark.parametrize("rpc", list(MATRIX))
def test_credential_for_another_request_is_refused(
    rpc: str, serve: Callable[..., Api], store: Store, owned: int, transport: str
) -> None:
    """A credential issued for one request does not authorize a different one."""
    api = serve((POOL,), via=transport)
    other = store.add_job(ADMIN, JobRequest(script=b"#!/bin/sh\n"), T0).id
    issued_for, sent = requests(other)[rpc], requests(owned)[rpc]
    if issued_for == sent:  # requests that name no job: take another RPC's request
        issued_for = pb.GetJobRequest(job_id=other)
    metadata = [(identity.CREDENTIAL_METADATA, credential(ADMIN, rpc, issued_for))]
    before = dump(store)
    assert outcome(lambda: api.call(rpc, sent, metadata)) == UNAUTH
    assert dump(store) == before


@pytest.mark.parametrize("user", [OWNER, ADMIN])
def test_owner_and_admin_see_the_environment(
    user: str, serve: Callable[..., Api], owned: int
) -> None:
    """GetJob shows the job's environment to its owner and to admins."""
    info = serve().as_user(user, "GetJob", pb.GetJobRequest(job_id=owned))
    assert dict(info.spec.environment) == SECRET


def test_other_user_does_not_see_the_environment(serve: Callable[..., Api], owned: int) -> None:
    """GetJob shows another user the job as squeue would, without its environment."""
    info = serve().as_user(OTHER, "GetJob", pb.GetJobRequest(job_id=owned))
    assert (info.user, dict(info.spec.environment)) == (OWNER, {})


@pytest.mark.parametrize("user", [OWNER, OTHER, ADMIN])
def test_listings_carry_no_environment(user: str, serve: Callable[..., Api], owned: int) -> None:
    """ListJobs never carries an environment, not even to the owner."""
    jobs = serve().as_user(user, "ListJobs", pb.ListJobsRequest()).jobs
    assert [j.id for j in jobs] == [owned]
    assert all(not j.spec.environment and not j.spec.script for j in jobs)


def test_private_data_hides_other_users_jobs_from_listings(
    serve: Callable[..., Api], store: Store, owned: int
) -> None:
    """With private_data = ["jobs"], another user lists only its own jobs; an admin all."""
    mine = store.add_job(OTHER, JobRequest(script=b"#!/bin/sh\n"), T0).id
    api = serve(private_data=["jobs"])
    other = api.as_user(OTHER, "ListJobs", pb.ListJobsRequest())
    asked = api.as_user(OTHER, "ListJobs", pb.ListJobsRequest(user=OWNER))
    admin = api.as_user(ADMIN, "ListJobs", pb.ListJobsRequest())
    assert [j.id for j in other.jobs] == [mine]
    assert list(asked.jobs) == []
    assert sorted(j.id for j in admin.jobs) == sorted([owned, mine])


# -- client certificates (mTLS) ------------------------------------------------------------


def mtls(certs: Certs, **users: str) -> dict[str, Any]:
    """server.tls with the test CA as client CA and `users` as client_users."""
    return {
        "tls": {
            "cert": str(certs.server_cert),
            "key": str(certs.server_key),
            "client_ca": str(certs.ca),
            "client_users": users,
        }
    }


def test_mapped_client_certificate_proves_its_user(
    serve: Callable[..., Api], certs: Certs, owned: int
) -> None:
    """A client certificate whose name client_users maps to the owner acts as the owner."""
    api = serve(via="tls", client_cert="door-proxy", **mtls(certs, **{"door-proxy": OWNER}))
    info = api.call("GetJob", pb.GetJobRequest(job_id=owned), None)
    assert dict(info.spec.environment) == SECRET


def test_unmapped_client_certificate_proves_nothing(
    serve: Callable[..., Api], certs: Certs, owned: int
) -> None:
    """A valid client certificate no client_users entry names still needs a credential."""
    api = serve(via="tls", client_cert="door-proxy", **mtls(certs, other=OWNER))
    assert outcome(lambda: api.call("GetJob", pb.GetJobRequest(job_id=owned), None)) == UNAUTH
    info = api.as_user(OTHER, "GetJob", pb.GetJobRequest(job_id=owned))
    assert dict(info.spec.environment) == {}  # the credential's user, not the certificate's


def test_client_ca_requires_a_client_certificate(
    serve: Callable[..., Api], certs: Certs, owned: int
) -> None:
    """With a client CA, a TLS client without a certificate cannot connect."""
    api = serve(via="tls", **mtls(certs, **{"door-proxy": OWNER}))
    request = pb.GetJobRequest(job_id=owned)
    assert outcome(lambda: api.as_user(ADMIN, "GetJob", request)) == grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_cannot_talk_to_the_tls_port(
    serve: Callable[..., Api], owned: int
) -> None:
    """A plaintext channel to the TLS port fails: nothing crosses it in the clear."""
    tls_api = serve(via="tls")
    plain = Api(tls_api.address)
    request = pb.GetJobRequest(job_id=owned)
    assert outcome(lambda: plain.as_user(ADMIN, "GetJob", request)) == grpc.StatusCode.UNAVAILABLE
    plain.channel.close()


def test_big_environments_do_not_break_anyone_s_listing(
    serve: Callable[..., Api], store: Store
) -> None:
    """Jobs with environments at the 1 MiB bound leave every user's listing working: pages
    carry no environment, so each stays small."""
    big = {f"V{i}": "x" * 120_000 for i in range(8)}  # ~960 KB, within the bound
    ids = [
        store.add_job(OWNER, JobRequest(script=b"#!/bin/sh\n", environment=big), T0).id
        for _ in range(12)
    ]
    page = serve().as_user(OTHER, "ListJobs", pb.ListJobsRequest())
    assert [j.id for j in page.jobs] == ids and page.ByteSize() < 64 * 1024


def test_listing_pages_follow_each_other(serve: Callable[..., Api], store: Store) -> None:
    """page_size splits a listing; next_page_token walks it to the end, each job once."""
    ids = [store.add_job(OWNER, JobRequest(script=b"#!/bin/sh\n"), T0).id for _ in range(7)]
    api, seen, token = serve(), [], ""
    for _ in range(10):
        page = api.as_user(OTHER, "ListJobs", pb.ListJobsRequest(page_size=3, page_token=token))
        seen += [j.id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids


def test_a_forged_page_token_is_invalid(serve: Callable[..., Api], store: Store) -> None:
    """A page token that no listing gave out is INVALID_ARGUMENT, naming the field."""
    request = pb.ListJobsRequest(page_token="not-a-token")
    with pytest.raises(grpc.RpcError) as info:
        serve().as_user(OTHER, "ListJobs", request)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith("page_token:")


def test_notes_are_the_owner_s(serve: Callable[..., Api], store: Store, owned: int) -> None:
    """What a pool left out of a job's environment is shown to its owner, not to others."""
    store.note(owned, "environment", "left out of the job's environment on beta: LD_PRELOAD", T0)
    api = serve()
    mine = api.as_user(OWNER, "GetJob", pb.GetJobRequest(job_id=owned))
    theirs = api.as_user(OTHER, "GetJob", pb.GetJobRequest(job_id=owned))
    assert (list(mine.notes), list(theirs.notes)) == (
        ["left out of the job's environment on beta: LD_PRELOAD"],
        [],
    )


def test_client_without_munged_says_it_cannot_prove_who_it_is(
    serve: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI that cannot get a credential, talking to an sfedd that answers, blames the
    credential, with munged's own words."""
    address = serve().address

    monkeypatch.setattr(identity, "encode_for", no_munged)
    with (
        Client(address) as client,
        pytest.raises(ClientError, match=r"cannot prove who you are: .*Socket"),
    ):
        client.admin.ListPools(pb.ListPoolsRequest())
