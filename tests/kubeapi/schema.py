"""Checks against the real Kubernetes 1.37 OpenAPI schemas (kubernetes-validate)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils

from tests.kubeapi.apierrors import ApiError, FieldError, required
from tests.kubeapi.resources import Resource

K8S_VERSION = "1.37"

# kubernetes-validate reads and parses the schema files (megabytes) on every call; they never
# change, so parse each once. The documents are only read by the validator.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=64)(  # type: ignore[assignment]
    kubernetes_validate.utils.schema_contents
)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def decode(
    resource: Resource, obj: dict[str, Any], strict: bool
) -> tuple[dict[str, Any], list[str]]:
    """The object with unknown fields dropped, and the unknown field paths.

    Strict: unknown fields are a 400 (strict decoding error). Type errors are a 400 (the
    apiserver fails to decode them); a missing required field is a 422 naming the field.
    """
    work = copy.deepcopy(obj)
    unknown: list[str] = []
    cannot = (
        f'{resource.kind} in version "{resource.version}" cannot be handled as a {resource.kind}'
    )
    while True:
        try:
            kubernetes_validate.validate(work, K8S_VERSION, strict=True)
            break
        except kubernetes_validate.ValidationError as e:
            where = list(e.path)
            if e.validator == "additionalProperties" and isinstance(e.instance, dict):
                allowed = set((e.schema or {}).get("properties") or {})
                extra = sorted(set(e.instance) - allowed)
                for key in extra:
                    unknown.append(_path([*where, key]))
                    del e.instance[key]  # e.instance is the very dict inside `work`
                continue
            if e.validator == "required":
                missing = [r for r in e.validator_value if r not in (e.instance or {})]
                errs: list[FieldError] = [required(_path([*where, m])) for m in missing]
                raise RequiredFieldsMissing(errs) from None
            raise ApiError(
                400, "BadRequest", f"{cannot}: {_path(where) or '<root>'}: {e.message}"
            ) from None
    if strict and unknown:
        listed = ", ".join(f'unknown field "{u}"' for u in unknown)
        raise ApiError(400, "BadRequest", f"{cannot}: strict decoding error: {listed}")
    return work, unknown


class RequiredFieldsMissing(Exception):
    """Reported with the semantic validation errors as a 422."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(str(errors))
        self.errors = errors
