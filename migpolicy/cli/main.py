"""The ``migpolicy`` command group, global options and error handling.

Every :class:`migpolicy.errors.MigpolicyError` becomes one line on stderr and
exit status 1; usage errors exit with 2 (click's convention); Ctrl-C ends any
command with one line and exit status 130 (128 + SIGINT, the shell's convention).
"""

from __future__ import annotations

from pathlib import Path

import click

from migpolicy import __version__
from migpolicy.cli import command_over, interrupted
from migpolicy.cli.lazy import LazyGroup
from migpolicy.cli.output import console, echo_json
from migpolicy.errors import MigpolicyError, from_interrupt

__all__ = ["main"]


class _Group(LazyGroup):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # An empty value never means anything here (`--hw ''`, `--out ''`, `show ''`), and a
        # path would silently become "." on the way: refuse it, naming the option.
        for index, arg in enumerate(args):
            if arg == "" or (arg.startswith("--") and arg.endswith("=")):
                before = args[index - 1] if index else ""
                where = (arg[:-1] if arg else before if before.startswith("-")
                         else f"the argument after {before!r}" if before else "an argument")
                raise click.UsageError(f"{where}: expected a value, got an empty string", ctx)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            result = super().invoke(ctx)
            command_over()
            return result
        except KeyboardInterrupt:
            interrupted()
        except Exception as exc:
            # Ctrl-C inside C code comes back as another error caused by it: an ImportError
            # while an extension initialises, a SystemError from a compiled loop (numba)
            if from_interrupt(exc):
                interrupted()
            if isinstance(exc, MigpolicyError):
                raise click.ClickException(str(exc)) from None
            raise


def _plugin_modules(ctx: click.Context, param: click.Parameter,
                    values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not value.strip():
            raise click.BadParameter("expected a module name, got an empty string")
        if value.endswith(".py") or "/" in value or "\\" in value:
            module = Path(value).stem
            raise click.BadParameter(
                f"{value!r} is a file path; -p takes a module name: put the file's folder on "
                f"PYTHONPATH and pass -p {module}")
    return values


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100},
             lazy_commands={"move": "migpolicy.cli.move:move", "hw": "migpolicy.cli.hw:hw",
                            "trace": "migpolicy.cli.trace:trace",
                            "replay": "migpolicy.cli.replay:replay_command",
                            "tune": "migpolicy.cli.tune:tune_command",
                            "policy": "migpolicy.cli.policy:policy"})
@click.option("-p", "--plugin", "plugins", multiple=True, metavar="MODULE",
              callback=_plugin_modules,
              help="Load one more plugin module (repeatable), e.g. -p mypkg.myengine.")
@click.version_option(__version__, prog_name="migpolicy")
@click.pass_context
def main(ctx: click.Context, plugins: tuple[str, ...]) -> None:
    """Model, price and tune Linux page-migration policy.

    \b
    Examples:
      # the loop: a trace, a tuned policy, a replay against the kernel default,
      # and the kernel settings the tuned policy corresponds to
      migpolicy trace gen phases --out phases.mpt --events 1M --pages 4096
      migpolicy tune phases.mpt --trials 40 --export best.yaml --report tune-report
      migpolicy replay phases.mpt --compare none,numab+watermark,best.yaml
      migpolicy policy kernel best.yaml
      # price a move_pages() experiment (the published RFC V2 setup)
      migpolicy move --bytes 1G --folio 2M --engine mt --workers 8
      # see which plugins are loaded and which hooks they implement
      migpolicy plugins
      # inspect the hardware profiles and where each number came from
      migpolicy hw list
      migpolicy hw show zen3-epyc-ptdma

    Environment: MIGPOLICY_PLUGINS=a,b loads only those entry-point plugins
    (set but empty: none); MIGPOLICY_TRACE_HOOKS=1 logs every hook call with
    its duration; MIGPOLICY_COMPILED=always|never overrides when pricing runs
    compiled loops (the same numbers either way).
    """
    ctx.obj = {"plugins": plugins}


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for scripts.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List the loaded plugins: name, version, source and the hooks each implements.

    \b
    Sources: builtin (ships with migpolicy), entry point (an installed package
    registering in the `migpolicy` group), -p (loaded on the command line).
    \b
    Examples:
      migpolicy plugins
      migpolicy -p mypkg.engine plugins --json
    """
    from migpolicy.plugin_manager import get_plugin_manager, plugin_infos
    from migpolicy.registries import copy_engines, placement_policies

    pm = get_plugin_manager(ctx.obj["plugins"], keep_broken=True)
    infos = plugin_infos(pm)
    engines = copy_engines(pm)  # read (and checked) before anything is printed
    policies = placement_policies(pm)
    if as_json:
        echo_json([
            {"name": i.name, "version": i.version, "source": i.source, "hooks": list(i.hooks),
             **({"error": i.error} if i.error else {})}
            for i in infos
        ])
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="migpolicy plugins")
    for column in ("name", "version", "source", "hooks"):
        table.add_column(column)
    for info in infos:
        hooks = ", ".join(h.removeprefix("migpolicy_") for h in info.hooks)
        if info.error:
            hooks = f"[red]BROKEN, not loaded[/]: {escape(info.error)}"
        table.add_row(info.name, info.version, info.source, hooks)
    console.print(table)
    console.print("copy engines: " + ", ".join(
        f"{name} ({'runs here' if e.executor and e.available() else 'modelled'})"
        for name, e in engines.items()) + ", auto (per-batch selector)")
    console.print("placement policies: " + ", ".join(
        f"{name} ({p.role})" for name, p in sorted(policies.items())))
