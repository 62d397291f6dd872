"""``migpolicy policy``: what a policy file means outside the model (``policy kernel``)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape

from migpolicy.cli.output import console, echo_json
from migpolicy.cli.replay import REPLAY_PROFILE

__all__ = ["policy"]


@click.group("policy")
def policy() -> None:
    """Work with policy files (what `tune --export` writes and `replay --policy` reads).

    \b
    Examples:
      migpolicy policy kernel best.yaml
    """


@policy.command("kernel")
@click.argument("policy_file", metavar="POLICY.yaml")
@click.option("--hw", "hw_name", default=REPLAY_PROFILE, show_default=True, metavar="PROFILE",
              help="Hardware profile of the machine (node ids and sizes for the conversions).")
@click.option("--damos-out", "damos_out", default=None, metavar="FILE",
              help="Write the DAMOS kdamonds JSON here (for `damo start --kdamonds FILE`) "
                   "instead of printing it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
@click.pass_context
def kernel_command(ctx: click.Context, policy_file: str, hw_name: str, damos_out: str | None,
                   as_json: bool) -> None:
    """Print the real kernel settings a policy corresponds to, where they exist.

    Every plugin maps its own parameters: NUMA-balancing memory tiering
    (sysctls and debugfs knobs), kswapd demotion (demotion_enabled,
    vm.watermark_scale_factor converted with the node size of --hw), a DAMOS
    scheme as the kdamonds JSON damo reads, the copy-offload settings of the RFC
    series, compile-time constants. Each line names the policy parameters it
    comes from and how a value was converted; every parameter of the file
    without a kernel equivalent is listed with the reason. A file without
    `placement` keys means the kernel default (numab + watermark), as for
    `replay --policy`. Nothing is applied: the output is commands to paste as
    root on the machine.

    \b
    Examples:
      migpolicy tune app.mpt --trials 30 --export best.yaml
      migpolicy policy kernel best.yaml
      migpolicy policy kernel best.yaml --hw dram-cxl --damos-out damos.json
      migpolicy policy kernel best.yaml --json | jq .no_kernel_equivalent
    """
    from migpolicy.context import build_context
    from migpolicy.errors import InputError
    from migpolicy.files import atomic_write_text, check_output
    from migpolicy.kernel_settings import kernel_settings
    from migpolicy.plugin_manager import get_plugin_manager
    from migpolicy.registries import declared_parameters
    from migpolicy.replay.policyfile import DEFAULT_POLICY, load_policy

    pm = get_plugin_manager(ctx.find_root().obj["plugins"])
    declared = declared_parameters(pm)
    given = load_policy(policy_file, declared)
    if damos_out is not None:
        check_output(damos_out, "DAMOS JSON")
    run = build_context(pm=pm, hw=hw_name, params={**DEFAULT_POLICY, **given})
    if len(run.hw.nodes) < 2:
        raise InputError(f"--hw {hw_name}: profile {run.hw.name} has one node; the kernel "
                         "settings of tiered memory need a fast and a slow node (try --hw "
                         "dram-cxl)")
    result = kernel_settings(pm, run.params, run.hw, list(given), declared)
    data = result.as_dict()
    data["no_kernel_equivalent"] = {key: {"value": run.params[key], "reason": reason}
                                    for key, reason in result.unmapped.items()}
    data = {"policy": policy_file, "hw": run.hw.name, **data}
    if damos_out is not None and data["damo"] is not None:
        atomic_write_text(damos_out, json.dumps(data["damo"], indent=2) + "\n", "DAMOS JSON")
        data["damos_out"] = damos_out
    if as_json:
        echo_json(data)
        return
    _print(result, run.params, data)


#: How each mechanism's settings are written as commands to paste.
_COMMAND = {
    "sysctl": lambda s: f"sysctl -w {s.name}={s.value}",
    "debugfs": lambda s: f"echo {s.value} > {s.name}",
    "sysfs": lambda s: f"echo {s.value} > {s.name}",
}


def _print(result: Any, params: dict[str, Any], data: dict[str, Any]) -> None:
    from migpolicy.kernel_settings import MECHANISMS

    console.print(f"policy {escape(data['policy'])} on profile {data['hw']}: the kernel "
                  "settings it corresponds to (nothing is applied)")
    for mechanism, rows in result.by_mechanism().items():
        console.print(f"\n[bold]{escape(MECHANISMS[mechanism])}[/]")
        for row in rows:
            origin = ", ".join(f"{key}={_fmt(params.get(key))}" for key in row.from_params)
            if mechanism in _COMMAND:
                line = _COMMAND[mechanism](row)
            else:
                value = row.value if isinstance(row.value, int | float | str) else \
                    json.dumps(row.value)
                line = f"{row.name} = {value}"
            console.print(f"  {escape(line)}  [dim]# from {escape(origin)}[/]")
            if row.note:
                console.print(f"      [dim]{escape(row.note)}[/]")
        if mechanism == "damo":
            if "damos_out" in data:
                console.print(f"  written to {escape(data['damos_out'])}: damo start "
                              f"--kdamonds {escape(data['damos_out'])}")
            else:
                console.print("  kdamonds JSON (save it, then damo start --kdamonds FILE):")
                console.print(escape(json.dumps(data["damo"], indent=2)))
    if data["no_kernel_equivalent"]:
        console.print("\n[bold]no kernel equivalent[/]")
        for key, entry in data["no_kernel_equivalent"].items():
            console.print(f"  {escape(key)}={escape(_fmt(entry['value']))}: "
                          f"{escape(entry['reason'])}")


def _fmt(value: Any) -> str:
    """A parameter value as a person writes it (``256``, not ``256.0``)."""
    return f"{value:g}" if isinstance(value, float) else str(value)
