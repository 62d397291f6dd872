"""Shared output helpers: JSON for scripts, rich tables for people, KEY=VALUE options."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

__all__ = ["console", "echo_json", "parse_assignments"]

#: Human output goes to stdout; progress bars and notes to stderr.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def parse_assignments(values: tuple[str, ...], option: str = "--param") -> dict[str, str]:
    """Turn ``("mt.threads=8", ...)`` into a dict; a malformed item is a usage error."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        out[key.strip()] = value.strip()
    return out
