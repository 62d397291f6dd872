"""``replay --report DIR``: the JSON, PNG figures and one self-contained ``index.html``.

The directory is written as :mod:`migpolicy.reportpage` writes every report:
built beside ``DIR`` and renamed into place when complete (an error or Ctrl-C
never leaves a half-written report), an existing replay report replaced, any
other non-empty directory refused, ``index.html`` self-contained (figures as
data URIs) with the PNG files beside it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from migpolicy import reportpage
from migpolicy.pipeline import STAGES
from migpolicy.reportpage import figure_html, page, save_figure, table

__all__ = ["FIGURES", "check_report_dir", "write_report"]

#: File name → caption of every figure a report holds.
FIGURES = {
    "timeline.png": "Fast-tier hit ratio and migrations over the trace",
    "app_time.png": "Application time per policy, with the offline bounds",
    "stages.png": "Migration cost per stage (wall and CPU time)",
    "engines.png": "Migration wall time per copy engine",
}
#: The file that marks a directory as a replay report (replaced without asking).
MARKER = "replay.json"


def check_report_dir(path: str | Path) -> Path:
    """Check before any work that ``path`` can become (or replace) a replay report directory."""
    return reportpage.check_report_dir(path, MARKER)


def write_report(path: str | Path, results: Sequence[dict[str, Any]]) -> Path:
    """Write the report of ``results`` (one dict per policy) to the directory ``path``."""

    def build(tmp: Path) -> None:
        (tmp / MARKER).write_text(json.dumps({"results": list(results)}, indent=2),
                                  encoding="utf-8")
        _figures(tmp, results)
        (tmp / "index.html").write_text(_html(tmp, results), encoding="utf-8")

    return reportpage.write_report_dir(path, MARKER, build)


def _figures(out: Path, results: Sequence[dict[str, Any]]) -> None:
    plt = reportpage.pyplot()
    labels = [r["label"] for r in results]
    first = results[0]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for r in results:
        t = r["timeline"]
        accesses = np.asarray(t["accesses"])
        hits = np.divide(t["hits"], accesses, out=np.zeros_like(accesses),
                         where=accesses > 0)
        top.plot(t["epoch"], hits, label=r["label"])
        bottom.plot(t["epoch"], np.add(t["promoted"], t["demoted"]), label=r["label"])
    top.axhline(first["bound"]["oracle_hit_ratio"], color="black", linestyle=":",
                label="oracle (whole run)")
    top.set_ylabel("fast-tier hit ratio")
    top.set_ylim(0, 1.05)
    top.legend(fontsize="small")
    bottom.set_ylabel("pages migrated")
    bottom.set_xlabel(f"epoch ({first['epoch']} each)")
    save_figure(fig, out / "timeline.png")

    parts = (("access_s", "accesses"), ("migration_stall_s", "migration stalls"),
             ("policy_overhead_s", "policy overhead"), ("contention_s", "contention"))
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(results) + 3), 4.5))
    bottom_ms = np.zeros(len(results))
    for key, name in parts:
        values = np.array([r["app"][key] * 1e3 for r in results])
        ax.bar(labels, values, bottom=bottom_ms, label=name)
        bottom_ms += values
    for value, name, style in ((first["baseline_app_time_s"], "never migrate", "--"),
                               (first["bound"]["static_access_s"], "best static", "-."),
                               (first["bound"]["oracle_access_s"], "oracle", ":")):
        ax.axhline(value * 1e3, color="black", linestyle=style, label=name)
    ax.set_ylim(0, 1.15 * max(bottom_ms.max(), first["baseline_app_time_s"] * 1e3, 1e-9))
    ax.set_ylabel("application time, ms (modelled)")
    ax.legend(fontsize="small")
    save_figure(fig, out / "app_time.png")

    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(results) + 3), 4.5))
    width = 0.8 / (2 * len(STAGES))
    x = np.arange(len(results))
    for i, stage in enumerate(STAGES):
        for j, kind in enumerate(("wall_s", "cpu_s")):
            values = [r["migration"]["stages"][stage][kind] * 1e3 for r in results]
            ax.bar(x + (2 * i + j - len(STAGES)) * width, values, width,
                   label=f"{stage} {kind[:-2]}", hatch="//" if j else None, color=f"C{i}")
    ax.set_xticks(x, labels)
    ax.set_ylabel("ms (modelled)")
    ax.legend(fontsize="x-small", ncol=2)
    save_figure(fig, out / "stages.png")

    engines = sorted({e for r in results for e in r["migration"]["engines"]})
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(results) + 3), 4))
    for i, engine in enumerate(engines):
        values = [r["migration"]["engines"].get(engine, {}).get("wall_s", 0.0) * 1e3
                  for r in results]
        ax.bar(x + (i - len(engines) / 2) * 0.8 / max(len(engines), 1), values,
               0.8 / max(len(engines), 1), label=engine)
    ax.set_xticks(x, labels)
    ax.set_ylabel("copy wall time, ms (modelled)")
    if engines:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no migrations", transform=ax.transAxes, ha="center")
    save_figure(fig, out / "engines.png")


def _html(out: Path, results: Sequence[dict[str, Any]]) -> str:
    first = results[0]
    esc = html.escape
    summary = [
        ("fast-tier hit ratio", [f"{r['fast_hit_ratio']:.3f}" for r in results]),
        ("app time (ms)", [f"{r['app_time_s'] * 1e3:,.3f}" for r in results]),
        ("vs never migrating", [f"{r['speedup_vs_none']:.3f}x" for r in results]),
        ("app time / oracle access time", [
            f"{r['app_time_s'] / r['bound']['oracle_access_s']:.2f}x"
            if r["bound"]["oracle_access_s"] else "-" for r in results]),
        ("promoted pages", [f"{r['promoted_pages']:,}" for r in results]),
        ("demoted pages", [f"{r['demoted_pages']:,}" for r in results]),
        ("failed pages", [f"{r['failed_pages']:,}" for r in results]),
        ("migration wall (ms)", [f"{r['migration']['wall_s'] * 1e3:,.3f}" for r in results]),
        ("migration cpu (ms)", [f"{r['migration']['cpu_s'] * 1e3:,.3f}" for r in results]),
    ]
    bound = first["bound"]
    run = [("trace", first["trace"]), ("format", first["format"]),
           ("events", f"{first['events']:,}"), ("pages", f"{first['pages']:,}"),
           ("epochs", f"{first['epochs']:,} of {first['epoch']}"),
           ("hardware profile", first["hw"]),
           ("fast tier", f"node {first['tiers']['fast']['node']}, "
                         f"{first['tiers']['fast']['bytes']:,} bytes"),
           ("slow tier", f"node {first['tiers']['slow']['node']}"),
           ("initial placement", first["initial"]),
           ("best static hit ratio", f"{bound['static_hit_ratio']:.3f}"),
           ("per-epoch oracle hit ratio", f"{bound['oracle_hit_ratio']:.3f}")]
    figures = "".join(figure_html(out, name, caption) for name, caption in FIGURES.items())
    params = []
    for r in results:
        policy_keys = sorted(k for k in r["params"] if k.split(".")[0] in (
            "placement", r["params"]["placement"], r["params"]["placement.demotion"],
            "engine", "system"))
        params.append(f"<h3>{esc(r['label'])}</h3>" + table(
            ("parameter", "value"), [(k, r["params"][k]) for k in policy_keys]))
    provenance = table(("profile value", "value", "unit", "provenance"), [
        (path, f"{p['value']:g}", p["unit"],
         f"{p['kind']}: " + "; ".join(f"{k} {v}" for k, v in p.items()
                                      if k not in ("value", "unit", "kind")))
        for path, p in first["provenance"].items()])
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in first["notes"])
    policies = table(["", *(r["label"] for r in results)], [(n, *v) for n, v in summary])
    return page(
        f"migpolicy replay: {first['trace']}",
        f"<h1>Replay of {esc(first['trace'])}</h1>{notes}"
        f"<h2>Run</h2>{table(('', 'value'), run)}"
        f"<h2>Policies</h2>{policies}"
        f"<h2>Figures</h2>{figures}"
        f"<h2>Parameters</h2>{''.join(params)}"
        f"<h2>Where the figures come from</h2><p>Access latencies and capacities are the "
        f"profile's node values; migrations are priced by its stage models. Policy "
        f"constants are the parameters above (their help says which are assumed: "
        f"<code>migpolicy plugins</code>, <code>docs/replay.md</code>).</p>{provenance}")
