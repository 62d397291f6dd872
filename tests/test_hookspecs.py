"""Every hook of the contract, called through migpolicy code with small test plugins.

Stage hooks are reached through :func:`run_pipeline` and :class:`Context`:
a plugin overrides a kernel default by answering and declines with ``None``;
what it answers must show up in the report as hand-computed here.
Registration hooks are reached through ``build_context``, the registries and
the profile registry; the tuning hook through ``build_space``. The trace
hooks are exercised through ``open_trace`` in ``tests/traces/test_trace_hooks.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from migpolicy.context import build_context
from migpolicy.contract import (
    BatchPlan,
    CopyEngine,
    IsolateResult,
    Parameter,
    PlacementPolicy,
    PlacementPolicyInfo,
    consecutive_batches,
    make_folios,
    zero_costs,
)
from migpolicy.errors import ConfigError, InputError, PluginError
from migpolicy.hardware.registry import find_profile, list_profiles
from migpolicy.hookspecs import hookimpl
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.registries import copy_engines
from migpolicy.tuning.space import build_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
US = 1e-6


@pytest.fixture
def pm():
    """The built-in plugins only (no entry points), for test plugins to join."""
    return get_plugin_manager(entry_points=False)


def _mixed_folios() -> np.ndarray:
    """Ten 64 KiB folios; the first three belong to tenant 7, the rest to tenant 0."""
    folios = make_folios(65536, 10)
    folios["tenant"][:3] = 7
    folios["page"] = np.arange(10)
    return folios


# -- stage hooks: override by answering, decline with None ----------------------------------------


class FrozenCgroup:
    """Isolation fails for every folio of tenant 7 (its cgroup is frozen); 1 µs per folio."""

    @hookimpl
    def migpolicy_isolate(self, folios):
        costs = zero_costs(len(folios))
        costs["wall_s"] = costs["cpu_s"] = US
        costs["folios"] = 1
        frozen = folios["tenant"] == 7
        costs["failures"] = frozen
        return IsolateResult(costs=costs, isolated=~frozen)


class QuadBatches:
    """Batches of four folios, each copied by mt with three threads; 1 µs of set-up each."""

    @hookimpl
    def migpolicy_batch(self, folios):
        bounds = consecutive_batches(folios, 4)
        nb = len(bounds) - 1
        overhead = zero_costs(nb)
        overhead["wall_s"] = overhead["cpu_s"] = US
        return BatchPlan(folios=folios, bounds=bounds, engines=("mt",),
                         engine=np.zeros(nb, dtype=np.int64), workers=np.full(nb, 3),
                         overhead=overhead)


class FixedRemap:
    @hookimpl
    def migpolicy_remap(self, batches):
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = rows["cpu_s"] = 2 * US
        return rows


class CpuOverride:
    """Claims the cpu engine's batches before the built-in does (5 µs each), or declines."""

    def __init__(self, claim: bool) -> None:
        self.claim = claim

    @hookimpl(tryfirst=True)
    def migpolicy_copy(self, batches, engine):
        if not self.claim or engine != "cpu":
            return None
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = rows["cpu_s"] = 5 * US
        rows["bytes"], rows["folios"] = batches.nbytes, batches.nfolios
        return rows


class RootPays:
    """Charges everything to the root cgroup."""

    @hookimpl(tryfirst=True)
    def migpolicy_account(self, owned):
        return {"root": {"cpu_s": sum(t.cpu_s for t in owned.values()), "wall_s": 0.0,
                         "engine_s": 0.0}}


def test_isolate_override_fails_folios(pm) -> None:
    pm.register(FrozenCgroup(), name="frozen")
    report = build_context(pm=pm).price(_mixed_folios())
    assert report.stages["isolate"].failures == 3
    assert report.stages["isolate"].wall_s == pytest.approx(10 * US)
    assert report.folios == 7 and report.requested_folios == 10
    assert report.results["status"].tolist() == [1, 1, 1] + [0] * 7
    assert report.bytes == 7 * 65536


