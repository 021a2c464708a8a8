"""The lab's one error type."""

from __future__ import annotations

from collections.abc import Sequence


class LabError(Exception):
    """A lab operation failed: `message` is one line, `details` are log lines that explain it."""

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        self.message = message
        self.details = list(details)
        super().__init__(message)

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return "\n".join([self.message, *("    " + line for line in self.details)])
