"""The learned_copy plugin: a learned profile's copies are priced by its model, nothing else."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from migpolicy.context import build_context
from migpolicy.errors import ConfigError, PluginError
from migpolicy.hardware.learned import save_model, train, training_set
from migpolicy.hardware.tables import read_table, shipped_table
from migpolicy.pipeline import price_uniform
from migpolicy.plugin_manager import get_plugin_manager, plugin_infos
from migpolicy.plugins import learned_copy


@pytest.fixture(scope="module")
def zen3():
    return build_context(hw="zen3-epyc-ptdma")


@pytest.fixture(scope="module")
def learned_profile(zen3, tmp_path_factory):
    """zen3-epyc-ptdma with a model trained on table 1a/1b (mt and dma), written to disk."""
    folder = tmp_path_factory.mktemp("learned")
    rows = read_table(shipped_table("1ab"), zen3.engines)
    model = train(training_set(zen3.pm, zen3.hw, rows, zen3.params, ["1ab"]))
    save_model(model, folder / "zen3-learned.skops")
    profile = replace(zen3.hw.renamed("zen3-learned"), cost_model="learned",
                      learned_model="zen3-learned.skops", path=folder / "zen3-learned.yaml",
                      _flat={})
    profile.write(profile.path)
    return profile, model


def price(ctx, hw, engine: str, workers: int, folio: int = 64 << 10, count: int = 1000):
    params = {**ctx.params, "engine": engine, "workers": workers}
    return price_uniform(ctx.pm, folio, count, hw, params)


def test_a_learned_profile_prices_copies_with_its_model(zen3, learned_profile) -> None:
    hw, model = learned_profile
    analytic, learned = price(zen3, zen3.hw, "mt", 4), price(zen3, hw, "mt", 4)
    # 1000 folios: one batch of 512 and one of 488
    expected = model.copy_seconds("mt", np.array([65536.0] * 2), np.array([512.0, 488.0]),
                                  np.array([4, 4])).sum()
    assert learned.stages["copy"].wall_s == pytest.approx(expected, rel=1e-9)
    assert learned.stages["copy"].wall_s != pytest.approx(analytic.stages["copy"].wall_s)
    for stage in ("isolate", "batch", "remap"):
        assert learned.stages[stage] == analytic.stages[stage]
    # one batch: the analytic split of the time, scaled to the learned time
    analytic = price(zen3, zen3.hw, "mt", 4, count=512)
    learned = price(zen3, hw, "mt", 4, count=512)
    ratio = learned.stages["copy"].wall_s / analytic.stages["copy"].wall_s
    for column in ("cpu_s", "worker_s"):
        assert getattr(learned.stages["copy"], column) == pytest.approx(
            getattr(analytic.stages["copy"], column) * ratio, rel=1e-9)


def test_engines_the_model_never_saw_stay_analytic(zen3, learned_profile) -> None:
    hw, model = learned_profile
    assert "cpu" not in model.engines
    assert price(zen3, hw, "cpu", 1).stages == price(zen3, zen3.hw, "cpu", 1).stages


def test_an_analytic_profile_is_left_alone(zen3, learned_profile) -> None:
    hw, _ = learned_profile
    analytic_copy = replace(hw, cost_model="analytic", _flat={})
    assert price(zen3, analytic_copy, "dma", 8).stages == price(zen3, zen3.hw, "dma", 8).stages


def test_models_are_loaded_once_per_file(learned_profile) -> None:
    hw, _ = learned_profile
    assert learned_copy.model_for(hw) is learned_copy.model_for(hw)


def test_a_missing_model_is_one_clear_error(zen3, learned_profile, tmp_path) -> None:
    hw, _ = learned_profile
    broken = replace(hw, learned_model="nowhere.skops", _flat={})
    with pytest.raises(ConfigError, match=r"nowhere\.skops\.json: cannot read"):
        learned_copy.model_for(broken)
    with pytest.raises(PluginError, match="learned_copy"):
        price(zen3, broken, "mt", 2)


def test_migpolicy_move_uses_the_learned_model(run_cli, learned_profile) -> None:
    hw, model = learned_profile
    code, out, err = run_cli("move", "--hw", hw.path, "--bytes", "1M", "--folio", "64K",
                             "--engine", "mt", "--workers", "4", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["cost_model"] == "learned"
    expected = model.copy_seconds("mt", np.array([65536.0]), np.array([16.0]), np.array([4]))
    assert report["engines_used"]["mt"]["wall_s"] == pytest.approx(expected[0], rel=1e-6)


def test_the_plugin_is_built_in_and_implements_only_the_copy_hook() -> None:
    infos = {i.name: i for i in plugin_infos(get_plugin_manager())}
    assert infos["learned_copy"].source == "builtin"
    assert infos["learned_copy"].hooks == ("migpolicy_copy",)
