"""Real copy bandwidth of the mt engine against ``numpy.copyto`` (target: at least 90%).

Copies a buffer (256 MiB by default) with :func:`migpolicy.execute.copy_folios`
— what ``migpolicy move --engine mt --execute`` runs — with 1 and 2 threads
and folios of 4 KiB, 64 KiB and 2 MiB, and compares each with one
``numpy.copyto`` of a buffer of the same size in the same run. The baseline is
measured again before every configuration and its best is kept, so a busy
moment cannot flatter the ratio.

    python benchmarks/mt_copy_bandwidth.py [--size 256M] [--repeats 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from migpolicy.errors import InputError
from migpolicy.execute import copy_folios
from migpolicy.units import format_size, parse_size

TARGET = 0.9
THREADS = (1, 2)
FOLIOS = (4 << 10, 64 << 10, 2 << 20)


class CopytoBaseline:
    """``numpy.copyto`` of one touched buffer into another; keeps the best time seen."""

    def __init__(self, nbytes: int) -> None:
        self.src = np.arange(nbytes, dtype=np.uint8)
        self.dst = np.zeros(nbytes, dtype=np.uint8)
        np.copyto(self.dst, self.src)
        self.best_s = float("inf")

    def measure(self, repeats: int) -> float:
        """Time ``repeats`` copies; return the best time seen so far."""
        for _ in range(repeats):
            begin = time.perf_counter()
            np.copyto(self.dst, self.src)
            self.best_s = min(self.best_s, time.perf_counter() - begin)
        return self.best_s


def measure(nbytes: int, repeats: int) -> dict:
    """Bandwidth of every configuration and of the baseline, in GB/s (10^9 bytes/s)."""
    baseline = CopytoBaseline(nbytes)
    rows = []
    for folio in FOLIOS:
        for threads in THREADS:
            baseline.measure(repeats)
            seconds = copy_folios(nbytes, folio, threads, repeats=repeats)
            rows.append({"folio_size": folio, "threads": threads, "best_s": seconds,
                         "gbps": nbytes / seconds / 1e9})
    base_gbps = nbytes / baseline.measure(repeats) / 1e9
    for row in rows:
        row["ratio"] = row["gbps"] / base_gbps
        row["meets_target"] = row["ratio"] >= TARGET
    return {"bytes": nbytes, "repeats": repeats, "target_ratio": TARGET,
            "numpy_copyto_gbps": base_gbps, "mt": rows,
            "all_meet_target": all(row["meets_target"] for row in rows)}


def show(result: dict) -> None:
    """Print the figures as a table."""
    print(f"real copies of {format_size(result['bytes'])}, best of {result['repeats']}; "
          f"numpy.copyto: {result['numpy_copyto_gbps']:.2f} GB/s; target "
          f"{result['target_ratio']:.0%} of it")
    print(f"{'folio':>6} {'threads':>7} {'GB/s':>7} {'ratio':>6} target")
    for row in result["mt"]:
        print(f"{format_size(row['folio_size']):>6} {row['threads']:>7} {row['gbps']:7.2f} "
              f"{row['ratio']:6.2f} {'met' if row['meets_target'] else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="256M", help="bytes per copy: 64M, 256M, 1G ...")
    parser.add_argument("--repeats", type=int, default=7, help="copies per figure (best kept)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    try:
        nbytes = parse_size(args.size, "--size")
        if nbytes % max(FOLIOS):
            raise InputError(f"--size {args.size} must be a multiple of 2M")
        result = measure(nbytes, args.repeats)
    except InputError as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        show(result)


if __name__ == "__main__":
    main()
