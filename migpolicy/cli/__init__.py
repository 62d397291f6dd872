"""The ``migpolicy`` command line (click).

:func:`run` is the console script: :func:`migpolicy.cli.main.main` with
Ctrl-C during start-up (while the command's modules import) handled as it is
during a command, by :func:`interrupted`, and ignored once the command is over;
the process then ends without Python's teardown (:func:`_exit`).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

from migpolicy.errors import from_interrupt

__all__ = ["INTERRUPTED", "interrupted", "run"]

#: Exit status after Ctrl-C: 128 + SIGINT, the shell's convention.
INTERRUPTED = 130


def interrupted() -> NoReturn:
    """Say in one line that the command was interrupted, and exit with status 130.

    A second Ctrl-C while exiting is ignored, so it cannot print a traceback.
    A Ctrl-C that comes after the command wrote its whole JSON result ends it
    with status 0: the command had finished.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from migpolicy.cli.output import RESULT_WRITTEN

    if RESULT_WRITTEN.is_set():  # too late: the whole result is already on stdout
        sys.exit(0)
    sys.stderr.write("migpolicy: interrupted\n")
    sys.exit(INTERRUPTED)


def run() -> None:
    """Start the ``migpolicy`` command line."""
    try:
        from migpolicy.cli.main import main
    except KeyboardInterrupt:
        interrupted()
    except ImportError as exc:  # Ctrl-C while a C extension initialised
        if from_interrupt(exc):
            interrupted()
        raise
    try:
        main()
    except SystemExit as done:  # click ends every command so
        status = done.code
    else:
        status = 0
    # the command is over: a Ctrl-C now must not end it as interrupted, or as killed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit(status)


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
