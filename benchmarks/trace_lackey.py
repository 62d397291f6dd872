"""Lackey conversion speed in lines per second on one core (target: 10 million).

Reads the lackey trace of a real program recorded for the tests (``sort``:
a million lines, 73% instruction fetches, valgrind's banner and summary
included), repeated to the length asked, and times, pinned to one CPU:

- ``reader``: the vectorised lackey parser alone (events with page numbers);
- ``open_trace``: the parser plus dense page indices, as replay reads a trace;
- ``convert``: all of ``migpolicy trace convert`` to the native format;
- ``python loop``: the baseline, a plain Python loop over the same lines
  (split, parse the hex address, compute the page, append), run over the
  first million lines in the same process.

Memory: the peak traced allocation (tracemalloc) of ``open_trace`` over the
trace and over a trace ``--grow`` times longer; it must not grow.

    python benchmarks/trace_lackey.py [--lines 5M] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import tempfile
import time
import tracemalloc
from array import array
from collections.abc import Callable
from pathlib import Path

from migpolicy.traces import TraceSource, open_trace, write_native
from migpolicy.traces.fmt_lackey import read_lackey

TARGET = 10e6
RECORDED = Path(__file__).resolve().parents[1] / "tests" / "traces" / "data" / "sort.lackey.xz"
BASELINE_LINES = 1_000_000


def recorded_lackey(lines: int) -> bytes:
    """``lines`` lines of the recorded ``sort`` trace (tests/traces/data), repeated as needed."""
    with lzma.open(RECORDED, "rb") as handle:
        block = handle.read()
    whole, rest = divmod(lines, block.count(b"\n"))
    return block * whole + b"".join(block.splitlines(keepends=True)[:rest])


def python_loop(data: bytes) -> array:
    """The baseline: what a straightforward parser does per line."""
    pages = array("q")
    for line in data.splitlines():
        if line.startswith(b"=="):
            continue
        kind = line[:2].strip()
        addr, size = line[3:].split(b",")
        if kind != b"I":
            start = int(addr, 16)
            pages.append(start >> 12)
            if (start + int(size) - 1) >> 12 != start >> 12:
                pages.append((start >> 12) + 1)
    return pages


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        begin = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - begin)
    return best


def drain(path: Path) -> int:
    return sum(len(c) for c in open_trace(path).chunks())


def read_only(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(len(c) for c in read_lackey(TraceSource(str(path), stream, 4096)))


def peak_mib(path: Path) -> float:
    tracemalloc.start()
    drain(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def measure(lines: int, runs: int, grow: int) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.lackey"
        data = recorded_lackey(lines)
        path.write_bytes(data)
        out = Path(tmp) / "bench.parquet"

        def convert() -> None:
            with open(out, "wb") as handle:
                write_native(open_trace(path), handle)

        seconds = {"reader": best_of(runs, lambda: read_only(path)),
                   "open_trace": best_of(runs, lambda: drain(path)),
                   "convert": best_of(runs, convert)}
        head = data[: data.index(b"\n", len(data) * BASELINE_LINES // lines - 1) + 1] \
            if lines > BASELINE_LINES else data
        base_lines = head.count(b"\n")
        baseline = best_of(max(1, runs - 1), lambda: python_loop(head))
        big = Path(tmp) / "big.lackey"
        with open(big, "wb") as handle:
            for _ in range(grow):
                handle.write(data)
        memory = {"lines": lines, "peak_mib": round(peak_mib(path), 1),
                  "lines_grown": lines * grow, "peak_mib_grown": round(peak_mib(big), 1)}
    rates = {name: lines / s for name, s in seconds.items()}
    base_rate = base_lines / baseline
    return {"lines": lines, "runs": runs, "cpus": 1, "target_lines_per_s": TARGET,
            "lines_per_s": {**{k: round(v) for k, v in rates.items()},
                            "python loop": round(base_rate)},
            "ratio_to_python_loop": {k: round(v / base_rate, 1) for k, v in rates.items()},
            "memory": memory, "native_bytes_per_line": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", default="5M", help="lines in the synthetic trace (5M)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--grow", type=int, default=4, help="memory check: times longer")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    text = args.lines.upper()
    lines = int(float(text[:-1]) * 1e6) if text.endswith("M") else int(text)
    result = measure(lines, args.runs, args.grow)
    result.pop("native_bytes_per_line")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"lackey, {lines:,} lines, one CPU, best of {args.runs}:")
    for name, rate in result["lines_per_s"].items():
        ratio = result["ratio_to_python_loop"].get(name)
        extra = f"  ({ratio}x the Python loop)" if ratio else ""
        print(f"  {name:12s} {rate / 1e6:7.2f} M lines/s{extra}")
    mem = result["memory"]
    print(f"  memory: peak {mem['peak_mib']} MiB for {mem['lines']:,} lines, "
          f"{mem['peak_mib_grown']} MiB for {mem['lines_grown']:,} lines")
    verdict = "meets" if result["lines_per_s"]["convert"] >= TARGET else "misses"
    print(f"  convert {verdict} the target of {TARGET / 1e6:.0f} M lines/s")


if __name__ == "__main__":
    main()
