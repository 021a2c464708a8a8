"""Which of a job's variables a pool passes on, and why the others stay behind. Pure.

One rule for every pool kind: the federation's own variables (SFED_*, from the submission)
always go and win over the user's; the user's go unless a pattern of the pool's
`environment_drop` names them (the config's defaults per kind, scheduler.config) and
`ENVIRONMENT_KEEP` does not; and a variable the pool cannot hold at all stays behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase

from scheduler.config import ENVIRONMENT_KEEP
from scheduler.domain import RemoteSubmission

__all__ = ["split_environment"]


def split_environment(
    submission: RemoteSubmission,
    drop: Sequence[str],
    unholdable: Callable[[str, str], str | None],
) -> tuple[dict[str, str], dict[str, str]]:
    """(the variables to pass, those left out -> why). `unholdable(name, value)` says why the
    pool cannot hold a variable, or None when it can."""
    kept: dict[str, str] = {}
    left_out: dict[str, str] = {}
    own = submission.environment
    for name, value in {**submission.request.environment, **own}.items():
        why = unholdable(name, value)
        if why is None and name not in own and not _matches(name, ENVIRONMENT_KEEP):
            pattern = _first_match(name, drop)
            if pattern is not None:
                why = f"this pool's environment_drop: {pattern}"
        if why is None:
            kept[name] = value
        else:
            left_out[name] = why
    return kept, dict(sorted(left_out.items()))


def _first_match(name: str, patterns: Sequence[str]) -> str | None:
    return next((p for p in patterns if fnmatchcase(name, p)), None)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return _first_match(name, patterns) is not None
