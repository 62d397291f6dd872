"""The ``migpolicy`` command line (click).

:func:`run` is the console script: :func:`migpolicy.cli.main.main` with
Ctrl-C at any moment (while the command's modules import, in click's own
steps, during the command) handled by :func:`interrupted`, only the first
Ctrl-C raising (:func:`migpolicy.errors.interrupt_once`), and ignored once the
command is over (:func:`command_over`); the process then ends without
Python's teardown (:func:`_exit`).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

from migpolicy.errors import from_interrupt, interrupt_once

__all__ = ["INTERRUPTED", "command_over", "interrupted", "run"]

#: Exit status after Ctrl-C: 128 + SIGINT, the shell's convention.
INTERRUPTED = 130


def interrupted() -> NoReturn:
    """Say in one line that the command was interrupted, and exit with status 130.

    A second Ctrl-C while exiting is ignored (:func:`interrupt_once`), so it
    cannot print a traceback. A Ctrl-C that comes after the command wrote its
    whole JSON result ends it with status 0: the command had finished.
    """
    sys.exit(_interrupted_status())


def _interrupted_status() -> int:
    """What :func:`interrupted` exits with, once it has said so on stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from migpolicy.cli.output import RESULT_WRITTEN

    if RESULT_WRITTEN.is_set():  # too late: the whole result is already on stdout
        return 0
    sys.stderr.write("migpolicy: interrupted\n")
    return INTERRUPTED


def command_over() -> None:
    """Under the console script, ignore Ctrl-C from now on: the command has finished.

    Called as soon as the command returns, before click closes its context,
    so that a Ctrl-C in click's last steps ends neither as interrupted nor
    as click's "Aborted!". A command run in process (a test's ``CliRunner``)
    leaves the caller's handler alone.
    """
    if signal.getsignal(signal.SIGINT) is interrupt_once:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run() -> None:
    """Start the ``migpolicy`` command line.

    Click runs without its own error handling (``standalone_mode=False``),
    so that a Ctrl-C anywhere, in click's steps before and after the command
    as well, ends as :func:`interrupted` says, never as click's "Aborted!"
    with status 1.
    """
    signal.signal(signal.SIGINT, interrupt_once)
    try:
        status = _command()
    except SystemExit as done:  # interrupted(), or a plugin's sys.exit()
        status = done.code
    except BaseException as exc:
        # a Ctrl-C during start-up (while the command's modules import, perhaps inside
        # a C extension's initialisation: an ImportError), or in click's own steps
        if not from_interrupt(exc):
            raise
        status = _interrupted_status()
    # the command is over: a Ctrl-C now must not end it as interrupted, or as killed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit(status)


def _command() -> int | None:
    """Run the command named on the command line; its exit status.

    Reports the errors click reports in its standalone mode, as it does.
    """
    import click

    from migpolicy.cli.main import main

    try:
        status = main(standalone_mode=False)  # click's Exit's status; a command returns None
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort as exc:
        if from_interrupt(exc):
            raise
        sys.stderr.write("Aborted!\n")  # the end of input at a prompt
        return 1
    return status


def _exit(status: int | str | None) -> NoReturn:
    """End the process with ``status`` once its output is flushed, without tearing Python down.

    Tearing down the modules a command loaded (numba's compiler, scikit-learn,
    SQLAlchemy, Optuna) took a third of a second after every command. None of
    migpolicy's work needs it: a command writes and closes its files before it
    returns, and closes the study storage it opened (an SQLite study file
    then folds its write-ahead log back in).
    """
    if isinstance(status, str):  # sys.exit("message"), as Python would print it
        sys.stderr.write(status + "\n")
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head): nothing more to say
            pass
    os._exit(status or 0)
