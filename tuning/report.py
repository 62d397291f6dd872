"""``tune --report DIR``: a study's history, parameter importances and Pareto front as a page.

Works from the Optuna study alone (any storage, one or several objectives),
plus the summary figures ``tune`` computed (best, kernel-default baseline,
improvement). :func:`report_data` gathers everything the page shows; it is
also written whole as ``tune.json``: the summary and every trial (number,
state, outcome, values, params, user attributes), the best-so-far line, the
best trials and the importances. The directory is written as
:mod:`migpolicy.reportpage` writes every report: built beside ``DIR`` and
renamed into place, an existing tuning report replaced, any other non-empty
directory (a replay report included) refused.

Conventions of the study that the page relies on: the user attribute
``outcome`` of each trial (``full``, ``pruned``, ``screened``, ``cached``,
``matched``, ``failed``; derived from the trial's state when absent) and, for a constrained
study, Optuna's constraints (``Trial.set_constraint``; a trial is feasible
when every value is <= 0).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from migpolicy import reportpage
from migpolicy.tuning.report_render import figures, html_page
from migpolicy.tuning.study import METRICS, OUTCOMES

__all__ = ["MARKER", "OUTCOMES", "check_report_dir", "report_data", "write_report"]

#: The file that marks a directory as a tuning report (replaced without asking).
MARKER = "tune.json"
#: The outcome of a trial without an ``outcome`` attribute, from its state.
_STATE_OUTCOME = {TrialState.COMPLETE: "full", TrialState.PRUNED: "pruned",
                  TrialState.FAIL: "failed"}
#: Seed of the fANOVA forest, so one study always gives the same importances.
FANOVA_SEED = 0
#: Most complete trials the importances are computed with fANOVA for; past it, with PED-ANOVA.
#: fANOVA is the more faithful with few trials but grows steeply (measured here, 10
#: parameters: 1.7 s at 50 trials, 57 s at 1,000); PED-ANOVA (Optuna's default since 5.0)
#: compares the top 10% of the trials with all of them, which needs many trials, and takes
#: milliseconds (``benchmarks/tune_report.py``).
FANOVA_MAX_TRIALS = 300


def check_report_dir(path: str | Path) -> Path:
    """Check before any work that ``path`` can become (or replace) a tuning report directory."""
    return reportpage.check_report_dir(path, MARKER)


def write_report(path: str | Path, study: optuna.Study, summary: Mapping[str, Any]) -> Path:
    """Write the report of ``study`` (with ``summary``, the figures ``tune`` printed) to ``path``.

    Everything slow (the importances) is computed before the directory is
    started, and the directory appears whole or not at all.
    """
    check_report_dir(path)
    data = report_data(study, summary)

    def build(tmp: Path) -> None:
        (tmp / MARKER).write_text(json.dumps(data, indent=2, allow_nan=False), encoding="utf-8")
        made = figures(tmp, data)
        (tmp / "index.html").write_text(html_page(tmp, data, made), encoding="utf-8")

    return reportpage.write_report_dir(path, MARKER, build)


def report_data(study: optuna.Study, summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the report shows, as plain JSON data (non-finite numbers become ``None``)."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    names = objective_names(study, summary)
    directions = [d.name.lower() for d in study.directions]
    rows = [_trial_row(t) for t in trials]
    counts = {o: 0 for o in OUTCOMES}
    for row in rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    if len(directions) == 1:
        try:
            best = [study.best_trial]
        except ValueError:  # nothing complete (or feasible) yet
            best = []
    else:
        best = study.best_trials
    data = {
        "study": study.study_name,
        "objectives": names,
        "directions": directions,
        "summary": dict(summary),
        "baseline": _baselines(summary, names),
        "setup": study.user_attrs.get("setup"),
        "profile": study.user_attrs.get("profile"),
        "outcomes": counts,
        "constrained": any(row["feasible"] is not None for row in rows),
        "trials": rows,
        "history": {"number": [t.number for t in trials],
                    "best_so_far": best_so_far(rows, directions)},
        "best_trials": sorted(t.number for t in best),
        "importances": importances(study, names, trials),
    }
    return _plain(data)


def objective_names(study: optuna.Study, summary: Mapping[str, Any]) -> list[str]:
    """Names of the study's objectives, in the order of its values.

    Optuna's metric names when the study has them, else the objective stored
    with the study's setup (``multi`` is ``app_time`` then ``migration_cpu``),
    else ``objective 0``, ``objective 1`` ...
    """
    n = len(study.directions)
    if study.metric_names and len(study.metric_names) == n:
        return list(study.metric_names)
    objective = (study.user_attrs.get("setup") or {}).get("objective", summary.get("objective"))
    if n == 1 and objective:
        return [str(objective)]
    if objective in METRICS and n == len(METRICS[objective]):
        return list(METRICS[objective])
    return [f"objective {i}" for i in range(n)]


def outcome(trial: FrozenTrial) -> str:
    """The trial's ``outcome`` attribute, or one derived from its state."""
    return str(trial.user_attrs.get("outcome")
               or _STATE_OUTCOME.get(trial.state, trial.state.name.lower()))


