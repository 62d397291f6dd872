"""The human output of ``migpolicy replay``: policies side by side, then their costs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from migpolicy.pipeline import STAGES
from migpolicy.units import format_size

__all__ = ["print_results"]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.3f}"


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} B"


def print_results(console: Console, results: Sequence[dict[str, Any]]) -> None:
    """Print one or several replays of one trace."""
    first = results[0]
    tiers = first["tiers"]
    console.print(
        f"[bold]{first['trace']}[/] ({first['format']}): {first['events']:,} events, "
        f"{first['accesses']:,.0f} accesses, {first['pages']:,} pages "
        f"({_bytes(first['footprint_bytes'])}), {first['epochs']:,} epochs of "
        f"{first['epoch']}")
    console.print(
        f"tiers on profile [bold]{first['hw']}[/]: fast node {tiers['fast']['node']} "
        f"({tiers['fast']['name']}, {format_size(tiers['fast']['bytes'])}, "
        f"{tiers['fast']['load_latency_ns']:g} ns), slow node {tiers['slow']['node']} "
        f"({tiers['slow']['name']}, {tiers['slow']['load_latency_ns']:g} ns); initial "
        f"placement {first['initial']}")
    table = Table(title="policies (modelled)")
    table.add_column("", justify="left")
    for r in results:
        table.add_column(r["label"], justify="right")
    bound = first["bound"]
    rows = [
        ("fast-tier hit ratio", lambda r: f"{r['fast_hit_ratio']:.3f}"),
        ("promoted pages", lambda r: f"{r['promoted_pages']:,}"),
        ("demoted pages", lambda r: f"{r['demoted_pages']:,}"),
        ("failed pages", lambda r: f"{r['failed_pages']:,}"),
        ("bytes moved", lambda r: _bytes(r["migrated_bytes"])),
        ("app time ms", lambda r: _ms(r["app_time_s"])),
        ("  accesses ms", lambda r: _ms(r["app"]["access_s"])),
        ("  migration stalls ms", lambda r: _ms(r["app"]["migration_stall_s"])),
        ("  policy overhead ms", lambda r: _ms(r["app"]["policy_overhead_s"])),
        ("  contention ms", lambda r: _ms(r["app"]["contention_s"])),
        ("vs none (never migrate)", lambda r: f"{r['speedup_vs_none']:.3f}x"),
        ("migration wall ms", lambda r: _ms(r["migration"]["wall_s"])),
        ("migration cpu ms", lambda r: _ms(r["migration"]["cpu_s"])),
        ("gap to oracle access time", lambda r: f"{r['app_time_s'] / bound['oracle_access_s']:.2f}x"
         if bound["oracle_access_s"] else "-"),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(r) for r in results))
    console.print(table)
    console.print(
        f"offline bounds: best static placement hit ratio {bound['static_hit_ratio']:.3f} "
        f"(access {_ms(bound['static_access_s'])} ms); per-epoch oracle, free moves "
        f"{bound['oracle_hit_ratio']:.3f} (access {_ms(bound['oracle_access_s'])} ms); "
        f"never migrating: {_ms(first['baseline_app_time_s'])} ms")
    for r in results:
        if not r["migrated_bytes"] and not r["failed_pages"]:
            continue
        stages = Table(title=f"{r['label']}: migration cost per stage")
        for column in ("stage", "wall ms", "cpu ms", "engine ms"):
            stages.add_column(column, justify="left" if column == "stage" else "right")
        for name in STAGES:
            s = r["migration"]["stages"][name]
            stages.add_row(name, _ms(s["wall_s"]), _ms(s["cpu_s"]), _ms(s["engine_s"]))
        console.print(stages)
        engines = ", ".join(f"{name}: wall {_ms(e['wall_s'])} ms, {_bytes(e['bytes'])}"
                            for name, e in r["migration"]["engines"].items())
        tenants = ", ".join(f"tenant {t}: cpu {_ms(c['cpu_s'])} ms, {_bytes(c['bytes'])}"
                            for t, c in r["migration"]["tenants"].items())
        console.print(f"engines: {engines or '-'}")
        console.print(f"tenants: {tenants or '-'}")
    for note in first["notes"]:
        console.print(f"note: {note}")
