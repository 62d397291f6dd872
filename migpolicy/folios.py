"""The data model of a migration: folios and batches as numpy arrays.

A migration request is a structured array of :data:`FOLIO_DTYPE`, one row per
folio; the batch stage turns it into a :class:`BatchPlan` (the same rows in
batch order, batch boundaries, and per batch the engine and worker count).
Hooks receive and return arrays so that one hook call prices thousands of
folios; no list of Python objects is ever built on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BUSY",
    "FOLIO_DTYPE",
    "PINNED",
    "PMD_MAPPED",
    "BatchPlan",
    "make_folios",
    "page_table_entries",
]

#: One row per folio: bytes, source and destination node, number of mappings
#: (processes mapping it), owning tenant (cgroup id) and flag bits.
FOLIO_DTYPE = np.dtype(
    [
        ("size", np.int64),
        ("src", np.int16),
        ("dst", np.int16),
        ("mapcount", np.int32),
        ("tenant", np.int32),
        ("flags", np.uint16),
    ]
)

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
) -> np.ndarray:
    """Return ``count`` identical folios of ``size`` bytes moving ``src`` → ``dst``.

    Folios of exactly ``pmd_size`` bytes are flagged :data:`PMD_MAPPED`, as a
    THP is; smaller (mTHP) folios are mapped by one PTE per base page.
    """
    folios = np.zeros(count, dtype=FOLIO_DTYPE)
    folios["size"] = size
    folios["src"] = src
    folios["dst"] = dst
    folios["tenant"] = tenant
    folios["mapcount"] = mapcount
    if size == pmd_size:
        folios["flags"] = PMD_MAPPED
    return folios


def page_table_entries(folios: np.ndarray, base_page: int) -> np.ndarray:
    """Return, per folio, the page-table entries one mapping of it uses.

    A PMD-mapped folio uses one entry; any other folio one PTE per base page.
    Unmapping and remapping cost grows with this number.
    """
    size = folios["size"]
    if base_page > 0 and base_page & (base_page - 1) == 0:
        ptes = size >> (int(base_page).bit_length() - 1)  # exact, and faster than division
    else:
        ptes = size // base_page
    np.maximum(ptes, 1, out=ptes)
    pmd = (folios["flags"] & PMD_MAPPED) != 0
    if pmd.any():
        ptes[pmd] = 1
    return ptes


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
        if self.n_batches == 0:
            return np.zeros(0, dtype=np.asarray(values).dtype)
        return np.add.reduceat(values, self.bounds[:-1])

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
