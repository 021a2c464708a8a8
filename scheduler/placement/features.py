"""GPU types and node features: which nodes a request may use. Pure.

Slurm's rules, as far as a federation can keep them on every pool:

* `--gres=gpu:TYPE:N` asks for GPUs of that type: only nodes whose GPUs are of that type
  count. An untyped request (`--gres=gpu:N`) may use GPUs of any type, as in Slurm.
* `-C/--constraint` asks for node features, in one of the common forms: one feature (`a100`),
  all of several (`a100&ib`) or any of several (`a100|h100`, each node any one of them).
  Slurm's other forms (matching OR in brackets, counts such as `a*2`, parentheses, negation,
  and `&` mixed with `|`) are refused by name: a federation cannot keep them across pools.

`parse_constraint` is also the API's check of the field (scheduler.service.validate); the
front door's shim applies the same grammar (plugins/job_submit.lua).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

__all__ = [
    "FEATURE",
    "GPU_TYPE",
    "Constraint",
    "NodeMatch",
    "match_of",
    "parse_constraint",
]

#: A node feature's name (Slurm's features, Kubernetes label values): what a constraint names.
FEATURE = re.compile(r"[A-Za-z0-9_.:+-]+")
#: A GPU type's name (Slurm's gres types such as `a100` or `a100_3g.20gb`).
GPU_TYPE = re.compile(r"[A-Za-z0-9_.-]+")

# Slurm's constraint forms that are not supported, each with its name for the refusal.
_FORMS = (
    ("[", "matching OR in brackets ([a|b])"),
    ("]", "matching OR in brackets ([a|b])"),
    ("*", "feature counts (a*2)"),
    ("(", "parentheses"),
    (")", "parentheses"),
    ("!", "negation (!a)"),
    (",", "commas (use & for all of several features)"),
)


@dataclass(frozen=True, slots=True)
class Constraint:
    """A parsed -C: every one of `names` (`any_of` False) or at least one of them."""

    text: str
    names: tuple[str, ...]
    any_of: bool = False

    def satisfied_by(self, features: Collection[str]) -> bool:
        if self.any_of:
            return any(name in features for name in self.names)
        return all(name in features for name in self.names)


def parse_constraint(text: str) -> Constraint:
    """`a`, `a&b&...` or `a|b|...` as a Constraint; ValueError naming any other form."""
    for char, form in _FORMS:
        if char in text:
            raise ValueError(
                f"{form} is not supported in {text[:80]!r}: give one feature, a&b (all) or a|b (any)"
            )
    if "&" in text and "|" in text:
        raise ValueError(
            f"& mixed with | is not supported in {text[:80]!r}: use one operator, a&b or a|b"
        )
    any_of = "|" in text
    names = tuple(text.split("|" if any_of else "&"))
    for name in names:
        if not FEATURE.fullmatch(name):
            shown = name[:80]
            what = "an empty feature name" if not name else f"{shown!r} is not a feature name"
            raise ValueError(
                f"{what} in {text[:80]!r}: names are letters, digits and _ . : + - only"
            )
    return Constraint(text, names, any_of)


@dataclass(frozen=True, slots=True)
class NodeMatch:
    """What a request asks of a node beyond its resources: a GPU type, node features."""

    gpu_type: str | None = None
    constraint: Constraint | None = None
    # The placement core looks matches up in dictionaries many times per pass: hashed once.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = None if self.constraint is None else self.constraint.text
        object.__setattr__(self, "_hash", hash((self.gpu_type, text)))

    def __hash__(self) -> int:
        return self._hash

    def accepts(self, gpu_type: str, features: Collection[str]) -> bool:
        if self.gpu_type is not None and gpu_type != self.gpu_type:
            return False
        return self.constraint is None or self.constraint.satisfied_by(features)

    def words(self, *, gpu_type: bool = True, features: bool = True) -> tuple[str, ...]:
        """How reasons name it: `GPU type a100`, `features a100&ib`."""
        out = []
        if gpu_type and self.gpu_type is not None:
            out.append(f"GPU type {self.gpu_type}")
        if features and self.constraint is not None:
            out.append(f"features {self.constraint.text}")
        return tuple(out)


def match_of(gpu_type: str | None, constraint: str | None) -> NodeMatch | None:
    """The request's NodeMatch, None when it asks neither a GPU type nor features."""
    if gpu_type is None and constraint is None:
        return None
    parsed = None
    if constraint is not None:
        try:
            parsed = parse_constraint(constraint)
        except ValueError:  # a request that skipped validation: it matches no node
            parsed = Constraint(constraint, (), any_of=True)
    return NodeMatch(gpu_type, parsed)
