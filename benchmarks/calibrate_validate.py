"""Calibrate this machine, then check the profile against a separate measurement run.

Runs ``migpolicy hw calibrate --quick`` (the console script, into a temporary
directory) and times it (target: under a minute), then measures the same
experiments again in this process in another shuffled order (another seed)
and validates the fresh profile against those fresh measurements: the median
and maximum absolute percentage error (target: median at most 10%). The
baseline, priced on the same fresh rows, is the shipped ``local`` profile
before calibration (every value assumed). The learned model is reported on
the same rows twice: 5-fold cross-validated on the fresh run, and trained on
the calibration run then predicting the fresh one.

    python benchmarks/calibrate_validate.py [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from migpolicy.context import build_context
from migpolicy.hardware.learned import save_model, train, training_set
from migpolicy.hardware.locations import shipped_dir
from migpolicy.hardware.measure import Settings, measure, plan, write_table
from migpolicy.hardware.numa import detect_nodes
from migpolicy.hardware.predict import pipeline_row_pricer
from migpolicy.hardware.profile import load_profile
from migpolicy.hardware.tables import read_table
from migpolicy.hardware.validate import validate

TARGET_MEDIAN = 10.0
TARGET_QUICK_S = 60.0


def _console_script() -> str:
    beside = Path(sys.executable).with_name("migpolicy")
    return str(beside) if beside.exists() else (shutil.which("migpolicy") or "migpolicy")


def run(seed: int, folder: Path) -> dict:
    """Calibrate, measure again, validate; return every figure."""
    out = folder / "local.yaml"
    begin = time.perf_counter()
    subprocess.run([_console_script(), "hw", "calibrate", "--quick", "--out", str(out),
                    "--json"], check=True, capture_output=True, text=True)
    calibrate_s = time.perf_counter() - begin

    ctx = build_context(hw=str(out))
    settings = Settings.preset(quick=True, seed=seed)
    fresh_csv = folder / "fresh.csv"
    nodes = detect_nodes()
    write_table(fresh_csv, measure(plan(settings, gpu=False, nodes=len(nodes)), settings,
                                   nodes=nodes))
    calibrated = validate(ctx.pm, ctx.hw, fresh_csv, ctx.params, engines=list(ctx.engines))
    assumed = validate(ctx.pm, load_profile(shipped_dir() / "local.yaml"), fresh_csv, ctx.params,
                       engines=list(ctx.engines))

    fresh = read_table(fresh_csv, ctx.engines)
    price = pipeline_row_pricer(ctx.pm, ctx.params)
    cv = train(training_set(price, ctx.hw, fresh, ctx.params, [fresh_csv.name])).meta["cv"]
    first = read_table(out.with_suffix(".csv"), ctx.engines)
    model = train(training_set(price, ctx.hw, first, ctx.params, [out.with_suffix(".csv").name]))
    save_model(model, folder / "local.skops")
    learned_hw = replace(ctx.hw, cost_model="learned", learned_model="local.skops")
    held_out = validate(ctx.pm, ctx.hw, fresh_csv, ctx.params, engines=list(ctx.engines),
                        learned_hw=learned_hw).learned_abs_pct_err
    assert held_out is not None

    def errors(values: np.ndarray) -> dict:
        return {"median_abs_pct_err": float(np.median(values)),
                "max_abs_pct_err": float(np.max(values))}

    return {
        "rows": len(fresh),
        "calibrate_quick_s": calibrate_s,
        "target_quick_s": TARGET_QUICK_S,
        "calibrated": errors(calibrated.abs_pct_err),
        "assumed_baseline": errors(assumed.abs_pct_err),
        "target_median_abs_pct_err": TARGET_MEDIAN,
        "learned_cv_on_fresh": {k: cv[k] for k in ("folds", "median_abs_pct_err",
                                                   "max_abs_pct_err")},
        "learned_calibration_to_fresh": errors(held_out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the second run's order (calibration uses 0)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="migpolicy-calibrate-") as tmp:
        figures = run(args.seed, Path(tmp))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    cal, base = figures["calibrated"], figures["assumed_baseline"]
    verdict = "met" if cal["median_abs_pct_err"] <= TARGET_MEDIAN else "MISSED"
    print(f"calibrate --quick: {figures['calibrate_quick_s']:.1f} s "
          f"(target < {TARGET_QUICK_S:.0f} s)")
    print(f"fresh measurement run: {figures['rows']} experiments")
    print(f"calibrated profile vs fresh run: median |error| {cal['median_abs_pct_err']:.1f}%, "
          f"max {cal['max_abs_pct_err']:.1f}% (target: median <= {TARGET_MEDIAN:.0f}%, {verdict})")
    print(f"baseline, shipped local (assumed): median |error| {base['median_abs_pct_err']:.1f}%, "
          f"max {base['max_abs_pct_err']:.1f}%; calibrated/baseline median ratio "
          f"{cal['median_abs_pct_err'] / base['median_abs_pct_err']:.2f}")
    cv, held = figures["learned_cv_on_fresh"], figures["learned_calibration_to_fresh"]
    print(f"learned model, {cv['folds']}-fold cross-validated on the fresh run: median |error| "
          f"{cv['median_abs_pct_err']:.1f}%, max {cv['max_abs_pct_err']:.1f}%")
    print(f"learned model, trained on the calibration run, on the fresh run: median |error| "
          f"{held['median_abs_pct_err']:.1f}%, max {held['max_abs_pct_err']:.1f}%")


if __name__ == "__main__":
    main()
