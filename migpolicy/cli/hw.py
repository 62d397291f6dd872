"""``migpolicy hw``: list, show, fit, calibrate and validate hardware profiles."""

from __future__ import annotations

import click

from migpolicy.cli.lazy import LazyGroup
from migpolicy.cli.output import console, echo_json

__all__ = ["hw"]


@click.group(cls=LazyGroup, lazy_commands={
    "fit": "migpolicy.cli.hw_fit:fit_command",
    "calibrate": "migpolicy.cli.hw_calibrate:calibrate_command",
    "validate": "migpolicy.cli.hw_validate:validate_command",
    "learn": "migpolicy.cli.hw_learn:learn_command"})
def hw() -> None:
    """Hardware profiles: what a machine can do, and where each number came from.

    \b
    Examples:
      migpolicy hw list
      migpolicy hw show zen3-epyc-ptdma
      migpolicy hw show gh200 --json
    """


@hw.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for scripts.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the registered hardware profiles and how their parameters were obtained.

    \b
    Examples:
      migpolicy hw list
      migpolicy hw list --json
    """
    from collections import Counter

    from migpolicy.hardware.registry import list_profiles
    from migpolicy.plugin_manager import get_plugin_manager

    def skip(exc: Exception) -> None:
        click.echo(f"warning: skipped a profile that does not load: {exc}", err=True)

    profiles = list_profiles(get_plugin_manager(ctx.find_root().obj["plugins"]), on_error=skip)
    rows = []
    for name, profile in sorted(profiles.items()):
        kinds = Counter(v.provenance.kind for _, v, _ in profile.values())
        rows.append({"name": name, "description": profile.description,
                     "path": str(profile.path), "cost_model": profile.cost_model,
                     "provenance": dict(kinds)})
    if as_json:
        echo_json(rows)
        return
    from rich.table import Table

    table = Table(title="hardware profiles")
    for column in ("name", "parameters", "description"):
        table.add_column(column)
    for row in rows:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(row["provenance"].items()))
        table.add_row(row["name"], kinds, row["description"])
    console.print(table)


@hw.command("show")
@click.argument("profile")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
@click.pass_context
def show_command(ctx: click.Context, profile: str, as_json: bool) -> None:
    """Show every parameter of PROFILE (a name or a YAML file) with its provenance.

    \b
    Examples:
      migpolicy hw show zen3-epyc-ptdma
      migpolicy hw show gh200 --json
      migpolicy hw show ./my-machine.yaml
    """
    from migpolicy.hardware.registry import find_profile
    from migpolicy.plugin_manager import get_plugin_manager

    prof = find_profile(get_plugin_manager(ctx.find_root().obj["plugins"]), profile, "PROFILE")
    if as_json:
        echo_json({
            "name": prof.name,
            "description": prof.description,
            "path": str(prof.path),
            "base_page": prof.base_page,
            "pmd_size": prof.pmd_size,
            "pud_size": prof.pud_size,
            "kernel": prof.kernel,
            "driver": prof.driver,
            "cost_model": prof.cost_model,
            "nodes": {n.id: {"name": n.name, "kind": n.kind} for n in prof.nodes.values()},
            "parameters": {
                path: {"value": v.value, "unit": unit, "provenance": v.provenance.id}
                for path, v, unit in prof.values()
            },
            "provenance": {pid: p.as_dict() for pid, p in prof.provenances.items()},
        })
        return
    from rich.table import Table

    console.print(f"[bold]{prof.name}[/] — {prof.description}")
    console.print(f"file: {prof.path}; base page {prof.base_page} B, PMD {prof.pmd_size} B; "
                  f"cost model: {prof.cost_model}")
    console.print(f"kernel: {prof.kernel or 'not tied to one'}"
                  + (f"; offload driver: {prof.driver}" if prof.driver else ""))
    table = Table()
    for column in ("parameter", "value", "unit", "provenance"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for path, value, unit in prof.values():
        table.add_row(path, f"{value.value:g}", unit, value.provenance.id)
    console.print(table)
    for pid, prov in prof.provenances.items():
        console.print(f"[bold]{pid}[/]: {prov.describe()}")
