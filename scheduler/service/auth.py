"""The caller of an RPC, proven by a MUNGE credential in the call's metadata."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from scheduler import identity
from scheduler.identity import Caller, IdentityError
from scheduler.service.status import abort

__all__ = ["authenticate", "check_claimed_user"]


async def authenticate(context: Any) -> Caller:
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
        return await asyncio.to_thread(identity.decode, credential)
    except IdentityError as exc:
        await abort(context, grpc.StatusCode.UNAUTHENTICATED, str(exc))


async def check_claimed_user(context: Any, claimed: str, caller: Caller) -> None:
    """A user named in the request body must be the proven one."""
    if claimed and claimed != caller.user:
        await abort(
            context,
            grpc.StatusCode.PERMISSION_DENIED,
            f"the request names user {claimed!r} but the credential proves {caller.user!r}",
        )
