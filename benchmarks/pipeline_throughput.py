"""Pricing throughput of the stage pipeline, in folios per second (target: 5 million).

Prices 1 GiB of 4 KiB folios (262,144 folios, a real folio array, not
``price_uniform``) through ``run_pipeline`` on profile ``zen3-epyc-ptdma`` with
the engines cpu, mt (8 threads), dma (16 channels) and auto, and prints the
best of several runs. The baseline, run in the same process over the same
array, is a bare numpy pass computing the per-folio isolate and remap costs
and their per-batch sums: the floor of what any vectorised pricing can do.

    python benchmarks/pipeline_throughput.py [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from migpolicy.context import build_context
from migpolicy.folios import make_folios, page_table_entries
from migpolicy.pipeline import STAGES, run_pipeline

PROFILE = "zen3-epyc-ptdma"
FOLIO = 4 << 10
COUNT = (1 << 30) // FOLIO
TARGET = 5e6
ENGINES = (("cpu", 1), ("mt", 8), ("dma", 16), ("auto", 1))


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    """Shortest wall time of ``runs`` calls of ``work``, and the result of that call."""
    best, kept = float("inf"), None
    for _ in range(runs):
        begin = time.perf_counter()
        result = work()
        elapsed = time.perf_counter() - begin
        if elapsed < best:
            best, kept = elapsed, result
    return best, kept


def baseline(folios: np.ndarray, hw, max_folios: int) -> np.ndarray:
    """Per-batch isolate + remap nanoseconds and bytes, with nothing but numpy."""
    ptes = page_table_entries(folios, hw.base_page) * np.maximum(folios["mapcount"], 1)
    per_folio = (hw.p("stages.isolate.folio_ns") + hw.p("stages.isolate.pte_ns") * ptes
                 + hw.p("stages.remap.folio_ns") + hw.p("stages.remap.pte_ns") * ptes)
    starts = np.arange(0, len(folios), max_folios)
    return np.stack([np.add.reduceat(per_folio, starts),
                     np.add.reduceat(folios["size"], starts)])


def measure(runs: int) -> dict:
    """Folios per second of every engine and of the baseline."""
    out: dict = {"profile": PROFILE, "folio_size": FOLIO, "folios": COUNT, "runs": runs,
                 "target_folios_per_s": TARGET, "engines": {}}
    for engine, workers in ENGINES:
        run = build_context(hw=PROFILE, params={"engine": engine, "workers": workers})
        folios = make_folios(FOLIO, COUNT, pmd_size=run.hw.pmd_size)
        best, report = best_of(runs, partial(run_pipeline, run.pm, folios, run.hw, run.params))
        out["engines"][engine] = {
            "workers": workers,
            "best_s": best,
            "folios_per_s": COUNT / best,
            "meets_target": COUNT / best >= TARGET,
            "pricing_s": {stage: report.pricing_s.get(stage, 0.0) for stage in STAGES},
        }
    max_folios = int(run.params["batch.max_folios"])
    best, _ = best_of(runs, partial(baseline, folios, run.hw, max_folios))
    out["baseline"] = {"best_s": best, "folios_per_s": COUNT / best}
    for row in out["engines"].values():
        row["ratio_to_baseline"] = row["folios_per_s"] / out["baseline"]["folios_per_s"]
    return out


def show(result: dict) -> None:
    """Print the figures as a table."""
    print(f"pricing {result['folios']:,} folios of 4 KiB (1 GiB) on {result['profile']}, "
          f"best of {result['runs']} runs; target {result['target_folios_per_s'] / 1e6:.0f} M "
          "folios/s")
    base = result["baseline"]
    print(f"baseline (bare numpy isolate+remap pass): {base['folios_per_s'] / 1e6:8.2f} M "
          f"folios/s ({base['best_s'] * 1e3:.1f} ms)")
    header = " ".join(f"{stage:>8}" for stage in STAGES)
    print(f"{'engine':<8} {'M folios/s':>10} {'ms':>7} {'vs base':>7} {'target':>6}   "
          f"host ms per stage: {header}")
    for name, row in result["engines"].items():
        stages = " ".join(f"{row['pricing_s'][s] * 1e3:8.2f}" for s in STAGES)
        label = f"{name} x{row['workers']}" if name in ("mt", "dma") else name
        print(f"{label:<8} {row['folios_per_s'] / 1e6:10.2f} {row['best_s'] * 1e3:7.1f} "
              f"{row['ratio_to_baseline']:7.2f} {'met' if row['meets_target'] else 'MISSED':>6}"
              f"   {'':19}{stages}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per engine (best is kept)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        show(result)


if __name__ == "__main__":
    main()
