"""``migpolicy replay``: a trace through placement policies on tiered memory, priced."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
import numpy as np

from migpolicy.cli.output import console, echo_json, err_console, parse_assignments

__all__ = ["replay_command"]

#: The profile a replay uses when none is named: a DRAM + CXL tiered machine.
REPLAY_PROFILE = "dram-cxl"


@contextlib.contextmanager
def _progress(total: int | None, enabled: bool) -> Iterator[Callable[[np.ndarray], None] | None]:
    """A rich progress bar on stderr counting replayed events, or ``None``."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("replay", total=total)
        yield lambda events: progress.advance(task, len(events))


def _label(params: dict[str, Any], item: str | None) -> str:
    if item and item.endswith((".yaml", ".yml")):
        return item.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    demotion = params["placement.demotion"]
    return params["placement"] + ("" if demotion == "none" else f"+{demotion}")


@click.command("replay")
@click.argument("trace_path", metavar="TRACE")
@click.option("--policy", "policy_file", default=None, metavar="YAML",
              help="Policy file: a flat mapping of parameters (placement: hist, "
                   "hist.rate_limit_mbps: 512 ...) [default: placement=numab, "
                   "placement.demotion=watermark, the kernel's memory tiering].")
@click.option("--param", "param_items", multiple=True, metavar="KEY=VALUE",
              help="Set a policy parameter (repeatable; overrides --policy), e.g. "
                   "--param placement=hist or --param numab.rate_limit_mbps=256.")
@click.option("--hw", "hw_name", default=REPLAY_PROFILE, show_default=True,
              metavar="PROFILE", help="Hardware profile name or YAML file: the two fastest "
                                      "nodes are the fast and the slow tier.")
@click.option("--fast", default="25%", show_default=True, metavar="SIZE|PCT",
              help="Fast-tier size: a size (64M) or a share of the trace's footprint (25%).")
@click.option("--epoch", default=None, metavar="DURATION",
              help="Epoch: 100us, 1ms, 2s, 'snapshot' (one per DAMON snapshot), or a record "
                   "count on untimed traces (lackey) [default: snapshot on DAMON traces, "
                   "else 1ms, i.e. 1,000,000 records untimed].")
@click.option("--compare", default=None, metavar="P1,P2,...",
              help="Replay several policies on one pass: names (none, numab, hist, damos), "
                   "promotion+demotion pairs (numab+watermark) or policy YAML files.")
@click.option("--initial", default="first-touch", show_default=True,
              type=click.Choice(["first-touch", "slow", "interleave"]),
              help="Placement before the first epoch.")
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(min=0,
              min_open=True), help="Accesses per unit of event weight (sampled traces: "
                                   "DAMON, perf).")
@click.option("--events", "max_events", default=None, type=click.IntRange(min=1),
              help="Replay only the first N events (a prefix of the trace).")
@click.option("--seed", default=0, show_default=True, help="Seed of the policies' random "
                                                          "choices (DAMON sampling).")
@click.option("--from", "fmt", default=None, metavar="FORMAT",
              help="Trace format, when detection cannot tell (see `migpolicy trace formats`).")
@click.option("--page-size", default=None, metavar="SIZE",
              help="Page size for traces of addresses: 4K (default) up to 1G.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
@click.option("--report", "report_dir", default=None, metavar="DIR",
              help="Also write DIR/index.html with figures and DIR/replay.json (atomically).")
@click.pass_context
def replay_command(ctx: click.Context, trace_path: str, policy_file: str | None,
                   param_items: tuple[str, ...], hw_name: str, fast: str, epoch: str | None,
                   compare: str | None, initial: str, scale: float, max_events: int | None,
                   seed: int, fmt: str | None, page_size: str | None, as_json: bool,
                   report_dir: str | None) -> None:
    """Replay TRACE on a fast and a slow memory tier under placement policies.

    Each epoch the trace's accesses are charged at the latency of the tier each
    page is on; at its end the policy proposes promotions and demotions, priced
    through the stage pipeline on the hardware profile. Prints the fast-tier hit
    ratio, promotions, demotions, application time (accesses, migration stalls,
    policy overhead, contention), migration wall and CPU time per stage, engine
    and tenant, and the offline bounds (best static placement, per-epoch oracle).
    Figures are modelled.

    \b
    Examples:
      migpolicy trace gen phases --out phases.mpt --events 4000000 --pages 4096 \\
          --param interval_ns=100
      migpolicy replay phases.mpt
      migpolicy replay phases.mpt --compare none,numab+watermark,hist,damos
      migpolicy replay phases.mpt --param placement=hist --fast 8M --json
      migpolicy replay phases.mpt --policy tuned.yaml --param hist.rate_limit_mbps=256
      migpolicy replay damon.data --epoch snapshot --compare none,damos --report out/
      migpolicy replay app.lackey.xz --epoch 100000 --hw gh200
    """
    from migpolicy.cli.trace import parse_duration
    from migpolicy.context import build_context
    from migpolicy.plugin_manager import get_plugin_manager
    from migpolicy.registries import declared_parameters
    from migpolicy.replay import ReplayOptions, replay_many
    from migpolicy.replay.policyfile import DEFAULT_POLICY, load_policy, policy_spec
    from migpolicy.traces import open_trace

    pm = get_plugin_manager(ctx.find_root().obj["plugins"])
    declared = declared_parameters(pm)
    base: dict[str, Any] = dict(DEFAULT_POLICY)
    if policy_file:
        base.update(load_policy(policy_file, declared))
    base.update(parse_assignments(param_items))
    items = [i for i in compare.split(",") if i.strip()] if compare else [None]
    contexts, labels = [], []
    for item in items:
        params = dict(base)
        if item is not None:
            params.update(policy_spec(item, declared))
            params.update(parse_assignments(param_items))
        run = build_context(pm=pm, hw=hw_name, params=params)
        contexts.append(run)
        labels.append(_label(run.params, item))
    if report_dir is not None:
        from migpolicy.replay.report import check_report_dir

        check_report_dir(report_dir)
    trace = open_trace(trace_path, pm, fmt=fmt, page_size=page_size)
    epoch_ns = parse_duration(epoch) if epoch else None
    show = sys.stderr.isatty()
    with _progress(trace.meta.events, show) as tick:
        options = ReplayOptions(fast=fast, epoch_ns=epoch_ns, initial=initial,
                                max_events=max_events, seed=seed, scale=scale, on_chunk=tick)
        results = replay_many(trace, contexts, options)
    data = [dict(r.as_dict(), label=label) for r, label in zip(results, labels, strict=True)]
    if report_dir is not None:
        from migpolicy.replay.report import write_report

        write_report(report_dir, data)
    if as_json:
        echo_json(data[0] if compare is None else {"results": data})
    else:
        from migpolicy.replay.text import print_results

        print_results(console, data)
        if report_dir is not None:
            console.print(f"report: {report_dir}/index.html")
