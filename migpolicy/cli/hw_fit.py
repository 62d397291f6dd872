"""``migpolicy hw fit``: fit a profile's parameters to published or measured tables."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from migpolicy.cli.output import console, echo_json, err_console

__all__ = ["fit_command"]


def _table(value: str) -> Path:
    """A CSV path, or the key of a shipped published table (``1ab``, ``v3`` ...)."""
    from migpolicy.hardware.tables import SHIPPED_TABLES, shipped_table

    if (value in SHIPPED_TABLES or value == "v1") and not Path(value).exists():
        return shipped_table(value)
    return Path(value)


def _kernels(paths: list[Path], mix: bool) -> str | None:
    """The one kernel all tables hold for; several are an error unless ``mix``."""
    from migpolicy.errors import InputError
    from migpolicy.hardware.tables import table_kernel

    found = {p: table_kernel(p) for p in paths}
    distinct = sorted({k or "not stated" for k in found.values()})
    if len(distinct) > 1 and not mix:
        listing = "; ".join(f"{p.name}: {k or 'not stated'}" for p, k in found.items())
        raise InputError(f"the tables hold for different kernels ({listing}); a profile holds "
                         "for one kernel, so fit them separately or pass --mix-kernels")
    return distinct[0] if len(distinct) == 1 and distinct[0] != "not stated" else None


@click.command("fit")
@click.option("--table", "tables", multiple=True, required=True, metavar="CSV",
              help="Tidy throughput table (repeatable): engine, folio_kib, workers, "
                   "total_mib|folio_count, throughput_gbps[, placement, side, scope, kernel]; "
                   "or a shipped table's key: 1ab, 2, 3 (RFC V2), v3, v3-batch (RFC V3).")
@click.option("--mix-kernels", is_flag=True,
              help="Fit tables measured on different kernels together (refused otherwise).")
@click.option("--stage-table", metavar="CSV", default=None,
              help="Stage-share table (RFC V1 form: path, total_size, copy_fraction); rows of "
                   "at least --stage-min-total pull the sequential copy's share to them.")
@click.option("--stage-min-total", default="256M", show_default=True, metavar="SIZE",
              help="Smallest total size of the stage-share rows used.")
@click.option("--base", "base", required=True, metavar="PROFILE",
              help="Profile to start from (name or YAML file); its other values are kept.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the fitted profile (written only if the fit converges).")
@click.option("--name", default=None, help="Name of the fitted profile [default: the base's].")
@click.option("--description", default=None,
              help="Description of the fitted profile [default: the base's].")
@click.option("--free", "free", multiple=True, metavar="PARAM",
              help="Parameter to fit (repeatable, dotted path such as memory.ccd_gbps) "
                   "[default: every parameter the tables' engines determine].")
@click.option("--max-evaluations", default=2000, show_default=True,
              help="Give up (and write nothing) after this many model evaluations.")
@click.option("--json", "as_json", is_flag=True, help="Print the fit summary as JSON.")
@click.pass_context
def fit_command(ctx: click.Context, tables: tuple[str, ...], mix_kernels: bool,
                stage_table: str | None, stage_min_total: str, base: str, out: str,
                name: str | None, description: str | None, free: tuple[str, ...],
                max_evaluations: int, as_json: bool) -> None:
    """Fit a hardware profile to throughput tables and write it with `fitted` provenance.

    Every row is priced with the machinery of `migpolicy move`; the fit
    minimises the log of predicted over observed throughput (relative error)
    over the free parameters. Tables of different kernels are refused unless
    --mix-kernels; the profile records the tables' kernel. The output names
    every parameter that ended at a bound of its plausible range or that the
    rows did not determine, and so does the written provenance; fewer rows
    than free parameters are refused.

    Examples:

    The shipped zen3-epyc-ptdma profile (RFC V3 kernel) is refitted, its assumed
    values (engines.dma.overlap ...) kept, by:

    \b
      migpolicy hw fit --base zen3-epyc-ptdma --table v3 --table v3-batch --out zen3.yaml
    \b
    and its RFC V2 (kernel 6.14) predecessor:
      migpolicy hw fit --base zen3-epyc-ptdma-6.14 --table 1ab --table 2 --table 3 \\
        --stage-table v1 --mix-kernels --out zen3-6.14.yaml
    \b
    Fit only the memory system to your own measurements:
      migpolicy hw fit --base local --table mine.csv --out mine.yaml \\
        --free memory.thread_gbps --free memory.ccd_gbps
    """
    from migpolicy.context import build_context
    from migpolicy.errors import InputError
    from migpolicy.files import check_output
    from migpolicy.hardware.fit import (
        DEFAULT_TIES,
        copy_share_residuals,
        default_free,
        fit_parameters,
    )
    from migpolicy.hardware.predict import pipeline_copy_share, pipeline_predictor
    from migpolicy.hardware.profile import Provenance, today
    from migpolicy.hardware.tables import read_stage_table, read_table
    from migpolicy.units import parse_size

    check_output(out, "fitted profile")  # before any work: a fit can take minutes
    run = build_context(plugins=ctx.find_root().obj["plugins"], hw=base)
    paths = [_table(t) for t in tables]
    rows = np.concatenate([read_table(t, run.engines) for t in paths])  # malformed: stop here
    _kernels([*paths, *([_table(stage_table)] if stage_table else [])], mix_kernels)
    kernel = _kernels(paths, True)  # the throughput tables' kernel, if they agree
    free_params = list(free) or default_free(list(np.unique(rows["engine"])))
    for param in free_params:
        try:
            run.hw.value(param)
        except (KeyError, ValueError):
            raise InputError(f"--free {param}: profile {run.hw.name} has no such parameter") \
                from None
    ties = {dep: src for dep, src in DEFAULT_TIES.items() if src in free_params}
    extra = None
    sources = [p.name for p in paths]
    share = pipeline_copy_share(run.pm, run.params)
    if stage_table:
        stage_rows = read_stage_table(_table(stage_table))
        stage_rows = stage_rows[stage_rows["total_bytes"] >= parse_size(stage_min_total,
                                                                          "--stage-min-total")]
        extra = copy_share_residuals(share, stage_rows)
        sources.append(f"{_table(stage_table).name} (cpu_generic, >= {stage_min_total})")
    command = "migpolicy hw fit " + " ".join(
        [f"--table {Path(t).name}" for t in tables]
        + ([f"--stage-table {Path(stage_table).name}"] if stage_table else [])
        + (["--mix-kernels"] if mix_kernels else [])
        + [f"--base {base}"]
    )
    pid, suffix = "fit", 1
    while pid in run.hw.provenances:  # values the fit leaves keep their own record
        suffix += 1
        pid = f"fit-{today()}" + (f"-{suffix - 1}" if suffix > 2 else "")
    provenance = Provenance(
        id=pid, kind="fitted",
        detail={"source": ", ".join(sources), "date": today(), "command": command,
                "note": "remap costs tied to isolate costs (throughput cannot split them)"},
    )
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("fitting {task.description}"),
                  TextColumn("{task.completed} evaluations"), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"{len(free_params)} parameters to {len(rows)} rows")
        result = fit_parameters(
            pipeline_predictor(run.pm, run.params), run.hw, rows, free_params, provenance,
            ties=ties, extra=extra, max_evaluations=max_evaluations,
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
        "kernel": kernel,
        "at_bound": result.at_bound,
        "undetermined": result.undetermined,
        "warnings": result.warnings(),
        "out": str(out) if result.converged else None,
    }
    if stage_table:
        summary["copy_share"] = [
            {"path": str(r["path"]), "total_bytes": int(r["total_bytes"]),
             "observed": float(r["copy_fraction"]),
             "predicted": share(result.profile, int(r["total_bytes"]))}
            for r in read_stage_table(_table(stage_table)) if r["path"] == "cpu_generic"
        ]
    if not result.converged:
        raise InputError(f"the fit did not converge ({result.message}); nothing was written "
                         f"to {out}")
    from dataclasses import replace

    profile = replace(result.profile, kernel=kernel)
    profile = profile.renamed(name or profile.name, description)
    profile.write(out)
    if as_json:
        echo_json(summary)
        return
    console.print(f"fitted {len(free_params)} parameters to {len(rows)} rows in "
                  f"{result.evaluations} evaluations: median |error| "
                  f"{summary['median_abs_pct_err']:.1f}%, max {summary['max_abs_pct_err']:.1f}%")
    console.print(f"kernel: {kernel or 'not stated by the tables'}")
    for param, value in result.values.items():
        console.print(f"  {param} = {value:.6g}")
    for warning in summary["warnings"]:
        err_console.print(f"warning: {warning}")
    for share in summary.get("copy_share", []):
        console.print(f"  copy share of migrate_pages() at {share['total_bytes']} B: predicted "
                      f"{share['predicted']:.1%}, published {share['observed']:.1%}")
    console.print(f"wrote {out}")
