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
from migpolicy.replay import kernels
from migpolicy.traces import Trace
from migpolicy.traces.events import OP_WRITE, EventColumns
from migpolicy.traces.trace import trace_columns

__all__ = ["SNAPSHOT", "EpochStream", "PageCounts", "PageIds", "page_ids"]

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
    """Replay ids of the trace's pages; reads the trace once if its page table is not known.

    A native trace numbers its pages in address order already (and keeps the
    order they were first touched in its footer): the renumbering is then the
    identity, and no event's page needs looking up.
    """
    if trace.meta.distinct_pages is None:
        for _ in trace.chunks(CHUNK):
            pass
    numbers = np.asarray(trace.page_numbers, dtype=np.int64)
    if len(numbers) == 0:
        raise InputError(f"{getattr(trace, 'name', 'the trace')}: the trace holds no memory "
                         "accesses")
    # dense ids in first-touch order, if that is not their own (a trace object without the
    # attribute numbers its pages as it first touches them)
    touched = getattr(trace, "first_touch", None)
    if (numbers[1:] > numbers[:-1]).all():  # dense ids in address order
        of_dense = np.arange(len(numbers), dtype=np.int64)
        return PageIds(of_dense=of_dense, first_touch=of_dense if touched is None else touched,
                       in_order=True)
    order = np.argsort(numbers)  # replay id → dense page (distinct numbers: any sort is stable)
    of_dense = np.empty(len(numbers), dtype=np.int64)
    of_dense[order] = np.arange(len(numbers))
    return PageIds(of_dense=of_dense,
                   first_touch=of_dense if touched is None else of_dense[touched])


class EpochStream:
    """Yields one :class:`Epoch` per ``epoch_ns`` of trace time (records, when untimed).

    ``scale`` multiplies every access weight (sampled traces); ``on_chunk``
    sees every raw chunk (progress bars); ``tenant_of`` (one int32 per page) is
    updated with the tenant that last touched each page; ``max_events`` stops
    early (a prefix of the trace). After iteration, ``events`` holds how
    many were replayed.
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
        self.resolution_ns: int | None = None

    def __iter__(self) -> Iterator[Epoch]:
        counts = PageCounts(self.ids.count, None if self.ids.in_order else self.ids.of_dense)
        current = None  # epoch number of the events counted so far
        first_t = 0  # time stamp of the counted epoch's first event
        t0 = None
        index = 0
        last_end = 0  # epoch number after the last emitted epoch (fixed epochs)
        snapshots = 0  # time stamps seen (snapshot epochs)
        last_t = None
        for chunk in self._chunks():
            t = chunk.t_ns
            if t0 is None:
                t0 = int(t[0])
                self._check_resolution(t)
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
                    yield from self._emit(counts, current, last_end, index, t0, first_t)
                    index += 1 + (not self.snapshot and current > last_end)
                    last_end = current + 1
                if n != current:
                    current, first_t = n, int(t[s])
                counts.add(chunk.page[s:e], chunk.op[s:e], chunk.weight[s:e])
        if current is None:
            raise InputError(f"{getattr(self.trace, 'name', 'the trace')}: the trace holds no "
                             "memory accesses")
        yield from self._emit(counts, current, last_end, index, t0, first_t)

    def _cut(self, t: np.ndarray, t0: int) -> tuple[np.ndarray, np.ndarray]:
        """Where each epoch's events start in the chunk's times ``t``, and its number.

        Epoch numbers are ``(t - t0) // epoch_ns``; an event earlier than one
        before it (a straggler) joins the epoch of the latest event so far.
        """
        return kernels.epoch_cuts(t, t0, self.epoch_ns)

    def _chunks(self) -> Iterator[EventColumns]:
        """The trace's chunks (up to ``max_events``), the tenants of their pages noted."""
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
            if self.tenant_of is not None and chunk.tenant.max() > 0:
                page = chunk.page if self.ids.in_order else self.ids.of_dense[chunk.page]
                self.note_tenants(page, chunk.tenant)
            yield chunk

    def note_tenants(self, pages: np.ndarray, tenants: np.ndarray) -> None:
        """Replay ids ``pages`` were last touched by ``tenants``: noted in ``tenant_of``
        (replaced where the epochs are counted in another thread, see
        :mod:`migpolicy.replay.ahead`)."""
        self.tenant_of[pages] = tenants

    def _check_resolution(self, t: np.ndarray) -> None:
        """Refuse an epoch shorter than the spacing of the first chunk's time stamps ``t``."""
        if self.snapshot:
            return
        natural = self.trace.meta.epoch_ns
        if natural:
            self.resolution_ns = int(natural)
        else:
            self.resolution_ns = _spacing(t[:65536])
        if self.resolution_ns and self.epoch_ns < self.resolution_ns:
            unit = "records" if self.trace.meta.clock == "ordinal" else "ns"
            raise InputError(f"epoch of {self.epoch_ns} {unit} is shorter than the trace's "
                             f"resolution: its time stamps are {self.resolution_ns} {unit} "
                             "apart; choose a longer --epoch")

    def _emit(self, counts: PageCounts, number: int, last_end: int, index: int, t0: int,
              first_t: int) -> Iterator[Epoch]:
        if self.snapshot:
            start = first_t
        elif number > last_end:  # an idle stretch without events
            yield Epoch(index=index, start_ns=t0 + last_end * self.epoch_ns,
                        length_ns=(number - last_end) * self.epoch_ns,
                        pages=np.zeros(0, np.int64), accesses=np.zeros(0),
                        writes=np.zeros(0))
            index += 1
        if not self.snapshot:
            start = t0 + number * self.epoch_ns
        pages, accesses, writes = counts.take(self.scale)
        yield Epoch(index=index, start_ns=start,
                    length_ns=self.epoch_ns, pages=pages, accesses=accesses, writes=writes)


