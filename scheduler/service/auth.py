"""The caller of an RPC, proven by a MUNGE credential bound to that very call, or by a
client certificate.

Every RPC needs a proof: a credential in the call's metadata whose signed payload is the
digest of the method and the request (`identity.call_digest`) — munged refuses a credential
decoded before (no replay), and a credential issued for another call does not match its
digest — or, on TLS TCP with a client CA, a verified client certificate whose common name
`server.tls.client_users` maps to a user (mTLS, for services that have no MUNGE).
"""

from __future__ import annotations

import asyncio
import hmac
import pwd
from collections.abc import Mapping
from typing import Any, Final

import grpc
from google.protobuf.message import Message

from scheduler import identity
from scheduler.identity import Caller, IdentityError
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.service.status import abort

__all__ = ["METHODS", "authenticate", "check_claimed_user"]

# RPC name -> the method's full name, which credentials are bound to.
METHODS: Final[dict[str, str]] = {
    method.name: method.full_name
    for service in pb.DESCRIPTOR.services_by_name.values()
    for method in service.methods
}


def _certificate_user(context: Any, client_users: Mapping[str, str]) -> str | None:
    """The user a verified client certificate proves, if the config maps its common name."""
    names = dict(context.auth_context() or {}).get("x509_common_name") or ()
    for name in names:
        user = client_users.get(name.decode("utf-8", "replace"))
        if user is not None:
            return user
    return None


def _caller_named(user: str) -> Caller:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return Caller(uid=-1, gid=-1, user=user)  # a service account sfedd's host lacks
    return Caller(uid=entry.pw_uid, gid=entry.pw_gid, user=user)


async def authenticate(
    context: Any, rpc: str, request: Message, client_users: Mapping[str, str] | None = None
) -> Caller:
    """The proven caller, or abort UNAUTHENTICATED naming what is missing or wrong."""
    metadata = dict(context.invocation_metadata() or ())
    credential = metadata.get(identity.CREDENTIAL_METADATA)
    if not credential and client_users:
        user = _certificate_user(context, client_users)
        if user is not None:
            return _caller_named(user)
    if not credential:
        await abort(
            context,
            grpc.StatusCode.UNAUTHENTICATED,
            f"this call needs a MUNGE credential in the {identity.CREDENTIAL_METADATA!r} "
            "metadata (the sfed CLI adds one)",
        )
    try:
        # munge_decode talks to munged over its socket: keep it off the event loop.
        caller = await asyncio.to_thread(identity.decode, credential)
    except IdentityError as exc:
        await abort(context, grpc.StatusCode.UNAUTHENTICATED, str(exc))
    expected = identity.call_digest(METHODS[rpc], request.SerializeToString(deterministic=True))
    if not hmac.compare_digest(caller.payload, expected):
        await abort(
            context,
            grpc.StatusCode.UNAUTHENTICATED,
            f"the MUNGE credential was not issued for this {rpc} request",
        )
    return caller


async def check_claimed_user(context: Any, claimed: str, caller: Caller) -> None:
    """A user named in the request body must be the proven one."""
    if claimed and claimed != caller.user:
        await abort(
            context,
            grpc.StatusCode.PERMISSION_DENIED,
            f"the request names user {claimed!r} but the credential proves {caller.user!r}",
        )
