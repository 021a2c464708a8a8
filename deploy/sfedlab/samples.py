"""Capture sample Slurm 22.05 outputs (squeue/sinfo --json, scontrol text) for parser tests.

Usage (from deploy/): python3 -m sfedlab.samples OUT_DIR
Starts a private lab (own ports, temp dir), runs jobs on a 2-node cluster, writes files, stops it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import LabError
from .lab import Lab
from .spec import ClusterSpec

SPEC = ClusterSpec("alpha", 2, 4, 16, 64000, ctld_port=18817, node_port_base=18900)

SCRIPT_OK = """#!/bin/bash
#SBATCH --job-name=sample-2node
#SBATCH --nodes=2
#SBATCH --gres=gpu:2
#SBATCH --comment=sfed:sample-2node
srun hostname
sleep 8
"""
SCRIPT_FAIL = "#!/bin/bash\n#SBATCH --job-name=sample-fail\nexit 3\n"
SCRIPT_CANCEL = "#!/bin/bash\n#SBATCH --job-name=sample-cancel\nsleep 300\n"


def _run(lab: Lab, *argv: str) -> str:
    res = subprocess.run(
        list(argv), env=lab.env("alpha"), capture_output=True, text=True, check=False, timeout=30
    )
    if res.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {res.stderr.strip()}")
    return res.stdout


def _state(lab: Lab, job: str) -> str:
    out = _run(lab, "scontrol", "show", "job", job)
    return out.split("JobState=", 1)[1].split()[0]


def _wait(lab: Lab, job: str, states: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _state(lab, job) not in states:
        if time.monotonic() > deadline:
            raise LabError(f"job {job} not in {states} after {timeout}s")
        time.sleep(0.2)


def capture(lab: Lab, out: Path, work: Path) -> list[Path]:
    """Run the sample jobs on `lab`'s alpha and write outputs into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(name: str, text: str) -> None:
        (out / name).write_text(text if text.endswith("\n") else text + "\n")
        written.append(out / name)

    jobs = {}
    for key, script in (("ok", SCRIPT_OK), ("fail", SCRIPT_FAIL), ("cancel", SCRIPT_CANCEL)):
        path = work / f"{key}.sh"
        path.write_text(script)
        jobs[key] = _run(lab, "sbatch", "--parsable", f"--chdir={work}", str(path)).strip()
    _wait(lab, jobs["ok"], {"RUNNING"})
    _wait(lab, jobs["fail"], {"FAILED"})
    _wait(lab, jobs["cancel"], {"RUNNING"})
    time.sleep(1)
    save("lab-2node-squeue-running.json", _run(lab, "squeue", "--json"))
    save("lab-2node-sinfo-running.json", _run(lab, "sinfo", "--json"))
    save(
        "lab-2node-scontrol-show-job-running.txt",
        _run(lab, "scontrol", "-d", "show", "job", jobs["ok"]),
    )
    save("lab-2node-scontrol-show-node-running.txt", _run(lab, "scontrol", "-d", "show", "node"))
    _run(lab, "scancel", jobs["cancel"])
    _wait(lab, jobs["ok"], {"COMPLETED"})
    _wait(lab, jobs["cancel"], {"CANCELLED"})
    save("lab-2node-squeue-completed.json", _run(lab, "squeue", "--json"))
    save("lab-2node-sinfo-completed.json", _run(lab, "sinfo", "--json"))
    save(
        "lab-2node-scontrol-show-job-completed.txt",
        _run(lab, "scontrol", "-d", "show", "job", jobs["ok"]),
    )
    return written


def main() -> int:
    """Capture the samples into sys.argv[1]."""
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="sfedlab-samples-") as tmp:
        lab = Lab(Path(tmp) / "lab", clusters=(SPEC,), ssh_port=None)
        try:
            lab.up()
            for path in capture(lab, out, Path(tmp)):
                print(path)
        except LabError as e:
            print(f"samples: error: {e}", file=sys.stderr)
            return 1
        finally:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
