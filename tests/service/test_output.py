"""StreamOutput: the job's output as its pool has it, across a rerun that started it anew."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scheduler.domain import Job, JobRequest
from scheduler.pools.base import OutputRestarted
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.store import Store
from tests.fixtures.jobs import T0
from tests.service.conftest import Api, StillLoop

pytestmark = pytest.mark.lab  # munged comes with the lab


class RerunLoop(StillLoop):
    """A pool whose job wrote "run1", was rerun, and wrote "run2" into its file anew."""

    def __init__(self) -> None:
        super().__init__()
        self.files = [b"run1\n", b"run2\n"]

    async def read_output(self, job: Job, *, stderr: bool, offset: int, limit: int) -> bytes:
        current = self.files[0]
        if offset > len(current):
            raise OutputRestarted(len(current))
        if offset == len(current) and len(self.files) > 1:
            self.files.pop(0)  # the rerun starts: its file is shorter than what was read
            raise OutputRestarted(0)
        return current[offset : offset + limit]


def test_a_rerun_s_output_follows_from_byte_zero(serve: Callable[..., Api], store: Store) -> None:
    """After the pool starts the file anew, chunks start again at offset 0 with the rerun's
    output, so a reader that appends gets both runs in order."""
    job = store.add_job("root", JobRequest(script=b"#!/bin/sh\n"), T0)
    api = serve(facade=RerunLoop())
    chunks = api.stream("root", "StreamOutput", pb.StreamOutputRequest(job_id=job.id))
    assert [(c.offset, c.data) for c in chunks] == [(0, b"run1\n"), (0, b"run2\n")]
