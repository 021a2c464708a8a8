"""The job request as one versioned JSON document: how the store keeps a `JobRequest`. Pure.

Derived from the dataclass's own fields, so a new request field is stored and read back with
no change here and no migration: older documents simply lack it and read as its default.
The script is not part of the document: it is bytes, and kept (and loaded) apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from scheduler.domain import JobRequest

__all__ = ["SPEC_VERSION", "SpecError", "from_spec", "to_spec"]

SPEC_VERSION: Final = 1
_VERSION_KEY: Final = "v"
_FIELDS: Final = {f.name: f for f in dataclasses.fields(JobRequest) if f.name != "script"}


class SpecError(ValueError):
    """A stored document is not a request this version can read."""


def to_spec(request: JobRequest) -> dict[str, Any]:
    """Every field but the script, as JSON values, with the document's version."""
    spec: dict[str, Any] = {_VERSION_KEY: SPEC_VERSION}
    for name in _FIELDS:
        value = getattr(request, name)
        spec[name] = dict(value) if isinstance(value, Mapping) else value
    return spec


def from_spec(script: bytes, spec: Mapping[str, Any]) -> JobRequest:
    """The request a `to_spec` document (of this version or an older one) describes."""
    version = spec.get(_VERSION_KEY)
    if not isinstance(version, int) or not 1 <= version <= SPEC_VERSION:
        raise SpecError(f"request document version {version!r} (this sfed reads 1..{SPEC_VERSION})")
    unknown = set(spec) - set(_FIELDS) - {_VERSION_KEY}
    if unknown:
        raise SpecError(f"request document has unknown fields: {', '.join(sorted(unknown))}")
    values = {name: spec[name] for name in _FIELDS if name in spec}
    if "environment" in values:
        values["environment"] = {str(k): str(v) for k, v in values["environment"].items()}
    return JobRequest(script=bytes(script), **values)
