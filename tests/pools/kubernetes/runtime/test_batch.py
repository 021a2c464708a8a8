"""batch.py: pod 0 runs the batch script, with its environment, output files and exit status."""

from __future__ import annotations

from pathlib import Path

from tests.pools.kubernetes.runtime.conftest import NODES, Job

BOTH_STREAMS = "#!/bin/sh\necho to-out\nsleep 0.2\necho to-err >&2\n"


def test_script_killed_by_signal_gives_128_plus_signal(job: Job) -> None:
    """A script that dies of SIGKILL makes pod 0 exit 137, as Slurm reports it."""
    pod0, _ = job.run("#!/bin/sh\nkill -9 $$\n")
    assert pod0.rc == 137


def test_batch_script_environment(job: Job) -> None:
    """The script runs in SFED_CHDIR with SLURM_PROCID/NODEID=0 and its own SLURM_TASK_PID."""
    pod0, _ = job.run(
        '#!/bin/sh\necho "$(pwd) $SLURM_PROCID $SLURM_NODEID $((SLURM_TASK_PID == $$))"\n'
    )
    lines = pod0.stdout.splitlines()
    assert lines[0] == f"{job.workdir} 0 0 1"


def test_batch_script_finds_the_shims(job: Job) -> None:
    """srun and scontrol on the script's PATH are the shims in $SFED_DIR/bin."""
    pod0, _ = job.run("#!/bin/sh\ncommand -v srun; command -v scontrol\n")
    lines = pod0.stdout.splitlines()
    assert lines == [str(job.sfed_dir / "bin" / name) for name in ("srun", "scontrol")]


def test_missing_chdir_warns_and_uses_tmp(job: Job) -> None:
    """A SFED_CHDIR that does not exist: a warning, and the script runs in /tmp like slurmd's."""
    pod0, _ = job.run("#!/bin/sh\npwd\n", SFED_CHDIR="/nonexistent/dir")
    assert pod0.stdout == "/tmp\n"
    assert "couldn't chdir to `/nonexistent/dir' (SFED_CHDIR)" in pod0.stderr


def test_stdout_file_gets_stdout_and_stderr(job: Job, tmp_path: Path) -> None:
    """SFED_STDOUT alone receives both streams, after what the file held."""
    out = tmp_path / "slurm-7.out"
    out.write_text("earlier\n")
    job.run(BOTH_STREAMS, SFED_STDOUT=str(out))
    assert out.read_text() == "earlier\nto-out\nto-err\n"


def test_pod_log_keeps_its_streams_with_an_output_file(job: Job, tmp_path: Path) -> None:
    """With SFED_STDOUT, the pod log still gets stdout and stderr apart."""
    pod0, _ = job.run(BOTH_STREAMS, SFED_STDOUT=str(tmp_path / "slurm-7.out"))
    assert (pod0.stdout, pod0.stderr) == ("to-out\n", "to-err\n")


def test_stderr_file_gets_only_stderr(job: Job, tmp_path: Path) -> None:
    """With SFED_STDERR too, each file gets its own stream."""
    out, err = tmp_path / "o", tmp_path / "e"
    job.run("#!/bin/sh\necho to-out\necho to-err >&2\n", SFED_STDOUT=str(out), SFED_STDERR=str(err))
    assert (out.read_text(), err.read_text()) == ("to-out\n", "to-err\n")


def test_unopenable_output_file_warns_and_runs(job: Job) -> None:
    """An output file that cannot be opened: a warning, the script still runs."""
    pod0, _ = job.run("#!/bin/sh\necho ran\n", SFED_STDOUT="/nonexistent/dir/out")
    assert (pod0.rc, pod0.stdout) == (0, "ran\n")
    assert "cannot open /nonexistent/dir/out (SFED_STDOUT)" in pod0.stderr


def test_non_utf8_script_runs_byte_identical(job: Job) -> None:
    """A script with non-UTF-8 bytes runs unchanged: it prints itself byte for byte."""
    script = b'#!/bin/sh\n# caf\xe9 \xff\xfe\ncat "$0"\nprintf "\\377\\000\\n"\n'
    pod0, _ = job.run(script)
    assert pod0.out == script + b"\xff\x00\n"


def test_script_without_shebang_runs_with_sh(job: Job) -> None:
    """A script without "#!" is run by /bin/sh."""
    pod0, _ = job.run("echo via-sh\n")
    assert (pod0.rc, pod0.stdout) == (0, "via-sh\n")


def test_pod0_gives_up_when_a_peer_never_answers(job: Job) -> None:
    """Without pod 1, pod 0 exits 1 after SFED_STARTUP_TIMEOUT_S naming the silent node."""
    pod0 = job.start(0, SFED_STARTUP_TIMEOUT_S="2").finish()
    assert pod0.rc == 1
    assert f"the agent of node {NODES[1]} (index 1) did not answer" in pod0.stderr
    assert "SFED_STARTUP_TIMEOUT_S" in pod0.stderr
