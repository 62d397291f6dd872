"""Errors that reach the user as one clear sentence.

Every error migpolicy raises on purpose derives from :class:`MigpolicyError`;
the CLI prints its message alone (no traceback) and exits non-zero. Messages
name the file, the line or record, and what was expected.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import NoReturn

__all__ = ["ConfigError", "InputError", "MigpolicyError", "PluginError", "from_interrupt",
           "interrupt_once"]


class MigpolicyError(Exception):
    """Base class: a problem the user can fix, described in one sentence."""


class InputError(MigpolicyError):
    """A malformed value on the command line or in a data file (CSV, trace)."""


class ConfigError(MigpolicyError):
    """A hardware profile or policy file that is malformed or impossible."""


class PluginError(MigpolicyError):
    """A plugin that failed to load, is malformed, or raised inside a hook."""


def from_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C or was raised while handling one, at any depth.

    A Ctrl-C that lands inside a C extension's start-up, a database driver or
    Optuna's own writes comes back as another error (an ImportError, an
    SQLAlchemy error ...) whose cause or context, perhaps a few links down,
    is the :class:`KeyboardInterrupt`.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def interrupt_once(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGINT handler of the command line: the first Ctrl-C raises, every later one is ignored.

    The clean-up after the first (failing the running trial, removing a
    half-written file, waiting for worker processes) then cannot be cut
    short by a second Ctrl-C, nor can the second land in the handler of the
    first, beyond the reach of the code that reports the interrupt.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt
