"""sfed_pod.py and the runtime as a whole: its imports, its Python version, its mount."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.pools.kubernetes.runtime.conftest import RUNTIME, Job, oldest_python

MODULES = sorted(path.stem for path in RUNTIME.glob("*.py") if path.name != "sfed_pod.py")


@pytest.mark.parametrize("name", ["sfed_pod.py", *(f"{m}.py" for m in MODULES), "srun", "scontrol"])
def test_runtime_imports_only_the_standard_library(name: str) -> None:
    """The image may have nothing but Python: the runtime imports the stdlib and itself only."""
    tree = ast.parse((RUNTIME / name).read_text(), name)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {
        node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    outside = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
    assert outside <= {"sfed_pod"}  # what the shims import, from $SFED_DIR


@pytest.mark.skipif(oldest_python() is None, reason="no Python 3.8 on this machine")
def test_every_module_imports_under_python_3_8() -> None:
    """Python 3.8, the oldest the runtime supports, imports every module through sfed_pod.py."""
    code = "import sys, sfed_pod\nfor name in sys.argv[1:]:\n    sfed_pod.runtime_module(name)\n"
    python = oldest_python()
    assert python is not None
    result = subprocess.run(
        [python, "-c", code, *MODULES],
        cwd=RUNTIME,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(RUNTIME)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_runtime_runs_from_a_kubelet_style_mount(make_job: Callable[..., Job]) -> None:
    """Files mounted as symlinks into ..data, as the kubelet does: the modules and shims load."""
    job = make_job(symlinks=True)
    pod0, pod1 = job.run("#!/bin/sh\nsrun -N 2 scontrol show hostnames a-[1-2] | sort\n")
    assert (pod0.rc, pod1.rc, pod0.stdout) == (0, 0, "a-1\na-1\na-2\na-2\n"), pod0.stderr