def _spacing(t: np.ndarray) -> int | None:
    """The smallest gap between distinct time stamps of ``t`` (``None``: all equal)."""
    steps = np.diff(t)
    if (steps < 0).any():  # out of order: compare the distinct stamps in order
        steps = np.diff(np.unique(t))
    steps = steps[steps > 0]
    return int(steps.min()) if len(steps) else None


class PageCounts:
    """The distinct pages of an epoch's events with their access and write weights.

    Events are added in runs (an epoch may span chunks); :meth:`take` counts
    them and starts the next epoch. Each page's weights are summed in event
    order, as ``np.bincount`` sums them, whatever the runs. The events are
    sorted by page (one key per event: page, index unless every weight is
    the same, write bit), so time and memory follow the epoch's events,
    never the trace's pages.
    """

    def __init__(self, npages: int, of_dense: np.ndarray | None = None) -> None:
        self.npages = npages
        #: Trace dense page → replay id, or ``None`` when they are the same; 32-bit where
        #: that holds every id: half the cache misses of looking events' pages up
        self.of_dense = of_dense if of_dense is None or npages > 2**31 else \
            of_dense.astype(np.int32)
        self._runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, page: np.ndarray, op: np.ndarray, weight: np.ndarray) -> None:
        """Events to count: trace dense ``page``, ``op`` (its write bit), ``weight``."""
        if len(page):
            self._runs.append((page, op, weight))

    def take(self, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pages (ascending replay ids) with their accesses and writes, weights times ``scale``.

        A page whose accesses sum to zero is left out when there were at
        least 1/32 as many events as pages: the rule of the dense count the
        pinned figures were computed with.
        """
        runs, self._runs = self._runs, []
        n = sum(len(page) for page, _, _ in runs)
        shift = 1  # equal weights add up alike in any order: no event index in the key then
        keys = self._keys(runs, n, shift)
        if keys is None:
            shift = 1 + max(1, (n - 1).bit_length())
            keys = self._keys(runs, n, shift)
        keys.sort()
        weight = runs[0][2] if len(runs) == 1 or shift == 1 else \
            np.concatenate([weight for _, _, weight in runs])
        pages, accesses, writes = kernels.page_runs(keys, shift, weight, scale)
        if 32 * n >= self.npages and not accesses.all():
            kept = accesses != 0
            pages, accesses, writes = pages[kept], accesses[kept], writes[kept]
        return pages, accesses, writes

    def _keys(self, runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int, shift: int
              ) -> np.ndarray | None:
        """The sort keys of the runs' ``n`` events (32-bit where they fit); ``None``: shift 1
        with unequal weights."""
        bits = shift + max(self.npages - 1, 1).bit_length()
        if bits > 63:
            raise InputError(f"an epoch of {n:,} events over {self.npages:,} pages is too "
                             "large to count; choose a shorter --epoch")
        keys = np.empty(n, dtype=np.uint32 if bits <= 32 else np.int64)
        identity = self.of_dense is None
        same, first, first_weight = True, 0, runs[0][2][0]
        for page, op, weight in runs:
            same &= kernels.sort_keys(page, page if identity else self.of_dense, not identity,
                                      op, OP_WRITE, weight, first_weight, shift,
                                      keys[first:first + len(page)], first)
            first += len(page)
        return keys if same or shift > 1 else None
