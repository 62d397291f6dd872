"""The types a trace reader or generator plugin sees: the event dtype, metadata, descriptors.

This module imports only numpy and the standard library, so a plugin adding a
trace format or generator imports it and nothing else from migpolicy.

An event is one (possibly weighted) access to one page::

    t_ns    int64    time in ns (or the access's ordinal when the source has no clock)
    page    int64    a page: readers and generators yield page *numbers*
                     (address // page size); a :class:`Trace` hands consumers
                     dense indices 0..distinct_pages-1: in first-touch order,
                     or in address order from a native file (whose
                     ``first_touch`` gives the first-touch order)
    op      uint8    OP_READ, OP_WRITE, OP_MODIFY (read and write) or OP_UNKNOWN
    tenant  int32    who made the access (process, cgroup, DAMON target): 0.. in first-seen order
    weight  float64  how many accesses the event stands for

``weight`` is a float64, not an integer: a sampled event stands for its
sampling period, a DAMON region-page for its ``nr_accesses`` — integers, exact
in a float64 up to 2**53 even summed over a long trace, where a uint32 would
overflow — but some sources need fractions: a lackey access straddling two
pages counts half on each (so accesses stay equal to the trace's lines), and a
DAMON region that covers part of a page (a page size larger than DAMON's
region granularity) counts in proportion to the part covered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "EVENT_DTYPE",
    "OP_MODIFY",
    "OP_NAMES",
    "OP_READ",
    "OP_UNKNOWN",
    "OP_WRITE",
    "EventColumns",
    "TraceFormat",
    "TraceGenerator",
    "TraceMeta",
    "TraceOption",
    "TraceSource",
    "empty_events",
]

#: One event per row; fields aligned (32 bytes) so column access stays fast.
EVENT_DTYPE = np.dtype(
    {
        "names": ["t_ns", "page", "op", "tenant", "weight"],
        "formats": [np.int64, np.int64, np.uint8, np.int32, np.float64],
    },
    align=True,
)

#: The kind of access is not known (a sampled page fault, a DAMON region).
OP_UNKNOWN = 0
#: A load.
OP_READ = 1
#: A store.
OP_WRITE = 2
#: A read-modify-write (``OP_READ | OP_WRITE``): lackey's ``M``.
OP_MODIFY = 3
#: Op code → the name ``trace info`` reports.
OP_NAMES = {OP_UNKNOWN: "unknown", OP_READ: "read", OP_WRITE: "write", OP_MODIFY: "modify"}


@dataclass(frozen=True)
class EventColumns:
    """A chunk of events as one array per field, the columns of an ``EVENT_DTYPE`` chunk.

    What a columnar reader hands out without building a structured array
    (the native format's columns come straight from Arrow's buffers, read-only).
    Reads like a structured chunk where a consumer needs it: ``len(chunk)``
    is the number of events, ``chunk["page"]`` a field, ``chunk[a:b]`` a
    slice of every column.
    """

    t_ns: np.ndarray
    page: np.ndarray
    op: np.ndarray
    tenant: np.ndarray
    weight: np.ndarray

    @classmethod
    def of(cls, events: np.ndarray) -> EventColumns:
        """The columns of an ``EVENT_DTYPE`` array (contiguous copies)."""
        return cls(*(np.ascontiguousarray(events[name]) for name in EVENT_DTYPE.names))

    def __len__(self) -> int:
        return len(self.t_ns)

    def __getitem__(self, key: str | slice) -> Any:
        if isinstance(key, slice):
            return EventColumns(self.t_ns[key], self.page[key], self.op[key], self.tenant[key],
                                self.weight[key])
        if key not in EVENT_DTYPE.names:
            raise KeyError(key)
        return getattr(self, key)

    def structured(self) -> np.ndarray:
        """These events as one ``EVENT_DTYPE`` array (a copy): what ``chunks()`` hands out."""
        out = np.empty(len(self), dtype=EVENT_DTYPE)
        for name in EVENT_DTYPE.names:
            out[name] = getattr(self, name)
        return out


def empty_events(n: int = 0) -> np.ndarray:
    """Return a zeroed event array of ``n`` rows (weight 1, op unknown)."""
    events = np.zeros(n, dtype=EVENT_DTYPE)
    events["weight"] = 1.0
    return events


@dataclass(frozen=True)
class TraceMeta:
    """What is known about a trace as a whole.

    Totals (``events``, ``accesses``, ``distinct_pages``, times) are ``None``
    while unknown: a native file stores them; a streamed format knows them once
    it has been read to the end.
    """

    page_size: int
    source_format: str
    command: str = ""
    events: int | None = None
    accesses: float | None = None
    distinct_pages: int | None = None
    t_first_ns: int | None = None
    t_last_ns: int | None = None
    #: ``ns`` for real time stamps; ``ordinal`` when t_ns counts records (lackey, ChampSim).
    clock: str = "ns"
    #: The source's natural epoch, such as DAMON's aggregation interval (``None``: none).
    epoch_ns: int | None = None


@dataclass(frozen=True)
class TraceOption:
    """One option of a format or generator, set on the command line as ``--param name=value``.

    The value is converted to the type of ``default`` (bool, int, float or str).
    """

    name: str
    default: Any
    help: str


@dataclass
class TraceSource:
    """What a reader is given: the decompressed content and how to cut it into pages.

    A reader reports malformed input by raising :class:`ValueError` whose
    message names the line or record and what was expected; migpolicy prefixes
    the file name. ``hints`` lets a reader tell what it learned about the whole
    trace (``clock``, ``epoch_ns``).
    """

    name: str
    stream: BinaryIO
    page_size: int
    options: Mapping[str, Any] = field(default_factory=dict)
    hints: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TraceFormat:
    """A trace format a plugin can read.

    ``sniff`` gets the first bytes of the (decompressed) content and answers
    whether they look like this format; formats are detected from content
    because file names prove nothing. ``read`` yields bounded chunks of
    ``EVENT_DTYPE`` whose ``page`` is the page number (address // page size),
    in time order; each chunk is handed over (migpolicy rewrites its pages in
    place), so yield a fresh array each time. ``open``, instead of ``read``,
    is for formats that need random access to an uncompressed file (the
    native Parquet format): it takes ``(path, options)`` and returns a
    ``Trace``.
    """

    name: str
    summary: str
    sniff: Callable[[bytes], bool] | None
    read: Callable[[TraceSource], Iterator[np.ndarray]] | None = None
    parameters: tuple[TraceOption, ...] = ()
    open: Callable[..., Any] | None = None
    #: Detection order: lower first (specific formats before permissive ones).
    priority: int = 50


@dataclass(frozen=True)
class TraceGenerator:
    """A synthetic trace a plugin can generate, deterministic by seed.

    ``generate(events, pages, seed, options)`` yields ``EVENT_DTYPE`` chunks
    (page numbers in ``page``) summing to ``events`` rows, touching at most
    ``pages`` pages; the same arguments give the same trace.
    """

    name: str
    summary: str
    generate: Callable[[int, int, int, Mapping[str, Any]], Iterator[np.ndarray]]
    parameters: tuple[TraceOption, ...] = ()
