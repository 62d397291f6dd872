"""The learned_copy plugin: a learned profile's copies are priced by its model, nothing else."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from migpolicy.context import build_context
from migpolicy.errors import ConfigError, PluginError
from migpolicy.folios import make_folios
from migpolicy.hardware import learned as learned_module
from migpolicy.hardware.learned import profile_model, save_model, train, training_set
from migpolicy.hardware.predict import pipeline_row_pricer
from migpolicy.hardware.tables import read_table, shipped_table
from migpolicy.plugin_manager import get_plugin_manager, plugin_infos


@pytest.fixture(scope="module")
def zen3():
    return build_context(hw="zen3-epyc-ptdma")


@pytest.fixture(scope="module")
def learned_profile(zen3, tmp_path_factory):
    """zen3-epyc-ptdma with a model trained on table 1a/1b (mt and dma), written to disk."""
    folder = tmp_path_factory.mktemp("learned")
    rows = read_table(shipped_table("1ab"), zen3.engines)
    price = pipeline_row_pricer(zen3.pm, zen3.params)
    model = train(training_set(price, zen3.hw, rows, zen3.params, ["1ab"]))
    save_model(model, folder / "zen3-learned.skops")
    profile = replace(zen3.hw.renamed("zen3-learned"), cost_model="learned",
                      learned_model="zen3-learned.skops", path=folder / "zen3-learned.yaml")
    profile.write(profile.path)
    return profile, model


def context(hw, engine: str, workers: int | None = None, **params):
    """A run context on ``hw`` (a profile) with ``engine`` fixed at ``workers``."""
    given = {**params, "engine": engine}
    if workers is not None:
        given["workers"] = workers
    return build_context(hw=str(hw.path) if hw.path else hw.name, params=given)


def price(hw, engine: str, workers: int, folio: int = 64 << 10, count: int = 1000):
    return context(hw, engine, workers).price_uniform(folio, count)


def test_a_learned_profile_prices_copies_with_its_model(zen3, learned_profile) -> None:
    hw, model = learned_profile
    analytic, learned = price(zen3.hw, "mt", 4), price(hw, "mt", 4)
    # 1000 folios: one batch of 512 and one of 488
    expected = model.copy_seconds("mt", np.array([65536.0] * 2), np.array([512.0, 488.0]),
                                  np.array([4, 4])).sum()
    assert learned.stages["copy"].wall_s == pytest.approx(expected, rel=1e-9)
    assert learned.stages["copy"].wall_s != pytest.approx(analytic.stages["copy"].wall_s)
    for stage in ("isolate", "batch", "remap"):
        assert learned.stages[stage] == analytic.stages[stage]
    # one batch: the analytic split of the time, scaled to the learned time
    analytic = price(zen3.hw, "mt", 4, count=512)
    learned = price(hw, "mt", 4, count=512)
    ratio = learned.stages["copy"].wall_s / analytic.stages["copy"].wall_s
    for column in ("cpu_s", "worker_s"):
        assert getattr(learned.stages["copy"], column) == pytest.approx(
            getattr(analytic.stages["copy"], column) * ratio, rel=1e-9)


def test_engines_the_model_never_saw_stay_analytic(zen3, learned_profile) -> None:
    hw, model = learned_profile
    assert "cpu" not in model.engines
    assert price(hw, "cpu", 1).stages == price(zen3.hw, "cpu", 1).stages


def test_an_analytic_profile_is_left_alone(zen3, learned_profile) -> None:
    hw, _ = learned_profile
    analytic_copy = replace(hw, cost_model="analytic", path=hw.path.with_name("analytic.yaml"))
    analytic_copy.write(analytic_copy.path)
    assert price(analytic_copy, "dma", 8).stages == price(zen3.hw, "dma", 8).stages


def test_the_model_is_loaded_once_per_context(learned_profile, monkeypatch) -> None:
    hw, _ = learned_profile
    loads = []
    real = learned_module.load_model

    def counting(path):
        loads.append(path)
        return real(path)

    monkeypatch.setattr(learned_module, "load_model", counting)
    ctx = context(hw, "mt", 4)
    first = ctx.price(make_folios(64 << 10, 100))
    for count in (1, 7, 512, 2000):
        ctx.price(make_folios(64 << 10, count))
        ctx.price_uniform(2 << 20, count)
    auto = context(hw, "auto")
    for _ in range(3):
        auto.price(make_folios(2 << 20, 64))
    assert len(loads) == 2  # one per context, however often it prices
    assert profile_model(hw, ctx.cache) is profile_model(hw, ctx.cache)
    assert len(loads) == 2
    # and the file is not read again: the context prices on after it is gone
    model_file = (hw.path.parent / hw.learned_model)
    saved = model_file.read_bytes()
    model_file.unlink()
    try:
        again = ctx.price(make_folios(64 << 10, 100))
        assert again.stages["copy"] == first.stages["copy"]
        with pytest.raises(PluginError, match=r"zen3-learned\.skops"):
            context(hw, "mt", 4).price(make_folios(64 << 10, 100))
    finally:
        model_file.write_bytes(saved)


def test_a_missing_model_is_one_clear_error(learned_profile, run_cli) -> None:
    hw, _ = learned_profile
    broken = replace(hw, learned_model="nowhere.skops", path=hw.path.with_name("broken.yaml"))
    broken.write(broken.path)
    with pytest.raises(ConfigError, match=r"nowhere\.skops\.json: cannot read"):
        profile_model(broken, {})
    with pytest.raises(PluginError, match=r"learned_copy.*nowhere\.skops\.json: cannot read"):
        price(broken, "mt", 2)
    code, out, err = run_cli("move", "--hw", broken.path, "--engine", "mt", "--json")
    assert code != 0 and out == ""
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "nowhere.skops.json" in errors[0], err
    assert "Traceback" not in err


def test_auto_chooses_by_the_learned_price(zen3, learned_profile) -> None:
    hw, _ = learned_profile
    folios = make_folios(64 << 10, 512)
    report = context(hw, "auto", **{"mt.threads": 8, "dma.channels": 16}).price(folios)
    fixed = {}
    # the gpu is left out: it serves no pair of the two sockets' DRAM nodes
    for engine, counts in (("cpu", [1]), ("mt", [1, 2, 4, 8]), ("dma", [1, 2, 4, 8, 16])):
        for w in counts:
            fixed[engine, w] = context(hw, engine, w).price(folios).stages["copy"].wall_s
    assert report.stages["copy"].wall_s == pytest.approx(min(fixed.values()), rel=1e-9)
    # the learned price, not the analytic one, decided
    analytic = {key: context(zen3.hw, *key).price(folios).stages["copy"].wall_s
                for key in fixed}
    assert any(fixed[key] != pytest.approx(analytic[key]) for key in fixed)


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