def test_batch_override_chooses_engine_and_workers(pm) -> None:
    pm.register(QuadBatches(), name="quads")
    report = build_context(pm=pm, params={"engine": "cpu"}).price(_mixed_folios())
    assert list(report.engines) == ["mt"] and report.engine_workers == {"mt": [3]}
    assert report.stages["batch"].wall_s == pytest.approx(3 * US)  # batches of 4, 4, 2
    done = report.results["done_s"]
    assert done[0] == done[3] < done[4] == done[7] < done[8] == done[9]


class QuotingBatch:
    """Puts every batch on the engine whose quoted copy is fastest; records what it saw."""

    def __init__(self) -> None:
        self.engines: tuple[str, ...] = ()
        self.quotes: dict[str, np.ndarray] = {}

    @hookimpl(tryfirst=True)
    def migpolicy_batch(self, folios, hw, engines, quote):
        self.engines = tuple(sorted(engines))
        bounds = consecutive_batches(folios, 512)
        nb = len(bounds) - 1
        usable = [n for n in self.engines if engines[n].max_workers(hw) >= 1]
        for name in usable:
            one = BatchPlan(folios=folios, bounds=bounds, engines=(name,),
                            engine=np.zeros(nb, dtype=np.int64),
                            workers=np.ones(nb, dtype=np.int64), overhead=zero_costs(nb))
            self.quotes[name] = quote(one, name)
        walls = np.array([self.quotes[n]["wall_s"] for n in usable])
        return BatchPlan(folios=folios, bounds=bounds, engines=tuple(usable),
                         engine=walls.argmin(axis=0), workers=np.ones(nb, dtype=np.int64),
                         overhead=zero_costs(nb))


def test_batch_gets_every_engine_and_a_quote_matching_the_copy_stage(pm) -> None:
    spy = QuotingBatch()
    pm.register(spy, name="quoting")
    run = build_context(pm=pm, hw="gh200")
    report = run.price(make_folios(2 << 20, 1500, pmd_size=run.hw.pmd_size))
    assert spy.engines == tuple(sorted(copy_engines(pm)))
    (chosen,) = report.engines  # one size, one node pair: every batch picks the same engine
    quoted = spy.quotes[chosen]
    assert report.stages["copy"].wall_s == pytest.approx(quoted["wall_s"].sum(), rel=1e-12)
    assert all(report.engines[chosen].wall_s <= s["wall_s"].sum() * (1 + 1e-12)
               for s in spy.quotes.values())


def test_copy_override_and_decline(pm) -> None:
    run = build_context(pm=pm)
    builtin = run.price(_mixed_folios())
    pm.register(CpuOverride(claim=False), name="decliner")
    declined = build_context(pm=pm).price(_mixed_folios())
    assert declined.stages["copy"] == builtin.stages["copy"]
    pm.register(CpuOverride(claim=True), name="claimer")
    claimed = build_context(pm=pm).price(_mixed_folios())
    assert claimed.stages["copy"].wall_s == pytest.approx(5 * US)  # one batch of ten
    assert claimed.stages["copy"].bytes == builtin.stages["copy"].bytes


class CountingCopy:
    """A copy engine that loads an expensive model once per run context, into ``cache``."""

    def __init__(self) -> None:
        self.loads = 0

    @hookimpl
    def migpolicy_copy_engines(self):
        return (CopyEngine("counted", "loads a model once", "thread", lambda hw: 1,
                           modelled_only="test engine"),)

    @hookimpl
    def migpolicy_copy(self, batches, engine, cache):
        if engine != "counted":
            return None
        if "counted.model" not in cache:
            self.loads += 1
            cache["counted.model"] = 1e-9  # seconds per byte
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = rows["cpu_s"] = batches.nbytes * cache["counted.model"]
        rows["bytes"], rows["folios"] = batches.nbytes, batches.nfolios
        return rows


def test_copy_cache_lives_as_long_as_the_context(pm) -> None:
    engine = CountingCopy()
    pm.register(engine, name="counted")
    run = build_context(pm=pm, params={"engine": "counted"})
    for count in (1, 600, 2000):
        report = run.price_uniform(4096, count)
        assert report.stages["copy"].wall_s == pytest.approx(count * 4096e-9)
    run.price(_mixed_folios())
    assert engine.loads == 1
    build_context(pm=pm, params={"engine": "counted"}).price(_mixed_folios())
    assert engine.loads == 2  # a new context starts with an empty cache


