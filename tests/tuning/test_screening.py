"""The learned model that screens candidates: its encoding and its verdicts on a known function."""

from __future__ import annotations

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution

from migpolicy.hardware.registry import find_profile
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.tuning.screening import Screener, encode
from migpolicy.tuning.space import build_space

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture(scope="module")
def space():
    pm = get_plugin_manager(entry_points=False)
    return build_space(pm, find_profile(pm, "dram-cxl"), {})


def candidates(space, count: int, seed: int) -> list[dict]:
    """``count`` random candidates of the space, with only the parameters that apply."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(count):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_every_candidate_encodes_to_one_row_shape_within_bounds(space, seed):
    widths = {name: len(d.choices) if isinstance(d, CategoricalDistribution) else 1
              for name, d in space.distributions.items()}
    for params in candidates(space, 3, seed):
        row = encode(space, params)
        assert len(row) == sum(widths.values())
        assert ((row >= -1) & (row <= 1)).all()
        at = 0
        for name, width in widths.items():
            block = row[at:at + width]
            at += width
            if width > 1 or isinstance(space.distributions[name], CategoricalDistribution):
                assert block.sum() == (1 if name in params else 0)  # one-hot, or absent
            elif name not in params:
                assert block[0] == -1  # does not apply


def test_the_forest_screens_what_the_known_function_makes_poor(space):
    """Objective: 10 when nothing migrates (placement none), else 1 + batch size / 512.
    After 30 examples the model must skip a new none candidate and keep a cheap hist one."""
    def f(p):
        return 10.0 if p["placement"] == "none" else 1.0 + p.get("batch.max_folios", 512) / 512

    train = candidates(space, 30, seed=1)
    screener = Screener(space, min_trials=8)
    assert screener.fit(train, [[f(p)] for p in train])
    fresh = candidates(space, 200, seed=2)
    none = next(p for p in fresh if p["placement"] == "none")
    good = next(p for p in fresh
                if p["placement"] == "hist" and p.get("batch.max_folios", 512) < 64)
    assert screener.screens(none)[0]
    assert not screener.screens(good)[0]
    assert screener.screens(good)[1][0] < 5


def test_too_few_examples_screen_nothing(space):
    train = candidates(space, 5, seed=3)
    screener = Screener(space, min_trials=8)
    assert not screener.fit(train, [[1.0]] * 5)


def test_two_objectives_screen_only_what_a_replayed_point_dominates(space):
    """(app, cpu): none is (10, 0) and others (1, 1): nothing dominates none's zero CPU,
    so even a confident model must keep it; a candidate predicted (10, 1) is dominated."""
    train = candidates(space, 40, seed=4)
    values = [[10.0, 0.0] if p["placement"] == "none" else [1.0, 1.0] for p in train]
    screener = Screener(space, min_trials=8)
    screener.fit(train, values)
    none = next(p for p in candidates(space, 200, seed=5) if p["placement"] == "none")
    assert not screener.screens(none)[0]

