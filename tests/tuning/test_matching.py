"""Matching a running replay to a finished trial it has tied at every checkpoint so far."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from migpolicy.tuning.matching import CHECKPOINTS_ATTR, Matched, TwinWatch, match_after


def finished(number: int, points, outcome: str = "full"):
    trial = create_trial(state=TrialState.COMPLETE, value=float(number), params={"x": number},
                         distributions={"x": IntDistribution(0, 1000)},
                         user_attrs={"outcome": outcome, CHECKPOINTS_ATTR: points})
    trial.number = number
    return trial


def test_match_after_five_eighths_and_never_at_the_end():
    assert match_after(8) == 5
    assert match_after(16) == 10
    assert match_after(4) == 3
    assert match_after(3) == 2
    assert match_after(2) is None  # the tie would be known at the end only: nothing to save
    assert match_after(1) is None
    assert match_after(0) is None


def test_a_tie_through_five_eighths_names_the_twin():
    points = [[float(i), i / 10] for i in range(1, 9)]
    watch = TwinWatch([finished(3, points)], steps=8)
    assert [watch.add(*p) for p in points[:4]] == [None] * 4
    assert watch.add(*points[4]).number == 3


def test_one_differing_figure_or_bit_breaks_the_tie():
    points = [[float(i), i / 10] for i in range(1, 9)]
    for wrong in ([1.0, 0.1000000000000001], [1.0000000000000002, 0.1]):
        watch = TwinWatch([finished(3, points)], steps=8)
        assert watch.add(*wrong) is None
        assert all(watch.add(*p) is None for p in points[1:7])


def test_only_measured_trials_of_the_same_checkpoints_are_twins():
    points = [[float(i), 0.0] for i in range(1, 9)]
    others = [finished(1, points, outcome="matched"), finished(2, points, outcome="cached"),
              finished(4, points[:7]),  # replayed with other --prefix-steps
              finished(5, 8), finished(6, "8 points")]  # attributes another tool wrote
    watch = TwinWatch(others, steps=8)
    assert all(watch.add(*p) is None for p in points[:7])


def test_the_earliest_of_several_twins():
    points = [[float(i), 0.5] for i in range(1, 9)]
    watch = TwinWatch([finished(7, points), finished(2, points[:5] + [[0.0, 0.0]] * 3)],
                      steps=8)
    assert [watch.add(*p) for p in points[:4]] == [None] * 4
    assert watch.add(*points[4]).number == 2


def test_matched_names_the_twin_and_the_events_replayed():
    twin = finished(5, [[1.0, 0.0], [2.0, 0.0]])
    match = Matched(twin, 1234.0)
    assert match.twin is twin and match.events == 1234.0
    assert "trial 5" in str(match)


#: checkpoint figures from a small alphabet, so ties and late divergences are common
_point = st.tuples(st.sampled_from([0.0, 1.0, 2.5]), st.sampled_from([0.0, 0.25]))


@given(steps=st.integers(1, 10), data=st.data())
def test_the_twin_is_the_earliest_full_trial_that_tied_every_checkpoint(steps, data):
    runs = data.draw(st.lists(st.lists(_point.map(list), min_size=steps, max_size=steps),
                              max_size=6))
    outcomes = data.draw(st.lists(st.sampled_from(["full", "matched"]), min_size=len(runs),
                                  max_size=len(runs)))
    trials = [finished(n, run, outcome) for n, (run, outcome)
              in enumerate(zip(runs, outcomes, strict=True))]
    candidate = data.draw(st.lists(_point.map(list), min_size=steps, max_size=steps))
    after = match_after(steps)
    watch = TwinWatch(trials, steps)
    for i, point in enumerate(candidate):
        twin = watch.add(*point)
        tied = [t.number for t in trials if t.user_attrs["outcome"] == "full"
                and t.user_attrs[CHECKPOINTS_ATTR][:i + 1] == candidate[:i + 1]]
        if after is None or i + 1 < after or not tied:
            assert twin is None
        else:
            assert twin.number == min(tied)
            break
    assert watch.seen == candidate[:len(watch.seen)]


@pytest.mark.parametrize("steps", [2, 8])
def test_no_finished_trials_no_twin(steps):
    watch = TwinWatch([], steps)
    assert all(watch.add(1.0, 0.0) is None for _ in range(steps))
