"""Reading the native trace format, in events per second with two cores (target: 100 million).

Generates a native trace (``zipf``, 1 million pages; or reads ``--trace``),
pins the process to two CPUs (pyarrow's pool to two threads) and times, best
of ``--runs``:

- ``chunks``: ``open_trace(path).chunks(2**18)`` handed to a consumer that
  only takes them: decoding plus building ``EVENT_DTYPE`` arrays;
- ``chunks + bincount``: the consumer also counts accesses per page
  (``np.bincount`` of pages weighted by weight), as replay does per epoch;
- ``columns`` and ``columns + bincount``: the same through
  ``open_trace(path).columns(2**18)``, one array per field straight from
  pyarrow's buffers (what replay reads), no ``EVENT_DTYPE`` array built;
- ``pyarrow decode``: the baseline, pyarrow's own ``iter_batches`` over the
  same file with nothing converted: the floor of any Parquet reader.

Memory: the peak of numpy allocations (tracemalloc) plus pyarrow's pool while
reading, which stays at about three decoded row groups (the one being handed out,
the one decoding ahead, one a consumer still holds a slice of) whatever the
trace's length.

    python benchmarks/trace_native_read.py [--events 20M] [--runs 3] [--trace FILE] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from migpolicy.traces import generated_trace, open_trace, trace_generators, write_native
from migpolicy.traces.native import DEFAULT_CHUNK

TARGET = 100e6
CHUNK = DEFAULT_CHUNK


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        begin = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - begin)
    return best


def take(path: Path, reader: str = "chunks") -> int:
    """Events handed out by ``open_trace(path).chunks`` or ``.columns`` (``reader``)."""
    return sum(len(chunk) for chunk in getattr(open_trace(path), reader)(CHUNK))


def count_pages(path: Path, reader: str = "chunks") -> np.ndarray:
    """Accesses per page, one ``np.bincount`` per chunk of ``reader`` (as ``take``)."""
    trace = open_trace(path)
    counts = np.zeros(trace.meta.distinct_pages)
    for chunk in getattr(trace, reader)(CHUNK):
        counts += np.bincount(chunk["page"], weights=chunk["weight"], minlength=len(counts))
    return counts


def arrow_only(path: Path) -> int:
    return sum(b.num_rows for b in pq.ParquetFile(path).iter_batches(CHUNK, use_threads=True))


def peak_mib(path: Path, read: Callable[[Path], object]) -> float:
    """Peak of numpy's allocations plus pyarrow's, during ``read(path)`` alone.

    pyarrow's allocations go through a fresh proxy pool for the read, so its
    peak is this read's, not the process's so far.
    """
    base = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(base)
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        read(path)
        numpy_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(base)
    return (numpy_peak + pool.max_memory()) / 2**20


def measure(path: Path, runs: int) -> dict:
    events = open_trace(path).meta.events
    seconds = {"chunks": best_of(runs, lambda: take(path)),
               "chunks + bincount": best_of(runs, lambda: count_pages(path)),
               "columns": best_of(runs, lambda: take(path, "columns")),
               "columns + bincount": best_of(runs, lambda: count_pages(path, "columns")),
               "pyarrow decode": best_of(runs, lambda: arrow_only(path))}
    rates = {name: events / s for name, s in seconds.items()}
    base = rates["pyarrow decode"]
    return {"events": events, "file_bytes": path.stat().st_size, "runs": runs, "cpus": 2,
            "target_events_per_s": TARGET,
            "events_per_s": {k: round(v) for k, v in rates.items()},
            "ratio_to_pyarrow_decode": {k: round(v / base, 2) for k, v in rates.items()
                                        if k != "pyarrow decode"},
            "peak_mib": {"chunks": round(peak_mib(path, take), 1),
                         "columns": round(peak_mib(path, partial(take, reader="columns")), 1)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="20M", help="events to generate (20M)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trace", type=Path, help="time this native trace instead")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:2]))
    pa.set_cpu_count(2)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.trace
        if path is None:
            text = args.events.upper()
            events = int(float(text[:-1]) * 1e6) if text.endswith("M") else int(text)
            path = Path(tmp) / "zipf.parquet"
            zipf = trace_generators_builtin()["zipf"]
            with open(path, "wb") as handle:
                write_native(generated_trace(zipf, events, 1 << 20, 1, {}), handle)
        result = measure(path, args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    size = result["file_bytes"] / result["events"]
    print(f"native trace, {result['events']:,} events ({size:.2f} bytes/event), two CPUs, "
          f"best of {args.runs}:")
    for name, rate in result["events_per_s"].items():
        ratio = result["ratio_to_pyarrow_decode"].get(name)
        extra = f"  ({ratio}x pyarrow's bare decode)" if ratio else ""
        print(f"  {name:18s} {rate / 1e6:7.1f} M events/s{extra}")
    peak = result["peak_mib"]
    print(f"  peak memory while reading: chunks {peak['chunks']} MiB, columns "
          f"{peak['columns']} MiB")
    for name in ("chunks", "columns"):
        verdict = "meets" if result["events_per_s"][name] >= TARGET else "misses"
        print(f"  {name} {verdict} the target of {TARGET / 1e6:.0f} M events/s")


def trace_generators_builtin() -> dict:
    from migpolicy.plugin_manager import get_plugin_manager

    return trace_generators(get_plugin_manager(entry_points=False))


if __name__ == "__main__":
    main()
