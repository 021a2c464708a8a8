"""The caller of an RPC, proven by a MUNGE credential bound to that very call.

Every RPC needs one: a credential in the call's metadata whose signed payload is the digest of
the method and the request (`identity.call_digest`). munged refuses a credential decoded
before (no replay), and a credential issued for another call does not match its digest.
"""

from __future__ import annotations

import asyncio
import hmac
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


async def authenticate(context: Any, rpc: str, request: Message) -> Caller:
    """The proven caller, or abort UNAUTHENTICATED naming what is missing or wrong."""
    metadata = dict(context.invocation_metadata() or ())
    credential = metadata.get(identity.CREDENTIAL_METADATA)
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
