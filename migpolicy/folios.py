"""The data model of a migration: requests, folios and batches as numpy arrays.

A placement policy asks for page-level moves (:data:`REQUEST_DTYPE`: which
page, to which node, why); the replay turns them into a structured array of
:data:`FOLIO_DTYPE`, one row per folio, carrying the page, the reason and the
epoch through every stage. The batch stage turns that into a
:class:`BatchPlan` (the same rows in batch order, batch boundaries, and per
batch the engine and worker count); a batch never spans two epochs. The
pipeline answers per folio with a :data:`RESULT_DTYPE` row: moved or failed,
retries, and when it completed. Hooks receive and return arrays so that one
hook call prices thousands of folios; no list of Python objects is ever built
on the hot path.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from migpolicy.compiled import pricing_kernels, sum_runs, use_compiled

__all__ = [
    "ASYNC_REASONS",
    "BUSY",
    "FAILED",
    "FOLIO_DTYPE",
    "MOVED",
    "PINNED",
    "PMD_MAPPED",
    "REQUEST_DTYPE",
    "RESULT_DTYPE",
    "BatchPlan",
    "Reason",
    "consecutive_batches",
    "make_folios",
    "page_table_entries",
]


class Reason(enum.IntEnum):
    """Why a folio migrates: the kernel's ``enum migrate_reason`` (include/linux/migrate_mode.h).

    The kernel passes it to ``migrate_pages()``; copy-offload drivers and the
    ``auto`` engine selector may treat reasons differently (a promotion on a
    NUMA hint fault stalls the faulting task; a demotion by kswapd does not).
    """

    COMPACTION = 0
    MEMORY_FAILURE = 1
    MEMORY_HOTPLUG = 2
    SYSCALL = 3  # move_pages(2), migrate_pages(2)
    MEMPOLICY_MBIND = 4
    NUMA_MISPLACED = 5  # NUMA-balancing promotion on a hint fault
    CONTIG_RANGE = 6
    LONGTERM_PIN = 7
    DEMOTION = 8  # reclaim (kswapd) demoting to a slower tier
    DAMON = 9  # a DAMOS migrate_hot / migrate_cold action


#: Reasons whose migration runs in a kernel thread, not in the task that wants the
#: page: their wall time does not stall the program, their CPU time competes with it.
ASYNC_REASONS = frozenset({Reason.COMPACTION, Reason.DEMOTION, Reason.DAMON})

#: A placement policy's request: move ``page`` (dense page index) to node ``dst``.
REQUEST_DTYPE = np.dtype([("page", np.int64), ("dst", np.int16), ("reason", np.uint8)])

#: One row per folio: bytes, source and destination node, number of mappings
#: (processes mapping it), owning tenant (cgroup id), flag bits, and the
#: request it serves: page (dense index; -1 when no page is named), reason
#: (:class:`Reason`) and epoch (the replay window that asked for it).
FOLIO_DTYPE = np.dtype(
    [
        ("size", np.int64),
        ("page", np.int64),
        ("epoch", np.int64),
        ("src", np.int16),
        ("dst", np.int16),
        ("mapcount", np.int32),
        ("tenant", np.int32),
        ("flags", np.uint16),
        ("reason", np.uint8),
    ]
)

#: Result of one folio: ``status`` (:data:`MOVED` or :data:`FAILED`),
#: isolation ``retries``, and ``done_s``: seconds from the start of its epoch's
#: migration until its batch completed (batching delays the first folio of a
#: batch until the whole batch is copied and remapped). A failed folio's
#: ``done_s`` is when isolation gave up.
RESULT_DTYPE = np.dtype([("status", np.uint8), ("retries", np.int32), ("done_s", np.float64)])

#: The folio now lives on its destination node.
MOVED = np.uint8(0)
#: Isolation failed (pinned, or busy past the kernel's retries): the folio did not move.
FAILED = np.uint8(1)

#: The folio is mapped by one PMD entry (a THP) rather than by one PTE per base page.
PMD_MAPPED = np.uint16(1)
#: The folio is pinned (e.g. by DMA or GUP); migration fails permanently.
PINNED = np.uint16(2)
#: The folio is transiently busy (locked, under writeback); migration is retried.
BUSY = np.uint16(4)


def make_folios(
    size: int,
    count: int,
    *,
    src: int = 0,
    dst: int = 1,
    tenant: int = 0,
    mapcount: int = 1,
    pmd_size: int = 2 << 20,
    reason: Reason = Reason.SYSCALL,
) -> np.ndarray:
    """Return ``count`` identical folios of ``size`` bytes moving ``src`` → ``dst``.

    Folios of exactly ``pmd_size`` bytes are flagged :data:`PMD_MAPPED`, as a
    THP is; smaller (mTHP) folios are mapped by one PTE per base page. They
    name no page (``page`` is -1), all belong to epoch 0 and move for
    ``reason`` (default: a ``move_pages(2)`` call).
    """
    folios = np.zeros(count, dtype=FOLIO_DTYPE)
    folios["size"] = size
    folios["page"] = -1
    folios["reason"] = reason
    folios["src"] = src
    folios["dst"] = dst
    folios["tenant"] = tenant
    folios["mapcount"] = mapcount
    if size == pmd_size:
        folios["flags"] = PMD_MAPPED
    return folios


def page_table_entries(folios: np.ndarray, base_page: int, *, mappings: bool = False
                       ) -> np.ndarray:
    """Return, per folio, the page-table entries one mapping of it uses.

    A PMD-mapped folio uses one entry; any other folio one PTE per base page.
    Unmapping and remapping cost grows with this number. With ``mappings``,
    the entries of all its mappings: times its ``mapcount`` (at least one).
    """
    power = base_page > 0 and base_page & (base_page - 1) == 0
    if use_compiled(len(folios)):
        return pricing_kernels().page_table_entries(
            folios["size"], folios["flags"], folios["mapcount"], mappings,
            int(base_page).bit_length() - 1 if power else -1, int(base_page), PMD_MAPPED)
    size = folios["size"]
    if power:
        ptes = size >> (int(base_page).bit_length() - 1)  # exact, and faster than division
    else:
        ptes = size // base_page
    np.maximum(ptes, 1, out=ptes)
    pmd = (folios["flags"] & PMD_MAPPED) != 0
    if pmd.any():
        ptes[pmd] = 1
    if mappings and folios["mapcount"].max(initial=1) > 1:
        ptes *= np.maximum(folios["mapcount"], 1)
    return ptes


def consecutive_batches(folios: np.ndarray, max_folios: int) -> np.ndarray:
    """Batch bounds: consecutive folios, at most ``max_folios`` per batch.

    A batch also ends where the epoch, the (source, destination) node pair or
    the reason changes: a copy batch never spans two epochs, and one
    ``migrate_pages()`` call moves between one pair of nodes for one reason.
    Folios must be in epoch order.
    """
    n = len(folios)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    if use_compiled(n):
        return pricing_kernels().consecutive_batches(folios["epoch"], folios["src"], folios["dst"],
                                                   folios["reason"], int(max_folios))
    epoch = folios["epoch"]
    change = epoch[1:] != epoch[:-1]
    for column in ("src", "dst", "reason"):
        nodes = folios[column]
        if nodes.min() != nodes.max():
            change |= nodes[1:] != nodes[:-1]
    runs = np.concatenate(([0], np.flatnonzero(change) + 1, [n])).astype(np.int64)
    lengths = np.diff(runs)
    if lengths.max() <= max_folios:
        return runs
    pieces = -(-lengths // max_folios)
    first_piece = np.repeat(np.cumsum(pieces) - pieces, pieces)
    starts = np.repeat(runs[:-1], pieces) + (np.arange(pieces.sum()) - first_piece) * max_folios
    return np.append(starts, n)


@dataclass(frozen=True)
class BatchPlan:
    """Folios split into copy batches, each assigned an engine and a worker count.

    ``folios`` holds the rows in batch order; batch ``i`` is
    ``folios[bounds[i]:bounds[i + 1]]``. ``engine[i]`` indexes ``engines``;
    ``workers[i]`` is the thread or channel count the engine uses for it.
    ``overhead`` is the per-batch cost array the batch stage itself incurred
    (batch set-up, the one batched TLB flush).
    """

    folios: np.ndarray
    bounds: np.ndarray
    engines: tuple[str, ...]
    engine: np.ndarray
    workers: np.ndarray
    overhead: np.ndarray
    _sums: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.bounds) == 0 or self.bounds[0] != 0 or self.bounds[-1] != len(self.folios):
            raise ValueError("batch bounds must start at 0 and end at the folio count")
        if np.any(np.diff(self.bounds) <= 0):
            raise ValueError("every batch must hold at least one folio")

    @property
    def n_batches(self) -> int:
        """Number of batches in the plan."""
        return len(self.bounds) - 1

    def per_batch(self, values: np.ndarray) -> np.ndarray:
        """Sum a per-folio array within each batch."""
        values = np.asarray(values)
        if self.n_batches == 0:
            return np.zeros(0, dtype=values.dtype)
        return sum_runs(values, self.bounds[:-1])

    @property
    def nfolios(self) -> np.ndarray:
        """Folios per batch."""
        return np.diff(self.bounds)

    @property
    def nbytes(self) -> np.ndarray:
        """Bytes per batch."""
        if "bytes" not in self._sums:
            self._sums["bytes"] = self.per_batch(self.folios["size"])
        return self._sums["bytes"]

    def batch_of_folio(self) -> np.ndarray:
        """Index of the batch each folio belongs to."""
        return np.repeat(np.arange(self.n_batches), self.nfolios)

    def engine_names(self) -> np.ndarray:
        """The engine name of every batch, as a string array."""
        return np.asarray(self.engines, dtype=object)[self.engine]

    def select(self, batch_mask: np.ndarray) -> BatchPlan:
        """Return the plan restricted to the batches where ``batch_mask`` is true."""
        if batch_mask.all():
            return self
        counts = self.nfolios[batch_mask]
        bounds = np.concatenate(([0], np.cumsum(counts)))
        return BatchPlan(
            folios=self.folios[np.repeat(batch_mask, self.nfolios)],
            bounds=bounds,
            engines=self.engines,
            engine=self.engine[batch_mask],
            workers=self.workers[batch_mask],
            overhead=self.overhead[batch_mask],
        )
