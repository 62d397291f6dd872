"""What ``migpolicy trace info`` reports, computed in one streaming pass.

Totals by op and tenant, per-page access counts (for the hottest pages) and
the working-set size per epoch, as damo's ``report wss`` shows it: the
distinct pages touched in each epoch times the page size, summarised by its
average and percentiles. Memory grows with the distinct pages and the number
of epochs, never with the number of events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from migpolicy.traces.events import OP_NAMES

__all__ = ["DEFAULT_EPOCH_NS", "SNAPSHOT", "TraceStats", "trace_stats"]

#: Epoch when the trace has no natural one: 1 ms (one million records on an ordinal clock).
DEFAULT_EPOCH_NS = 1_000_000
#: ``epoch_ns`` value meaning "one epoch per distinct time stamp" (DAMON snapshots).
SNAPSHOT = 0


@dataclass
class TraceStats:
    """The figures of ``trace info``; :meth:`as_dict` gives its JSON."""

    meta: Any
    ops: dict[str, float]
    tenants: dict[int, float]
    hottest: list[dict[str, Any]]
    wss_bytes: dict[str, float]
    epochs: int
    epoch: str
    page_accesses: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        meta = self.meta
        return {
            "format": meta.source_format,
            "command": meta.command,
            "page_size": meta.page_size,
            "clock": meta.clock,
            "events": meta.events,
            "accesses": _number(meta.accesses),
            "distinct_pages": meta.distinct_pages,
            "footprint_bytes": meta.distinct_pages * meta.page_size,
            "reads": _number(self.ops["read"]),
            "writes": _number(self.ops["write"]),
            "modifies": _number(self.ops["modify"]),
            "unknown_ops": _number(self.ops["unknown"]),
            "duration_ns": meta.t_last_ns - meta.t_first_ns,
            "t_first_ns": meta.t_first_ns,
            "tenants": {str(k): _number(v) for k, v in sorted(self.tenants.items())},
            "hottest_pages": self.hottest,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "wss_bytes": self.wss_bytes,
        }


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


class _Wss:
    """Distinct pages per epoch, counted chunk by chunk."""

    def __init__(self, epoch_ns: int) -> None:
        self.epoch_ns = epoch_ns
        self.t0: int | None = None
        self.last_epoch = np.empty(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)
        self.snap = -1
        self.prev_t: int | None = None

    def epochs_of(self, t: np.ndarray) -> np.ndarray:
        if self.t0 is None:
            self.t0 = int(t[0])
        if self.epoch_ns != SNAPSHOT:
            return (t - self.t0) // self.epoch_ns
        change = np.empty(len(t), dtype=bool)
        change[0] = self.prev_t is None or int(t[0]) != self.prev_t
        change[1:] = t[1:] != t[:-1]
        epochs = self.snap + np.cumsum(change)
        self.snap = int(epochs[-1])
        self.prev_t = int(t[-1])
        return epochs

    def add(self, t: np.ndarray, pages: np.ndarray, distinct: int) -> None:
        epochs = self.epochs_of(t)
        if len(self.last_epoch) < distinct:
            grown = np.full(max(distinct, 2 * len(self.last_epoch)), -1, dtype=np.int64)
            grown[: len(self.last_epoch)] = self.last_epoch
            self.last_epoch = grown
        span = int(pages.max()) + 1
        keys = np.sort(epochs * span + pages)
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        k_epoch, k_page = keys // span, keys % span
        new = self.last_epoch[k_page] != k_epoch
        k_epoch, k_page = k_epoch[new], k_page[new]
        self.last_epoch[k_page] = k_epoch
        top = int(epochs.max()) + 1
        if len(self.counts) < top:
            self.counts = np.concatenate([self.counts, np.zeros(top - len(self.counts), np.int64)])
        self.counts += np.bincount(k_epoch, minlength=len(self.counts))[: len(self.counts)]


def trace_stats(trace: Any, epoch_ns: int | None = None, top: int = 10,
                on_chunk: Callable[[np.ndarray], None] | None = None) -> TraceStats:
    """Read ``trace`` once and compute the figures of ``trace info``.

    ``epoch_ns`` is the working-set epoch: ``None`` takes the trace's natural
    epoch (one per DAMON snapshot) or else 1 ms; :data:`SNAPSHOT` means one
    epoch per distinct time stamp.
    """
    ops = np.zeros(4)
    tenants: dict[int, float] = {}
    per_page = np.zeros(0)
    wss: _Wss | None = None
    for events in trace.chunks():
        if wss is None:
            natural = SNAPSHOT if trace.meta.epoch_ns else DEFAULT_EPOCH_NS
            wss = _Wss(natural if epoch_ns is None else epoch_ns)
        weight = events["weight"]
        ops += np.bincount(events["op"], weights=weight, minlength=4)[:4]
        tenant_ids = events["tenant"]
        low = int(tenant_ids.min())
        sums = np.bincount(tenant_ids - low, weights=weight)
        for offset in np.flatnonzero(sums):
            tenants[low + int(offset)] = tenants.get(low + int(offset), 0.0) + float(sums[offset])
        pages = events["page"]
        distinct = int(pages.max()) + 1
        if len(per_page) < distinct:
            per_page = np.concatenate([per_page, np.zeros(max(distinct, 2 * len(per_page))
                                                          - len(per_page))])
        per_page[:distinct] += np.bincount(pages, weights=weight, minlength=distinct)
        wss.add(events["t_ns"], pages, distinct)
        if on_chunk is not None:
            on_chunk(events)
    meta = trace.meta
    per_page = per_page[: meta.distinct_pages]
    table = trace.page_table
    touched = getattr(trace, "first_touch", None)
    if touched is not None:  # pages numbered by address (a native file): report first-touch ranks
        per_page, table = per_page[touched], table[touched]
    order = np.argsort(-per_page, kind="stable")[:top]
    hottest = [{"page": int(i), "address": hex(int(table[i])), "accesses": _number(per_page[i]),
                "share": float(per_page[i] / meta.accesses) if meta.accesses else 0.0}
               for i in order]
    sizes = wss.counts.astype(np.float64) * meta.page_size
    summary = {"avg": float(sizes.mean()),
               **{f"p{q}": float(np.percentile(sizes, q)) for q in (50, 90, 99)},
               "max": float(sizes.max())}
    epoch = "snapshot" if wss.epoch_ns == SNAPSHOT else f"{wss.epoch_ns}ns"
    return TraceStats(meta, {OP_NAMES[i]: float(ops[i]) for i in range(4)}, tenants, hottest,
                      summary, len(sizes), epoch, per_page)
