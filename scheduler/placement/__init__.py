"""The pure placement core: which pending job goes, whole, to which pool, now.

See `scheduler.placement.core` for the rules.
"""

from scheduler.placement.core import Policy, never_fits, place

__all__ = ["Policy", "never_fits", "place"]
