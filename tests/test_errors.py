"""Telling a Ctrl-C apart when it comes back wrapped in another error; taking only the first."""

from __future__ import annotations

import signal
from itertools import pairwise

import pytest

from migpolicy.errors import InputError, from_interrupt, interrupt_once


def chained(*errors: BaseException, via: str = "__context__") -> BaseException:
    """``errors[0]`` raised while handling ``errors[1]``, itself while handling ``errors[2]``."""
    for outer, inner in pairwise(errors):
        setattr(outer, via, inner)
    return errors[0]


def test_a_ctrl_c_at_any_depth_is_found():
    assert from_interrupt(KeyboardInterrupt())
    deep = chained(RuntimeError("optuna"), OSError("driver"), ValueError("ping"),
                   KeyboardInterrupt())
    assert from_interrupt(deep)
    assert from_interrupt(chained(ImportError("numpy"), KeyboardInterrupt(), via="__cause__"))


def test_an_ordinary_error_is_not_an_interrupt_and_a_cycle_ends():
    assert not from_interrupt(chained(InputError("bad"), OSError("disk")))
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__context__, b.__context__ = b, a
    assert not from_interrupt(a)


def test_the_first_ctrl_c_raises_and_every_later_one_is_ignored():
    previous = signal.signal(signal.SIGINT, interrupt_once)
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # ignored: nothing raised
    finally:
        signal.signal(signal.SIGINT, previous)
