"""``migpolicy trace``: convert, generate, inspect and plot memory traces."""

from __future__ import annotations

import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import numpy as np

from migpolicy.cli.output import console, echo_json, err_console, parse_assignments
from migpolicy.errors import InputError

__all__ = ["trace"]

#: Inputs larger than this get a progress bar on a terminal.
BIG_INPUT = 16 << 20
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s)?\s*$")
_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, None: 1}


def parse_duration(text: str) -> int:
    """``100us``, ``1ms``, ``2s``, ``500`` (ns) → ns; ``snapshot`` → 0 (per time stamp)."""
    from migpolicy.traces.stats import SNAPSHOT

    if text.strip().lower() == "snapshot":
        return SNAPSHOT
    match = _DURATION.match(text)
    value = float(match.group(1)) * _NS[match.group(2)] if match else 0
    if not match or value < 1:
        raise InputError(f"--epoch {text!r}: expected a duration such as 100us, 1ms or 2s, "
                         "or 'snapshot'")
    return int(value)


def _pm(ctx: click.Context):
    from migpolicy.plugin_manager import get_plugin_manager

    return get_plugin_manager(ctx.find_root().obj["plugins"])


def _command() -> str:
    return shlex.join(["migpolicy", *sys.argv[1:]])


@contextmanager
def _progress(what: str, enabled: bool) -> Iterator[Callable[[np.ndarray], None] | None]:
    """A rich progress line on stderr counting events, or ``None`` when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:,.0f} events"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(what, total=None)
        yield lambda events: progress.advance(task, len(events))


def _show_progress(path: Path | None, as_json: bool) -> bool:
    big = path is None or path.stat().st_size > BIG_INPUT
    return big and not as_json and err_console.is_terminal


def _open(ctx: click.Context, path: str, fmt: str | None, page_size: str | None,
          params: tuple[str, ...], instructions: bool):
    from migpolicy.traces import open_trace

    options: dict[str, Any] = parse_assignments(params)
    if instructions:
        options["instructions"] = "true"
    return open_trace(path, _pm(ctx), fmt=fmt, page_size=page_size, options=options)


_input_options = [
    click.option("--from", "fmt", metavar="FORMAT",
                 help="Input format (see `migpolicy trace formats`); detected from the "
                      "content when absent."),
    click.option("--page-size", metavar="SIZE",
                 help="Page size for formats that carry addresses: 4K (default), 2M, 1G."),
    click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
                 help="A format option (repeatable), e.g. --param instructions=true."),
    click.option("--instructions", is_flag=True,
                 help="lackey: also count instruction fetches (I lines) as reads."),
]


def input_options(func: Callable) -> Callable:
    """The options every command reading a trace shares."""
    for option in reversed(_input_options):
        func = option(func)
    return func


@click.group()
def trace() -> None:
    """Memory traces: convert to the native format, generate, inspect, plot.

    Readers: lackey, DAMON (damo record JSON, perf script of damon_aggregated),
    perf script of sampled data addresses, ChampSim; gzip, xz and zstd inputs
    are read directly. Every command takes any format (detected from content).

    \b
    Examples:
      migpolicy trace formats
      migpolicy trace convert lackey.out.gz app.parquet
      migpolicy trace gen zipf --out zipf.parquet --events 10M --pages 100000
      migpolicy trace info damon.data --json
      migpolicy trace plot app.parquet --out app.png
    """


@trace.command("formats")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object for scripts.")
@click.pass_context
def formats_command(ctx: click.Context, as_json: bool) -> None:
    """List the trace formats and generators the plugins provide, with their options.

    \b
    Examples:
      migpolicy trace formats
      migpolicy -p mypkg.tsvtrace trace formats --json
    """
    from migpolicy.traces import trace_formats, trace_generators

    pm = _pm(ctx)
    described = {
        kind: [{"name": item.name, "summary": item.summary,
                "options": {o.name: {"default": o.default, "help": o.help}
                            for o in item.parameters}}
               for item in sorted(items.values(), key=lambda i: i.name)]
        for kind, items in (("formats", trace_formats(pm)), ("generators", trace_generators(pm)))
    }
    if as_json:
        echo_json(described)
        return
    from rich.table import Table

    for kind, rows in described.items():
        table = Table(title=f"trace {kind}")
        for column in ("name", "summary", "options"):
            table.add_column(column)
        for row in rows:
            opts = ", ".join(f"{k}={v['default']}" for k, v in row["options"].items())
            table.add_row(row["name"], row["summary"], opts)
        console.print(table)


@trace.command("convert")
@click.argument("source", metavar="IN")
@click.argument("dest", metavar="OUT")
@input_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary for scripts.")
@click.pass_context
def convert_command(ctx: click.Context, source: str, dest: str, fmt: str | None,
                    page_size: str | None, params: tuple[str, ...], instructions: bool,
                    as_json: bool) -> None:
    """Convert the trace IN (any format, compressed or not) to the native format OUT.

    The native format is one Parquet file (LZ4) that pandas, DuckDB and polars
    read: columns t_ns, page (dense index), op, tenant, weight; the page table
    and metadata in its footer. OUT appears only when the conversion succeeded.

    \b
    Examples:
      migpolicy trace convert lackey.out.gz app.parquet
      migpolicy trace convert damon.data damon.parquet --page-size 2M
      migpolicy trace convert perf.script faults.parquet --from perf
      migpolicy trace convert trace.champsim.xz cs.parquet --json
    """
    from migpolicy.files import atomic_output, check_output
    from migpolicy.traces import write_native

    out = check_output(dest, "native trace")
    trace_in = _open(ctx, source, fmt, page_size, params, instructions)
    start = time.perf_counter()
    with _progress(f"converting {source}", _show_progress(Path(source), as_json)) as tick, \
            atomic_output(out, what="native trace") as handle:
        meta = write_native(trace_in, handle, _command(), tick)
    seconds = time.perf_counter() - start
    summary = {"input": source, "output": str(out), "format": meta.source_format,
               "events": meta.events, "accesses": meta.accesses,
               "distinct_pages": meta.distinct_pages, "page_size": meta.page_size,
               "output_bytes": out.stat().st_size, "seconds": round(seconds, 3)}
    if as_json:
        echo_json(summary)
        return
    console.print(f"{source} ({meta.source_format}) → {out}: {meta.events:,} events, "
                  f"{meta.accesses:,.0f} accesses, {meta.distinct_pages:,} pages of "
                  f"{meta.page_size} B; {summary['output_bytes']:,} bytes in {seconds:.2f} s")


def _count(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        words = {"K": 10**3, "M": 10**6, "G": 10**9}
        text = value.strip().upper()
        number = int(float(text[:-1]) * words[text[-1]]) if text[-1:] in words else int(text)
    except (ValueError, IndexError):
        raise click.BadParameter(f"expected a count such as 100000, 10M, got {value!r}") from None
    if number < 1:
        raise click.BadParameter(f"expected a positive count, got {value!r}")
    return number


@trace.command("gen")
@click.argument("kind")
@click.option("--out", "dest", required=True, metavar="FILE", help="Native trace to write.")
@click.option("--events", default="1M", show_default=True, callback=_count,
              help="Number of events: 100000, 10M ...")
@click.option("--pages", default="65536", show_default=True, callback=_count,
              help="Pages the trace may touch.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: the same seed gives the same trace.")
@click.option("--page-size", metavar="SIZE", help="Page size: 4K (default), 2M, 1G.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A generator option (repeatable), e.g. --param alpha=1.2.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary for scripts.")
@click.pass_context
def gen_command(ctx: click.Context, kind: str, dest: str, events: int, pages: int, seed: int,
                page_size: str | None, params: tuple[str, ...], as_json: bool) -> None:
    """Generate a synthetic trace of KIND (zipf, phases, scan, gups, tenants, or a plugin's).

    Deterministic by --seed. Options per generator: `migpolicy trace formats`.

    \b
    Examples:
      migpolicy trace gen zipf --out zipf.parquet --events 10M --pages 100000
      migpolicy trace gen phases --out phases.parquet --param phases=8 --param hot_share=0.95
      migpolicy trace gen tenants --out mix.parquet --param tenants=4 --seed 7
      migpolicy trace gen gups --out gups.parquet --events 1M --pages 1M
    """
    from migpolicy.files import atomic_output, check_output
    from migpolicy.traces import generated_trace, trace_generators, write_native

    out = check_output(dest, "native trace")
    generators = trace_generators(_pm(ctx))
    if kind not in generators:
        raise InputError(f"unknown trace generator {kind!r}; expected one of "
                         f"{', '.join(sorted(generators))}")
    made = generated_trace(generators[kind], events, pages, seed, parse_assignments(params),
                           page_size)
    with _progress(f"generating {kind}", _show_progress(None, as_json) and events > 10**7
                   ) as tick, atomic_output(out, what="native trace") as handle:
        meta = write_native(made, handle, _command(), tick)
    summary = {"output": str(out), "generator": kind, "events": meta.events,
               "accesses": meta.accesses, "distinct_pages": meta.distinct_pages,
               "seed": seed, "output_bytes": out.stat().st_size}
    if as_json:
        echo_json(summary)
        return
    console.print(f"{kind} (seed {seed}) → {out}: {meta.events:,} events over "
                  f"{meta.distinct_pages:,} pages; {summary['output_bytes']:,} bytes")


@trace.command("info")
@click.argument("source", metavar="FILE")
@input_options
@click.option("--epoch", default=None, metavar="DURATION",
              help="Working-set epoch: 100us, 1ms, 2s or 'snapshot' [default: the trace's "
                   "snapshots (DAMON), else 1ms].")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many of the hottest pages to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
@click.pass_context
def info_command(ctx: click.Context, source: str, fmt: str | None, page_size: str | None,
                 params: tuple[str, ...], instructions: bool, epoch: str | None, top: int,
                 as_json: bool) -> None:
    """Summarise the trace FILE (any format): accesses, footprint, ops, hottest pages, WSS.

    The working-set size (WSS) is the distinct pages touched per epoch times the
    page size, as damo's `report wss` shows it: average and percentiles.
    Accesses are the sum of the events' weights (a sampled event stands for
    its period, a DAMON region-page for its nr_accesses).

    \b
    Examples:
      migpolicy trace info app.parquet
      migpolicy trace info damon.data --json
      migpolicy trace info lackey.out.xz --epoch 100us --top 5
    """
    from migpolicy.traces.stats import trace_stats

    epoch_ns = parse_duration(epoch) if epoch is not None else None
    opened = _open(ctx, source, fmt, page_size, params, instructions)
    with _progress(f"reading {source}", _show_progress(Path(source), as_json)) as tick:
        stats = trace_stats(opened, epoch_ns, top, tick)
    data = stats.as_dict()
    if as_json:
        echo_json(data)
        return
    _print_info(source, data)


def _print_info(source: str, data: dict[str, Any]) -> None:
    from rich.table import Table

    from migpolicy.units import format_size

    def size(value: float) -> str:
        return f"{value / 2**20:,.1f} MiB" if value >= 2**20 else f"{value / 1024:,.1f} KiB"

    def count(value: float) -> str:
        return f"{value:,}" if float(value).is_integer() else f"{value:,.2f}"

    def duration(ns: int) -> str:
        for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
            if ns >= scale:
                return f"{ns / scale:,.3f} {unit}"
        return f"{ns} ns"

    unit = "records" if data["clock"] == "ordinal" else "ns"
    epoch = data["epoch"].replace("ns", f" {unit}")
    console.print(f"[bold]{source}[/] — {data['format']}, {format_size(data['page_size'])} pages")
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("events", f"{data['events']:,}"),
        ("accesses", count(data["accesses"])),
        ("reads / writes / modifies / unknown",
         " / ".join(count(data[k]) for k in ("reads", "writes", "modifies", "unknown_ops"))),
        ("distinct pages", f"{data['distinct_pages']:,}"),
        ("footprint", size(data["footprint_bytes"])),
        ("duration", f"{data['duration_ns']:,} records" if unit == "records"
         else duration(data["duration_ns"])),
        ("tenants", ", ".join(f"{k}: {count(v)}" for k, v in list(data["tenants"].items())[:8])
         + (" ..." if len(data["tenants"]) > 8 else "")),
    ]
    wss = data["wss_bytes"]
    rows.append((f"WSS per epoch ({epoch}, {data['epochs']:,} epochs)",
                 "avg " + size(wss["avg"]) + ", " + ", ".join(
                     f"{k} {size(wss[k])}" for k in ("p50", "p90", "p99", "max"))))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if data["hottest_pages"]:
        hot = Table(title="hottest pages")
        for column in ("page", "address", "accesses", "share"):
            hot.add_column(column, justify="right")
        for row in data["hottest_pages"]:
            hot.add_row(str(row["page"]), row["address"], count(row["accesses"]),
                        f"{row['share']:.2%}")
        console.print(hot)


@trace.command("plot")
@click.argument("source", metavar="FILE")
@click.option("--out", "dest", required=True, metavar="FILE.png", help="Image to write.")
@input_options
@click.option("--time-bins", type=click.IntRange(min=2, max=4000), default=400, show_default=True,
              help="Columns of the heatmap (time).")
@click.option("--address-bins", type=click.IntRange(min=2, max=4000), default=300,
              show_default=True, help="Rows of the heatmap (address).")
@click.pass_context
def plot_command(ctx: click.Context, source: str, dest: str, fmt: str | None,
                 page_size: str | None, params: tuple[str, ...], instructions: bool,
                 time_bins: int, address_bins: int) -> None:
    """Plot a time x address heatmap of access intensity of FILE, like damo's heatmap.

    Gaps between mappings (address ranges nobody touches) are collapsed so a
    sparse address space stays readable; each mapping is labelled with its
    start address and size.

    \b
    Examples:
      migpolicy trace plot app.parquet --out app.png
      migpolicy trace plot damon.data --out damon.png --time-bins 200
    """
    from migpolicy.files import check_output
    from migpolicy.traces.plot import plot_heatmap

    out = check_output(dest, "plot")
    opened = _open(ctx, source, fmt, page_size, params, instructions)
    with _progress(f"reading {source}", _show_progress(Path(source), False)) as tick:
        segments = plot_heatmap(opened, out, time_bins, address_bins, title=source, on_chunk=tick)
    console.print(f"wrote {out}: {segments} mapping(s), gaps between them collapsed")
