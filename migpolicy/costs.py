"""Cost records: per-unit cost arrays from the stage hooks and their totals.

Stage hooks return a structured array of :data:`COST_DTYPE`, one row per unit
they priced (a folio for isolate, a batch for batch/copy/remap). Time is in
seconds: ``wall_s`` is elapsed time on the migration path, ``cpu_s`` CPU time
(initiator plus worker threads), ``engine_s`` busy time of an offload engine
(DMA channels, GPU copy engine) that is not CPU time. ``worker_s`` is the part
of ``cpu_s`` spent by helper kernel threads (multi-threaded copy workers) rather
than by the task that initiated the migration; accounting policies charge the
two differently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = ["COST_DTYPE", "CostTotals", "zero_costs"]

COST_DTYPE = np.dtype(
    [
        ("wall_s", np.float64),
        ("cpu_s", np.float64),
        ("engine_s", np.float64),
        ("worker_s", np.float64),
        ("bytes", np.int64),
        ("folios", np.int64),
        ("failures", np.int64),
        ("retries", np.int64),
    ]
)


def zero_costs(n: int) -> np.ndarray:
    """Return ``n`` zeroed cost rows."""
    return np.zeros(n, dtype=COST_DTYPE)


@dataclass
class CostTotals:
    """Summed costs of one stage, engine or tenant."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    engine_s: float = 0.0
    worker_s: float = 0.0
    bytes: int = 0
    folios: int = 0
    failures: int = 0
    retries: int = 0

    @classmethod
    def of(cls, costs: np.ndarray) -> CostTotals:
        """Sum a cost array into totals."""
        columns = _columns(costs)
        return cls(**{name: kind(columns[name].sum()) for name, kind in _KINDS})

    def __add__(self, other: CostTotals) -> CostTotals:
        return CostTotals(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                             for f in fields(self)})

    def scaled(self, k: int) -> CostTotals:
        """Totals of ``k`` identical repetitions."""
        return CostTotals(**{f.name: getattr(self, f.name) * k for f in fields(self)})

    def as_dict(self) -> dict:
        """Plain dict for JSON output."""
        return asdict(self)


#: (field, Python type) of every :class:`CostTotals` field, in order.
_KINDS = tuple((f.name, float if f.type == "float" else int) for f in fields(CostTotals))

#: Rows of a long cost array transposed at a time by :func:`_columns` (fits in L2).
_BLOCK = 16384
#: :func:`_columns` reads cost rows as 8-byte words; true while every field is 8 bytes wide.
_WORD_FIELDS = all(dtype.itemsize == 8 and offset % 8 == 0
                   for dtype, offset in COST_DTYPE.fields.values())


def _columns(costs: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
    """The fields of ``costs`` as columns to sum, read once rather than once per field.

    Summing a field of a long structured array walks the whole array each
    time; for a long per-folio array this copies the fields into contiguous
    columns a cache-sized block at a time first. A contiguous column sums to
    exactly what its strided view does (the same pairwise summation), so the
    totals are bit-identical. Short arrays are returned as they are.
    """
    n = len(costs)
    if n <= _BLOCK or not (_WORD_FIELDS and costs.flags.c_contiguous):
        return costs
    words = costs.view(np.uint64).reshape(n, COST_DTYPE.itemsize // 8)
    columns = np.empty(words.shape[::-1], dtype=np.uint64)
    for start in range(0, n, _BLOCK):
        columns[:, start:start + _BLOCK] = words[start:start + _BLOCK].T
    return {name: columns[offset // 8].view(dtype)
            for name, (dtype, offset) in COST_DTYPE.fields.items()}
