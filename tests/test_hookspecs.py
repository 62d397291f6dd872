"""Every hook of the contract, exercised through a plugin manager with small test plugins.

Stage hooks: a plugin overrides the kernel default by returning a result and
declines by returning ``None`` (firstresult). Registration and tuning hooks:
every plugin's answer counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from migpolicy.context import build_context, copy_engines, declared_parameters
from migpolicy.costs import zero_costs
from migpolicy.engines import CopyEngine
from migpolicy.errors import ConfigError, InputError, PluginError
from migpolicy.folios import FOLIO_DTYPE, make_folios
from migpolicy.hardware.registry import find_profile, list_profiles
from migpolicy.hookspecs import hookimpl
from migpolicy.params import Parameter, resolve, suggest
from migpolicy.pipeline import IsolateResult, price_uniform, run_pipeline
from migpolicy.plugin_manager import call_hook, get_plugin_manager
from migpolicy.plugins.engine_dma import max_channels
from migpolicy.plugins.kernel_batch import plan_batches

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def pm():
    """The built-in plugins only (no entry points), for test plugins to join."""
    return get_plugin_manager(entry_points=False)


@pytest.fixture
def hw(pm):
    return find_profile(pm, None)


def _params(pm, **given: Any) -> dict[str, Any]:
    return resolve(declared_parameters(pm), given)


# -- placement policy ---------------------------------------------------------------

WINDOW_DTYPE = np.dtype([("page", np.int64), ("accesses", np.int64), ("node", np.int16),
                         ("tenant", np.int32)])


class HotPromoter:
    """Promotes pages on the slow node (1) with at least ``hot`` accesses, within capacity."""

    def __init__(self, hot: int) -> None:
        self.hot = hot

    @hookimpl
    def migpolicy_select_migrations(self, window, state):
        hot = window[(window["node"] == 1) & (window["accesses"] >= self.hot)]
        if len(hot) == 0:
            return None
        hot = hot[np.argsort(-hot["accesses"], kind="stable")][: state["free"][0]]
        folios = make_folios(4096, len(hot), src=1, dst=0)
        folios["tenant"] = hot["tenant"]
        return folios


class Recorder:
    """Declines (or answers ``answer``) and counts its calls."""

    def __init__(self, answer: Any = None) -> None:
        self.calls = 0
        self.answer = answer

    def __call__(self) -> Any:
        self.calls += 1
        return self.answer


class TryFirstDecliner:
    def __init__(self) -> None:
        self.seen = Recorder()

    @hookimpl(tryfirst=True)
    def migpolicy_select_migrations(self, window, state, params):
        return self.seen()


class TryLastFallback:
    def __init__(self) -> None:
        self.seen = Recorder(np.zeros(0, dtype=FOLIO_DTYPE))

    @hookimpl(trylast=True)
    def migpolicy_select_migrations(self):
        return self.seen()


def _window() -> np.ndarray:
    window = np.zeros(6, dtype=WINDOW_DTYPE)
    window["page"] = np.arange(6)
    window["accesses"] = [50, 3, 90, 70, 0, 60]
    window["node"] = [1, 1, 1, 0, 1, 1]
    window["tenant"] = [1, 1, 2, 2, 3, 3]
    return window


def test_select_migrations_first_answer_wins(pm, hw) -> None:
    first, last = TryFirstDecliner(), TryLastFallback()
    for name, plugin in (("first", first), ("policy", HotPromoter(hot=40)), ("last", last)):
        pm.register(plugin, name=name)
    state = {"free": {0: 2, 1: 100}}
    params = _params(pm)
    requests = call_hook(pm, "migpolicy_select_migrations", window=_window(), state=state,
                         params=params)
    assert (first.seen.calls, last.seen.calls) == (1, 0)
    assert requests.dtype == FOLIO_DTYPE
    assert requests["tenant"].tolist() == [2, 3]  # the two hottest slow pages fit
    assert set(requests["src"]) == {1} and set(requests["dst"]) == {0}
    report = run_pipeline(pm, requests, hw, params)
    assert report.folios == 2 and report.bytes == 2 * 4096
    assert set(report.accounting) == {"0"}


def test_select_migrations_falls_through_when_policies_decline(pm) -> None:
    last = TryLastFallback()
    pm.register(HotPromoter(hot=1000), name="policy")
    pm.register(last, name="last")
    requests = call_hook(pm, "migpolicy_select_migrations", window=_window(),
                         state={"free": {0: 2}}, params=_params(pm))
    assert last.seen.calls == 1 and len(requests) == 0


def test_select_migrations_without_a_policy_is_none(pm) -> None:
    assert call_hook(pm, "migpolicy_select_migrations", window=_window(), state={},
                     params=_params(pm)) is None


# -- stage hooks: override by answering, decline with None --------------------------------


class FrozenCgroup:
    """Isolation fails for every folio of tenant 7 (its cgroup is frozen)."""

    @hookimpl
    def migpolicy_isolate(self, folios, hw):
        costs = zero_costs(len(folios))
        costs["wall_s"] = costs["cpu_s"] = 1e-6
        costs["folios"] = 1
        frozen = folios["tenant"] == 7
        costs["failures"] = frozen
        return IsolateResult(costs=costs, isolated=~frozen)


class QuadBatches:
    """Batches of four folios, each copied by mt with three threads."""

    @hookimpl
    def migpolicy_batch(self, folios, hw):
        return plan_batches(folios, hw, ("mt",), 0, 3, 4)


class FixedRemap:
    @hookimpl
    def migpolicy_remap(self, batches):
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = rows["cpu_s"] = 2e-6
        return rows


class CpuOverride:
    """Claims the cpu engine's batches before the built-in does, or declines them all."""

    def __init__(self, claim: bool) -> None:
        self.claim = claim

    @hookimpl(tryfirst=True)
    def migpolicy_copy(self, batches, engine):
        if not self.claim or engine != "cpu":
            return None
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = rows["cpu_s"] = 5e-6
        rows["bytes"], rows["folios"] = batches.nbytes, batches.nfolios
        return rows


