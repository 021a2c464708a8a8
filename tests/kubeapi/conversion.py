"""Decoding []byte fields, and the Secret v1 -> internal conversion that folds in stringData."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.kubeapi.apierrors import ApiError
from tests.kubeapi.resources import Resource

_ALPHABET = re.compile(r"[A-Za-z0-9+/]*")
# The []byte fields, base64 strings in JSON, per kind.
BYTE_MAPS = {"Secret": "data", "ConfigMap": "binaryData"}


def go_b64decode(value: str) -> bytes:
    """base64.StdEncoding as encoding/json decodes a []byte: CR and LF ignored, padding required.

    The byte offset in the error is Go's for a bad character; for bad padding it is approximate.
    """
    s = value.replace("\r", "").replace("\n", "")
    body = s.rstrip("=")
    bad = _ALPHABET.match(body).end()  # type: ignore[union-attr]
    if bad < len(body):
        raise ValueError(f"illegal base64 data at input byte {bad}")
    pad = len(s) - len(body)
    if len(s) % 4 or pad > 2 or len(body) % 4 == 1:
        raise ValueError(f"illegal base64 data at input byte {len(body) - len(body) % 4}")
    return base64.b64decode(s)


def decode_bytes(resource: Resource, obj: dict[str, Any]) -> None:
    """Base64 []byte maps: a 400 when undecodable (a JSON decoding error), else canonical."""
    field = BYTE_MAPS.get(resource.kind)
    values = obj.get(field) if field else None
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        try:
            raw = go_b64decode(value)
        except ValueError as e:
            raise ApiError(
                400,
                "BadRequest",
                f'{resource.kind} in version "{resource.version}" cannot be handled as a'
                f" {resource.kind}: {e}",
            ) from None
        values[key] = base64.b64encode(raw).decode()


def convert(resource: Resource, obj: dict[str, Any]) -> None:
    """Secret: stringData is write-only, merged over data (a key in both: stringData wins)."""
    if resource.kind != "Secret":
        return
    string_data = obj.pop("stringData", None) or {}
    if string_data:
        data = obj.get("data") or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = data


def decoded(values: dict[str, str] | None) -> dict[str, bytes]:
    """A stored (canonical base64) byte map as bytes."""
    return {k: base64.b64decode(v) for k, v in (values or {}).items()}