def constraint_values(trial: FrozenTrial) -> list[float]:
    """The trial's constraint values (Optuna's); <= 0 holds; none: feasibility unknown."""
    return [float(v) for v in trial.constraints.values()]


def best_so_far(rows: Sequence[Mapping[str, Any]], directions: Sequence[str]) -> list[list]:
    """Per objective, the best value of the complete feasible trials up to each trial.

    ``None`` before the first such trial. With several objectives each line
    is that objective's best alone (the trade-off is the Pareto front's).
    """
    lines = []
    for i, direction in enumerate(directions):
        values = np.array([row["values"][i] if row["state"] == "complete" and row["feasible"]
                           is not False and row["values"] and row["values"][i] is not None
                           else np.nan for row in rows], dtype=float)
        running = (np.fmax if direction == "maximize" else np.fmin).accumulate(values) \
            if len(values) else values
        lines.append([None if np.isnan(v) else float(v) for v in running])
    return lines


def importances(study: optuna.Study, names: Sequence[str],
                trials: Sequence[FrozenTrial]) -> dict[str, Any]:
    """Parameter importances per objective, or the sentence saying why there are none.

    Optuna's :func:`~optuna.importance.get_param_importances` on the complete
    trials, with the fANOVA evaluator (seeded) up to :data:`FANOVA_MAX_TRIALS`
    complete trials and PED-ANOVA past it. fANOVA covers the parameters every
    complete trial has, so conditional ones may be left out (``left_out``).
    """
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(complete) <= FANOVA_MAX_TRIALS:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=FANOVA_SEED)
        method = f"fANOVA (Optuna's FanovaImportanceEvaluator, seed {FANOVA_SEED})"
    else:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        method = (f"PED-ANOVA (Optuna's PedAnovaImportanceEvaluator: {len(complete):,} "
                  f"complete trials; fANOVA up to {FANOVA_MAX_TRIALS}, where it takes seconds)")
    result: dict[str, Any] = {"method": method, "values": {}, "left_out": [], "note": None}
    if len(complete) < 2:
        result["note"] = ("parameter importances need at least 2 complete trials; this study "
                          f"has {len(complete)}")
        return result
    common = set.intersection(*(set(t.params) for t in complete))
    varying = sorted(p for p in common if len({repr(t.params[p]) for t in complete}) > 1)
    if not varying:
        result["note"] = ("parameter importances cannot be computed: no parameter takes two "
                          "different values across the complete trials")
        return result
    notes = []
    for i, name in enumerate(names):
        if len({t.values[i] for t in complete}) < 2:
            notes.append(f"the importances for {name} cannot be computed: it is the same in "
                         "every complete trial")
            continue
        target = (lambda t, i=i: t.values[i]) if len(names) > 1 else None
        try:
            with warnings.catch_warnings():  # PED-ANOVA warns of equal importances
                warnings.simplefilter("ignore")
                found = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                                target=target)
        except (RuntimeError, ValueError) as exc:  # Optuna's own refusal, in its words
            notes.append(f"the importances for {name} cannot be computed: {exc}")
            continue
        result["values"][name] = {p: float(v) for p, v in found.items()}
    result["note"] = "; ".join(notes) or None
    covered = {p for found in result["values"].values() for p in found}
    result["left_out"] = sorted({p for t in complete for p in t.params} - covered)
    return result


def _baselines(summary: Mapping[str, Any], names: Sequence[str]) -> list[float | None]:
    """The kernel-default value of each objective, from the summary (a number, list or mapping)."""
    for key in ("baseline_values", "baseline_value", "baseline"):
        given = summary.get(key)
        if isinstance(given, Mapping):
            return [_number(given.get(name)) for name in names]
        if isinstance(given, list | tuple) and len(given) == len(names):
            return [_number(v) for v in given]
        if isinstance(given, int | float) and len(names) == 1:
            return [_number(given)]
    return [None] * len(names)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _trial_row(trial: FrozenTrial) -> dict[str, Any]:
    values = list(trial.values) if trial.values is not None else None
    constraints = constraint_values(trial)
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    return {"number": trial.number, "state": trial.state.name.lower(), "outcome": outcome(trial),
            "values": values, "params": dict(trial.params), "user_attrs": dict(trial.user_attrs),
            "intermediate_values": {str(k): v for k, v in trial.intermediate_values.items()},
            "constraint": constraints or None,
            "feasible": all(c <= 0 for c in constraints) if constraints else None,
            "duration_s": duration}


def _plain(value: Any) -> Any:
    """``value`` as strict JSON data: numpy scalars unwrapped, non-finite floats ``None``."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
