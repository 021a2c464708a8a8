"""The proxy wrapper that the job_submit shim writes in place of a fed job's script. Pure.

    #!/bin/sh
    # sfed proxy job: ...
    exec <sfed-proxy> --wrapper "$0"
    #SFED-REQUEST v=1 nodes=2 ntasks=2 gpus_per_node=4 ... job_name=<percent-encoded> ...
        gpu_type=<percent-encoded> constraint=<percent-encoded>   (one line; "-" = not asked)
    #SFED-SCRIPT
    <the user's script, byte for byte>

The shell never reads past the exec line; the proxy reads the file, takes the original
request from the #SFED-REQUEST line and the script from after the #SFED-SCRIPT line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

__all__ = ["REQUEST_PREFIX", "SCRIPT_MARKER", "Wrapper", "WrapperError", "parse_wrapper"]

REQUEST_PREFIX = b"#SFED-REQUEST "
SCRIPT_MARKER = b"#SFED-SCRIPT\n"
_HEADER_LINES = 8  # the request and marker lines come within the first few lines


class WrapperError(ValueError):
    """The file is not a proxy wrapper the proxy understands."""


@dataclass(frozen=True, slots=True)
class Wrapper:
    """The original request (raw values, "-" = unset) and the untouched script."""

    fields: dict[str, str] = field(default_factory=dict)
    script: bytes = b""

    def number(self, key: str) -> int | None:
        value = self.fields.get(key, "-")
        if value == "-":
            return None
        if not value.isdigit():
            raise WrapperError(f"#SFED-REQUEST {key}={value!r} is not a whole number")
        return int(value)

    def text(self, key: str) -> str | None:
        value = self.fields.get(key, "-")
        return None if value == "-" else unquote_to_bytes(value).decode("utf-8", "replace")


def parse_wrapper(data: bytes) -> Wrapper:
    """Split a wrapper file into its request fields and the original script."""
    head = data.split(b"\n", _HEADER_LINES)
    request = next((line for line in head[:_HEADER_LINES] if line.startswith(REQUEST_PREFIX)), None)
    if request is None:
        raise WrapperError("no #SFED-REQUEST line: not a proxy wrapper")
    at = data.find(b"\n" + SCRIPT_MARKER, data.find(REQUEST_PREFIX))
    if at < 0:
        raise WrapperError("no #SFED-SCRIPT line after the request")
    fields: dict[str, str] = {}
    for item in request[len(REQUEST_PREFIX) :].decode("ascii", "replace").split():
        key, eq, value = item.partition("=")
        if not eq:
            raise WrapperError(f"malformed #SFED-REQUEST item {item!r}")
        fields[key] = value
    if fields.get("v") != "1":
        raise WrapperError(f"unsupported wrapper version {fields.get('v')!r}")
    return Wrapper(fields=fields, script=data[at + 1 + len(SCRIPT_MARKER) :])