class RootPays:
    """Charges everything to the root cgroup."""

    @hookimpl(tryfirst=True)
    def migpolicy_account(self, owned):
        return {"root": {"cpu_s": sum(t.cpu_s for t in owned.values()), "wall_s": 0.0,
                         "engine_s": 0.0}}


def _mixed_folios() -> np.ndarray:
    folios = make_folios(65536, 10)
    folios["tenant"][:3] = 7
    return folios


def test_isolate_override_fails_folios(pm, hw) -> None:
    pm.register(FrozenCgroup(), name="frozen")
    report = run_pipeline(pm, _mixed_folios(), hw, _params(pm))
    assert report.stages["isolate"].failures == 3
    assert report.stages["isolate"].wall_s == pytest.approx(10e-6)
    assert report.folios == 7 and report.requested_folios == 10


def test_batch_override_chooses_engine_and_workers(pm, hw) -> None:
    pm.register(QuadBatches(), name="quads")
    report = run_pipeline(pm, _mixed_folios(), hw, _params(pm, engine="cpu"))
    assert list(report.engines) == ["mt"] and report.engine_workers == {"mt": [3]}
    assert report.stages["batch"].wall_s == pytest.approx(3 * hw.p("stages.batch.batch_ns") * 1e-9)


def test_copy_override_and_decline(pm, hw) -> None:
    params = _params(pm)
    builtin = run_pipeline(pm, _mixed_folios(), hw, params)
    pm.register(CpuOverride(claim=False), name="decliner")
    declined = run_pipeline(pm, _mixed_folios(), hw, params)
    assert declined.stages["copy"] == builtin.stages["copy"]
    pm.register(CpuOverride(claim=True), name="claimer")
    claimed = run_pipeline(pm, _mixed_folios(), hw, params)
    assert claimed.stages["copy"].wall_s == pytest.approx(5e-6)
    assert claimed.stages["copy"].bytes == builtin.stages["copy"].bytes


def test_remap_override(pm, hw) -> None:
    pm.register(FixedRemap(), name="remap")
    report = price_uniform(pm, 4096, 1030, hw, _params(pm))
    assert report.stages["remap"].wall_s == pytest.approx(3 * 2e-6)  # batches 512, 512, 6


def test_account_override(pm, hw) -> None:
    params = _params(pm, **{"account.policy": "split"})
    split = run_pipeline(pm, _mixed_folios(), hw, params)
    assert set(split.accounting) == {"0", "7"}
    pm.register(RootPays(), name="root")
    report = run_pipeline(pm, _mixed_folios(), hw, params)
    assert set(report.accounting) == {"root"}
    total_cpu = sum(stage.cpu_s for stage in report.stages.values())
    assert report.accounting["root"]["cpu_s"] == pytest.approx(total_cpu)


# -- registration hooks ------------------------------------------------------------------


