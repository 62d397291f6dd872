"""DAMON recordings: ``damo record`` files (JSON, zlib-compressed or plain) and the
``perf script`` text of ``damon:damon_aggregated`` tracepoint events.

DAMON reports, per aggregation interval (a *snapshot*), address-range regions
with ``nr_accesses``: how many of the interval's samples found the region
accessed. Each region becomes one event per page it covers, stamped with the
snapshot's start time and weighted by ``nr_accesses`` (times the fraction of
the page the region covers, when pages are larger than the region's
alignment); regions with no access produce no event. So a trace's accesses
are the sum over snapshots of ``nr_accesses`` x region size / page size. The
op is unknown (DAMON does not tell loads from stores); the tenant is the
monitoring target, numbered in first-seen order. The snapshot interval is the
trace's natural epoch (``trace info`` reports the working set per snapshot).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from migpolicy.hookspecs import hookimpl
from migpolicy.traces.events import EVENT_DTYPE, OP_UNKNOWN, TraceFormat, TraceSource

__all__ = ["damon_events", "read_damo_json", "read_damon_perf"]

#: Events per yielded chunk when a snapshot's regions expand into many pages.
CHUNK = 1 << 20
_PERF_LINE = re.compile(
    r"^\s*.*?\s(?P<time>\d+\.\d+):\s+damon:damon_aggregated:\s+target_id=(?P<target>\d+)"
    r"\s+nr_regions=(?P<nr>\d+)\s+(?P<start>\d+)-(?P<end>\d+):\s+(?P<acc>\d+)(?:\s+(?P<age>\d+))?\s*$"
)


def damon_events(starts: np.ndarray, ends: np.ndarray, accesses: np.ndarray, t_ns: np.ndarray,
                 tenants: np.ndarray, page_size: int) -> Iterator[np.ndarray]:
    """Expand regions ``[start, end)`` into per-page weighted events, in bounded chunks."""
    live = (accesses > 0) & (ends > starts)
    starts, ends, accesses = starts[live], ends[live], accesses[live].astype(np.float64)
    t_ns, tenants = t_ns[live], tenants[live]
    first = starts // page_size
    last = (ends - 1) // page_size
    counts = last - first + 1
    i = 0
    while i < len(counts):
        j = i + max(1, int(np.searchsorted(np.cumsum(counts[i:]), CHUNK, side="right")))
        reps = counts[i:j]
        region = np.repeat(np.arange(i, j), reps)
        offset = np.arange(len(region)) - np.repeat(np.cumsum(reps) - reps, reps)
        pages = first[region] + offset
        lo = np.maximum(starts[region], pages * page_size)
        hi = np.minimum(ends[region], (pages + 1) * page_size)
        out = np.empty(len(region), dtype=EVENT_DTYPE)
        out["t_ns"] = t_ns[region]
        out["page"] = pages
        out["op"] = OP_UNKNOWN
        out["tenant"] = tenants[region]
        out["weight"] = accesses[region] * ((hi - lo) / page_size)
        yield out
        i = j


def _number(value: Any, where: str) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.replace(",", "").strip()
        if text.isdigit():
            return int(text)
    raise ValueError(f"{where}: expected a number, got {value!r}")


def _samples(value: Any, where: str) -> int:
    if isinstance(value, dict):
        value = value.get("samples")
    return _number(value, where)


def sniff_damo_json(head: bytes) -> bool:
    """zlib-compressed or plain JSON holding damo's ``snapshots``/``regions`` keys."""
    if head[:1] == b"\x78":
        try:
            head = zlib.decompressobj().decompress(head, 1 << 16)
        except zlib.error:
            return False
    text = head.lstrip()
    return text[:1] in (b"[", b"{") and b'"snapshots"' in text and b'"regions"' in text


