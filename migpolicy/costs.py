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

__all__ = ["COST_DTYPE", "CostColumns", "CostTotals", "cost_columns", "cost_rows", "cost_words",
           "zero_costs"]

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


#: The seconds fields come first and the counts last, all 8 bytes wide: the
#: compiled loops read a cost array as float64 and int64 words (:func:`cost_words`).
assert [COST_DTYPE.fields[name][0] for name in COST_DTYPE.names] == [np.dtype(np.float64)] * 4 + [
    np.dtype(np.int64)] * 4


def zero_costs(n: int) -> np.ndarray:
    """Return ``n`` zeroed cost rows."""
    return np.zeros(n, dtype=COST_DTYPE)


def cost_rows(n: int, **columns: np.ndarray | float | int) -> np.ndarray:
    """``n`` cost rows with the given fields (an array of ``n`` values, or one for every row).

    Fields not given are zero.
    """
    return np.asarray(cost_columns(n, **columns))


class CostColumns:
    """Cost rows kept by field: per field an array of one value per row, or one value for all.

    What an isolate plugin may return instead of :data:`COST_DTYPE` rows: a
    per-folio cost is usually one or two arrays (the time, also the CPU
    time) and constants (one folio each, no retries), and 64-byte rows for
    a million folios cost more to write and read than the pricing itself.
    Made by :func:`cost_columns`; ``costs[name]`` reads a field as an array
    of ``len(costs)`` values, as it does on rows, and ``np.asarray(costs)``
    makes the rows.
    """

    __slots__ = ("given", "n")

    def __init__(self, n: int, given: dict[str, np.ndarray | float | int]) -> None:
        self.n, self.given = n, given

    @classmethod
    def of(cls, rows: np.ndarray) -> CostColumns:
        """The fields of :data:`COST_DTYPE` rows, as (strided) columns."""
        return cls(len(rows), {name: rows[name] for name in COST_DTYPE.names})

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, name: str) -> np.ndarray:
        value = self.given.get(name, 0)
        if isinstance(value, np.ndarray):
            return value
        return np.broadcast_to(np.asarray(value, dtype=COST_DTYPE[name]), (self.n,))

    def constant(self, name: str) -> float | int | None:
        """The value of field ``name`` in every row, or ``None`` when it varies by row."""
        value = self.given.get(name, 0)
        return None if isinstance(value, np.ndarray) else value

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        rows = zero_costs(self.n)
        for name, values in self.given.items():
            rows[name] = values
        return rows if dtype is None else rows.astype(dtype)


def cost_columns(n: int, **columns: np.ndarray | float | int) -> CostColumns:
    """Cost rows by field: each given field an array of ``n`` values or one value for every row.

    Fields not given are zero; arrays are kept, not copied, when they have
    the field's type (float64 seconds, int64 counts).
    """
    given: dict[str, np.ndarray | float | int] = {}
    for name, values in columns.items():
        if name not in COST_DTYPE.names:
            raise TypeError(f"cost rows have no field {name!r}")
        kind = COST_DTYPE[name]
        if np.ndim(values) == 0:
            given[name] = float(values) if kind.kind == "f" else int(values)
            continue
        values = np.asarray(values, dtype=kind)
        if values.shape != (n,):
            raise ValueError(f"cost field {name} has shape {values.shape} for {n} rows")
        given[name] = values
    return CostColumns(n, given)


def cost_words(costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A contiguous cost array as ``(n, 8)`` float64 and int64 views of its words."""
    words = np.ascontiguousarray(costs).view(np.uint64).reshape(len(costs), 8)
    return words.view(np.float64), words.view(np.int64)


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
    def of(cls, costs: np.ndarray | CostColumns) -> CostTotals:
        """Sum cost rows (an array, or :class:`CostColumns`) into totals."""
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


def _columns(costs: np.ndarray | CostColumns) -> np.ndarray | CostColumns | dict[str, np.ndarray]:
    """The fields of ``costs`` as columns to sum, read once rather than once per field.

    Summing a field of a long structured array walks the whole array each
    time; for a long per-folio array this copies the fields into contiguous
    columns a cache-sized block at a time first. A contiguous column sums to
    exactly what its strided view does (the same pairwise summation), so the
    totals are bit-identical. Short arrays, and cost columns, are returned as they are.
    """
    n = len(costs)
    if n <= _BLOCK or isinstance(costs, CostColumns) or not costs.flags.c_contiguous:
        return costs
    words = costs.view(np.uint64).reshape(n, COST_DTYPE.itemsize // 8)
    columns = np.empty(words.shape[::-1], dtype=np.uint64)
    for start in range(0, n, _BLOCK):
        columns[:, start:start + _BLOCK] = words[start:start + _BLOCK].T
    return {name: columns[offset // 8].view(dtype)
            for name, (dtype, offset) in COST_DTYPE.fields.items()}
