"""Per-pool node bookkeeping for one placement pass: static capacity and a working copy of
what is free. Internal to `scheduler.placement`.

A request's shape is `(nodes, gpus, cpus, mem)`: how many distinct nodes, and what each of
them must give (`mem` None = no memory requirement, then memory is neither checked nor taken).
A request with a GPU type or a constraint also has a `NodeMatch` (None otherwise): only the
nodes it accepts count, and it is judged on their own `FreeNodes` (`PoolNodes.matching`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import islice

from scheduler.domain import JobRequest, NodeSnapshot
from scheduler.placement import reasons
from scheduler.placement.features import NodeMatch, match_of

__all__ = ["MAX_LEVEL", "Capacity", "FreeNodes", "PoolNodes", "Shape", "shape_of"]

Shape = tuple[int, int, int, int | None]


def shape_of(request: JobRequest) -> Shape:
    return (request.nodes, request.gpus_per_node, request.cpus_per_node, request.mem_per_node_mb)


_Kind = tuple[int, int, int]  # a node's total GPUs, CPUs and memory


class Capacity:
    """What a pool's nodes hold in total (all of them, schedulable or not: they may come back).

    Nodes are grouped by their (GPUs, CPUs, memory) totals, and by GPU type and features:
    pools are mostly homogeneous, so asking "could this shape ever run here" costs a few
    comparisons, not one per node.
    """

    __slots__ = ("by_match", "classes", "kinds", "max_cpus", "max_gpus", "max_mem", "node_count")

    def __init__(self, nodes: Sequence[NodeSnapshot]) -> None:
        classes = Counter(
            (n.gpu_type, n.features, n.gpus_total, n.cpus_total, n.mem_total_mb) for n in nodes
        )
        self.classes = sorted(classes.items())
        kinds: Counter[_Kind] = Counter()
        for (_, _, g, c, m), count in self.classes:
            kinds[(g, c, m)] += count
        self.kinds = sorted(kinds.items())
        self.node_count = len(nodes)
        self.max_gpus = max((n.gpus_total for n in nodes), default=0)
        self.max_cpus = max((n.cpus_total for n in nodes), default=0)
        self.max_mem = max((n.mem_total_mb for n in nodes), default=0)
        # Per match: the totals of the nodes it accepts, or why it accepts none (any shape).
        self.by_match: dict[NodeMatch, _Matched | str] = {}

    def never(self, pool: str, shape: Shape, match: NodeMatch | None = None) -> str | None:
        """Why the shape could not run here even with every node empty and up, else None;
        with a match, on the nodes it accepts only."""
        if match is None:
            return _never(
                pool, shape, self.kinds, self.node_count, self.max_gpus, self.max_cpus, self.max_mem
            )
        found = self.by_match.get(match)
        if found is None:
            found = self.by_match[match] = self._matched(pool, match)
        if isinstance(found, str):
            return found
        return _never(pool, shape, *found)

    def _matched(self, pool: str, match: NodeMatch) -> _Matched | str:
        typed = features = False
        kinds: list[tuple[_Kind, int]] = []
        for (gpu_type, node_features, g, c, m), count in self.classes:
            has_type = match.gpu_type is None or gpu_type == match.gpu_type
            has_features = match.constraint is None or match.constraint.satisfied_by(node_features)
            typed = typed or has_type
            features = features or has_features
            if has_type and has_features:
                kinds.append(((g, c, m), count))
        if not kinds:  # name what is missing: the type, the features, or both on one node
            return reasons.unmatched(
                pool, match.words(gpu_type=not typed or features, features=not features or typed)
            )
        return (
            kinds,
            sum(count for _, count in kinds),
            max(g for (g, _, _), _ in kinds),
            max(c for (_, c, _), _ in kinds),
            max(m for (_, _, m), _ in kinds),
            match.words(),
        )


# The nodes a match accepts: their kinds with counts, how many, the largest GPUs, CPUs and
# memory, and the match's words.
_Matched = tuple[list[tuple[_Kind, int]], int, int, int, int, tuple[str, ...]]


def _never(
    pool: str,
    shape: Shape,
    kinds: Iterable[tuple[_Kind, int]],
    node_count: int,
    max_gpus: int,
    max_cpus: int,
    max_mem: int,
    match: Sequence[str] = (),
) -> str | None:
    nodes, gpus, cpus, mem = shape
    with_gpus = with_cpus = with_mem = 0
    for (g, c, m), count in kinds:
        if g >= gpus:
            with_gpus += count
            if c >= cpus:
                with_cpus += count
                if mem is None or m >= mem:
                    with_mem += count
    return reasons.never(
        pool, nodes, gpus, cpus, mem,
        node_count=node_count,
        max_gpus=max_gpus, with_gpus=with_gpus,
        max_cpus=max_cpus, with_cpus=with_cpus,
        max_mem=max_mem, with_mem=with_mem,
        match=match,
    )  # fmt: skip


# Free-GPU buckets per pool: nodes reporting more free GPUs than this share the last bucket,
# so an absurd report (a billion free GPUs) costs a list scan, not a billion-long list.
MAX_LEVEL = 1024

# Counts are brought up to date by replaying up to this many node changes (more in big pools
# when memory is asked: a fresh count then visits nodes); past that, counting afresh is cheaper.
_REPLAY = 16

# A node's place in its bucket: free GPUs, free CPUs, name, index. Sorted, this is best-fit
# order, and the nodes with enough free CPUs are a contiguous tail.
_Key = tuple[int, int, str, int]


class FreeNodes:
    """A mutable copy of what a pool's schedulable nodes have free, shrinking as jobs are
    placed during a pass.

    Nodes are kept in buckets by free-GPU level, each sorted by (free CPUs, name), with
    `at_least[g]` = how many nodes have >= g free GPUs. So "not enough GPUs" is answered
    without looking at a node, "how many also have c free CPUs" with one bisection per
    level, and the best-fitting nodes are the first ones found.

    It holds all of a pool's schedulable nodes, or the subset a GPU type or constraint
    accepts (`ids`: each node's index among all of them); the copies of one pool form a
    `family`, and a take through any of them is made in every copy that holds the node.
    """

    __slots__ = (
        "at_least", "capped", "changes", "cpus", "family", "gpus", "ids", "levels", "mem",
        "names", "top", "where",
    )  # fmt: skip

    def __init__(
        self,
        names: list[str],
        gpus: list[int],
        cpus: list[int],
        mem: list[int],
        ids: Sequence[int] | None = None,
    ) -> None:
        self.names, self.gpus, self.cpus, self.mem = names, gpus, cpus, mem
        self.ids = ids  # None: all of the pool's schedulable nodes, in their order
        self.where = None if ids is None else {node: i for i, node in enumerate(ids)}
        self.family = [self]
        most = max([0, *self.gpus])
        self.top = top = min(most, MAX_LEVEL)  # the last bucket: top free GPUs, or more
        self.capped = most > top
        self.levels: list[list[_Key]] = [[] for _ in range(top + 1)]
        for i, free in enumerate(self.gpus):
            if free >= 0:  # a node with negative free GPUs fits nothing (requests ask >= 0)
                self.levels[min(free, top)].append((free, self.cpus[i], self.names[i], i))
        for keys in self.levels:
            keys.sort()
        self.at_least = [0] * (top + 1)  # exact up to top
        running = 0
        for level in range(top, -1, -1):
            running += len(self.levels[level])
            self.at_least[level] = running
        # Every change to a node, flat, six numbers each: old free GPUs, CPUs, memory, then
        # new. Counts made earlier are brought up to date from the changes since, not by a
        # new scan. `len(changes)` is the version of this copy.
        self.changes: list[int] = []

    @classmethod
    def of(cls, nodes: Sequence[NodeSnapshot]) -> FreeNodes:
        """The schedulable ones of `nodes`, in their order."""
        usable = [n for n in nodes if n.schedulable]
        return cls(
            [n.name for n in usable],
            [n.gpus_free for n in usable],
            [n.cpus_free for n in usable],
            [n.mem_free_mb for n in usable],
        )

    def subset(self, ids: Sequence[int]) -> FreeNodes:
        """A copy of the nodes `ids` (indexes into this copy, which must hold them all: the
        family's first), as free as they are now, in the family from now on."""
        found = FreeNodes(
            [self.names[i] for i in ids],
            [self.gpus[i] for i in ids],
            [self.cpus[i] for i in ids],
            [self.mem[i] for i in ids],
            ids,
        )
        found.family = self.family
        self.family.append(found)
        return found

    def with_gpus(self, gpus: int) -> int:
        """How many nodes have at least `gpus` free GPUs."""
        if gpus <= self.top:
            return self.at_least[gpus]
        if not self.capped:
            return 0
        return sum(1 for key in self.levels[self.top] if key[0] >= gpus)

    def _runs(self, gpus: int, cpus: int) -> list[tuple[list[_Key], int]]:
        """Where the nodes with >= `gpus` free GPUs and >= `cpus` free CPUs are, in best-fit
        order: (sorted keys, index of the first such node); all keys from there qualify."""
        top, levels = self.top, self.levels
        runs = []
        for level in range(gpus, top if self.capped else top + 1):
            keys = levels[level]
            if keys:
                runs.append((keys, bisect_left(keys, (level, cpus))))
        if self.capped:  # the last bucket mixes GPU levels: filter it
            odd = [key for key in levels[top] if key[0] >= gpus and key[1] >= cpus]
            runs.append((odd, 0))
        return runs

    def counts(self, shape: Shape) -> tuple[int, int, int]:
        """How many nodes have the shape's free GPUs, also its CPUs, also its memory.

        When fewer than `nodes` have the GPUs the other two are reported as 0: the reason
        only names GPUs then, and the shape does not fit either way.
        """
        nodes, gpus, cpus, mem = shape
        with_gpus = self.with_gpus(gpus)
        if with_gpus < nodes:
            return (with_gpus, 0, 0)
        runs = self._runs(gpus, cpus)
        with_cpus = 0
        for keys, start in runs:
            with_cpus += len(keys) - start
        if mem is None:
            return (with_gpus, with_cpus, with_cpus)
        free_mem = self.mem
        with_mem = 0
        for keys, start in runs:
            for key in islice(keys, start, None):
                if free_mem[key[3]] >= mem:
                    with_mem += 1
        return (with_gpus, with_cpus, with_mem)

    def recount(
        self, shape: Shape, counts: tuple[int, int, int], since: int
    ) -> tuple[int, int, int]:
        """`counts` (as returned by `counts` when `changes` had `since` entries) brought up to
        date: the same as `counts(shape)` now, usually for less work."""
        nodes, gpus, cpus, mem = shape
        if counts[0] < nodes:  # stays short of GPUs for good: resources only shrink
            return self.counts(shape)
        changes = self.changes
        # Replaying a change costs about as much as looking at eight nodes; without memory a
        # fresh count is one bisection per GPU level.
        replay = _REPLAY if mem is None else max(_REPLAY, len(self.gpus) // 8)
        if len(changes) - since > 6 * replay:
            return self.counts(shape)
        with_gpus, with_cpus, with_mem = counts
        for i in range(since, len(changes), 6):
            old_gpus, old_cpus, old_mem, new_gpus, new_cpus, new_mem = changes[i : i + 6]
            if old_gpus < gpus:
                continue  # counted nowhere before, so nowhere now
            gone = new_gpus < gpus
            if gone:
                with_gpus -= 1
            if old_cpus < cpus:
                continue
            if gone or new_cpus < cpus:
                with_cpus -= 1
                if mem is None or old_mem >= mem:
                    with_mem -= 1
            elif mem is not None and old_mem >= mem > new_mem:
                with_mem -= 1
        if with_gpus < nodes:
            return (with_gpus, 0, 0)
        return (with_gpus, with_cpus, with_mem)

    def pick(self, shape: Shape) -> list[int] | None:
        """Best fit: the fitting nodes with the fewest free GPUs, then CPUs, then by name, so
        big holes stay for big jobs. None when fewer than `nodes` fit."""
        nodes, gpus, cpus, mem = shape
        if self.with_gpus(gpus) < nodes:
            return None
        free_mem = self.mem
        chosen: list[int] = []
        for keys, start in self._runs(gpus, cpus):
            for key in islice(keys, start, None):
                if mem is None or free_mem[key[3]] >= mem:
                    chosen.append(key[3])
                    if len(chosen) == nodes:
                        return chosen
        return None

    def take(self, chosen: Sequence[int], shape: Shape) -> None:
        """Deduct one node's share of the shape from each chosen node, in every copy of the
        family that holds it."""
        _, gpus, cpus, mem = shape
        family, ids = self.family, self.ids
        for i in chosen:
            old_mem = self.mem[i]
            new = (
                self.gpus[i] - gpus,
                self.cpus[i] - cpus,
                old_mem if mem is None else old_mem - mem,
            )
            if len(family) == 1:
                self._set(i, *new)
                continue
            node = i if ids is None else ids[i]
            for copy in family:
                where = copy.where
                at = node if where is None else where.get(node)
                if at is not None:
                    copy._set(at, *new)

    def _set(self, i: int, new_gpus: int, new_cpus: int, new_mem: int) -> None:
        old_gpus, old_cpus, old_mem = self.gpus[i], self.cpus[i], self.mem[i]
        self.changes += (old_gpus, old_cpus, old_mem, new_gpus, new_cpus, new_mem)
        top, levels = self.top, self.levels
        was, now = min(old_gpus, top), min(new_gpus, top)
        keys = levels[was]
        del keys[bisect_left(keys, (old_gpus, old_cpus, self.names[i], i))]
        insort(levels[now], (new_gpus, new_cpus, self.names[i], i))
        at_least = self.at_least
        for level in range(now + 1, was + 1):
            at_least[level] -= 1
        self.gpus[i], self.cpus[i], self.mem[i] = new_gpus, new_cpus, new_mem


class PoolNodes:
    """What one pool's schedulable nodes have free during a pass: `all` of them, and the
    subsets that GPU types and constraints accept, made when first asked for (as free as the
    pass left them) and kept in step by `FreeNodes.take`."""

    __slots__ = ("all", "by_kind", "by_match", "nodes", "subsets")

    def __init__(self, nodes: Sequence[NodeSnapshot]) -> None:
        self.all = FreeNodes.of(nodes)
        self.nodes = nodes
        self.by_kind: dict[tuple[str, tuple[str, ...]], list[int]] | None = None
        self.by_match: dict[NodeMatch, FreeNodes] = {}
        self.subsets: dict[tuple[int, ...], FreeNodes] = {}

    def matching(self, match: NodeMatch | None) -> FreeNodes:
        """The nodes `match` accepts (all of them for None)."""
        if match is None:
            return self.all
        found = self.by_match.get(match)
        if found is None:
            if self.by_kind is None:  # schedulable nodes by GPU type and features, made once
                self.by_kind = {}
                usable = (n for n in self.nodes if n.schedulable)
                for i, node in enumerate(usable):
                    self.by_kind.setdefault((node.gpu_type, node.features), []).append(i)
            ids = sorted(
                i
                for (gpu_type, features), members in self.by_kind.items()
                if match.accepts(gpu_type, features)
                for i in members
            )
            if len(ids) == len(self.all.names):
                found = self.all
            else:
                key = tuple(ids)
                found = self.subsets.get(key)
                if found is None:
                    found = self.subsets[key] = self.all.subset(key)
            self.by_match[match] = found
        return found

    def reserve(self, request: JobRequest) -> bool:
        """Take a request's resources if it fits (same best fit); False when it no longer does."""
        shape = shape_of(request)
        free = self.matching(match_of(request.gpu_type, request.constraint))
        chosen = free.pick(shape)
        if chosen is None:
            return False
        free.take(chosen, shape)
        return True
