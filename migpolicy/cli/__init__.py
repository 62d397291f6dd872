"""The ``migpolicy`` command line (click).

:func:`run` is the console script: :func:`migpolicy.cli.main.main` with
Ctrl-C during start-up (while the command's modules import) handled as it is
during a command, by :func:`interrupted`, and ignored once the command is over.
"""

from __future__ import annotations

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
    finally:
        # The command is over. Python puts back the default action of SIGINT (death by
        # signal) while it shuts down, unless SIGINT is ignored: a Ctrl-C then would end a
        # finished command as killed.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
