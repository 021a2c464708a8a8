"""Per-pool node bookkeeping for one placement pass: static capacity and a working copy of
what is free. Internal to `scheduler.placement`.

A request's shape is `(nodes, gpus, cpus, mem)`: how many distinct nodes, and what each of
them must give (`mem` None = no memory requirement, then memory is neither checked nor taken).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Sequence
from itertools import islice

from scheduler.domain import JobRequest, NodeSnapshot
from scheduler.placement import reasons

__all__ = ["MAX_LEVEL", "Capacity", "FreeNodes", "Shape", "shape_of"]

Shape = tuple[int, int, int, int | None]


def shape_of(request: JobRequest) -> Shape:
    return (request.nodes, request.gpus_per_node, request.cpus_per_node, request.mem_per_node_mb)


class Capacity:
    """What a pool's nodes hold in total (all of them, schedulable or not: they may come back).

    Nodes are grouped by their (GPUs, CPUs, memory) totals: pools are mostly homogeneous, so
    asking "could this shape ever run here" costs a few comparisons, not one per node.
    """

    __slots__ = ("kinds", "max_cpus", "max_gpus", "max_mem", "node_count")

    def __init__(self, nodes: Sequence[NodeSnapshot]) -> None:
        kinds = Counter((n.gpus_total, n.cpus_total, n.mem_total_mb) for n in nodes)
        self.kinds = sorted(kinds.items())
        self.node_count = len(nodes)
        self.max_gpus = max((n.gpus_total for n in nodes), default=0)
        self.max_cpus = max((n.cpus_total for n in nodes), default=0)
        self.max_mem = max((n.mem_total_mb for n in nodes), default=0)

    def never(self, pool: str, shape: Shape) -> str | None:
        """Why the shape could not run here even with every node empty and up, else None."""
        nodes, gpus, cpus, mem = shape
        with_gpus = with_cpus = with_mem = 0
        for (g, c, m), count in self.kinds:
            if g >= gpus:
                with_gpus += count
                if c >= cpus:
                    with_cpus += count
                    if mem is None or m >= mem:
                        with_mem += count
        return reasons.never(
            pool, nodes, gpus, cpus, mem,
            node_count=self.node_count,
            max_gpus=self.max_gpus, with_gpus=with_gpus,
            max_cpus=self.max_cpus, with_cpus=with_cpus,
            max_mem=self.max_mem, with_mem=with_mem,
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
    """

    __slots__ = ("at_least", "capped", "changes", "cpus", "gpus", "levels", "mem", "names", "top")

    def __init__(self, nodes: Sequence[NodeSnapshot]) -> None:
        usable = [n for n in nodes if n.schedulable]
        self.names = [n.name for n in usable]
        self.gpus = [n.gpus_free for n in usable]
        self.cpus = [n.cpus_free for n in usable]
        self.mem = [n.mem_free_mb for n in usable]
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
        # new scan. `len(changes)` is the pool's version.
        self.changes: list[int] = []

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
        """Deduct one node's share of the shape from each chosen node."""
        _, gpus, cpus, mem = shape
        top, levels, at_least = self.top, self.levels, self.at_least
        for i in chosen:
            old_gpus, old_cpus, old_mem = self.gpus[i], self.cpus[i], self.mem[i]
            new_gpus, new_cpus = old_gpus - gpus, old_cpus - cpus
            new_mem = old_mem if mem is None else old_mem - mem
            self.changes += (old_gpus, old_cpus, old_mem, new_gpus, new_cpus, new_mem)
            was, now = min(old_gpus, top), min(new_gpus, top)
            keys = levels[was]
            del keys[bisect_left(keys, (old_gpus, old_cpus, self.names[i], i))]
            insort(levels[now], (new_gpus, new_cpus, self.names[i], i))
            for level in range(now + 1, was + 1):
                at_least[level] -= 1
            self.gpus[i], self.cpus[i], self.mem[i] = new_gpus, new_cpus, new_mem

    def reserve(self, request: JobRequest) -> bool:
        """Take a request's resources if it fits (same best fit); False when it no longer does."""
        shape = shape_of(request)
        chosen = self.pick(shape)
        if chosen is None:
            return False
        self.take(chosen, shape)
        return True
