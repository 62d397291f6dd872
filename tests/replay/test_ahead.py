"""Counting epochs in a second thread: the same figures as one thread, errors and early stops
end the thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from migpolicy.context import build_context
from migpolicy.errors import InputError
from migpolicy.replay import ReplayOptions, replay_many
from migpolicy.replay.ahead import AHEAD_EVENTS, worth_a_thread
from migpolicy.traces import open_trace
from migpolicy.traces.events import EventColumns
from tests.replay.conftest import write_generated


def _contexts(pm):
    return [build_context(pm=pm, hw="dram-cxl", params={"placement": promotion,
                                                         "placement.demotion": "watermark"})
            for promotion in ("numab", "hist", "damos")]


def _counting_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "migpolicy-epochs"]


class _Rewritten:
    """A trace whose chunks pass through ``change(index, chunk)`` as they are read."""

    def __init__(self, trace, change):
        self.trace, self.meta, self.name = trace, trace.meta, "rewritten.mpt"
        self.page_numbers, self.first_touch = trace.page_numbers, trace.first_touch
        self.change = change

    def columns(self, events_per_chunk: int):
        for index, chunk in enumerate(self.trace.columns(events_per_chunk)):
            yield self.change(index, chunk)


def _retagged(index: int, chunk: EventColumns) -> EventColumns:
    """Every page changes tenant from chunk to chunk (1, 2, 1, ...)."""
    return EventColumns(chunk.t_ns, chunk.page, chunk.op,
                        np.full(len(chunk), 1 + index % 2, np.int32), chunk.weight)


def test_counting_ahead_gives_every_figure_of_one_thread(tmp_path, builtin_pm):
    """Several chunks (2^18 events each), every page changing tenant with each chunk: a
    request must be charged to the tenant a single thread would have seen when it priced it."""
    trace = _Rewritten(open_trace(write_generated(
        builtin_pm, tmp_path / "phases.mpt", "phases", 600_000, 3000, interval_ns=20),
        builtin_pm), _retagged)
    alone, ahead = (replay_many(trace, _contexts(builtin_pm), ReplayOptions(
        fast="20%", epoch_ns=20_000, window_epochs=1, ahead=ahead)) for ahead in (False, True))
    assert [r.as_dict() for r in ahead] == [r.as_dict() for r in alone]
    for a, b in zip(ahead, alone, strict=True):
        assert np.array_equal(a.placement.node_of, b.placement.node_of)
    assert all({"1", "2"} <= set(r["migration"]["tenants"]) for r in alone)
    assert not _counting_threads()


class _Stop(Exception):
    pass


def test_a_replay_stopped_midway_ends_its_counting_thread(phases_trace, builtin_pm):
    """A tuner's pruned trial stops the replay from a checkpoint: the thread stops with it."""
    trace = open_trace(phases_trace, builtin_pm)

    def stop(done, _):
        raise _Stop(done)

    with pytest.raises(_Stop):
        replay_many(trace, _contexts(builtin_pm)[:1], ReplayOptions(
            checkpoints=4, on_checkpoint=stop, bounds=False, ahead=True))
    assert not _counting_threads()


def _broken(index: int, chunk: EventColumns) -> EventColumns:
    """The third chunk cannot be read."""
    if index == 2:
        raise InputError("rewritten.mpt: corrupt or truncated after event 524288")
    return chunk


def test_an_unreadable_chunk_is_raised_in_the_replay(phases_trace, builtin_pm):
    trace = _Rewritten(open_trace(phases_trace, builtin_pm), _broken)
    with pytest.raises(InputError, match=r"rewritten.mpt: corrupt or truncated"):
        replay_many(trace, _contexts(builtin_pm)[:1], ReplayOptions(ahead=True))
    assert not _counting_threads()


def test_only_long_traces_on_more_than_one_cpu_get_a_thread(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1})
    assert worth_a_thread(AHEAD_EVENTS) and worth_a_thread(None)
    assert not worth_a_thread(AHEAD_EVENTS - 1)
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0})
    assert not worth_a_thread(10 * AHEAD_EVENTS)
