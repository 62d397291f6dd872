"""The copy-engine conformance suite: invariants every ``migpolicy_copy`` plugin must keep.

A plugin gets the whole suite by subclassing :class:`CopyEngineConformance`
in a test module and overriding the one fixture ``copy_plugin``::

    import pytest
    from migpolicy.testing import CopyEngineConformance

    class TestMyEngine(CopyEngineConformance):
        @pytest.fixture
        def copy_plugin(self):
            return "mypkg.myengine"

The suite checks every engine the plugin declares through
``migpolicy_copy_engines``, on every shipped hardware profile (and any the
plugin registers) whose ``max_workers`` is at least one: cost rows of the right
type and shape, finite non-negative times, independence of batches,
monotonicity in bytes, declining other engines' batches, pricing through the
real pipeline, and parameters that agree with the search space.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migpolicy.context import build_context
from migpolicy.costs import COST_DTYPE, CostTotals, zero_costs
from migpolicy.engines import CopyEngine
from migpolicy.folios import FOLIO_DTYPE, PMD_MAPPED, BatchPlan, consecutive_batches
from migpolicy.hardware.profile import Profile
from migpolicy.hardware.registry import list_profiles
from migpolicy.params import resolve
from migpolicy.pipeline import run_pipeline
from migpolicy.plugin_manager import call_hook, get_plugin_manager
from migpolicy.registries import copy_engines, declared_parameters
from migpolicy.tuning.space import build_space

__all__ = ["CopyEngineConformance", "EngineUnderTest"]

#: The most workers the ``workers`` parameter allows; a larger ``max_workers`` is not sane.
MAX_SANE_WORKERS = 1024
#: Folio sizes the suite prices: 4 KiB base pages up to 2 MiB THPs.
FOLIO_SIZES = tuple(4096 << k for k in range(10))
TIME_FIELDS = ("wall_s", "cpu_s", "engine_s", "worker_s")
#: Relative tolerance for comparing prices computed in different batch groupings.
RTOL = 1e-9


@dataclass(frozen=True, repr=False)
class EngineUnderTest:
    """The plugin under test, loaded the way ``-p MODULE`` loads it, and what it declares."""

    pm: pluggy.PluginManager
    plugin: ModuleType
    engines: tuple[CopyEngine, ...]
    profiles: tuple[Profile, ...]

    def __repr__(self) -> str:
        engines = ", ".join(engine.name for engine in self.engines)
        return f"<{self.plugin.__name__}: engines {engines}>"

    def supported(self, engine: CopyEngine) -> list[Profile]:
        """The profiles on which ``engine`` has at least one worker."""
        return [hw for hw in self.profiles if engine.max_workers(hw) >= 1]

    def cases(self) -> list[tuple[CopyEngine, Profile]]:
        """Every (engine, profile) pair the engine supports."""
        return [(engine, hw) for engine in self.engines for hw in self.supported(engine)]

    def params(self, workers: int | None = None, **given: Any) -> dict[str, Any]:
        """Every declared parameter at its default, with ``given`` over it.

        ``workers`` sets the worker parameter of the engine named ``engine``.
        """
        if workers is not None:
            engine = copy_engines(self.pm)[given["engine"]]
            if engine.workers_param:
                given[engine.workers_param] = workers
        return resolve(declared_parameters(self.pm), given)

    def own(self, hook: str, **kwargs: Any) -> Any:
        """Call the plugin's own implementation of ``hook`` (not the whole hook chain).

        Like pluggy, passes only the arguments the implementation accepts.
        """
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            if impl.plugin is self.plugin:
                return impl.function(**{name: kwargs[name] for name in impl.argnames})
        raise AssertionError(f"plugin {self.plugin.__name__} does not implement {hook}")

    def implements(self, hook: str) -> bool:
        """Whether the plugin implements ``hook``."""
        return any(impl.plugin is self.plugin
                   for impl in getattr(self.pm.hook, hook).get_hookimpls())

    def price(self, plan: BatchPlan, engine: str, hw: Profile, **given: Any) -> np.ndarray:
        """Price ``plan`` through the copy hook, as the pipeline does."""
        return call_hook(self.pm, "migpolicy_copy", batches=plan, engine=engine, hw=hw,
                         params=self.params(**given), cache={})


def folios_of(hw: Profile, sizes: np.ndarray | list[int], *, src: int = 0,
              dst: int | None = None, pmd: bool = True) -> np.ndarray:
    """Folios of the given sizes; those of the profile's PMD size are PMD-mapped if ``pmd``."""
    folios = np.zeros(len(sizes), dtype=FOLIO_DTYPE)
    folios["size"] = sizes
    folios["src"] = src
    folios["dst"] = (1 if 1 in hw.nodes else 0) if dst is None else dst
    folios["mapcount"] = 1
    if pmd:
        folios["flags"][folios["size"] == hw.pmd_size] = PMD_MAPPED
    return folios


