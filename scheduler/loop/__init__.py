"""The federation loop: snapshot pools -> reconcile attempts -> place -> submit.

loop.py         the `Loop` that runs passes (the only place pools are called from)
submission.py   what a pool is asked to run for one attempt (pure)
facade.py       the narrow interface the API reads and wakes the loop through
capabilities.py the file the front door's job_submit shim reads
"""

from scheduler.loop.facade import LoopFacade, NotDelivered, OutputUnknown, PoolStatus
from scheduler.loop.loop import Loop, PassReport, PoolView

__all__ = [
    "Loop",
    "LoopFacade",
    "NotDelivered",
    "OutputUnknown",
    "PassReport",
    "PoolStatus",
    "PoolView",
]
