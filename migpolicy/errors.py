"""Errors that reach the user as one clear sentence.

Every error migpolicy raises on purpose derives from :class:`MigpolicyError`;
the CLI prints its message alone (no traceback) and exits non-zero. Messages
name the file, the line or record, and what was expected.
"""

from __future__ import annotations

__all__ = ["ConfigError", "InputError", "MigpolicyError", "PluginError"]


class MigpolicyError(Exception):
    """Base class: a problem the user can fix, described in one sentence."""


class InputError(MigpolicyError):
    """A malformed value on the command line or in a data file (CSV, trace)."""


class ConfigError(MigpolicyError):
    """A hardware profile or policy file that is malformed or impossible."""


class PluginError(MigpolicyError):
    """A plugin that failed to load, is malformed, or raised inside a hook."""
