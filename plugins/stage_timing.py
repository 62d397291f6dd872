"""Wrappers that time how long each stage hook takes to *price* (host seconds).

This measures migpolicy itself, not the modelled migration: the report's
``pricing_s`` shows which plugin is slow when a replay crawls.
"""

from __future__ import annotations

import time

from migpolicy.hookspecs import hookimpl

_elapsed: dict[str, float] = {}


def take() -> dict[str, float]:
    """Return and reset the host seconds spent per stage since the last call."""
    out = dict(_elapsed)
    _elapsed.clear()
    return out


def _timed(stage: str):
    def wrapper(**kwargs):
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            _elapsed[stage] = _elapsed.get(stage, 0.0) + time.perf_counter() - start

    return wrapper


migpolicy_isolate = hookimpl(wrapper=True)(_timed("isolate"))
migpolicy_batch = hookimpl(wrapper=True)(_timed("batch"))
migpolicy_copy = hookimpl(wrapper=True)(_timed("copy"))
migpolicy_remap = hookimpl(wrapper=True)(_timed("remap"))
migpolicy_account = hookimpl(wrapper=True)(_timed("account"))
