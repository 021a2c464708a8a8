"""What the Slurm adapter stages on the pool before sbatch: the job's environment (through a
file, whatever its size) and its owner's private spool directory. Real lab, both transports."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scheduler.domain import AttemptState, RemoteJob
from scheduler.pools.slurm import SlurmPool
from tests.fixtures import submissions
from tests.fixtures.jobs import job as build_job
from tests.fixtures.polling import wait_state
from tests.fixtures.submissions import fresh_tag
from tests.pools.slurm.test_adapter import TERMINAL, run

pytestmark = pytest.mark.lab

OWNER, OTHER = "nobody", "daemon"
# Each NAME=value just under Linux's MAX_ARG_STRLEN; seven of them are ~900 KB in all, far
# past what sbatch's own environment or an SSH command line could carry.
BIG = {f"BIG{i}": chr(ord("a") + i) * 128_000 for i in range(7)}
ODD = {"ODD": "quotes ' \" $HOME `id` \\ ; | & newline\nnon-ascii é 漢"}
CHECK = b"""#!/bin/bash
for v in BIG0 BIG1 BIG2 BIG3 BIG4 BIG5 BIG6; do x=${!v}; printf '%s %s\\n' "$v" "${#x}"; done
printf '%s' "$ODD" | sha256sum
"""


def test_large_and_odd_environment_reaches_the_job(
    make_pool: Callable[..., SlurmPool], jobs: Any, tmp_path: Path
) -> None:
    """Seven 128 KB variables and one full of shell metacharacters reach the job verbatim."""
    tmp_path.chmod(0o755)
    out = tmp_path / "env.out"
    sub = submissions.submission(
        tag=fresh_tag(),
        script=CHECK,
        chdir=str(tmp_path),
        output=str(out),
        mem_per_node_mb=500,
        environment={**BIG, **ODD},
    )

    async def scenario(pool: SlurmPool) -> RemoteJob:
        remote_id = jobs.add("beta", await pool.submit(sub))
        return await wait_state(pool, remote_id, TERMINAL)

    done = run(make_pool("beta"), scenario)
    assert (done.state, done.exit_code) == (AttemptState.COMPLETED, 0)
    lines = out.read_text().splitlines()
    assert lines[:7] == [f"BIG{i} 128000" for i in range(7)]
    digest = subprocess.run(
        ["sha256sum"], input=ODD["ODD"].encode(), capture_output=True, check=True
    ).stdout.decode()
    assert lines[7] == digest.strip()


def test_spooled_output_is_private_to_its_owner(
    make_pool: Callable[..., SlurmPool], jobs: Any, workdir: Path
) -> None:
    """Output with no -o goes to <spool>/<owner>/, mode 0700 and the owner's; another user
    of the pool cannot read it, and sfedd still can."""
    workdir.chmod(0o1777)  # a shared spool, as an admin would make it
    sub = submissions.submission(
        tag=fresh_tag(), script=b"#!/bin/sh\necho secret-output\n", mem_per_node_mb=500
    )
    sub = replace(sub, run_as=OWNER, owner=OWNER, request=replace(sub.request, chdir="/tmp"))

    async def scenario(pool: SlurmPool) -> tuple[RemoteJob, bytes]:
        remote_id = jobs.add("beta", await pool.submit(sub))
        done = await wait_state(pool, remote_id, TERMINAL)
        job = build_job(sub.tag.job_id, OWNER, request=sub.request)
        paths = pool.output_paths(job, sub.tag.attempt, remote_id)
        assert paths.stdout is not None
        return done, await pool.read_output(paths.stdout, 0, 1024, remote_id=remote_id)

    pool = make_pool("beta", spool_dir=str(workdir), federation=sub.tag.federation)
    done, data = run(pool, scenario)
    assert (done.state, data) == (AttemptState.COMPLETED, b"secret-output\n")
    private = workdir / OWNER
    info = private.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o700, pwd.getpwnam(OWNER).pw_uid)
    [spooled] = list(private.iterdir())
    peek = subprocess.run(
        ["runuser", "-u", OTHER, "--", "cat", str(spooled)], capture_output=True, text=True
    )
    assert peek.returncode != 0 and "Permission denied" in peek.stderr
    assert os.access(spooled, os.R_OK)  # sfedd (root here) reads it back
