"""Leave-one-slice-out fidelity of the fitted analytic model on published tables.

For each worker count and each folio size in turn, every row of that slice is
held out, the profile's free parameters are refitted (as ``migpolicy hw fit``
does: same free parameters, ties and loss, starting from the shipped fit) to
the remaining rows, and the held-out rows are predicted. Prints, per slice,
the held-out median and maximum absolute percentage error, and overall the
median over every held-out prediction next to the baseline run in the same
process: the in-sample error of the full fit on the same rows (the ratio says
how much worse a slice the fit never saw is predicted). Target: leave-one-
slice-out median at most 10% on the RFC V3 tables.

    python benchmarks/leave_one_slice_out.py [--profile zen3-epyc-ptdma]
        [--table v3 --table v3-batch] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from migpolicy.context import build_context
from migpolicy.hardware.fit import DEFAULT_TIES, abs_pct_err, default_free, fit_parameters
from migpolicy.hardware.predict import pipeline_predictor
from migpolicy.hardware.profile import Provenance
from migpolicy.hardware.tables import read_table, shipped_table

TARGET_MEDIAN = 10.0
SLICE_COLUMNS = (("workers", "workers"), ("folio_bytes", "folio KiB"))
PROVENANCE = Provenance("loso", "fitted", {"source": "held-out refit", "date": "-",
                                           "command": "benchmarks/leave_one_slice_out.py"})


def run(profile: str, keys: list[str], max_evaluations: int) -> dict:
    """Refit without each slice, predict it; return every figure."""
    ctx = build_context(hw=profile)
    predict = pipeline_predictor(ctx.pm, ctx.params)
    rows = np.concatenate([read_table(shipped_table(k), ctx.engines) for k in keys])
    free = default_free(list(np.unique(rows["engine"])))
    ties = {dep: src for dep, src in DEFAULT_TIES.items() if src in free}
    in_sample = abs_pct_err(predict(ctx.hw, rows), rows["throughput_gbps"])
    slices = []
    held_err = {column: np.full(len(rows), np.nan) for column, _ in SLICE_COLUMNS}
    for column, label in SLICE_COLUMNS:
        for value in np.unique(rows[column]):
            out = rows[column] == value
            begin = time.perf_counter()
            result = fit_parameters(predict, ctx.hw, rows[~out], free, PROVENANCE, ties=ties,
                                    max_evaluations=max_evaluations)
            err = abs_pct_err(predict(result.profile, rows[out]), rows["throughput_gbps"][out])
            held_err[column][out] = err
            shown = int(value) // 1024 if column == "folio_bytes" else int(value)
            slices.append({
                "slice": f"{label} = {shown}", "rows": int(out.sum()),
                "median_abs_pct_err": float(np.median(err)), "max_abs_pct_err": float(err.max()),
                "in_sample_median_abs_pct_err": float(np.median(in_sample[out])),
                "converged": result.converged, "fit_s": time.perf_counter() - begin,
            })
            print(f"without {label} = {shown}: held-out median {np.median(err):.1f}% "
                  f"({slices[-1]['fit_s']:.0f} s)", file=sys.stderr, flush=True)
    summary = {}
    for column, label in SLICE_COLUMNS:
        err = held_err[column]
        summary[label] = {"median_abs_pct_err": float(np.median(err)),
                          "max_abs_pct_err": float(err.max()),
                          "in_sample_median_abs_pct_err": float(np.median(in_sample)),
                          "ratio_to_in_sample": float(np.median(err) / np.median(in_sample))}
    every = np.concatenate([held_err[c] for c, _ in SLICE_COLUMNS])
    return {"profile": profile, "tables": keys, "rows": len(rows), "free": free,
            "slices": slices, "by": summary,
            "leave_one_slice_out_median_abs_pct_err": float(np.median(every)),
            "in_sample_median_abs_pct_err": float(np.median(in_sample)),
            "in_sample_max_abs_pct_err": float(in_sample.max()),
            "target_median": TARGET_MEDIAN,
            "meets_target": bool(np.median(every) <= TARGET_MEDIAN)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="zen3-epyc-ptdma")
    parser.add_argument("--table", action="append", dest="tables",
                        help="shipped table key (repeatable) [default: v3 and v3-batch]")
    parser.add_argument("--max-evaluations", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.profile, args.tables or ["v3", "v3-batch"], args.max_evaluations)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{figures['profile']} on {', '.join(figures['tables'])} ({figures['rows']} rows, "
          f"{len(figures['free'])} free parameters)")
    for s in figures["slices"]:
        print(f"  without {s['slice']:<16} {s['rows']:>3} rows held out: median "
              f"{s['median_abs_pct_err']:5.1f}%  max {s['max_abs_pct_err']:5.1f}%  "
              f"(in-sample {s['in_sample_median_abs_pct_err']:4.1f}%; refit {s['fit_s']:.0f} s)")
    for label, s in figures["by"].items():
        print(f"leave one {label} out: median {s['median_abs_pct_err']:.1f}%, max "
              f"{s['max_abs_pct_err']:.1f}%; {s['ratio_to_in_sample']:.2f}x the in-sample "
              f"median {s['in_sample_median_abs_pct_err']:.1f}%")
    verdict = "meets" if figures["meets_target"] else "misses"
    print(f"all held-out predictions: median "
          f"{figures['leave_one_slice_out_median_abs_pct_err']:.1f}% ({verdict} the target of "
          f"{TARGET_MEDIAN:g}%); in-sample median {figures['in_sample_median_abs_pct_err']:.1f}%, "
          f"max {figures['in_sample_max_abs_pct_err']:.1f}%")


if __name__ == "__main__":
    main()
