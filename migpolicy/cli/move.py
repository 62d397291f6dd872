"""``migpolicy move``: price a move_pages()-style migration through the five stages."""

from __future__ import annotations

from typing import Any

import click

from migpolicy.cli.output import (
    console,
    echo_json,
    err_console,
    merge_options,
    name_option,
    parse_assignments,
)
from migpolicy.errors import InputError
from migpolicy.folios import Reason
from migpolicy.hardware.registry import is_profile_path
from migpolicy.pipeline import STAGES, Report
from migpolicy.units import format_size, parse_size

__all__ = ["cache_effect", "move", "report_json"]


def _size(ctx, param, value):
    try:
        return parse_size(value, f"--{param.name}")
    except InputError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1]) from None


@click.command()
@click.option("--bytes", "nbytes", default="1G", show_default=True, callback=_size,
              metavar="SIZE", help="Total bytes to move: 4K, 2M, 1G, 4KiB, 2MiB ...")
@click.option("--folio", default="2M", show_default=True, callback=_size, metavar="SIZE",
              help="Folio size: 4K (base page) up to 2M (THP).")
@click.option("--engine", default="cpu", show_default=True,
              help="Copy engine: cpu, mt, dma, gpu, a plugin's engine, or auto.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Threads (mt), DMA channels (dma) or GPU streams (gpu) of a fixed engine "
                   "[default: 1, or the engine's --param mt.threads, dma.channels, gpu.streams]; "
                   "auto tries up to those parameters.")
@click.option("--hw", "hw_name", default=None, metavar="PROFILE",
              help="Hardware profile name or YAML file [default: zen3-epyc-ptdma].")
@click.option("--src", type=int, default=0, show_default=True, help="Source NUMA node.")
@click.option("--dst", type=int, default=None,
              help="Destination NUMA node [default: 1, or 0 on a one-node profile].")
@click.option("--load", type=float, default=None,
              help="Fraction of CPUs busy with other work (system.load), 0 to 0.99.")
@click.option("--account", "account_policy", default=None,
              type=click.Choice(["initiator", "kthread", "split"]),
              help="Who pays: the initiating task, kernel threads, or split by owner.")
@click.option("--reason", default="syscall", show_default=True,
              type=click.Choice([r.name.lower() for r in Reason]),
              help="Why the folios migrate (the kernel's migrate_reason): auto weighs CPU time "
                   "more for the asynchronous ones (demotion, damon, compaction).")
@click.option("--param", "param_items", multiple=True, metavar="KEY=VALUE",
              help="Set any policy parameter (repeatable), e.g. --param mt.placement=fill.")
