"""srun's command line.

srun options honoured inside a batch script on a Kubernetes pool:
  -n/--ntasks, -N/--nodes, --ntasks-per-node, -c/--cpus-per-task, -l/--label,
  -K/--kill-on-bad-exit, -u/--unbuffered (output is never buffered anyway), -J/--job-name,
  --export=ALL|NONE|VAR[,VAR=value...], --mpi=none.
  Values as --opt=value, --opt value, -n4 or -n 4; short flags combine (-lK). Options end at the
  first word that is not an option, or at "--".
Rejected (srun exits 1 with one line naming the option): every other srun option, e.g.
  --gpus-per-task, --exclusive, -w/--nodelist, --mem, --pty, --het-group, --multi-prog,
  --mpi=pmix, and unique-prefix abbreviations of long options (write --ntasks, not --ntask).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


SUPPORTED_SRUN = (
    "-n/--ntasks, -N/--nodes, --ntasks-per-node, -c/--cpus-per-task, -l/--label, "
    "-K/--kill-on-bad-exit, -u/--unbuffered, -J/--job-name, --export, --mpi=none"
)


class UsageError(Exception):
    """A bad srun command line."""


class SrunOptions:
    """What srun's command line asked for."""

    def __init__(self) -> None:
        self.ntasks: int | None = None
        self.nodes: int | None = None
        self.ntasks_per_node: int | None = None
        self.cpus_per_task: int | None = None
        self.label = False
        self.kill_on_bad_exit = False
        self.job_name: str | None = None
        self.export = "ALL"
        self.command: list[str] = []


# long name -> (short letter or "", takes a value)
_SRUN_OPTIONS: dict[str, tuple[str, bool]] = {
    "ntasks": ("n", True),
    "nodes": ("N", True),
    "ntasks-per-node": ("", True),
    "cpus-per-task": ("c", True),
    "label": ("l", False),
    "kill-on-bad-exit": ("K", False),
    "unbuffered": ("u", False),
    "job-name": ("J", True),
    "export": ("", True),
    "mpi": ("", True),
}
_SRUN_SHORT = {short: long for long, (short, _) in _SRUN_OPTIONS.items() if short}


def _unsupported(option: str) -> UsageError:
    return UsageError(
        f"option {option} is not supported on Kubernetes pools (sfed); supported: {SUPPORTED_SRUN}"
    )


def _positive(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise UsageError(f"invalid --{name} value {value!r}: a positive integer is needed")
    return number


def _set_option(opts: SrunOptions, name: str, value: str | None) -> None:
    if name == "ntasks":
        opts.ntasks = _positive(name, value or "")
    elif name == "nodes":
        # Slurm allows a range "min-max"; a fixed count is all a step on fixed pods needs.
        opts.nodes = _positive(name, value or "")
    elif name == "ntasks-per-node":
        opts.ntasks_per_node = _positive(name, value or "")
    elif name == "cpus-per-task":
        opts.cpus_per_task = _positive(name, value or "")
    elif name == "job-name":
        opts.job_name = value or ""
    elif name == "export":
        opts.export = value or ""
    elif name == "mpi":
        if value != "none":
            raise _unsupported(f"--mpi={value}")
    elif name == "label":
        opts.label = True
    elif name == "kill-on-bad-exit":
        opts.kill_on_bad_exit = True
    # unbuffered: nothing to do, output is relayed as it arrives


def _next_word(args: Sequence[str], i: int, option: str) -> str:
    """args[i], the value of `option` given as a word of its own."""
    if i >= len(args):
        raise UsageError(f"option {option} requires an argument")
    return args[i]


def parse_srun_args(args: Sequence[str]) -> SrunOptions:
    """Parses srun's command line; raises UsageError with srun's message."""
    opts = SrunOptions()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg.startswith("--"):
            name, has_value, value = arg[2:].partition("=")
            if name not in _SRUN_OPTIONS:
                raise _unsupported("--" + name)
            if _SRUN_OPTIONS[name][1]:
                if not has_value:
                    i += 1
                    value = _next_word(args, i, "--" + name)
                _set_option(opts, name, value)
            elif has_value:
                raise UsageError(f"option --{name} does not take an argument")
            else:
                _set_option(opts, name, None)
            i += 1
            continue
        if not arg.startswith("-") or arg == "-":
            break
        j = 1
        while j < len(arg):
            letter = arg[j]
            if letter not in _SRUN_SHORT:
                raise _unsupported("-" + letter)
            name = _SRUN_SHORT[letter]
            if _SRUN_OPTIONS[name][1]:
                value = arg[j + 1 :]
                if not value:
                    i += 1
                    value = _next_word(args, i, "-" + letter)
                _set_option(opts, name, value)
                break
            _set_option(opts, name, None)
            j += 1
        i += 1
    opts.command = list(args[i:])
    if not opts.command:
        raise UsageError("no command to run was given")
    return opts
