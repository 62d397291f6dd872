"""Traces held in memory: the same events, pages and replays as the stream; only within budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from migpolicy.context import build_context
from migpolicy.replay import ReplayOptions, replay
from migpolicy.traces import generated_trace, open_trace, trace_generators, write_native
from migpolicy.traces.resident import EVENT_BYTES, ResidentTrace, hold, resident
from tests.traces.conftest import DATA


def _native(tmp_path: Path, builtin_pm, events: int = 30_000) -> Path:
    trace = generated_trace(trace_generators(builtin_pm)["phases"], events, 500, 2, {})
    path = tmp_path / "phases.mpt"
    with open(path, "wb") as handle:
        write_native(trace, handle)
    return path


def _events(trace, n: int) -> np.ndarray:
    return np.concatenate(list(trace.chunks(n)))


@pytest.mark.parametrize("source", ["native", "lackey"])
def test_a_resident_trace_hands_out_the_streamed_events(tmp_path, builtin_pm, source):
    path = _native(tmp_path, builtin_pm) if source == "native" else DATA / "sort.lackey.xz"
    held = resident(open_trace(path, builtin_pm), 1 << 30)
    assert isinstance(held, ResidentTrace)
    streamed = open_trace(path, builtin_pm)
    expected = _events(streamed, 4096)
    assert np.array_equal(_events(held, 7000), expected)
    assert [len(c) for c in held.columns(7000)][:-1] == [7000] * (len(expected) // 7000)
    assert held.meta == streamed.meta
    assert np.array_equal(held.page_table, streamed.page_table)
    with pytest.raises(ValueError):  # shared by forked workers: nobody writes to it
        next(held.columns()).page[0] = 1


def test_a_trace_over_the_budget_keeps_streaming(tmp_path, builtin_pm):
    path = _native(tmp_path, builtin_pm)
    native = open_trace(path, builtin_pm)
    assert resident(native, 30_000 * EVENT_BYTES - 1) is native
    assert isinstance(resident(native, 30_000 * EVENT_BYTES), ResidentTrace)
    lackey = open_trace(DATA / "sort.lackey.xz", builtin_pm)  # length unknown until read
    assert resident(lackey, 1000 * EVENT_BYTES) is lackey
    assert len(_events(lackey, 4096)) == lackey.meta.events > 1000  # still whole


def test_replaying_a_resident_trace_gives_the_same_figures(tmp_path, builtin_pm):
    path = _native(tmp_path, builtin_pm, 60_000)
    ctx = build_context(hw="dram-cxl", params={"placement": "hist"})
    options = ReplayOptions(fast="25%")
    streamed = replay(open_trace(path, ctx.pm), ctx, options).as_dict()
    held = replay(resident(open_trace(path, ctx.pm), 1 << 30), ctx, options).as_dict()
    assert held == streamed
    assert held["promoted_pages"] > 0  # a replay that migrates, not a trivial one


def test_traces_are_held_in_order_while_the_budget_lasts(tmp_path, builtin_pm):
    path = _native(tmp_path, builtin_pm)
    traces = [open_trace(path, builtin_pm) for _ in range(3)]
    held = hold(traces, 2 * 30_000 * EVENT_BYTES)
    assert [isinstance(t, ResidentTrace) for t in held] == [True, True, False]
    assert held[2] is traces[2]
