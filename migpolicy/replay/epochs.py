"""Cutting a streamed trace into epochs of per-page access counts.

An epoch is a duration on a timed trace and a number of records on an
untimed one (lackey, ChampSim: ``t_ns`` counts records). Events arrive in
chunks; an epoch may span several chunks and a chunk many epochs. A stretch
of time without any event becomes one idle epoch as long as the gap, so a
trace with long pauses does not produce millions of empty epochs. On a
snapshot trace (DAMON: every event of one aggregation shares a time stamp)
the epoch can be each snapshot (``epoch_ns`` = :data:`SNAPSHOT`), whatever
the jitter between snapshots.

Pages are renumbered in address order (replay ids) before anyone sees them:
the NUMA-balancing scanner walks address ranges and DAMON regions are address
ranges, so policies must see neighbouring pages as neighbours. The order in
which pages were first touched is kept for the initial placement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from migpolicy.errors import InputError
from migpolicy.placement import Epoch
from migpolicy.traces import Trace
from migpolicy.traces.events import OP_WRITE
from migpolicy.traces.trace import trace_columns

__all__ = ["SNAPSHOT", "EpochStream", "PageIds", "page_ids"]

#: ``epoch_ns`` meaning one epoch per distinct time stamp (a DAMON snapshot).
SNAPSHOT = 0
#: Events per chunk read from the trace: a few MiB per column, so the chunks in flight (one
#: being replayed, one being decoded) stay small beside the per-page state.
CHUNK = 1 << 18


@dataclass(frozen=True)
class PageIds:
    """Dense trace page → replay id (address order), and replay ids in first-touch order."""

    of_dense: np.ndarray
    first_touch: np.ndarray
    #: The trace's dense pages are already in address order (``of_dense`` is the identity).
    in_order: bool = False

    @property
    def count(self) -> int:
        """Distinct pages of the trace."""
        return len(self.of_dense)


def page_ids(trace: Trace) -> PageIds:
    """Replay ids of the trace's pages; reads the trace once if its page table is not known."""
    if trace.meta.distinct_pages is None:
        for _ in trace.chunks(CHUNK):
            pass
    numbers = np.asarray(trace.page_numbers, dtype=np.int64)
    if len(numbers) == 0:
        raise InputError(f"{getattr(trace, 'name', 'the trace')}: the trace holds no memory "
                         "accesses")
    if (numbers[1:] > numbers[:-1]).all():  # first touched in address order (scans)
        of_dense = np.arange(len(numbers), dtype=np.int64)
        return PageIds(of_dense=of_dense, first_touch=of_dense, in_order=True)
    order = np.argsort(numbers, kind="stable")  # replay id → dense page
    of_dense = np.empty(len(numbers), dtype=np.int64)
    of_dense[order] = np.arange(len(numbers))
    return PageIds(of_dense=of_dense, first_touch=of_dense)


