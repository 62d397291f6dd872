"""The figures and the page of a tuning report, drawn from :func:`report_data`'s data alone.

Kept apart from :mod:`migpolicy.tuning.report` (which reads the study) so
that what is drawn is exactly what ``tune.json`` holds. Every figure and
axis says its values are modelled, as in the replay report.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from migpolicy.reportpage import figure_html, page, pyplot, save_figure, table
from migpolicy.tuning.study import OBJECTIVES

__all__ = ["FIGURES", "figures", "html_page"]

#: File name → caption of every figure a tuning report may hold.
FIGURES = {
    "history.png": "Optimization history: each trial's objective by trial number, coloured by "
                   "outcome, with the best so far and the kernel-default baseline (modelled)",
    "importances.png": "Parameter importances: how much of the objective each parameter "
                       "explains, over the complete trials (modelled objective)",
    "pareto.png": "Pareto front: every complete trial, the front highlighted, infeasible "
                  "trials marked (modelled)",
}
#: Marker style of each outcome in the history: colour, marker, legend text of the trials
#: with a value (trials without one are marked on the axis).
_STYLES = {"full": ("C0", "o", "replayed in full"),
           "pruned": ("C1", "v", "pruned (partial sum when stopped)"),
           "screened": ("C2", "s", "screened out (value as stored)"),
           "cached": ("C4", "D", "cached (value of an earlier replay)"),
           "matched": ("C5", "P", "matched (value of an earlier replay it tied)"),
           "failed": ("C3", "x", "failed")}

#: How the page names the summary figures ``tune`` prints (others keep their JSON key).
_SUMMARY_LABELS = {"best_value": "best value (modelled)", "best_trial": "best trial",
                   "baseline_value": "kernel default, the baseline (modelled)",
                   "improvement_pct": "improvement over the kernel default (%)"}


def _label(name: str) -> str:
    """Axis label of an objective: what it sums, marked modelled."""
    return OBJECTIVES.get(name, f"{name} (modelled)")


def _plot_value(row: Mapping[str, Any], i: int) -> float | None:
    """The value a trial is drawn at: its value, else (pruned) its last reported one.

    Only single-objective trials report intermediate values (Optuna's rule).
    """
    if row["values"] and row["values"][i] is not None:
        return row["values"][i]
    if row["outcome"] == "pruned" and row["intermediate_values"]:
        last = max(row["intermediate_values"], key=int)
        return row["intermediate_values"][last]
    return None


def figures(out: Path, data: Mapping[str, Any]) -> dict[str, str]:
    """Draw the figures ``data`` supports into ``out``; file name → caption of those made."""
    made = {"history.png": FIGURES["history.png"]}
    _history(out / "history.png", data)
    if data["importances"]["values"]:
        _importances(out / "importances.png", data)
        made["importances.png"] = FIGURES["importances.png"]
    if len(data["objectives"]) > 1 and any(r["state"] == "complete" for r in data["trials"]):
        _pareto(out / "pareto.png", data)
        made["pareto.png"] = FIGURES["pareto.png"]
    return made


def _history(path: Path, data: Mapping[str, Any]) -> None:
    plt = pyplot()
    names, rows = data["objectives"], data["trials"]
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 3.2 * len(names) + 0.8), sharex=True,
                             squeeze=False)
    numbers = np.array(data["history"]["number"], dtype=float)
    for i, (ax, name) in enumerate(zip(axes[:, 0], names, strict=True)):
        styles = [*_STYLES.items(), ("other", ("C7", ".", "other outcomes"))]
        for kind, (colour, marker, text) in styles:
            chosen = [r for r in rows if r["outcome"] == kind
                      or (kind == "other" and r["outcome"] not in _STYLES)]
            points = [(r["number"], v) for r in chosen if (v := _plot_value(r, i)) is not None]
            if points:
                ax.scatter(*zip(*points, strict=True), color=colour, marker=marker, label=text,
                           facecolors="none" if kind == "pruned" else colour)
            valueless = [r["number"] for r in chosen if _plot_value(r, i) is None]
            if valueless:  # no value to draw: a mark on the axis
                ax.scatter(valueless, [0.02] * len(valueless), color=colour, marker=marker,
                           label=f"{text.split(' (')[0]}, no value (on the axis)",
                           transform=ax.get_xaxis_transform())
        infeasible = [(r["number"], v) for r in rows
                      if r["feasible"] is False and (v := _plot_value(r, i)) is not None]
        if infeasible:
            ax.scatter(*zip(*infeasible, strict=True), color="C3", marker="x", s=60, zorder=5,
                       label="infeasible (constraint > 0)")
        best = np.array([np.nan if v is None else v for v in data["history"]["best_so_far"][i]],
                        dtype=float)
        if np.isfinite(best).any():
            ax.step(numbers, best, where="post", color="black", label="best so far" + (
                " (feasible)" if data["constrained"] else "")
                + ("" if len(names) == 1 else ", this objective alone"))
        if data["baseline"][i] is not None:
            ax.axhline(data["baseline"][i], color="black", linestyle="--",
                       label="kernel default (baseline)")
        ax.set_ylabel(_label(name))
        ax.legend(fontsize="small")
    axes[-1, 0].set_xlabel("trial")
    save_figure(fig, path)


def _importances(path: Path, data: Mapping[str, Any]) -> None:
    plt = pyplot()
    found = data["importances"]["values"]
    params = sorted({p for values in found.values() for p in values},
                    key=lambda p: max(v.get(p, 0.0) for v in found.values()))
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * len(params) * len(found)))
    height = 0.8 / len(found)
    y = np.arange(len(params))
    for j, (name, values) in enumerate(found.items()):
        ax.barh(y + (j - (len(found) - 1) / 2) * height, [values.get(p, 0.0) for p in params],
                height, label=_label(name))
    ax.set_yticks(y, params)
    ax.set_xlabel(f"importance ({data['importances']['method'].split(' (')[0]}, normalised to "
                  "sum 1; modelled objective)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize="small")
    save_figure(fig, path)


def _pareto(path: Path, data: Mapping[str, Any]) -> None:
    plt = pyplot()
    names = data["objectives"]
    complete = [r for r in data["trials"] if r["state"] == "complete"]
    front = set(data["best_trials"])
    fig, ax = plt.subplots(figsize=(7.5, 5.5))

    def points(rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
        return [r["values"][0] for r in rows], [r["values"][1] for r in rows]

    ax.scatter(*points([r for r in complete if r["number"] not in front]), color="C7",
               label="trials")
    infeasible = [r for r in complete if r["feasible"] is False]
    if infeasible:
        ax.scatter(*points(infeasible), color="C3", marker="x", s=60, zorder=5,
                   label="infeasible (constraint > 0)")
    on_front = sorted((r for r in complete if r["number"] in front), key=lambda r: r["values"])
    ax.scatter(*points(on_front), color="C1", edgecolors="black", s=60, zorder=3,
               label="Pareto front")
    ax.step(*points(on_front), where="post", color="C1", zorder=2)
    if None not in data["baseline"][:2]:
        ax.scatter([data["baseline"][0]], [data["baseline"][1]], color="black", marker="*",
                   s=150, zorder=4, label="kernel default (baseline)")
    ax.set_xlabel(_label(names[0]))
    ax.set_ylabel(_label(names[1]))
    if len(names) > 2:
        ax.set_title(f"the first two of {len(names)} objectives", fontsize="small")
    ax.legend(fontsize="small")
    save_figure(fig, path)


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(_fmt, value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


def html_page(out: Path, data: Mapping[str, Any], made: Mapping[str, str]) -> str:
    """The self-contained ``index.html`` of the report (figures in ``out``, ``made`` of them)."""
    esc = html.escape
    names, summary = data["objectives"], data["summary"]
    single = len(names) == 1
    setup = data.get("setup") or {}
    run = [("study", data["study"]),
           ("objectives", ", ".join(f"{n} ({d})" for n, d in zip(names, data["directions"],
                                                                  strict=True))),
           ("hardware profile", data.get("profile") or "-"),
           *((key, _fmt(value)) for key, value in setup.items() if key != "objective"),
           ("trials", len(data["trials"]))]
    figures = {name: figure_html(out, name, caption) for name, caption in made.items()}
    imp = data["importances"]
    importances = figures.get("importances.png", "")
    if imp["note"]:
        importances += f'<p class="note">{esc(imp["note"][0].upper() + imp["note"][1:])}.</p>'
    if imp["values"]:
        params = sorted({p for v in imp["values"].values() for p in v},
                        key=lambda p: -max(v.get(p, 0.0) for v in imp["values"].values()))
        importances += table(("parameter", *(("importance",) if single else names)),
                             [(p, *(_fmt(imp["values"].get(n, {}).get(p)) for n in names))
                              for p in params])
        importances += f'<p class="note">Method: {esc(imp["method"])}.'
        if imp["left_out"]:
            importances += (" Left out (not set in every complete trial, e.g. conditional): "
                            f"{esc(', '.join(imp['left_out']))}.")
        importances += "</p>"
    best = [r for r in data["trials"] if r["number"] in set(data["best_trials"])]
    if single:
        front = ("<p>One objective: the Pareto front is the best trial"
                 + (f" (trial {best[0]['number']})." if best else "; none is complete yet.")
                 + "</p>")
    else:
        front = figures.get("pareto.png", '<p class="note">No complete trial yet.</p>')
        infeasible = sum(r["feasible"] is False for r in best)
        front += (f"<p>{len(best)} trial(s) on the front (Optuna's <code>best_trials</code>)"
                  + (f", {infeasible} of them infeasible (constraint &gt; 0)" if infeasible
                     else "") + ".</p>")
    params = sorted({p for r in best for p in r["params"]})
    best_table = ('<div class="scroll">' + table(
        ("", *(f"trial {r['number']}" for r in best)),
        [*((name, *(_fmt(r["values"][i]) for r in best)) for i, name in enumerate(names)),
         *((p, *(_fmt(r["params"].get(p)) for r in best)) for p in params)]) + "</div>"
        if best else '<p class="note">No complete trial.</p>')
    outcomes = table(("outcome", "trials"), list(data["outcomes"].items()))
    facts = [(_SUMMARY_LABELS.get(key, key), _fmt(value)) for key, value in summary.items()
             if not isinstance(value, dict)]
    return page(
        f"migpolicy tune: study {data['study']}",
        f"<h1>Tuning study {esc(data['study'])}</h1>"
        '<p class="note">Every figure is modelled: each trial replays the traces on the '
        "hardware profile's cost model (see <code>migpolicy replay</code>, "
        "<code>docs/replay.md</code>), whose parameters are measured, fitted from published "
        "tables or assumed, as the profile's provenance says "
        "(<code>migpolicy hw show PROFILE</code>).</p>"
        f"<h2>Run</h2>{table(('', 'value'), run)}"
        f"<h2>Summary</h2>{table(('', 'value'), facts)}"
        f"<h2>Outcomes</h2>{outcomes}"
        f"<h2>Optimization history</h2>{figures['history.png']}"
        f"<h2>Parameter importances</h2>{importances}"
        f"<h2>Pareto front</h2>{front}"
        f"<h2>Best trial{'' if single else 's'}</h2>{best_table}")
