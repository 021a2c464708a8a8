"""Who is calling: MUNGE credentials, the same proof of uid that Slurm itself relies on.

A client encodes a credential with the local munged (it carries the caller's real uid and
gid, signed with the site's munge key); sfedd decodes it with its munged and learns the uid.
munged refuses to decode a credential twice, so a captured one cannot be replayed, and its
signed payload is the digest of the one call it authorizes (method and request bytes), so a
credential seen on the wire cannot authorize another call either. A uid written in a request
body is never trusted by itself.

libmunge is called through ctypes: no subprocess per call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import pwd
from dataclasses import dataclass

__all__ = [
    "CREDENTIAL_METADATA",
    "Caller",
    "IdentityError",
    "call_digest",
    "decode",
    "encode",
    "encode_for",
]

CREDENTIAL_METADATA = "x-sfed-munge"  # gRPC metadata key carrying the credential
_MUNGE_SUCCESS = 0


class IdentityError(Exception):
    """No usable credential: munged missing, credential invalid, expired or replayed."""


@dataclass(frozen=True, slots=True)
class Caller:
    """A proven caller: uid and gid from a decoded credential, and the user name."""

    uid: int
    gid: int
    user: str
    payload: bytes = b""


@functools.cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("munge") or "libmunge.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise IdentityError(
            f"cannot load libmunge ({exc}); install it with: apt-get install munge"
        ) from None
    lib.munge_encode.argtypes = [
        ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int
    ]  # fmt: skip
    lib.munge_encode.restype = ctypes.c_int
    lib.munge_decode.argtypes = [
        ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_uint32),
        ctypes.POINTER(ctypes.c_uint32),
    ]  # fmt: skip
    lib.munge_decode.restype = ctypes.c_int
    lib.munge_strerror.argtypes = [ctypes.c_int]
    lib.munge_strerror.restype = ctypes.c_char_p
    return lib


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None)


def _error(lib: ctypes.CDLL, code: int) -> str:
    text: bytes | None = lib.munge_strerror(code)
    return text.decode() if text else f"munge error {code}"


def encode(payload: bytes = b"") -> str:
    """A fresh credential for the calling process's uid, carrying `payload` (signed)."""
    lib = _lib()
    cred = ctypes.c_char_p()
    buf = ctypes.create_string_buffer(payload, len(payload)) if payload else None
    code = lib.munge_encode(ctypes.byref(cred), None, buf, len(payload))
    if code != _MUNGE_SUCCESS or cred.value is None:
        raise IdentityError(f"cannot create a MUNGE credential: {_error(lib, code)}")
    try:
        return cred.value.decode()
    finally:
        _libc().free(cred)


def call_digest(method: str, request: bytes) -> bytes:
    """What a credential for one call carries: the SHA-256 of the gRPC method's full name
    (e.g. "sfed.v1.Federation.SubmitJob") and the request's deterministic serialization."""
    return hashlib.sha256(method.encode() + b"\n" + request).digest()


def encode_for(method: str, request: bytes) -> str:
    """A fresh credential that authorizes exactly this call."""
    return encode(call_digest(method, request))


def decode(credential: str) -> Caller:
    """The caller a credential proves; raises IdentityError when it proves nothing."""
    lib = _lib()
    buf = ctypes.c_void_p()
    length = ctypes.c_int()
    uid, gid = ctypes.c_uint32(), ctypes.c_uint32()
    code = lib.munge_decode(
        credential.encode(), None, ctypes.byref(buf), ctypes.byref(length),
        ctypes.byref(uid), ctypes.byref(gid),
    )  # fmt: skip
    try:
        payload = ctypes.string_at(buf, length.value) if buf.value and length.value > 0 else b""
    finally:
        if buf.value:
            _libc().free(buf)
    if code != _MUNGE_SUCCESS:
        raise IdentityError(f"MUNGE credential refused: {_error(lib, code)}")
    try:
        user = pwd.getpwuid(uid.value).pw_name
    except KeyError:
        user = str(uid.value)
    return Caller(uid=uid.value, gid=gid.value, user=user, payload=payload)