class EpochStream:
    """Yields one :class:`Epoch` per ``epoch_ns`` of trace time (records, when untimed).

    ``scale`` multiplies every access weight (sampled traces); ``on_chunk``
    sees every raw chunk (progress bars); ``tenant_of`` (one int32 per page) is
    updated with the tenant that last touched each page; ``max_events`` stops
    early (a prefix of the trace). After iteration, ``events`` and
    ``accesses`` hold what was replayed.
    """

    def __init__(self, trace: Trace, ids: PageIds, epoch_ns: int, *, scale: float = 1.0,
                 max_events: int | None = None,
                 on_chunk: Callable[[np.ndarray], None] | None = None,
                 tenant_of: np.ndarray | None = None) -> None:
        if epoch_ns < 0:
            raise InputError(f"epoch {epoch_ns}: expected a positive length")
        #: One epoch per distinct time stamp (DAMON snapshots): ``epoch_ns`` 0.
        self.snapshot = epoch_ns == SNAPSHOT
        if self.snapshot:
            epoch_ns = trace.meta.epoch_ns or 1
        self.trace, self.ids, self.epoch_ns, self.scale = trace, ids, int(epoch_ns), scale
        self.max_events, self.on_chunk, self.tenant_of = max_events, on_chunk, tenant_of
        self.events = 0
        self.accesses = 0.0
        self.resolution_ns: int | None = None
        self._slot: np.ndarray | None = None  # count_pages' scratch, one int per page

    def __iter__(self) -> Iterator[Epoch]:
        pending: list[dict[str, np.ndarray]] = []
        current = None  # epoch number of the pending events
        t0 = None
        index = 0
        last_end = 0  # epoch number after the last emitted epoch (fixed epochs)
        snapshots = 0  # time stamps seen (snapshot epochs)
        last_t = None
        for chunk in self._chunks():
            t = chunk["t_ns"]
            if t0 is None:
                t0 = int(t[0])
                self._check_resolution(chunk)
            if self.snapshot:
                change = np.empty(len(t), dtype=bool)
                change[0] = last_t is None or t[0] != last_t
                np.not_equal(t[1:], t[:-1], out=change[1:])
                number = snapshots + np.cumsum(change) - 1
                snapshots = int(number[-1]) + 1
                last_t = t[-1]
                cuts = np.flatnonzero(number[1:] != number[:-1]) + 1
                starts = np.concatenate(([0], cuts))
                numbers = number[starts]
            else:
                starts, numbers = self._cut(t, t0)
            ends = np.append(starts[1:], len(t))
            for s, e, n in zip(starts.tolist(), ends.tolist(), numbers.tolist(), strict=True):
                if current is not None and n != current:
                    yield from self._emit(pending, current, last_end, index, t0)
                    index += 1 + (not self.snapshot and current > last_end)
                    last_end = current + 1
                    pending = []
                current = n
                pending.append({key: column[s:e] for key, column in chunk.items()})
        if current is None:
            raise InputError(f"{getattr(self.trace, 'name', 'the trace')}: the trace holds no "
                             "memory accesses")
        yield from self._emit(pending, current, last_end, index, t0)

    def _cut(self, t: np.ndarray, t0: int) -> tuple[np.ndarray, np.ndarray]:
        """Where each epoch's events start in the chunk's times ``t``, and its number.

        Epoch numbers are ``(t - t0) // epoch_ns``; an event earlier than one
        before it (a straggler) joins the epoch of the latest event so far.
        Found by binary search of the epochs' boundaries in the (running
        maximum of the) times, not by dividing every time stamp.
        """
        if len(t) > 1 and (t[1:] < t[:-1]).any():
            t = np.maximum.accumulate(t)  # stragglers join the epoch
        first = (int(t[0]) - t0) // self.epoch_ns
        last = (int(t[-1]) - t0) // self.epoch_ns
        if last - first > len(t):  # long idle stretches: fewer events than boundaries
            number = (t - t0) // self.epoch_ns
            starts = np.concatenate(([0], np.flatnonzero(number[1:] != number[:-1]) + 1))
            return starts, number[starts]
        bounds = t0 + np.arange(first + 1, last + 1, dtype=np.int64) * self.epoch_ns
        starts = np.concatenate(([0], np.searchsorted(t, bounds, side="left")))
        numbers = np.arange(first, last + 1, dtype=np.int64)
        ends = np.append(starts[1:], len(t))
        full = ends > starts  # an epoch without events in this chunk is no segment
        return starts[full], numbers[full]

    def _chunks(self) -> Iterator[dict[str, np.ndarray]]:
        """The trace's chunks as contiguous columns, pages as replay ids."""
        for chunk in trace_columns(self.trace, CHUNK):
            if self.max_events is not None:
                room = self.max_events - self.events
                if room <= 0:
                    return
                chunk = chunk[:room]
            if not len(chunk):
                continue
            self.events += len(chunk)
            if self.on_chunk is not None:
                self.on_chunk(chunk)
            page = chunk.page if self.ids.in_order else self.ids.of_dense[chunk.page]
            weight = chunk.weight * self.scale if self.scale != 1.0 else chunk.weight
            if self.tenant_of is not None:
                tenant = chunk.tenant
                if tenant.max() > 0:
                    self.tenant_of[page] = tenant
            yield {"t_ns": chunk.t_ns, "page": page, "weight": weight,
                   "written": (chunk.op & OP_WRITE) != 0}

    def _check_resolution(self, chunk: dict[str, np.ndarray]) -> None:
        """Refuse an epoch shorter than the spacing of the trace's time stamps."""
        if self.snapshot:
            return
        natural = self.trace.meta.epoch_ns
        if natural:
            self.resolution_ns = int(natural)
        else:
            self.resolution_ns = _spacing(chunk["t_ns"][:65536])
        if self.resolution_ns and self.epoch_ns < self.resolution_ns:
            unit = "records" if self.trace.meta.clock == "ordinal" else "ns"
            raise InputError(f"epoch of {self.epoch_ns} {unit} is shorter than the trace's "
                             f"resolution: its time stamps are {self.resolution_ns} {unit} "
                             "apart; choose a longer --epoch")

    def _emit(self, pending: list[dict[str, np.ndarray]], number: int, last_end: int,
              index: int, t0: int) -> Iterator[Epoch]:
        events = pending[0] if len(pending) == 1 else {
            key: np.concatenate([p[key] for p in pending]) for key in pending[0]}
        if self.snapshot:
            start = int(events["t_ns"][0])
        elif number > last_end:  # an idle stretch without events
            yield Epoch(index=index, start_ns=t0 + last_end * self.epoch_ns,
                        length_ns=(number - last_end) * self.epoch_ns,
                        pages=np.zeros(0, np.int64), accesses=np.zeros(0),
                        writes=np.zeros(0))
            index += 1
        if not self.snapshot:
            start = t0 + number * self.epoch_ns
        if self._slot is None:
            self._slot = np.empty(self.ids.count, dtype=np.intp)
        pages, accesses, writes = count_pages(events["page"], events["weight"],
                                              events["written"], self.ids.count, self._slot)
        self.accesses += float(accesses.sum())
        yield Epoch(index=index, start_ns=start,
                    length_ns=self.epoch_ns, pages=pages, accesses=accesses, writes=writes)


