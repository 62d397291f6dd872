"""A click group whose subcommands are imported when they are looked up, not at start-up.

Every ``migpolicy`` command starts by importing the command line; importing
every subcommand's module there (and what they import: the hardware fitting,
the executors) cost about 0.12 s of each command's start-up. A
:class:`LazyGroup` names its subcommands as ``"module:attribute"`` and imports
one when click looks it up: to run it, or to list it in ``--help``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

__all__ = ["LazyGroup"]


class LazyGroup(click.Group):
    """A group with subcommands ``lazy_commands``: name → ``"module:attribute"``."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module, _, attribute = self.lazy_commands[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)
