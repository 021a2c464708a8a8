"""Times on the command line, as sacct takes them: ISO dates and now-<N><unit>."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["parse_when"]

_RELATIVE = re.compile(r"^now(?:-(\d+)(seconds?|minutes?|hours?|days?|weeks?))?$", re.IGNORECASE)


def parse_when(text: str, *, option: str = "time", now: datetime | None = None) -> datetime:
    """`2026-01-31`, `2026-01-31T08:00[:00]`, `now`, `now-2hours`; naive times are UTC."""
    from scheduler.cli.submit_args import UsageError

    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        if not match.group(1):
            return now
        unit = match.group(2).lower().rstrip("s") + "s"
        return now - timedelta(**{unit: int(match.group(1))})
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option}: not a time: {text!r} (use 2026-01-31, 2026-01-31T08:00 or now-2hours)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
