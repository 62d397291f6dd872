"""How tuning takes Ctrl-C: no trial left running, none half-stored, none lost.

A Ctrl-C can land anywhere in a tuning process: in a replay, inside Optuna's
own writes to the storage, inside a database driver, in a finaliser (where
Python only prints it), or while worker processes are being forked. These
helpers make each of those end the same way, as :class:`KeyboardInterrupt`
once the storage is consistent:

* :func:`interrupt_noted` remembers that Ctrl-C came, so that an error that
  follows it (:func:`echoes_interrupt`) and a Ctrl-C Python dropped
  (:func:`reraise_lost_interrupt`) both still stop the study;
* :func:`ctrl_c_deferred` holds Ctrl-C back over a block that must not be cut
  in two (creating a trial, forking the workers) and delivers it right after.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

import optuna

from migpolicy.errors import from_interrupt

__all__ = ["ctrl_c_deferred", "echoes_interrupt", "interrupt_noted", "reraise_lost_interrupt"]


class _Seen:
    """Whether Ctrl-C came while tuning in this process.

    A plain attribute, not a ``threading.Event``: the signal handler sets it,
    and an Event takes a lock, so a second Ctrl-C landing inside the first
    one's handler (a terminal's and then ``--jobs``'s own) deadlocked on it.
    """

    seen = False


def echoes_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C in disguise: one is linked to it, or Ctrl-C came while this
    process was tuning, and any error after it is its echo (Optuna or a driver turn an
    interrupt mid-write into errors of their own, not always linked)."""
    return from_interrupt(exc) or _Seen.seen


@contextlib.contextmanager
def interrupt_noted() -> Iterator[None]:
    """While tuning (main thread): Ctrl-C raises as usual and is also remembered.

    Python drops an exception raised in a finaliser (printing "Exception
    ignored"); such a Ctrl-C is not printed, and :func:`reraise_lost_interrupt`
    raises it again when the trial ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame) -> None:
        _Seen.seen = True
        if callable(previous):  # the command line's, which ignores any later Ctrl-C
            previous(signum, frame)
        raise KeyboardInterrupt

    def unraisable(info) -> None:  # a dropped Ctrl-C is raised again after the trial
        if not isinstance(info.exc_value, KeyboardInterrupt):
            hook(info)

    _Seen.seen = False
    previous, hook = signal.signal(signal.SIGINT, interrupt), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is interrupt:  # not replaced meanwhile (SIG_IGN)
            signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook


def reraise_lost_interrupt(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna callback: a Ctrl-C seen but swallowed during the trial stops the study now."""
    if _Seen.seen:
        raise KeyboardInterrupt


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Hold Ctrl-C back (main thread) until the block is done; it is delivered right after.

    Held back by Python's own SIGINT handler, not by the signal mask: any
    thread of the process may take the signal (pyarrow's pool, a trace
    reader's), and Python then raises it in the main thread whatever that
    thread's mask says.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[bool] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: came.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if came:
            signal.raise_signal(signal.SIGINT)  # to the handler the block held it from
