"""Shared output helpers: JSON for scripts, rich tables for people, KEY=VALUE options."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click
from rich.console import Console

__all__ = [
    "console",
    "echo_json",
    "err_console",
    "merge_options",
    "name_option",
    "parse_assignments",
    "profile_context",
]

#: Human output goes to stdout; progress bars and notes to stderr.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout, whole or not at all.

    The text is made first: a Ctrl-C while it is being made prints nothing.
    While it is written, Ctrl-C is ignored (one caught just before is dropped
    too), and once it is out the command counts as finished:
    :func:`migpolicy.cli.interrupted` then exits with status 0 instead of 130,
    and the script reading stdout has its whole answer.
    """
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
        RESULT_WRITTEN.set()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


#: Set once a command's whole result is on stdout (see :func:`echo_json`).
RESULT_WRITTEN = threading.Event()


def parse_assignments(values: tuple[str, ...], option: str = "--param") -> dict[str, str]:
    """Turn ``("mt.threads=8", ...)`` into a dict; a malformed item is a usage error.

    An empty value, a key given twice (with different values) and a control
    character (a line break pasted in) are usage errors too: none has an
    obvious meaning.
    """
    out: dict[str, str] = {}
    for item in values:
        if any(ord(char) < 32 or ord(char) == 127 for char in item):
            raise click.BadParameter(f"{item!r} holds a control character (a line break?); "
                                     "expected KEY=VALUE on one line", param_hint=option)
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        if not value:
            raise click.BadParameter(f"{key}= has no value; expected KEY=VALUE",
                                     param_hint=option)
        if key in out and out[key] != value:
            raise click.BadParameter(f"{key} is given twice ({key}={out[key]} and "
                                     f"{key}={value}); give it once", param_hint=option)
        out[key] = value
    return out


def _flag(ctx: click.Context, name: str) -> str:
    """The option the user types for click parameter ``name`` (``--workers``)."""
    for param in ctx.command.params:
        if param.name == name:
            return max(param.opts, key=len)
    return name


def merge_options(ctx: click.Context, given: dict[str, Any],
                  options: dict[str, str]) -> dict[str, str]:
    """Add the values of dedicated options to ``--param`` assignments ``given`` (in place).

    ``options`` maps a parameter key to the click parameter that also sets it
    (``{"workers": "workers", "system.load": "load"}``). A key set both ways
    is a usage error, whatever the values; an option left at its default
    does not override ``--param``. Returns, for the keys the options set,
    the option typed (``{"workers": "--workers"}``) for :func:`name_option`.
    """
    typed: dict[str, str] = {}
    for key, name in options.items():
        value = ctx.params[name]
        explicit = ctx.get_parameter_source(name) not in (
            click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)
        flag = _flag(ctx, name)
        if key in given:
            if explicit:
                raise click.UsageError(f"{flag} {value} and --param {key}={given[key]} both "
                                       f"set {key}; give it once", ctx=ctx)
            continue
        if value is not None:
            given[key] = value
            typed[key] = flag
    return typed


def name_option(message: str, typed: dict[str, str]) -> str:
    """``message`` about ``parameter KEY`` reworded to name the option typed for KEY."""
    for key, flag in typed.items():
        message = message.replace(f"parameter {key} ", f"{flag} ")
    return message


def profile_context(ctx: click.Context, profile: str | None, option: str) -> Any:
    """The run context of a command given its profile as ``option`` (``--base``, ``PROFILE``).

    The profile is looked up first, so an unknown name or missing file is
    reported under the option the user typed.
    """
    from migpolicy.context import build_context
    from migpolicy.hardware.registry import find_profile
    from migpolicy.plugin_manager import get_plugin_manager

    pm = get_plugin_manager(ctx.find_root().obj["plugins"])
    found = find_profile(pm, profile, option)
    return build_context(pm=pm, hw=str(found.path))