class KnobPlugin:
    """Declares one parameter and searches it with a bound from the hardware."""

    PARAMETERS = (Parameter("test.knob", 4, "int", "a knob", low=1, high=64),
                  Parameter("test.mode", "a", "choice", "a mode", choices=("a", "b"),
                        tunable=False))

    @hookimpl
    def migpolicy_parameters(self):
        return self.PARAMETERS

    @hookimpl
    def migpolicy_search_space(self, trial, hw):
        return suggest(trial, self.PARAMETERS, {"test.knob": (1, len(hw.nodes))})


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


def test_search_space_with_a_real_trial(pm) -> None:
    pm.register(KnobPlugin(), name="knob")
    declared = declared_parameters(pm)
    for hw in list_profiles(pm).values():
        trial = optuna.create_study().ask()
        answers = call_hook(pm, "migpolicy_search_space", trial=trial, hw=hw)
        keys = [key for answer in answers for key in answer]
        assert len(keys) == len(set(keys)), f"{hw.name}: two plugins search one parameter"
        space = {key: value for answer in answers for key, value in answer.items()}
        assert space == trial.params
        assert 1 <= space["test.knob"] <= len(hw.nodes) and "test.mode" not in space
        assert {"batch.max_folios", "mt.placement", "dma.channels"} <= set(space)
        assert space["dma.channels"] <= max(1, max_channels(hw))
        resolve(declared, space, f"search space on {hw.name}")


def test_search_space_drives_a_study(pm, hw) -> None:
    def objective(trial: optuna.Trial) -> float:
        answers = call_hook(pm, "migpolicy_search_space", trial=trial, hw=hw)
        given = {key: value for answer in answers for key, value in answer.items()}
        params = _params(pm, engine="auto", **given)
        return price_uniform(pm, 65536, 4096, hw, params).total_s

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=6)
    assert len(study.trials) == 6 and 0 < study.best_value < float("inf")


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
    profiles = list_profiles(pm)
    assert {"test-box", "zen3-epyc-ptdma"} <= set(profiles)
    report = price_uniform(pm, 2 << 20, 512, profile, _params(pm))
    assert report.hw == "test-box" and report.throughput_gbps > 0


# -- trace readers ------------------------------------------------------------------------

EVENT_DTYPE = np.dtype([("t_ns", np.int64), ("page", np.int64), ("op", np.uint8),
                        ("tenant", np.int32)])


def read_tsv(path: str, chunk: int = 1000) -> Iterator[np.ndarray]:
    """A test trace format: ``t_ns page op tenant`` per line, in bounded chunks."""
    with open(path) as lines:
        rows: list[tuple[int, ...]] = []
        for line in lines:
            rows.append(tuple(int(v) for v in line.split()))
            if len(rows) == chunk:
                yield np.array(rows, dtype=EVENT_DTYPE)
                rows = []
        if rows:
            yield np.array(rows, dtype=EVENT_DTYPE)


class TsvReader:
    @hookimpl
    def migpolicy_trace_readers(self):
        return {"tsv": read_tsv}


class OtherReader:
    @hookimpl
    def migpolicy_trace_readers(self):
        return {"other": lambda path: iter(())}


def test_trace_readers_are_registered_and_read(pm, tmp_path: Path) -> None:
    assert call_hook(pm, "migpolicy_trace_readers") == []
    pm.register(TsvReader(), name="tsv")
    pm.register(OtherReader(), name="other")
    readers = {name: reader for answer in call_hook(pm, "migpolicy_trace_readers")
               for name, reader in answer.items()}
    assert set(readers) == {"tsv", "other"}
    trace = tmp_path / "accesses.tsv"
    trace.write_text("".join(f"{i * 10} {i % 97} {i % 2} {i % 3}\n" for i in range(2500)))
    chunks = list(readers[trace.suffix.lstrip(".")](str(trace)))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    events = np.concatenate(chunks)
    assert events.dtype == EVENT_DTYPE
    assert events["t_ns"][-1] == 24990 and events["page"][100] == 3


# -- copy engines ---------------------------------------------------------------------------


class SecondCpu:
    @hookimpl
    def migpolicy_copy_engines(self):
        return (CopyEngine("cpu", "a clash", "thread", lambda hw: 1, modelled_only="test"),)


def test_copy_engines_names_are_unique(pm) -> None:
    assert {"cpu", "mt", "dma", "dsa", "sdxi", "gpu"} == set(copy_engines(pm))
    pm.register(SecondCpu(), name="clash")
    with pytest.raises(PluginError, match="two plugins register the copy engine 'cpu'"):
        copy_engines(pm)