def test_remap_override(pm) -> None:
    pm.register(FixedRemap(), name="remap")
    report = build_context(pm=pm).price_uniform(4096, 1030)
    assert report.stages["remap"].wall_s == pytest.approx(3 * 2 * US)  # batches 512, 512, 6


def test_account_override(pm) -> None:
    params = {"account.policy": "split"}
    split = build_context(pm=pm, params=params).price(_mixed_folios())
    assert set(split.accounting) == {"0", "7"}
    pm.register(RootPays(), name="root")
    report = build_context(pm=pm, params=params).price(_mixed_folios())
    assert set(report.accounting) == {"root"}
    total_cpu = sum(stage.cpu_s for stage in report.stages.values())
    assert report.accounting["root"]["cpu_s"] == pytest.approx(total_cpu)


def test_no_accounting_answer_is_a_plugin_error(pm) -> None:
    class Declines:
        @hookimpl(tryfirst=True)
        def migpolicy_account(self):
            return None

    run = build_context(pm=pm)
    pm.unregister(name="account")
    pm.register(Declines(), name="declines")
    with pytest.raises(PluginError, match=r"no accounting plugin answers for "
                                          r"account\.policy='initiator'"):
        run.price(_mixed_folios())


# -- registration hooks ---------------------------------------------------------------------------


class KnobPlugin:
    """Declares a tunable knob, a fixed mode, and narrows the knob to the profile's nodes."""

    PARAMETERS = (Parameter("test.knob", 4, "int", "a knob", low=1, high=64),
                  Parameter("test.mode", "a", "choice", "a mode", choices=("a", "b"),
                            tunable=False),
                  Parameter("test.gain", "x", "choice", "only for the mt engine",
                            choices=("x", "y"), when={"engine": ("mt",)}))

    @hookimpl
    def migpolicy_parameters(self):
        return self.PARAMETERS

    @hookimpl
    def migpolicy_search_space(self, space, hw):
        return {"test.knob": IntDistribution(1, len(hw.nodes))}


def test_parameters_are_resolved_and_checked(pm) -> None:
    pm.register(KnobPlugin(), name="knob")
    run = build_context(pm=pm, params={"test.knob": "3", "test.mode": "b"})
    assert run.params["test.knob"] == 3 and run.params["test.mode"] == "b"
    assert build_context(pm=pm).params["test.knob"] == 4
    with pytest.raises(InputError, match=r"parameter test.knob expects an integer in "
                                         r"\[1, 64\], got '65'"):
        build_context(pm=pm, params={"test.knob": "65"})
    with pytest.raises(InputError, match=r"unknown parameter 'test\.knb'; did you mean test\.knob"):
        build_context(pm=pm, params={"test.knb": 3})


def test_search_space_hook_narrows_the_declared_space(pm) -> None:
    pm.register(KnobPlugin(), name="knob")
    for hw in list_profiles(pm).values():
        space = build_space(pm, hw)
        assert space.distributions["test.knob"] == IntDistribution(1, len(hw.nodes))
        assert "test.mode" not in space  # not tunable
        assert space.distributions["test.gain"] == CategoricalDistribution(["x", "y"])


def test_a_fixed_parameter_leaves_the_space_even_when_a_plugin_narrows_it(pm) -> None:
    pm.register(KnobPlugin(), name="knob")
    space = build_space(pm, find_profile(pm, None), fixed={"test.knob": 2})
    assert "test.knob" not in space and space.fixed["test.knob"] == 2


def test_search_space_conditions_drive_a_study(pm) -> None:
    pm.register(KnobPlugin(), name="knob")
    hw = find_profile(pm, None)
    space = build_space(pm, hw)
    seen: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        values = space.suggest(trial)
        seen.append(values)
        run = build_context(pm=pm, hw=hw.name, params=values)
        return run.price_uniform(65536, 4096).total_s

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=12)
    assert 0 < study.best_value < float("inf")
    assert {v["engine"] == "mt" for v in seen} == {True, False}
    for values in seen:
        assert ("test.gain" in values) == (values["engine"] == "mt")
        assert 1 <= values["test.knob"] <= len(hw.nodes)


