"""Ctrl-C while tuning: dropped ones raised again, later errors taken as its echo, blocks held."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from migpolicy.tuning.interrupts import (
    ctrl_c_deferred,
    echoes_interrupt,
    interrupt_noted,
    reraise_lost_interrupt,
)


def test_a_ctrl_c_python_drops_in_a_finaliser_stops_the_study_when_the_trial_ends(capsys):
    """A Ctrl-C that lands in ``__del__`` cannot propagate (Python only prints it): it is not
    printed, the trial goes on, and the callback Optuna calls at the trial's end raises it."""
    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here, inside the finaliser

    went_on = []
    with interrupt_noted():
        assert not echoes_interrupt(RuntimeError("before"))
        Finalised()  # collected at once
        went_on.append(True)
        # an error after it, with no link to it, is its echo
        assert echoes_interrupt(AssertionError("Should not reach."))
        with pytest.raises(KeyboardInterrupt):
            reraise_lost_interrupt(None, None)
    assert went_on == [True]
    assert "KeyboardInterrupt" not in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_run_without_ctrl_c_lets_the_trials_go_on():
    with interrupt_noted():
        reraise_lost_interrupt(None, None)
        assert not echoes_interrupt(ValueError("a plain error"))


def test_ctrl_c_taken_by_another_thread_waits_for_the_end_of_the_block():
    """The signal mask of the main thread would not hold it: Python raises a SIGINT that any
    thread took in the main thread."""
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    done = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with ctrl_c_deferred():
                signal.pthread_kill(helper.ident, signal.SIGINT)
                time.sleep(0.2)  # Python runs its handlers between bytecodes here
                done.append("block")
    finally:
        stop.set()
        helper.join()
    assert done == ["block"]