def plan_of(hw: Profile, folios: np.ndarray, engine: str, workers: Any,
            max_folios: int = 512) -> BatchPlan:
    """Consecutive batches of at most ``max_folios``, all for ``engine``, with no overhead."""
    bounds = consecutive_batches(folios, max_folios)
    nb = len(bounds) - 1
    return BatchPlan(folios=folios, bounds=bounds, engines=(engine,),
                     engine=np.zeros(nb, dtype=np.int64),
                     workers=np.broadcast_to(np.asarray(workers, dtype=np.int64), nb).copy(),
                     overhead=zero_costs(nb))


def worker_counts(engine: CopyEngine, hw: Profile) -> list[int]:
    """One worker, a middle count and the most the engine allows on ``hw``."""
    most = engine.max_workers(hw)
    return sorted({1, max(1, most // 2), most})


def assert_valid_rows(rows: Any, plan: BatchPlan, where: str) -> None:
    """The copy hook's answer is one sane COST_DTYPE row per batch of ``plan``."""
    assert isinstance(rows, np.ndarray), f"{where}: returned {type(rows).__name__}"
    assert rows.dtype == COST_DTYPE, f"{where}: dtype {rows.dtype} is not COST_DTYPE"
    assert rows.shape == (plan.n_batches,), f"{where}: {rows.shape} rows, {plan.n_batches} batches"
    np.testing.assert_array_equal(rows["bytes"], plan.nbytes, err_msg=f"{where}: bytes")
    np.testing.assert_array_equal(rows["folios"], plan.nfolios, err_msg=f"{where}: folios")
    for name in TIME_FIELDS:
        assert np.isfinite(rows[name]).all(), f"{where}: {name} not finite"
        assert (rows[name] >= 0).all(), f"{where}: negative {name}"
    assert (rows["wall_s"] > 0).all(), f"{where}: a non-empty batch took no time"
    assert (rows["failures"] >= 0).all() and (rows["retries"] >= 0).all(), where
    excess = rows["worker_s"] - rows["cpu_s"]
    assert (excess <= RTOL * np.abs(rows["cpu_s"])).all(), f"{where}: worker_s exceeds cpu_s"


def assert_same_rows(got: np.ndarray, expected: np.ndarray, where: str) -> None:
    """Two pricings of the same batches agree."""
    for name in COST_DTYPE.names:
        np.testing.assert_allclose(got[name], expected[name], rtol=RTOL, atol=0,
                                   err_msg=f"{where}: {name}")


class CopyEngineConformance:
    """Subclass in a test module and override :meth:`copy_plugin` to test a copy engine."""

    @pytest.fixture
    def copy_plugin(self) -> ModuleType | str:
        """Override: the plugin module under test, or its importable name."""
        pytest.fail("override the copy_plugin fixture: return the plugin module or its name")

    @pytest.fixture
    def under_test(self, copy_plugin: ModuleType | str, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> EngineUnderTest:
        """The plugin registered on a fresh plugin manager, with its engines and profiles."""
        monkeypatch.setenv("MIGPOLICY_PROFILE_DIR", str(tmp_path / "no-user-profiles"))
        module = (importlib.import_module(copy_plugin) if isinstance(copy_plugin, str)
                  else copy_plugin)
        pm = get_plugin_manager([module.__name__], entry_points=False)
        suite = EngineUnderTest(pm, module, (), tuple(list_profiles(pm).values()))
        assert suite.implements("migpolicy_copy_engines"), "the plugin declares no copy engine"
        assert suite.implements("migpolicy_copy"), "the plugin does not implement migpolicy_copy"
        engines = tuple(suite.own("migpolicy_copy_engines") or ())
        assert engines, "migpolicy_copy_engines returned no engine"
        return EngineUnderTest(pm, module, engines, suite.profiles)

    # -- registration ------------------------------------------------------------

    def test_registers_engines(self, under_test: EngineUnderTest) -> None:
        registered = copy_engines(under_test.pm)
        for engine in under_test.engines:
            assert isinstance(engine, CopyEngine)
            assert engine.name and engine.name == engine.name.strip() and " " not in engine.name
            assert engine.name != "auto", "auto is the per-batch selector, not an engine"
            assert engine.name in registered, f"{engine.name} missing from the engine registry"
            assert registered[engine.name].summary == engine.summary
            assert engine.summary.strip() and engine.worker_unit.strip()
            assert isinstance(engine.available(), bool)
            if engine.executor is None:
                assert engine.modelled_only.strip(), (
                    f"{engine.name}: an engine without an executor must say why (modelled_only)"
                )

    def test_max_workers_sane_on_every_profile(self, under_test: EngineUnderTest) -> None:
        for engine in under_test.engines:
            for hw in under_test.profiles:
                most = engine.max_workers(hw)
                assert isinstance(most, int | np.integer), f"{engine.name} on {hw.name}: {most!r}"
                assert 0 <= most <= MAX_SANE_WORKERS, f"{engine.name} on {hw.name}: {most}"
            assert under_test.supported(engine), f"{engine.name} runs on no shipped profile"

    # -- the copy hook -----------------------------------------------------------------

    def test_declines_other_engines(self, under_test: EngineUnderTest) -> None:
        mine = {engine.name for engine in under_test.engines}
        others = (set(copy_engines(under_test.pm)) - mine) | {"conformance-no-such-engine"}
        for engine, hw in under_test.cases():
            plan = plan_of(hw, folios_of(hw, [65536] * 8), engine.name, 1)
            for other in sorted(others):
                answer = under_test.own("migpolicy_copy", batches=plan, engine=other, hw=hw,
                                        params=under_test.params())
                assert answer is None, f"{engine.name} plugin priced engine {other!r}"

    def test_one_valid_row_per_batch(self, under_test: EngineUnderTest) -> None:
        sizes = np.resize(FOLIO_SIZES, 700)
        for engine, hw in under_test.cases():
            for workers in worker_counts(engine, hw):
                folios = folios_of(hw, sizes)
                before = folios.copy()
                plan = plan_of(hw, folios, engine.name, workers, max_folios=256)
                where = f"{engine.name} on {hw.name} with {workers} workers"
                assert_valid_rows(under_test.price(plan, engine.name, hw), plan, where)
                np.testing.assert_array_equal(folios, before, err_msg=f"{where}: input changed")

    def test_monotone_in_bytes(self, under_test: EngineUnderTest) -> None:
        for engine, hw in under_test.cases():
            for workers in worker_counts(engine, hw):
                rows = np.concatenate([
                    under_test.price(plan_of(hw, folios_of(hw, [size] * 64, pmd=False),
                                             engine.name, workers), engine.name, hw)
                    for size in FOLIO_SIZES
                ])
                for name in TIME_FIELDS:
                    steps = np.diff(rows[name])
                    assert (steps >= -RTOL * rows[name][1:]).all(), (
                        f"{engine.name} on {hw.name} with {workers} workers: {name} falls as "
                        f"64 folios grow from 4K to 2M: {rows[name].tolist()}"
                    )

    def test_identical_batches_cost_the_same(self, under_test: EngineUnderTest) -> None:
        sizes = [4096, 65536, 2 << 20, 16384] * 25
        for engine, hw in under_test.cases():
            workers = engine.max_workers(hw)
            one = under_test.price(plan_of(hw, folios_of(hw, sizes), engine.name, workers,
                                           max_folios=100), engine.name, hw)
            many = under_test.price(plan_of(hw, folios_of(hw, sizes * 7), engine.name, workers,
                                            max_folios=100), engine.name, hw)
            where = f"{engine.name} on {hw.name}"
            assert_same_rows(many, np.repeat(one, 7), where)
            total, single = CostTotals.of(many), CostTotals.of(one)
            assert math.isclose(total.wall_s, 7 * single.wall_s, rel_tol=RTOL), where
            assert math.isclose(total.cpu_s, 7 * single.cpu_s, rel_tol=RTOL), where

    def test_pipeline_end_to_end(self, under_test: EngineUnderTest) -> None:
        count = 1000  # one full batch of 512 and a remainder of 488
        for engine, hw in under_test.cases():
            workers = engine.max_workers(hw)
            run = build_context(pm=under_test.pm, hw=hw.name,
                                params={"engine": engine.name, "workers": workers})
            for size in (4096, 2 << 20):
                report = run.price_uniform(size, count)
                where = f"{engine.name} on {hw.name}, {count} folios of {size} bytes"
                assert report.hw == hw.name, where
                assert list(report.engines) == [engine.name], where
                assert report.engine_workers[engine.name] == [workers], where
                assert report.bytes == size * count and report.folios == count, where
                assert math.isfinite(report.throughput_gbps), where
                assert report.throughput_gbps > 0, where
                copy = report.stages["copy"]
                assert math.isclose(report.engines[engine.name].wall_s, copy.wall_s,
                                    rel_tol=RTOL), where

    # -- properties over random batch plans -------------------------------------------
    # Every subclass runs these inherited methods, which Hypothesis sees as
    # different executors of one test; the body depends only on the fixtures.

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.differing_executors])
    @given(data=st.data())
    def test_random_plans_priced_per_batch(self, under_test: EngineUnderTest,
                                           data: st.DataObject) -> None:
        engine, hw = data.draw(st.sampled_from(under_test.cases()), label="engine, profile")
        nodes = sorted(hw.nodes)
        src, dst = data.draw(st.sampled_from(nodes)), data.draw(st.sampled_from(nodes))
        count = data.draw(st.integers(1, 600), label="folios")
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        rng = np.random.default_rng(seed)
        folios = folios_of(hw, rng.choice(FOLIO_SIZES, count), src=src, dst=dst)
        cuts = np.sort(rng.choice(np.arange(1, count), min(count - 1, rng.integers(0, 12)),
                                  replace=False)) if count > 1 else np.zeros(0, dtype=np.int64)
        bounds = np.concatenate(([0], cuts, [count])).astype(np.int64)
        nb = len(bounds) - 1
        workers = rng.integers(1, engine.max_workers(hw) + 1, nb)
        plan = BatchPlan(folios=folios, bounds=bounds, engines=(engine.name,),
                         engine=np.zeros(nb, dtype=np.int64), workers=workers,
                         overhead=zero_costs(nb))
        rows = under_test.price(plan, engine.name, hw)
        where = f"{engine.name} on {hw.name}, {src}->{dst}, {nb} batches"
        assert_valid_rows(rows, plan, where)
        for i in range(nb):
            alone = plan.select(np.arange(nb) == i)
            assert_same_rows(rows[i:i + 1], under_test.price(alone, engine.name, hw),
                             f"{where}: batch {i} priced alone")

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.differing_executors])
    @given(data=st.data())
    def test_random_pipelines_add_up(self, under_test: EngineUnderTest,
                                     data: st.DataObject) -> None:
        engine, hw = data.draw(st.sampled_from(under_test.cases()), label="engine, profile")
        count = data.draw(st.integers(1, 600), label="folios")
        workers = data.draw(st.integers(1, engine.max_workers(hw)), label="workers")
        max_folios = data.draw(st.sampled_from([1, 7, 64, 512]), label="batch.max_folios")
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
        folios = folios_of(hw, rng.choice(FOLIO_SIZES, count))
        params = under_test.params(engine=engine.name, workers=workers,
                                   **{"batch.max_folios": max_folios})
        report = run_pipeline(under_test.pm, folios, hw, params)
        where = f"{engine.name} on {hw.name}, {count} folios, {workers} workers"
        stages = report.stages.values()
        for stage in stages:
            for name in TIME_FIELDS:
                value = getattr(stage, name)
                assert math.isfinite(value) and value >= 0, f"{where}: {name} = {value}"
        assert math.isclose(report.total_s, sum(s.wall_s for s in stages), rel_tol=RTOL)
        assert report.total_s > 0 and math.isfinite(report.throughput_gbps), where
        assert report.bytes == int(folios["size"].sum()) and report.folios == count, where
        copy = report.stages["copy"]
        assert math.isclose(report.engines[engine.name].cpu_s, copy.cpu_s, rel_tol=RTOL), where
        charged = sum(charge["cpu_s"] for charge in report.accounting.values())
        assert math.isclose(charged, sum(s.cpu_s for s in stages), rel_tol=1e-6), (
            f"{where}: accounting charges {charged} s of CPU, the stages cost "
            f"{sum(s.cpu_s for s in stages)} s"
        )

    # -- parameters --------------------------------------------------------------

    def test_parameters_are_in_the_search_space(self, under_test: EngineUnderTest) -> None:
        declared = (list(under_test.own("migpolicy_parameters"))
                    if under_test.implements("migpolicy_parameters") else [])
        everyone = [p.name for p in declared_parameters(under_test.pm)]
        for p in declared:
            assert everyone.count(p.name) == 1, f"parameter {p.name} is declared twice"
            assert p.coerce(p.default) == p.default, f"{p.name}: default {p.default!r} invalid"
        tunable = {p.name for p in declared if p.tunable}
        for hw in {hw.name: hw for _, hw in under_test.cases()}.values():
            space = build_space(under_test.pm, hw)
            missing = {name for name in tunable if name not in space and name not in space.fixed}
            assert not missing, f"{hw.name}: tunable {sorted(missing)} not in the search space"
