"""``migpolicy hw learn``: train a learned copy-cost model and write a profile that uses it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
import numpy as np

from migpolicy.cli.output import console, echo_json, profile_context

__all__ = ["learn_command"]


@click.command("learn")
@click.option("--table", "tables", multiple=True, required=True, metavar="CSV",
              type=click.Path(dir_okay=False),
              help="Tidy throughput table to train on (repeatable): published, or the "
                   "measurements `hw calibrate` writes beside its profile.")
@click.option("--base", required=True, metavar="PROFILE",
              help="Profile (name or YAML file) whose analytic model prices the other stages "
                   "and which the written profile copies.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="PROFILE.yaml",
              help="Profile to write; the model goes beside it as .skops (+ .skops.json).")
@click.option("--folds", type=click.IntRange(2, 50), default=5, show_default=True,
              help="Folds of the cross-validated error.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the folds and the estimator.")
@click.option("--json", "as_json", is_flag=True, help="Print the training summary as JSON.")
@click.pass_context
def learn_command(ctx: click.Context, tables: tuple[str, ...], base: str, out: Path,
                  folds: int, seed: int, as_json: bool) -> None:
    """Train the learned copy-cost model on tables; write it and a profile using it.

    The model (scikit-learn gradient boosting, monotonic in folio size and
    batch size) learns one batch's copy time: each row's observed time less
    the analytic model's other stages, per batch. The written profile is a
    copy of --base with `cost_model: learned`; its copies are then priced by
    the model, everything else analytically. Its error is reported
    cross-validated (rows predicted by models that never saw them), next to
    the in-sample and the analytic model's error on the same rows.

    \b
    Examples:
      T=$(python -c 'import migpolicy.hardware as h, os; print(os.path.dirname(h.__file__))')/tables
      migpolicy hw learn --base zen3-epyc-ptdma --out zen3-learned.yaml \\
        --table $T/rfc_v2_move_pages_throughput.csv --table $T/rfc_v2_batch_size_2m.csv
      migpolicy hw validate zen3-learned.yaml --against 1ab
      migpolicy hw learn --base local --table ~/.config/migpolicy/profiles/local.csv \\
        --out ~/.config/migpolicy/profiles/local-learned.yaml
      migpolicy move --hw local-learned --folio 64K --engine mt --workers 2
    """
    from migpolicy.files import check_output
    from migpolicy.hardware.learned import save_model, sidecar_path, train, training_set
    from migpolicy.hardware.predict import pipeline_row_pricer
    from migpolicy.hardware.tables import read_table

    model_path = out.with_suffix(".skops")
    for path, what in ((out, "profile"), (model_path, "learned model"),
                       (sidecar_path(model_path), "learned model's metadata")):
        check_output(path, what)
    run = profile_context(ctx, base, "--base")
    analytic = replace(run.hw, cost_model="analytic")
    rows = np.concatenate([read_table(t, run.engines) for t in tables])
    data = training_set(pipeline_row_pricer(run.pm, run.params), analytic, rows, run.params,
                        [Path(t).name for t in tables])
    model = train(data, folds=folds, seed=seed, base_profile=run.hw.name)
    save_model(model, model_path)
    profile = replace(run.hw.renamed(out.stem), cost_model="learned",
                      learned_model=model_path.name, path=out)
    profile.write(out)
    meta = model.meta
    if as_json:
        echo_json({"profile": str(out), "model": str(model_path),
                   "metadata": str(sidecar_path(model_path)),
                   **{k: meta[k] for k in ("samples", "engines", "tables", "features", "cv",
                                           "in_sample", "analytic", "clamped_rows")}})
        return
    cv, fitted, base_err = meta["cv"], meta["in_sample"], meta["analytic"]
    console.print(f"trained on {meta['samples']} rows of {', '.join(meta['tables'])} "
                  f"(engines {', '.join(meta['engines'])})")
    console.print(f"  learned, {cv['folds']}-fold cross-validated: median |error| "
                  f"{cv['median_abs_pct_err']:.1f}%, max {cv['max_abs_pct_err']:.1f}%")
    console.print(f"  learned, in-sample:            median |error| "
                  f"{fitted['median_abs_pct_err']:.1f}%, max {fitted['max_abs_pct_err']:.1f}%")
    console.print(f"  analytic ({run.hw.name}), same rows: median |error| "
                  f"{base_err['median_abs_pct_err']:.1f}%, max {base_err['max_abs_pct_err']:.1f}%")
    if meta["clamped_rows"]:
        console.print(f"  {meta['clamped_rows']} row(s) observed faster than the analytic other "
                      "stages allow; their copy was taken as 5% of the time")
    console.print(f"wrote {out}, {model_path} and {sidecar_path(model_path)}")
