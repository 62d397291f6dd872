"""``migpolicy hw fit``: fit a profile's parameters to published or measured tables."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from migpolicy.cli.output import console, echo_json, err_console

__all__ = ["fit_command"]


@click.command("fit")
@click.option("--table", "tables", multiple=True, required=True, metavar="CSV",
              type=click.Path(dir_okay=False),
              help="Tidy throughput table (repeatable): engine, folio_kib, workers, "
                   "total_mib|folio_count, throughput_gbps[, placement, side, scope].")
@click.option("--stage-table", metavar="CSV", type=click.Path(dir_okay=False), default=None,
              help="Stage-share table (RFC V1 form: path, total_size, copy_fraction); rows of "
                   "at least --stage-min-total pull the sequential copy's share to them.")
@click.option("--stage-min-total", default="256M", show_default=True, metavar="SIZE",
              help="Smallest total size of the stage-share rows used.")
@click.option("--base", "base", required=True, metavar="PROFILE",
              help="Profile to start from (name or YAML file); its other values are kept.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the fitted profile (written only if the fit converges).")
@click.option("--name", default=None, help="Name of the fitted profile [default: the base's].")
@click.option("--free", "free", multiple=True, metavar="PARAM",
              help="Parameter to fit (repeatable, dotted path such as memory.ccd_gbps) "
                   "[default: every parameter the tables' engines determine].")
@click.option("--max-evaluations", default=2000, show_default=True,
              help="Give up (and write nothing) after this many model evaluations.")
@click.option("--json", "as_json", is_flag=True, help="Print the fit summary as JSON.")
@click.pass_context
def fit_command(ctx: click.Context, tables: tuple[str, ...], stage_table: str | None,
                stage_min_total: str, base: str, out: str, name: str | None,
                free: tuple[str, ...], max_evaluations: int, as_json: bool) -> None:
    """Fit a hardware profile to throughput tables and write it with `fitted` provenance.

    Every row is priced with the machinery of `migpolicy move`; the fit
    minimises the log of predicted over observed throughput (relative error)
    over the free parameters.

    Examples:

    The shipped zen3-epyc-ptdma profile is exactly:

    \b
      T=$(python -c 'import migpolicy.hardware as h, os; print(os.path.dirname(h.__file__))')/tables
      migpolicy hw fit --base zen3-epyc-ptdma --out zen3.yaml \\
        --table $T/rfc_v2_move_pages_throughput.csv --table $T/rfc_v2_batch_size_2m.csv \\
        --table $T/rfc_v2_thread_placement_2m.csv --stage-table $T/rfc_v1_stage_cycles.csv
    \b
    Fit only the memory system to your own measurements:
      migpolicy hw fit --base local --table mine.csv --out mine.yaml \\
        --free memory.thread_gbps --free memory.ccd_gbps
    """
    from migpolicy.context import build_context
    from migpolicy.errors import InputError
    from migpolicy.hardware.fit import (
        DEFAULT_BOUNDS,
        DEFAULT_TIES,
        copy_share_residuals,
        default_free,
        fit_parameters,
    )
    from migpolicy.hardware.profile import Provenance, today
    from migpolicy.hardware.tables import read_stage_table, read_table
    from migpolicy.units import parse_size

    run = build_context(plugins=ctx.find_root().obj["plugins"], hw=base)
    rows = np.concatenate([read_table(t, run.engines) for t in tables])
    free_params = list(free) or default_free(list(np.unique(rows["engine"])))
    for param in free_params:
        try:
            run.hw.value(param)
        except (KeyError, ValueError):
            raise InputError(f"--free {param}: profile {run.hw.name} has no such parameter") \
                from None
    ties = {dep: src for dep, src in DEFAULT_TIES.items() if src in free_params}
    extra = None
    sources = [Path(t).name for t in tables]
    if stage_table:
        stage_rows = read_stage_table(stage_table)
        stage_rows = stage_rows[stage_rows["total_bytes"] >= parse_size(stage_min_total,
                                                                          "--stage-min-total")]
        extra = copy_share_residuals(run.pm, stage_rows, run.params)
        sources.append(f"{Path(stage_table).name} (cpu_generic, >= {stage_min_total})")
    command = "migpolicy hw fit " + " ".join(
        [f"--table {Path(t).name}" for t in tables]
        + ([f"--stage-table {Path(stage_table).name}"] if stage_table else [])
        + [f"--base {base}"]
    )
    provenance = Provenance(
        id="fit", kind="fitted",
        detail={"source": ", ".join(sources), "date": today(), "command": command,
                "note": "remap costs tied to isolate costs (throughput cannot split them)"},
    )
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("fitting {task.description}"),
                  TextColumn("{task.completed} evaluations"), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"{len(free_params)} parameters to {len(rows)} rows")
        result = fit_parameters(
            run.pm, run.hw, rows, free_params, run.params, provenance, ties=ties,
            bounds=DEFAULT_BOUNDS, extra=extra, max_evaluations=max_evaluations,
            progress=lambda n: bar.update(task, completed=n),
        )
    errors = result.abs_pct_err
    summary = {
        "converged": result.converged,
        "message": result.message,
        "evaluations": result.evaluations,
        "rows": len(rows),
        "median_abs_pct_err": float(np.median(errors)),
        "max_abs_pct_err": float(errors.max()),
        "parameters": result.values,
        "out": str(out) if result.converged else None,
    }
    if stage_table:
        from migpolicy.hardware.tables import predict_copy_share

        summary["copy_share"] = [
            {"path": str(r["path"]), "total_bytes": int(r["total_bytes"]),
             "observed": float(r["copy_fraction"]),
             "predicted": predict_copy_share(run.pm, result.profile, int(r["total_bytes"]),
                                             run.params)}
            for r in read_stage_table(stage_table) if r["path"] == "cpu_generic"
        ]
    if not result.converged:
        raise InputError(f"the fit did not converge ({result.message}); nothing was written "
                         f"to {out}")
    profile = result.profile.renamed(name) if name else result.profile
    profile.write(out)
    if as_json:
        echo_json(summary)
        return
    console.print(f"fitted {len(free_params)} parameters to {len(rows)} rows in "
                  f"{result.evaluations} evaluations: median |error| "
                  f"{summary['median_abs_pct_err']:.1f}%, max {summary['max_abs_pct_err']:.1f}%")
    for param, value in result.values.items():
        console.print(f"  {param} = {value:.6g}")
    for share in summary.get("copy_share", []):
        console.print(f"  copy share of migrate_pages() at {share['total_bytes']} B: predicted "
                      f"{share['predicted']:.1%}, published {share['observed']:.1%}")
    console.print(f"wrote {out}")
