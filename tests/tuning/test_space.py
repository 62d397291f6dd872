"""The autotuner's search space assembled from the migpolicy_search_space hook."""

from __future__ import annotations

import optuna
import pytest

from migpolicy.context import build_context
from migpolicy.errors import PluginError
from migpolicy.hookspecs import hookimpl
from migpolicy.params import resolve
from migpolicy.tuning.space import suggest_policy

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_builtin_tunable_is_suggested_and_valid():
    run = build_context(hw="zen3-epyc-ptdma")
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    policy = suggest_policy(trial, run.pm, run.hw)
    assert {"mt.placement", "dma.channels", "batch.max_folios", "auto.threads"} <= set(policy)
    assert 1 <= policy["dma.channels"] <= 16
    assert 1 <= policy["auto.threads"] <= 64
    # Every suggestion is a valid parameter value.
    from migpolicy.context import declared_parameters

    resolve(declared_parameters(run.pm), policy)


def test_two_plugins_suggesting_one_name_is_an_error():
    run = build_context()

    class Clash:
        @hookimpl
        def migpolicy_search_space(self, trial):
            return {"mt.placement": "fill"}

    run.pm.register(Clash(), name="clash")
    trial = optuna.create_study().ask()
    with pytest.raises(PluginError, match=r"mt\.placement"):
        suggest_policy(trial, run.pm, run.hw)