def read_damo_json(source: TraceSource) -> Iterator[np.ndarray]:
    """Yield the per-page events of a ``damo record`` JSON file, snapshot by snapshot."""
    raw = source.stream.read()
    if raw[:1] == b"\x78":
        try:
            raw = zlib.decompress(raw)
        except zlib.error as exc:
            raise ValueError(f"the zlib stream of the damo record is corrupt or truncated ({exc})"
                             ) from None
    try:
        records = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", "?")
        raise ValueError(f"line {line}: not valid damo record JSON ({exc})") from None
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        raise ValueError("record 1: expected a list of damo records")
    tenants: dict[Any, int] = {}
    intervals = []
    for r, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("snapshots"), list):
            raise ValueError(f"record {r + 1}: expected an object with a 'snapshots' list")
        tenant = tenants.setdefault(record.get("target_id", r), len(tenants))
        for s, snap in enumerate(record["snapshots"]):
            where = f"record {r + 1} snapshot {s + 1}"
            if not isinstance(snap, dict) or not isinstance(snap.get("regions"), list):
                raise ValueError(f"{where}: expected an object with a 'regions' list")
            t0 = _number(snap.get("start_time"), f"{where} start_time")
            t1 = _number(snap.get("end_time"), f"{where} end_time")
            intervals.append(t1 - t0)
            rows = []
            for g, region in enumerate(snap["regions"]):
                at = f"{where} region {g + 1}"
                if not isinstance(region, dict):
                    raise ValueError(f"{at}: expected an object with start, end, nr_accesses")
                rows.append((_number(region.get("start"), f"{at} start"),
                             _number(region.get("end"), f"{at} end"),
                             _samples(region.get("nr_accesses"), f"{at} nr_accesses")))
            if not rows:
                continue
            bounds = np.array(rows, dtype=np.int64).reshape(-1, 3)
            if (bounds[:, 1] < bounds[:, 0]).any():
                bad = int(np.flatnonzero(bounds[:, 1] < bounds[:, 0])[0])
                raise ValueError(f"{where} region {bad + 1}: end lies before start")
            n = len(bounds)
            if intervals and "epoch_ns" not in source.hints:
                source.hints["epoch_ns"] = int(t1 - t0)
            yield from damon_events(bounds[:, 0], bounds[:, 1], bounds[:, 2],
                                    np.full(n, t0, np.int64), np.full(n, tenant, np.int32),
                                    source.page_size)
    if intervals:
        source.hints["epoch_ns"] = int(np.median(intervals))


def sniff_damon_perf(head: bytes) -> bool:
    """``perf script`` text whose first event is ``damon:damon_aggregated``."""
    for line in head.split(b"\n")[:8]:
        if line.strip():
            return b"damon:damon_aggregated:" in line
    return False


def read_damon_perf(source: TraceSource) -> Iterator[np.ndarray]:
    """Yield the per-page events of ``perf script`` output of ``damon:damon_aggregated``.

    A snapshot is a run of consecutive regions of one target in ascending
    address order; all its regions take the time of its first line.
    """
    tenants: dict[int, int] = {}
    rows: list[tuple[int, int, int, int, int]] = []
    prev_target, prev_end, snap_t = None, None, 0
    snap_times: list[int] = []
    for number, raw in enumerate(source.stream, 1):
        line = raw.decode("utf-8", "replace")
        if not line.strip():
            continue
        match = _PERF_LINE.match(line)
        if match is None:
            raise ValueError(f"line {number}: expected a damon:damon_aggregated event such as "
                             f"'kdamond.0 4452 [000] 82820.952659: damon:damon_aggregated: "
                             f"target_id=1 nr_regions=8 4096-8192: 3', got {line.strip()[:80]!r}")
        target, start, end = int(match["target"]), int(match["start"]), int(match["end"])
        if end < start:
            raise ValueError(f"line {number}: region end {end} lies before its start {start}")
        if target != prev_target or prev_end is None or start < prev_end:
            secs, _, frac = match["time"].partition(".")
            snap_t = int(secs) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
            snap_times.append(snap_t)
            if len(snap_times) >= 2:
                source.hints.setdefault("epoch_ns", snap_times[1] - snap_times[0])
        prev_target, prev_end = target, end
        tenant = tenants.setdefault(target, len(tenants))
        rows.append((start, end, int(match["acc"]), snap_t, tenant))
        if len(rows) >= 4096:
            yield from _perf_rows(rows, source.page_size)
            rows = []
    if rows:
        yield from _perf_rows(rows, source.page_size)
    if len(snap_times) >= 2:
        source.hints["epoch_ns"] = int(np.median(np.diff(snap_times)))


def _perf_rows(rows: list[tuple[int, int, int, int, int]], page_size: int) -> Iterator[np.ndarray]:
    table = np.array(rows, dtype=np.int64)
    yield from damon_events(table[:, 0], table[:, 1], table[:, 2], table[:, 3],
                            table[:, 4].astype(np.int32), page_size)


DAMO_JSON = TraceFormat(
    name="damo",
    summary="damo record output: JSON, zlib-compressed or plain (regions per snapshot)",
    sniff=sniff_damo_json,
    read=read_damo_json,
    priority=10,
)

DAMON_PERF = TraceFormat(
    name="damon-perf",
    summary="perf script text of damon:damon_aggregated tracepoint events",
    sniff=sniff_damon_perf,
    read=read_damon_perf,
    priority=20,
)


@hookimpl(trylast=True)
def migpolicy_trace_formats():
    return [DAMO_JSON, DAMON_PERF]
