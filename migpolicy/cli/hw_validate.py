"""``migpolicy hw validate``: a profile's predictions against a table, point by point."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
import numpy as np

from migpolicy.cli.output import console, echo_json, profile_context

__all__ = ["validate_command"]


def _table_path(value: str) -> Path:
    """A CSV path, or the key of a shipped published table (``1ab``, ``2``, ``3``)."""
    from migpolicy.hardware.tables import SHIPPED_TABLES, shipped_table

    if value in SHIPPED_TABLES and not Path(value).exists():
        return shipped_table(value)
    return Path(value)


@click.command("validate")
@click.argument("profile")
@click.option("--against", "table", required=True, metavar="CSV",
              help="Tidy throughput table (published or from `hw calibrate`), or the key of a "
                   "shipped table: 1ab, 2 or 3 (RFC V2 tables 1a/1b, 2, 3).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: median_abs_pct_err, max_abs_pct_err, rows (and "
                   "learned, when a learned model is compared).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              metavar="FILE.png", help="Also draw observed points and predicted lines.")
@click.option("--learned", is_flag=True,
              help="Compare the learned model side by side; the profile must have one "
                   "(cost_model: learned) or --learned-model must name it.")
@click.option("--learned-model", type=click.Path(dir_okay=False), default=None,
              metavar="FILE.skops", help="A learned model (from `hw learn`) to compare.")
@click.pass_context
def validate_command(ctx: click.Context, profile: str, table: str, as_json: bool,
                     plot_path: str | None, learned: bool, learned_model: str | None) -> None:
    """Price every row of a table on PROFILE and print predicted vs observed throughput.

    Rows are priced with the machinery of `migpolicy move`; each gets its
    absolute percentage error, and the median and maximum are printed. With
    a learned model (the profile's, or --learned-model) its predictions are
    shown next to the analytic model's, on the same rows.

    \b
    Examples:
      migpolicy hw validate zen3-epyc-ptdma --against 1ab
      migpolicy hw validate zen3-epyc-ptdma --against 3 --plot table3.png
      migpolicy hw validate local --against ~/.config/migpolicy/profiles/local.csv --json
      migpolicy hw validate zen3-learned.yaml --against 1ab --learned
      migpolicy hw validate zen3-epyc-ptdma --against 1ab --learned-model zen3.skops
    """
    from migpolicy.errors import InputError
    from migpolicy.hardware.learned import profile_model as model_for
    from migpolicy.hardware.validate import check_plot_path, plot, validate

    if plot_path is not None:
        check_plot_path(plot_path)
    run = profile_context(ctx, profile, "PROFILE")
    hw = run.hw
    learned_hw = None
    if learned_model is not None:
        learned_hw = replace(hw, cost_model="learned",
                             learned_model=str(Path(learned_model).resolve()))
    elif hw.cost_model == "learned":
        learned_hw = hw
    elif learned:
        raise InputError(f"--learned: profile {hw.name} has no learned model (train one with "
                         "`migpolicy hw learn` or pass --learned-model FILE)")
    meta = model_for(learned_hw).meta if learned_hw is not None else {}  # fails here, clearly
    analytic = replace(hw, cost_model="analytic") if hw.cost_model != "analytic" else hw
    result = validate(run.pm, analytic, _table_path(table), run.params, engines=list(run.engines),
                      learned_hw=learned_hw)
    if as_json:
        if plot_path:
            plot(result, plot_path)
        out = result.as_json()
        if "learned" in out:
            out["learned"].update(cv=meta.get("cv"), training_tables=meta.get("tables", []))
        echo_json(out)
        return
    _print_table(result)
    if plot_path:
        plot(result, plot_path)
    if meta:
        cv = meta.get("cv", {})
        console.print(f"learned model trained on {', '.join(meta.get('tables', [])) or '?'}; "
                      f"its {cv.get('folds', 5)}-fold cross-validated median |error| was "
                      f"{cv.get('median_abs_pct_err', float('nan')):.1f}%")
    if plot_path:
        console.print(f"wrote {plot_path}")


def _print_table(result) -> None:
    from rich.table import Table

    rows = result.rows
    extra = [c for c in ("placement", "side", "scope") if len(np.unique(rows[c])) > 1]
    table = Table(title=f"{result.profile} vs {result.table.name} (throughput in GB/s, "
                        "absolute percentage error)")
    columns = ["row", "engine", "KiB", "workers", "folios", *extra, "observed", "predicted",
               "err %"]
    if result.learned is not None:
        columns += ["learned", "err %"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("engine", *extra) else "right")
    err, learned_err = result.abs_pct_err, result.learned_abs_pct_err
    for i, row in enumerate(rows):
        cells = [str(row["row"]), str(row["engine"]), f"{row['folio_bytes'] / 1024:g}",
                 str(row["workers"]), str(row["folio_count"]), *(str(row[c]) for c in extra),
                 f"{row['throughput_gbps']:.3g}", f"{result.predicted[i]:.3g}", f"{err[i]:.1f}"]
        if result.learned is not None:
            cells += [f"{result.learned[i]:.3g}", f"{learned_err[i]:.1f}"]
        table.add_row(*cells)
    console.print(table)
    console.print(f"analytic model: median |error| {np.median(err):.1f}%, max {err.max():.1f}% "
                  f"over {len(rows)} rows")
    if learned_err is not None:
        console.print(f"learned model:  median |error| {np.median(learned_err):.1f}%, max "
                      f"{learned_err.max():.1f}% over the same rows")
