"""Errors that reach the user as one clear sentence.

Every error migpolicy raises on purpose derives from :class:`MigpolicyError`;
the CLI prints its message alone (no traceback) and exits non-zero. Messages
name the file, the line or record, and what was expected.
"""

from __future__ import annotations

__all__ = ["ConfigError", "InputError", "MigpolicyError", "PluginError", "from_interrupt"]


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