@pytest.mark.parametrize(
    ("answer", "message"),
    [({"test.knob": IntDistribution(1, 128)}, "widens 'test.knob'"),
     ({"test.mode": CategoricalDistribution(["a"])}, "narrows 'test.mode', which is not a "
                                                       "tunable parameter")],
)
def test_search_space_hook_may_not_widen_or_invent(pm, answer, message: str) -> None:
    class Bad:
        @hookimpl
        def migpolicy_search_space(self):
            return answer

    pm.register(KnobPlugin(), name="knob")
    pm.register(Bad(), name="bad")
    with pytest.raises(PluginError, match=message):
        build_space(pm, find_profile(pm, None))


class OnePolicy:
    """A promotion policy that remembers, across epochs, how often it was asked to propose."""

    class Counting(PlacementPolicy):
        def __init__(self, params, hw, seed=0) -> None:
            super().__init__(params, hw, seed)
            self.proposals = 0

    @hookimpl
    def migpolicy_placement_policies(self):
        return (PlacementPolicyInfo(name="counting", summary="counts", factory=self.Counting),)


def test_placement_policies_are_registered_and_built_per_replay(pm) -> None:
    pm.register(OnePolicy(), name="one")
    run = build_context(pm=pm, params={"placement": "counting"})
    (first,) = run.placement_policies(seed=1)
    (second,) = run.placement_policies(seed=2)
    assert isinstance(first, OnePolicy.Counting) and first is not second
    assert (first.seed, second.seed) == (1, 2) and first.params["placement"] == "counting"
    assert set(build_space(pm, run.hw).distributions["placement"].choices) == {
        "counting", "none", "numab", "hist", "damos"}


def _write_profile(pm, path: Path, name: str) -> Path:
    find_profile(pm, None).renamed(name, "a test machine").write(path)
    return path


class ProfilePlugin:
    def __init__(self, *paths: Path) -> None:
        self.paths = [str(p) for p in paths]

    @hookimpl
    def migpolicy_hardware_profiles(self):
        return self.paths


def test_hardware_profiles_registers_files(pm, tmp_path: Path) -> None:
    path = _write_profile(pm, tmp_path / "test-box.yaml", "test-box")
    with pytest.raises(ConfigError, match="unknown hardware profile"):
        find_profile(pm, "test-box")
    pm.register(ProfilePlugin(path), name="boxes")
    profile = find_profile(pm, "test-box")
    assert profile.name == "test-box" and profile.path == path
    assert profile.description == "a test machine"
    assert {"test-box", "zen3-epyc-ptdma"} <= set(list_profiles(pm))
    run = build_context(pm=pm, hw="test-box")
    report = run.price_uniform(2 << 20, 512)
    default = build_context(pm=pm).price_uniform(2 << 20, 512)
    assert report.hw == "test-box" and report.total_s == pytest.approx(default.total_s)


class FlatEngine:
    @hookimpl
    def migpolicy_copy_engines(self):
        return (CopyEngine("flat", "one microsecond per folio", "thread", lambda hw: 1,
                           modelled_only="test engine"),)

    @hookimpl
    def migpolicy_copy(self, batches, engine):
        if engine != "flat":
            return None
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = rows["cpu_s"] = batches.nfolios * US
        rows["bytes"], rows["folios"] = batches.nbytes, batches.nfolios
        return rows


def test_copy_engines_registers_an_engine_build_context_accepts(pm) -> None:
    with pytest.raises(InputError, match=r"--engine flat: unknown copy engine \(known: auto, "
                                         r"cpu, dma, dsa, gpu, mt, sdxi\)"):
        build_context(pm=pm, params={"engine": "flat"})
    pm.register(FlatEngine(), name="flat")
    run = build_context(pm=pm, params={"engine": "flat"})
    assert run.engines["flat"].summary == "one microsecond per folio"
    assert run.price_uniform(4096, 1000).engines["flat"].wall_s == pytest.approx(1000 * US)
    with pytest.raises(InputError, match="--workers 2: engine flat allows only 1 thread"):
        build_context(pm=pm, params={"engine": "flat", "workers": 2})
