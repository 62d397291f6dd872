"""``perf script`` text of sampled data addresses, each sample weighted by its period.

Record with ``perf mem record`` where the CPU supports it, or any event with
``perf record -d`` (``perf record -e page-faults -c 1 -d -- PROG``), then print
the data address: ``perf script -F comm,tid,time,period,event,addr`` (``-F
+addr`` works too). A line reads ``comm tid [cpu] time: [period] event:
address ...``; the data address is the first hexadecimal field after the
event. The op is a store when the event name or ``data_src`` says so
(``mem-stores``, ``|OP STORE|``), a load when they say load, unknown
otherwise; the period defaults to 1 when the line has none. The tenant is the
thread id printed before the time (0 without one). Samples of kernel addresses
(the upper half of the address space) are skipped: kernel memory is never
migrated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from migpolicy.hookspecs import hookimpl
from migpolicy.traces.events import (
    EVENT_DTYPE,
    OP_READ,
    OP_UNKNOWN,
    OP_WRITE,
    TraceFormat,
    TraceSource,
)

__all__ = ["read_perf_samples", "sniff_perf_samples"]

CHUNK = 1 << 16
_SAMPLE = re.compile(
    r"^(?P<head>.*?)(?P<sec>\d+)\.(?P<frac>\d{1,9}):\s+(?:(?P<period>\d+)\s+)?"
    r"(?P<event>[^\s:]+(?::[^\s:]+)*):\s+(?P<addr>[0-9a-fA-F]+)\b(?P<rest>.*)$"
)
_TID = re.compile(r"(\d+)(?:/(\d+))?\s*(?:\[\d+\]\s*)?$")
#: What follows the instruction pointer in perf script's default output: ``sym+off (dso)``.
_IP_ONLY = re.compile(r"^\s+\S+\s+\([^()]*\)\s*$")


def _op(event: str, rest: str) -> int:
    text = (event + " " + rest).lower()
    if "op store" in text or "store" in event.lower():
        return OP_WRITE
    if "op load" in text or "load" in event.lower():
        return OP_READ
    return OP_UNKNOWN


def sniff_perf_samples(head: bytes) -> bool:
    """``perf script`` lines carrying a data address after the event name."""
    lines = [line for line in head.split(b"\n")[:32] if line.strip()]
    text = [line.decode("utf-8", "replace") for line in lines]
    good = sum(1 for line in text if _SAMPLE.match(line))
    return bool(text) and good >= 0.8 * len(text) and not any(
        "damon:damon_aggregated" in line for line in text)


def read_perf_samples(source: TraceSource) -> Iterator[np.ndarray]:
    """Yield one event per sample line, weighted by the sample's period."""
    shift = source.page_size.bit_length() - 1
    rows: list[tuple[int, int, int, int, int]] = []
    for number, raw in enumerate(source.stream, 1):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if not line.strip():
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(
                f"line {number}: expected a perf script sample with a data address, such as "
                f"'prog 4242 12.345678: 1 page-faults: 7f45d6a31b70', got {line.strip()[:80]!r}"
                " (print it with perf script -F comm,tid,time,period,event,addr)")
        if _IP_ONLY.match(match["rest"]):
            raise ValueError(
                f"line {number}: perf script printed the instruction pointer, not a data "
                "address; print it with perf script -F comm,tid,time,period,event,addr")
        tid = _TID.search(match["head"])
        tenant = int(tid.group(2) or tid.group(1)) if tid else 0
        t_ns = int(match["sec"]) * 1_000_000_000 + int(match["frac"].ljust(9, "0"))
        addr = int(match["addr"], 16)
        if addr >= 1 << 63:  # the kernel's own memory: never migrated
            continue
        rows.append((t_ns, addr >> shift, _op(match["event"], match["rest"]),
                     tenant, int(match["period"] or 1)))
        if len(rows) == CHUNK:
            yield _events(rows)
            rows = []
    if rows:
        yield _events(rows)


def _events(rows: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    table = np.array(rows, dtype=np.int64)
    out = np.empty(len(table), dtype=EVENT_DTYPE)
    out["t_ns"], out["page"], out["op"] = table[:, 0], table[:, 1], table[:, 2]
    out["tenant"], out["weight"] = table[:, 3], table[:, 4]
    return out


PERF_SAMPLES = TraceFormat(
    name="perf",
    summary="perf script text of samples with data addresses (perf mem, perf record -d)",
    sniff=sniff_perf_samples,
    read=read_perf_samples,
    priority=30,
)


@hookimpl(trylast=True)
def migpolicy_trace_formats():
    return [PERF_SAMPLES]
