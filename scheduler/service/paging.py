"""Page tokens of ListJobs: where the previous page ended, opaque to clients. Pure."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from scheduler.service.validate import InvalidArgument

__all__ = ["PageToken"]

_VERSION = 1


@dataclass(frozen=True, slots=True)
class PageToken:
    """The last job sent (its submission time and id) and how many were sent so far."""

    submitted_at: datetime
    job_id: int
    sent: int

    def encode(self) -> str:
        body = [_VERSION, self.submitted_at.isoformat(), self.job_id, self.sent]
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()

    @classmethod
    def decode(cls, text: str, field: str = "page_token") -> PageToken:
        """The token a previous page returned; InvalidArgument for anything else."""
        try:
            version, at, job_id, sent = json.loads(base64.urlsafe_b64decode(text.encode()))
            when = datetime.fromisoformat(at)
            if version != _VERSION or when.tzinfo is None:
                raise ValueError(version)
            if not isinstance(job_id, int) or not isinstance(sent, int) or job_id < 0 or sent < 0:
                raise ValueError(job_id)
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise InvalidArgument(field, "not a page token of a previous ListJobs answer") from None
        return cls(when, job_id, sent)