@click.option("--execute", is_flag=True,
              help="Also perform the copy for real in this process (cpu, mt; gpu with a GPU) "
                   "and report the measured time next to the predicted one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
@click.pass_context
def move(ctx: click.Context, nbytes: int, folio: int, engine: str, workers: int,
         hw_name: str | None, src: int, dst: int | None, load: float | None,
         account_policy: str | None, reason: str, param_items: tuple[str, ...],
         execute: bool, as_json: bool) -> None:
    """Price moving SIZE bytes of folios from one NUMA node to another.

    The experiment of the published move_pages() tables: every folio goes
    through isolate, batch, copy, remap and account, each stage priced by the
    hardware profile's model. Figures are modelled unless --execute measures.

    \b
    Examples:
      migpolicy move --bytes 1G --folio 4K
      migpolicy move --bytes 1G --folio 2M --engine mt --workers 8
      migpolicy move --folio 2M --engine mt --workers 8 --param mt.placement=fill
      migpolicy move --folio 2M --engine dma --workers 16 --json
      migpolicy move --folio 64K --engine auto --load 0.8
      migpolicy move --folio 2M --engine auto --reason demotion
      migpolicy move --hw local --folio 2M --engine mt --workers 2 --execute
    """
    from migpolicy.context import build_context
    from migpolicy.hardware.limits import check_move, move_notes

    given: dict[str, Any] = parse_assignments(param_items)
    typed = merge_options(ctx, given, {"engine": "engine", "workers": "workers",
                                       "system.load": "load", "account.policy": "account_policy"})
    try:  # a fixed engine copies with one worker unless told
        run = build_context(plugins=ctx.obj["plugins"], hw=hw_name, params=given,
                            default_workers=1)
    except InputError as exc:
        raise InputError(name_option(str(exc), typed)) from None
    hw = run.hw
    if dst is None:
        dst = 1 if 1 in hw.nodes else src
    hw.node(src, "--src")
    hw.node(dst, "--dst")
    check_move(hw, nbytes=nbytes, folio=folio, src=src, dst=dst)
    if nbytes < folio or nbytes % folio:
        raise InputError(f"--bytes {format_size(nbytes)} must be a whole multiple of --folio "
                         f"{format_size(folio)}")
    report = run.price_uniform(folio, nbytes // folio, src=src, dst=dst,
                               reason=Reason[reason.upper()])
    measured = _execute(run, nbytes, folio) if execute else None
    for note in move_notes(hw, run.params):
        err_console.print(f"note: {note}")
    data = report_json(report, run, folio)
    data["src"], data["dst"], data["reason"] = src, dst, reason
    if measured is not None:
        data.update(measured)
    if as_json:
        echo_json(data)
    else:
        # a profile given as a file is shown by its path: `hw show` may not know its name
        _print_report(report, data, str(hw.path) if hw_name and is_profile_path(hw_name)
                      else hw.name)


def _execute(run, nbytes: int, folio: int) -> dict:
    engine = run.engines.get(run.engine)
    if engine is None:
        return {"measured_s": None,
                "execute_note": "auto chooses per batch; --execute needs a fixed engine"}
    if engine.executor is None:
        return {"measured_s": None, "execute_note": engine.modelled_only
                or f"engine {engine.name} cannot run here; its figures are modelled"}
    if not engine.available():
        return {"measured_s": None,
                "execute_note": f"engine {engine.name} cannot run on this machine; "
                                "its figures are modelled"}
    workers = engine.workers(run.params)
    seconds = engine.executor(nbytes, folio, workers)
    return {"measured_s": seconds, "measured_gbps": nbytes / seconds / 1e9,
            "execute_note": f"copied {format_size(nbytes)} for real in this process "
                            f"({engine.name}, {workers} {engine.worker_unit}s); "
                            "only the copy stage is measured"}


def _used_sections(report: Report) -> tuple[str, ...]:
    return ("nodes", "stages.", "memory.", *(f"engines.{e}." for e in report.engines))


def cache_effect(report: Report, run) -> tuple[dict[str, float | None], float | None]:
    """Each used engine's ``cache_resident`` figure and the whole copy's, weighted by bytes.

    The fraction of the copied bytes left in the initiating CPU's cache (1: a
    cached copy, the destination's next accesses hit and as much is evicted;
    0: non-temporal stores or an offload engine, the next accesses miss);
    ``None`` where an engine does not say.
    """
    per_engine: dict[str, float | None] = {}
    for name in report.engines:
        engine = run.engines.get(name)
        figure = engine.cache_resident if engine is not None else None
        per_engine[name] = None if figure is None else float(figure(run.params))
    copied = sum(t.bytes for t in report.engines.values())
    if not copied or any(v is None for v in per_engine.values()):
        return per_engine, None
    return per_engine, sum(report.engines[n].bytes * (v or 0.0)
                           for n, v in per_engine.items()) / copied


def report_json(report: Report, run, folio: int) -> dict:
    """The ``move --json`` object."""
    prefixes = _used_sections(report)
    resident, overall = cache_effect(report, run)
    provenance = {
        path: {"value": value.value, "unit": unit, **value.provenance.as_dict()}
        for path, value, unit in run.hw.values() if path.startswith(prefixes)
    }
    workers = sorted({w for ws in report.engine_workers.values() for w in ws})
    return {
        "modelled": True,
        "hw": report.hw,
        "cost_model": run.hw.cost_model,
        "engine": run.engine,
        "engines_used": {name: {**totals.as_dict(), "workers": report.engine_workers[name],
                                "cache_resident": resident[name]}
                         for name, totals in report.engines.items()},
        "cache_resident": overall,
        "workers": workers[0] if len(workers) == 1 else workers,
        "folio_size": folio,
        "bytes": report.bytes,
        "folios": report.folios,
        "failed_folios": report.stages["isolate"].failures,
        "total_s": report.total_s,
        "throughput_gbps": report.throughput_gbps,
        "cpu_s": sum(s.cpu_s for s in report.stages.values()),
        "stages": {name: report.stages[name].as_dict() for name in STAGES},
        "accounting": report.accounting,
        "params": run.params,
        "provenance": provenance,
    }


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _cache_line(resident: float | None) -> str:
    """What the copy leaves in the initiating CPU's cache, in words."""
    if resident is None:
        return "effect unknown (an engine used does not report it)"
    if resident == 0:
        return ("destination not cache-resident (non-temporal stores or an offload engine): "
                "its next accesses miss; nothing evicted")
    share = "" if resident == 1 else f"{resident:.0%} of "
    return (f"{share}the destination left resident in the initiating CPU's cache (cached "
            "stores, up to the cache's size): its next accesses hit, as much evicted")


def _print_report(report: Report, data: dict, show: str) -> None:
    from rich.table import Table

    total = report.total_s
    kinds = sorted({p["kind"] for p in data["provenance"].values()})
    console.print(
        f"[bold]{format_size(report.bytes)}[/] in {_plural(report.folios, 'folio')} of "
        f"{format_size(data['folio_size'])}, node {data['src']} → node {data['dst']}: "
        f"[bold]{report.throughput_gbps:.2f} GB/s[/], "
        f"{total * 1e3:.3f} ms (modelled)"
    )
    engines = ", ".join(f"{n} x{'/'.join(map(str, e['workers']))}"
                        for n, e in data["engines_used"].items())
    console.print(f"engine: {data['engine']} → {engines}; priced by profile "
                  f"[bold]{report.hw}[/] ({data['cost_model']} model; parameters "
                  f"{', '.join(kinds)} — see `migpolicy hw show {show}`)")
    table = Table()
    for column in ("stage", "wall ms", "share", "cpu ms", "engine ms"):
        table.add_column(column, justify="right" if column != "stage" else "left")
    for name in STAGES:
        stage = report.stages[name]
        share = stage.wall_s / total if total else 0.0
        table.add_row(name, f"{stage.wall_s * 1e3:.3f}", f"{share:.1%}",
                      f"{stage.cpu_s * 1e3:.3f}", f"{stage.engine_s * 1e3:.3f}")
    console.print(table)
    payers = "; ".join(f"{payer}: cpu {c['cpu_s'] * 1e3:.3f} ms, wall {c['wall_s'] * 1e3:.3f} "
                       f"ms, engine {c['engine_s'] * 1e3:.3f} ms"
                       for payer, c in report.accounting.items())
    console.print(f"accounting ({data['params']['account.policy']}): {payers}")
    console.print(f"cache: {_cache_line(data['cache_resident'])}")
    if data.get("failed_folios"):
        console.print(f"[yellow]{_plural(data['failed_folios'], 'folio')} failed to isolate[/]")
    if "measured_s" in data:
        if data["measured_s"] is None:
            err_console.print(f"note: {data['execute_note']}")
        else:
            predicted = report.stages["copy"].wall_s
            console.print(
                f"measured copy: {data['measured_s'] * 1e3:.3f} ms "
                f"({data['measured_gbps']:.2f} GB/s) vs predicted copy stage "
                f"{predicted * 1e3:.3f} ms on {report.hw} — {data['execute_note']}"
            )
