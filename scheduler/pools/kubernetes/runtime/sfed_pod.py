#!/usr/bin/env python3
"""sfed in-pod runtime: makes the pods of a Kubernetes Indexed Job behave like a Slurm allocation.

Runs as `python3 /sfed/sfed_pod.py` in every pod (stdlib only, Python >= 3.8); the `srun` and
`scontrol` shims in $SFED_DIR/bin import this module and call srun_main() / scontrol_main().

The runtime's modules lie side by side in $SFED_DIR (a ConfigMap holds no directories) and import
each other relatively, as one package that this module makes of the directory it is in:
  roles.py         what each pod does: an agent everywhere, the batch step on pod 0
  config.py        the environment contract, validated
  agent.py         the agent: runs the tasks of srun steps
  wire.py          the wire protocol between srun (and pod 0) and the agents
  batch.py         the batch step: waits for the agents, runs the script, ends the job
  srun.py          srun: runs a step's tasks through the agents
  srun_options.py  srun's command line
  srun_layout.py   where a step's tasks run, and their environment
  scontrol.py      scontrol, for "scontrol show hostnames"
  hostlist.py      Slurm hostlists
  procs.py         the processes the runtime starts, the signals the pod receives
  output.py        writing to file descriptors, one-line messages
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

PACKAGE = "sfed_runtime"  # the name the modules next to this file are imported under


def runtime_module(name: str) -> ModuleType:
    """The runtime's module `name` (e.g. "srun"), from the directory this file is in."""
    if PACKAGE not in sys.modules:
        # realpath: a ConfigMap's files are symlinks into the directory that holds them all.
        spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
        spec.submodule_search_locations = [os.path.dirname(os.path.realpath(__file__))]
        sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
    return importlib.import_module(f"{PACKAGE}.{name}")


def main() -> int:
    """A pod of the job; its exit status."""
    status: int = runtime_module("roles").main()
    return status


def srun_main() -> None:
    sys.exit(runtime_module("srun").run_srun(sys.argv[1:]))


def scontrol_main() -> None:
    sys.exit(runtime_module("scontrol").run_scontrol(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
