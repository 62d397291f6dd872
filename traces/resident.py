"""Traces held in memory, decoded once: what a tuner replays hundreds of times.

Streaming a trace costs its decoding on every pass: Parquet decompression for
the native format (done on two threads), parsing for a text format. A tuner
replays the same traces for every candidate, so :func:`resident` reads a trace
once into one array per field and serves every later pass from memory, in the
same chunks a stream would hand out. Only traces whose events fit a byte
budget are held; a larger one keeps streaming (memory stays flat in trace
length, as for replay). ``--jobs`` workers forked after loading share the
arrays (read-only, copy on write).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from migpolicy.traces.events import EVENT_DTYPE, EventColumns, TraceMeta
from migpolicy.traces.native import DEFAULT_CHUNK
from migpolicy.traces.trace import Trace, trace_columns

__all__ = ["ResidentTrace", "hold", "resident"]

#: Bytes one event takes in memory, one array per field.
EVENT_BYTES = sum(EVENT_DTYPE.fields[name][0].itemsize for name in EVENT_DTYPE.names)


class ResidentTrace:
    """A trace's events in memory, one array per field, with the source's metadata and pages."""

    def __init__(self, source: Trace, events: EventColumns) -> None:
        #: What the source is called (a generator's name, or a file's path).
        self.name: str = getattr(source, "name", str(getattr(source, "path", "")))
        self.meta: TraceMeta = source.meta
        self._events = events
        self._numbers = np.asarray(source.page_numbers, dtype=np.int64)
        #: The source's first-touch order of its dense pages (``None``: their own order).
        self.first_touch: np.ndarray | None = getattr(source, "first_touch", None)

    @property
    def page_table(self) -> np.ndarray:
        """Address (bytes) of each dense page index."""
        return self._numbers * self.meta.page_size

    @property
    def page_numbers(self) -> np.ndarray:
        """Page number (address // page size) of each dense page index."""
        return self._numbers

    def columns(self, events_per_chunk: int = DEFAULT_CHUNK) -> Iterator[EventColumns]:
        """The events as :class:`EventColumns` views of at most ``events_per_chunk`` events."""
        for start in range(0, len(self._events), events_per_chunk):
            yield self._events[start:start + events_per_chunk]

    def chunks(self, events_per_chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """Yield ``EVENT_DTYPE`` arrays of at most ``events_per_chunk`` events, in trace order."""
        for columns in self.columns(events_per_chunk):
            yield columns.structured()


def resident(trace: Trace, budget_bytes: int) -> Trace:
    """``trace`` read into memory when its events take at most ``budget_bytes``; else itself.

    A trace whose length is known up front (the native format, generated
    ones) is not read at all when it does not fit; one of unknown length is
    read until it passes the budget, then streamed as before.
    """
    if isinstance(trace, ResidentTrace):
        return trace
    known = trace.meta.events
    if known is not None and known * EVENT_BYTES > budget_bytes:
        return trace
    parts: list[EventColumns] = []
    size = 0
    for columns in trace_columns(trace):
        size += len(columns) * EVENT_BYTES
        if size > budget_bytes:
            return trace
        parts.append(columns)
    fields = [np.concatenate([getattr(part, name) for part in parts])
              if parts else np.empty(0, dtype=EVENT_DTYPE.fields[name][0])
              for name in EVENT_DTYPE.names]
    for array in fields:
        array.flags.writeable = False
    return ResidentTrace(trace, EventColumns(*fields))


def hold(traces: Sequence[Trace], budget_bytes: int) -> list[Trace]:
    """``traces`` in order, each held in memory (:func:`resident`) while their events together
    fit ``budget_bytes``; the others as they are."""
    held: list[Trace] = []
    for trace in traces:
        held.append(resident(trace, budget_bytes))
        if isinstance(held[-1], ResidentTrace):
            budget_bytes -= held[-1].meta.events * EVENT_BYTES
    return held
