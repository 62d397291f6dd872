"""``migpolicy hw calibrate``: measure this machine's copies and write the ``local`` profile."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
import numpy as np

from migpolicy.cli.output import console, echo_json, err_console

__all__ = ["calibrate_command"]


def _sizes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    from migpolicy.errors import InputError
    from migpolicy.units import parse_size

    if value is None:
        return None
    try:
        return tuple(parse_size(v.strip(), f"--{param.name}") for v in value.split(","))
    except InputError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1]) from None


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    sizes = _sizes(ctx, param, value)
    if sizes is not None and len(sizes) != 1:
        raise click.BadParameter(f"expected one size, got {value!r}")
    return sizes[0] if sizes else None


def _counts(ctx: click.Context, param: click.Parameter,
            value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        counts = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected whole numbers separated by commas, got {value!r}"
                                 ) from None
    if min(counts) < 1:
        raise click.BadParameter(f"every count must be at least 1, got {value!r}")
    return counts


class _Bar:
    """Calibration progress drawn as a rich progress bar on stderr."""

    def __init__(self, progress) -> None:
        self.progress = progress
        self.task = None

    def phase(self, name: str, total: int | None) -> None:
        self.task = self.progress.add_task(name, total=total)

    def advance(self, completed: int | None = None) -> None:
        if completed is None:
            self.progress.advance(self.task)
        else:
            self.progress.update(self.task, completed=completed)

    def note(self, message: str) -> None:
        self.progress.console.print(f"note: {message}", soft_wrap=True)


@click.command("calibrate")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Profile file to write [default: local.yaml in your profile directory "
                   "($MIGPOLICY_PROFILE_DIR or ~/.config/migpolicy/profiles), where "
                   "--hw local finds it]. The measurements go beside it as .csv.")
@click.option("--engines", default="cpu,mt,gpu", show_default=True,
              help="Engines to measure, comma-separated; gpu is skipped where no GPU is seen.")
@click.option("--quick", is_flag=True,
              help="Fewer sizes, counts and samples and smaller buffers: well under a minute.")
@click.option("--samples", type=click.IntRange(1, 1000), default=None,
              help="Samples of every experiment [default: 15, --quick 9].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the shuffled measuring order.")
@click.option("--sizes", callback=_sizes, default=None, metavar="SIZES",
              help="Folio sizes to measure, comma-separated (e.g. 4K,64K,2M) "
                   "[default: every power of two from 4K to 2M; --quick: 6 of them].")
@click.option("--counts", callback=_counts, default=None, metavar="COUNTS",
              help="Folio counts to measure, comma-separated [default: 1,4,16,...,4096; "
                   "--quick: 1,16,256,4096].")
@click.option("--max-bytes", callback=_size, default=None, metavar="SIZE",
              help="Largest experiment in bytes [default: 128M; --quick: 32M].")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary for scripts.")
@click.pass_context
def calibrate_command(ctx: click.Context, out: Path | None, engines: str, quick: bool,
                      samples: int | None, seed: int, sizes: tuple[int, ...] | None,
                      counts: tuple[int, ...] | None, max_bytes: int | None,
                      as_json: bool) -> None:
    """Measure what copies cost on this machine and fit the `local` profile to it.

    Copies folios of 4 KiB to 2 MiB, batches of 1 to thousands of folios,
    with 1 to N threads (the cpu engine: one thread; mt: 1, 2, 4 ... N
    workers); GPU copies through CuPy or PyTorch where a GPU is seen;
    move_pages(2) where there are two or more NUMA nodes. Every experiment is
    sampled several times in a shuffled order and every sample is kept in the
    CSV beside the profile. The copy parameters are then fitted and written
    with `measured` provenance (host, date, command); nothing is written if
    the fit does not converge.

    \b
    Examples:
      migpolicy hw calibrate --quick
      migpolicy hw calibrate --engines cpu,mt --samples 7
      migpolicy hw calibrate --out here.yaml --sizes 4K,2M --counts 16,512 --json
      migpolicy move --hw local --folio 2M --engine mt --workers 2
    """
    from migpolicy.context import build_context
    from migpolicy.errors import InputError
    from migpolicy.hardware.calibrate import PROVENANCE_ID, calibrate, destinations
    from migpolicy.hardware.locations import shipped_dir, user_dir
    from migpolicy.hardware.measure import Settings

    settings = Settings.preset(
        quick, engines=tuple(e.strip() for e in engines.split(",") if e.strip()),
        samples=samples, seed=seed, sizes=sizes, counts=counts,
        max_bytes=max_bytes,
    )
    if out is None:  # the user's profile directory is ours to create
        try:
            user_dir().mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{user_dir()}: cannot create the profile directory: "
                             f"{exc.strerror or exc}") from None
    target = out or user_dir() / "local.yaml"
    destinations(target)  # before measuring: a bad destination must not waste minutes
    run = build_context(plugins=ctx.find_root().obj["plugins"],
                        hw=str(shipped_dir() / "local.yaml"))
    command = shlex.join(["migpolicy", *sys.argv[1:]])
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console,
                  disable=not sys.stderr.isatty()) as bar:
        result = calibrate(run.pm, run.hw, run.params, settings, target, command=command,
                           progress=_Bar(bar))
    errors = result.fit.abs_pct_err
    summary = {
        "profile": str(result.profile_path),
        "table": str(result.table_path),
        "experiments": len(result.measurements),
        "samples": settings.samples,
        "median_abs_pct_err": float(np.median(errors)),
        "max_abs_pct_err": float(errors.max()),
        "evaluations": result.fit.evaluations,
        "parameters": {name: result.profile.value(name) for name in result.free},
        "provenance": result.profile.provenances[PROVENANCE_ID].as_dict(),
        "notes": result.notes,
    }
    if as_json:
        echo_json(summary)
        return
    console.print(f"measured {summary['experiments']} experiments x {settings.samples} samples; "
                  f"fitted {len(result.free)} parameters: median |error| "
                  f"{summary['median_abs_pct_err']:.1f}%, max {summary['max_abs_pct_err']:.1f}%")
    for name, value in summary["parameters"].items():
        console.print(f"  {name} = {value:.6g}")
    console.print(f"wrote {result.profile_path} and its measurements {result.table_path}")