def _spacing(t: np.ndarray) -> int | None:
    """The smallest gap between distinct time stamps of ``t`` (``None``: all equal)."""
    steps = np.diff(t)
    if (steps < 0).any():  # out of order: compare the distinct stamps in order
        steps = np.diff(np.unique(t))
    steps = steps[steps > 0]
    return int(steps.min()) if len(steps) else None


def count_pages(page: np.ndarray, weight: np.ndarray, written: np.ndarray, npages: int,
                slot: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct pages (ascending) of an epoch's events with their access and write weights.

    With as many events as a quarter of the pages or more, dense counting
    (``bincount`` over every page, a sequential pass). With fewer, the
    events' pages are sorted and numbered through ``slot`` (scratch, one
    integer per page, any content), so the cost follows the events, never the
    trace's pages. Either way each page's weights are summed in event order,
    so the sums are the same to the last bit. A page whose accesses sum to
    zero is left out when there are at least 1/32 as many events as pages, as
    dense counting has always done.
    """
    n = len(page)
    if slot is None or 4 * n >= npages:
        if 32 * n >= npages:
            counts = np.bincount(page, weights=weight, minlength=npages)
            pages = np.flatnonzero(counts)
            writes = np.bincount(page[written], weights=weight[written], minlength=npages)
            return pages, counts[pages], writes[pages]
        pages, inverse = np.unique(page, return_inverse=True)
        accesses = np.bincount(inverse, weights=weight, minlength=len(pages))
        writes = np.bincount(inverse[written], weights=weight[written], minlength=len(pages))
        return pages, accesses, writes
    narrow = npages <= np.iinfo(np.int32).max  # 32-bit keys sort about twice as fast
    ordered = np.sort(page.astype(np.int32) if narrow else page)
    distinct = np.empty(n, dtype=bool)
    distinct[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=distinct[1:])
    pages = ordered[distinct].astype(np.int64)
    slot[pages] = np.arange(len(pages))
    inverse = slot[page]
    accesses = np.bincount(inverse, weights=weight, minlength=len(pages))
    # adding a read's 0.0 leaves every partial sum of the writes as it was
    writes = np.bincount(inverse, weights=np.where(written, weight, 0.0), minlength=len(pages))
    if 32 * n >= npages and not accesses.all():
        kept = accesses != 0
        pages, accesses, writes = pages[kept], accesses[kept], writes[kept]
    return pages, accesses, writes
