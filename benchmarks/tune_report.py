"""How long ``tune --report`` takes on studies of growing size, against Optuna's own figures.

Builds in-memory studies (one and two objectives) of N trials over 10
parameters (two of them conditional, like ``hist.*``), 10% pruned and 5%
failed, then times in this process:

* ``report``: :func:`migpolicy.tuning.report.write_report` (importances,
  figures, page, JSON, rename);
* ``importances``: the importances alone (fANOVA up to ``FANOVA_MAX_TRIALS``
  complete trials, PED-ANOVA past it), the part that grows fastest;
* ``optuna``, the baseline: Optuna's matplotlib figures of the same study
  (``plot_optimization_history``, ``plot_param_importances`` with Optuna's
  default evaluator and, with two objectives, ``plot_pareto_front``), saved
  as PNG files.

    python benchmarks/tune_report.py [--sizes 50,200,1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from migpolicy.reportpage import pyplot
from migpolicy.tuning.report import importances, objective_names, write_report


def make_study(n: int, objectives: int, seed: int = 0) -> optuna.Study:
    """A study of ``n`` trials with known synthetic values (see the module docstring)."""
    rng = np.random.default_rng(seed)
    space = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(6)}
    space.update(engine=CategoricalDistribution(["cpu", "mt", "dma"]),
                 batch=IntDistribution(1, 512, log=True))
    hist = {"hist.rate": FloatDistribution(1.0, 1e4, log=True),
            "hist.fill": FloatDistribution(0.1, 1.0)}
    study = optuna.create_study(directions=["minimize"] * objectives)
    for number in range(n):
        params = {k: float(rng.random()) for k in space if k.startswith("x")}
        params.update(engine=str(rng.choice(["cpu", "mt", "dma"])),
                      batch=int(rng.integers(1, 513)))
        dists = dict(space)
        if params["engine"] == "mt":
            params.update({"hist.rate": float(rng.uniform(1, 1e4)),
                           "hist.fill": float(rng.uniform(0.1, 1.0))})
            dists.update(hist)
        app = 1.0 + 2 * params["x0"] + params["x1"] ** 2 + 0.1 * rng.random()
        values = [app, 1.0 / app + params["x2"]][:objectives]
        state = TrialState.COMPLETE
        if number % 10 == 9:
            state = TrialState.PRUNED
        elif number % 20 == 7:
            state = TrialState.FAIL
        outcome = {TrialState.COMPLETE: "full", TrialState.PRUNED: "pruned",
                   TrialState.FAIL: "failed"}[state]
        study.add_trial(create_trial(
            state=state, params=params, distributions=dists,
            values=values if state == TrialState.COMPLETE else None,
            intermediate_values={0: values[0] / 2} if state == TrialState.PRUNED
            and objectives == 1 else None,
            user_attrs={"outcome": outcome, "constraint": params["x3"] - 0.8}))
    return study


def optuna_figures(study: optuna.Study, out: Path) -> None:
    """Optuna's own matplotlib figures of ``study``, saved as PNG (the baseline)."""
    from optuna.visualization import matplotlib as ovm

    plt = pyplot()
    multi = len(study.directions) > 1
    target = (lambda t: t.values[0]) if multi else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib figures experimental
        figures = {"history": ovm.plot_optimization_history(study, target=target),
                   "importances": ovm.plot_param_importances(study, target=target)}
        if multi:
            figures["pareto"] = ovm.plot_pareto_front(study)
    for name, ax in figures.items():
        ax.figure.savefig(out / f"{name}.png", dpi=90)
        plt.close(ax.figure)


def _timed(fn, *args) -> float:
    begin = time.perf_counter()
    fn(*args)
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_study(20, 1)  # warm up the imports (matplotlib, scikit-learn) out of the timings
        write_report(folder / "warm", make_study(20, 2), {})
        for n in (int(s) for s in args.sizes.split(",")):
            for objectives in (1, 2):
                study = make_study(n, objectives)
                summary = {"baseline_value": [2.0, 1.0][:objectives]}
                report_s = _timed(write_report, folder / f"r{n}-{objectives}", study, summary)
                trials = study.get_trials(deepcopy=False)
                imp_s = _timed(importances, study, objective_names(study, summary), trials)
                (folder / f"o{n}-{objectives}").mkdir()
                optuna_s = _timed(optuna_figures, study, folder / f"o{n}-{objectives}")
                rows.append({"trials": n, "objectives": objectives, "report_s": report_s,
                             "importances_s": imp_s, "optuna_figures_s": optuna_s,
                             "report_vs_optuna": report_s / optuna_s})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'trials':>7} {'obj':>3} {'report s':>9} {'import. s':>9} {'optuna s':>9} "
          f"{'report/optuna':>13}")
    for r in rows:
        print(f"{r['trials']:>7} {r['objectives']:>3} {r['report_s']:>9.2f} "
              f"{r['importances_s']:>9.2f} {r['optuna_figures_s']:>9.2f} "
              f"{r['report_vs_optuna']:>12.2f}x")
    print("report: write_report (importances for every objective, figures, page, JSON); "
          "optuna: Optuna's matplotlib history + importances (+ Pareto) of the first objective")


if __name__ == "__main__":
    main()
