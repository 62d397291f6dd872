"""The declarative search space: derived from the declared parameters, built without a trial."""

from __future__ import annotations

import importlib
import re
import sys
import textwrap

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from migpolicy.context import build_context, declared_parameters
from migpolicy.contract import CopyEngine, hookimpl, make_folios
from migpolicy.errors import PluginError
from migpolicy.params import resolve
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.tuning.space import build_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

PROFILES = ("zen3-epyc-ptdma", "gh200", "dram-cxl", "local")
MIB = 1 << 20
#: What each engine's worker parameter may reach: the profile's own count of that worker.
WORKER_LIMITS = {"mt.threads": "engines.mt.max_threads", "dma.channels": "engines.dma.channels",
                 "gpu.streams": "engines.gpu.streams"}


def space_for(hw: str = "zen3-epyc-ptdma", pm=None, fixed=None):
    ctx = build_context(pm=pm, hw=hw)
    return build_space(ctx.pm, ctx.hw, fixed), ctx


def values_of(dist) -> list:
    """Every value a distribution allows (its two ends for numbers)."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high]


@pytest.fixture
def no_gpu(profile_dir) -> str:
    def drop_gpu(text: str) -> str:
        return re.sub(r"^(\s+)gpu:\s*\n(?:\1\s+.*\n)+", "", text, count=1, flags=re.M)

    return str(profile_dir("zen3-epyc-ptdma", drop_gpu, filename="nogpu.yaml"))


# -- what is in the space ----------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_every_tunable_parameter_is_searched_or_fixed(profile: str) -> None:
    space, ctx = space_for(profile)
    tunable = {p.name for p in declared_parameters(ctx.pm) if p.tunable}
    assert set(space.distributions) | set(space.fixed) == tunable
    assert not set(space.distributions) & set(space.fixed)
    for name, dist in space.distributions.items():
        assert not dist.single(), name
        assert len(values_of(dist)) >= 2
    assert set(values_of(space.distributions["placement"])) == {"none", "numab", "hist",
                                                                "damos"}
    assert set(values_of(space.distributions["placement.demotion"])) == {"none", "watermark"}
    assert {"engine", "batch.max_folios", "mt.threads", "dma.channels", "auto.cpu_weight",
            "auto.async_cpu_weight"} <= set(space.distributions)
    non_tunable = {p.name for p in declared_parameters(ctx.pm) if not p.tunable}
    assert {"system.load", "gpu.pinned", "isolate.busy_retries"} <= non_tunable
    assert not non_tunable & (set(space.distributions) | set(space.fixed))


@pytest.mark.parametrize(("profile", "searched"), [
    ("zen3-epyc-ptdma", {"mt.placement", "mt.side"}),  # two sockets of 8 CCDs each
    ("gh200", set()),  # one Grace CPU node (one LLC domain) and GPU memory
    ("dram-cxl", set()),  # one CPU socket (one LLC domain) and a CPU-less CXL node
    ("local", set()),  # one node, one LLC domain
])
def test_thread_placement_is_searched_only_where_the_topology_has_a_choice(profile: str,
                                                                           searched) -> None:
    space, ctx = space_for(profile)
    assert {"mt.placement", "mt.side"} & set(space.distributions) == searched
    for name in {"mt.placement", "mt.side"} - searched:
        assert space.fixed[name] == ctx.params[name]  # the default


@pytest.mark.parametrize(("profile", "name"), [
    ("gh200", "mt.placement"), ("gh200", "mt.side"), ("dram-cxl", "mt.placement"),
    ("dram-cxl", "mt.side"),
    ("local", "mt.placement"), ("local", "mt.side")])
def test_a_parameter_left_out_of_the_space_changes_nothing(profile: str, name: str) -> None:
    """What the space fixes because it cannot matter must not change any priced figure."""
    space, ctx = space_for(profile)
    assert name in space.fixed
    choices = {p.name: p for p in declared_parameters(ctx.pm)}[name].choices
    folios = make_folios(2 * MIB, 64, dst=1 if 1 in ctx.hw.nodes else 0,
                         pmd_size=ctx.hw.pmd_size)
    for threads in sorted({2, int(ctx.hw.p("engines.mt.max_threads"))}):
        totals = {build_context(pm=ctx.pm, hw=profile,
                                params={"engine": "mt", "workers": threads, name: value}
                                ).price(folios).total_s for value in choices}
        assert len(totals) == 1, (threads, totals)


def test_one_gpu_stream_leaves_nothing_to_search() -> None:
    space, ctx = space_for("local")
    assert ctx.hw.p("engines.gpu.streams") == 1
    assert "gpu.streams" not in space and space.fixed["gpu.streams"] == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_worker_bounds_come_from_the_profile(profile: str) -> None:
    space, ctx = space_for(profile)
    for name, key in WORKER_LIMITS.items():
        top = int(ctx.hw.p(key))
        if top > 1:
            dist = space.distributions[name]
            assert isinstance(dist, IntDistribution)
            assert (dist.low, dist.high) == (1, top), name
        else:
            assert space.fixed[name] == 1


def test_published_thread_counts_bound_mt_threads() -> None:
    # EPYC 7003 socket: 8 CCDs x 4 cores x 2 threads; GH200's Grace: 72 cores
    assert space_for("zen3-epyc-ptdma")[0].distributions["mt.threads"].high == 64
    assert space_for("gh200")[0].distributions["mt.threads"].high == 72


def test_declared_ranges_and_log_scale_carry_over() -> None:
    space, _ = space_for()
    folios = space.distributions["batch.max_folios"]
    assert (folios.low, folios.high, folios.log) == (1, 4096, True)
    weight = space.distributions["auto.async_cpu_weight"]
    assert isinstance(weight, FloatDistribution) and weight.low == 0.0 and not weight.log
    assert set(space.distributions["mt.placement"].choices) == {"spread", "fill"}


def test_engine_choices_are_the_engines_the_profile_has(no_gpu) -> None:
    space, _ = space_for()
    assert set(space.distributions["engine"].choices) == {"cpu", "mt", "dma", "gpu", "auto"}
    without, _ = space_for(no_gpu)
    assert set(without.distributions["engine"].choices) == {"cpu", "mt", "dma", "auto"}
    assert "gpu.streams" not in without  # no gpu: no streams to choose


def test_a_registered_engine_becomes_a_choice() -> None:
    class Teleport:
        @hookimpl
        def migpolicy_copy_engines(self):
            return (CopyEngine(name="teleport", summary="test", worker_unit="lane",
                               max_workers=lambda hw: 1),
                    CopyEngine(name="absent", summary="no hardware here", worker_unit="lane",
                               max_workers=lambda hw: 0))

        @hookimpl
        def migpolicy_copy(self, engine):
            return None

    pm = get_plugin_manager()
    pm.register(Teleport(), name="teleport")
    space, _ = space_for(pm=pm)
    assert "teleport" in space.distributions["engine"].choices
    assert "absent" not in space.distributions["engine"].choices


# -- conditions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "expected"),
    [("cpu", {"cpu.store"}),
     ("mt", {"mt.threads", "mt.placement", "mt.side", "mt.store"}),
     ("dma", {"dma.channels"}),
     ("gpu", {"gpu.streams"}),
     ("auto", {"cpu.store", "mt.threads", "mt.placement", "mt.side", "mt.store",
               "dma.channels", "gpu.streams", "auto.cpu_weight", "auto.async_cpu_weight"})],
)
def test_engine_parameters_count_only_for_their_engine(engine: str, expected: set) -> None:
    space, _ = space_for()
    assert set(space.active({"engine": engine})) == {"engine", "batch.max_folios", "placement",
                                                     "placement.demotion", *expected}


def test_conditions_come_before_what_they_condition() -> None:
    space, _ = space_for()
    order = list(space.distributions)
    for name in order:
        for key in space.parameters[name].when:
            if key in space.distributions:
                assert order.index(key) < order.index(name), (key, name)


# -- fixed values ------------------------------------------------------------------------------


def test_fixed_values_leave_the_space() -> None:
    space, _ = space_for(fixed={"engine": "mt", "mt.threads": 4})
    assert "engine" not in space and "mt.threads" not in space
    assert space.fixed["engine"] == "mt" and space.fixed["mt.threads"] == 4
    assert set(space.active({})) == {"batch.max_folios", "mt.placement", "mt.side", "mt.store",
                                     "placement", "placement.demotion"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    for _ in range(5):
        trial = study.ask()
        suggested = space.suggest(trial)
        chosen = {suggested["placement"], suggested["placement.demotion"]}
        assert {k for k in suggested if k.split(".")[0] not in chosen} == {
            "batch.max_folios", "mt.placement", "mt.side", "mt.store", "placement",
            "placement.demotion"}
        study.tell(trial, 0.0)


# -- the narrowing hook ------------------------------------------------------------------------


def narrowing(answer):
    class Narrow:
        @hookimpl
        def migpolicy_search_space(self, space, hw):
            return answer(space, hw)

    pm = get_plugin_manager()
    pm.register(Narrow(), name="narrow")
    return pm


def test_a_narrowing_hook_applies() -> None:
    seen = {}

    def answer(space, hw):
        seen.update(space)
        return {"mt.threads": IntDistribution(2, 16),
                "engine": CategoricalDistribution(["mt", "auto"]),
                "mt.placement": CategoricalDistribution(["fill"])}

    space, ctx = space_for(pm=narrowing(answer))
    assert seen["mt.threads"] == IntDistribution(1, int(ctx.hw.p("engines.mt.max_threads")))
    assert space.distributions["mt.threads"] == IntDistribution(2, 16)
    assert space.distributions["engine"].choices == ("mt", "auto")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    for _ in range(10):
        values = space.suggest(study.ask())
        assert values["engine"] in ("mt", "auto") and 2 <= values["mt.threads"] <= 16
        assert values["mt.placement"] == "fill"


def test_a_hook_answering_nothing_leaves_the_space_alone() -> None:
    space, _ = space_for(pm=narrowing(lambda space, hw: None))
    assert space.distributions == space_for()[0].distributions


@pytest.mark.parametrize(
    ("name", "dist", "needle"),
    [("mt.threads", IntDistribution(1, 2000), "widens 'mt.threads'"),
     ("batch.max_folios", IntDistribution(1, 4096), "widens 'batch.max_folios'"),  # not log
     ("mt.placement", CategoricalDistribution(["spread", "zigzag"]), "widens 'mt.placement'"),
     ("auto.cpu_weight", IntDistribution(0, 1), "widens 'auto.cpu_weight'"),
     ("mt.threadz", IntDistribution(1, 2), "narrows 'mt.threadz', which is not")],
)
def test_a_widening_hook_is_a_plugin_error(name: str, dist, needle: str) -> None:
    with pytest.raises(PluginError, match=re.escape(needle)):
        space_for(pm=narrowing(lambda space, hw: {name: dist}))


def test_narrowing_a_fixed_parameter_leaves_it_fixed() -> None:
    """A narrowing plugin must not break a study that fixes what it narrows."""
    pm = narrowing(lambda space, hw: {"mt.threads": IntDistribution(1, 2),
                                      "gpu.streams": IntDistribution(1, 2)})
    space, _ = space_for(pm=pm, fixed={"mt.threads": 4})
    assert "mt.threads" not in space and space.fixed["mt.threads"] == 4
    local, _ = space_for("local", pm=pm)  # one GPU stream there: gpu.streams left the space
    assert "gpu.streams" not in local and local.fixed["gpu.streams"] == 1


# -- identity ----------------------------------------------------------------------------------


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """An importable plugin module ``space_extra_plugin`` declaring one tunable parameter."""
    (tmp_path / "space_extra_plugin.py").write_text(textwrap.dedent('''
        from migpolicy.contract import Parameter, hookimpl

        __version__ = "1.0"


        @hookimpl
        def migpolicy_search_space(space, hw):
            return {}
    '''), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("space_extra_plugin")
    sys.modules.pop("space_extra_plugin", None)


def test_identity_is_stable_across_builds() -> None:
    one, _ = space_for()
    two, _ = space_for(pm=get_plugin_manager())
    assert one.identity() == two.identity()
    assert one.fingerprint() == two.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", one.fingerprint())


def test_identity_differs_with_the_profile(profile_dir) -> None:
    zen3, _ = space_for()
    assert space_for("gh200")[0].fingerprint() != zen3.fingerprint()
    # the same name with one value changed is another profile
    edited = profile_dir("zen3-epyc-ptdma",  # the dma prep cost, whatever the fit made it
                         lambda t: re.sub(r"prep_ns: [0-9.]+", "prep_ns: 120", t, count=1))
    same_name, ctx = space_for(str(edited))
    assert ctx.hw.name == "zen3-epyc-ptdma"
    assert same_name.distributions == zen3.distributions
    assert same_name.fingerprint() != zen3.fingerprint()


def test_identity_differs_with_a_plugin_or_its_version(plugin_module, monkeypatch) -> None:
    plain, _ = space_for()
    with_plugin, _ = space_for(pm=get_plugin_manager(["space_extra_plugin"]))
    assert with_plugin.distributions == plain.distributions
    assert ["space_extra_plugin", "1.0"] in with_plugin.identity()["plugins"]
    assert with_plugin.fingerprint() != plain.fingerprint()
    monkeypatch.setattr(plugin_module, "__version__", "1.1")
    newer, _ = space_for(pm=get_plugin_manager(["space_extra_plugin"]))
    assert newer.fingerprint() != with_plugin.fingerprint()


def test_identity_differs_with_the_fixed_values() -> None:
    assert space_for(fixed={"engine": "mt"})[0].fingerprint() != space_for()[0].fingerprint()


# -- suggesting --------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["zen3-epyc-ptdma", "local"])
def test_suggest_asks_only_for_active_parameters(profile: str) -> None:
    space, ctx = space_for(profile)
    declared = declared_parameters(ctx.pm)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    engines = set()
    for _ in range(25):
        trial = study.ask()
        values = space.suggest(trial)
        engines.add(values["engine"])
        assert set(values) == set(space.active(values))
        assert trial.params == values
        for name, value in values.items():
            dist = space.distributions[name]
            assert dist._contains(dist.to_internal_repr(value)), (name, value)
        # every suggestion, with the fixed values, is a valid setting
        resolve(declared, {**space.fixed, **values})
        study.tell(trial, 0.0)
    assert len(engines) >= 3


def test_a_narrowing_wider_than_a_small_profile_is_clipped_to_it() -> None:
    """A hook written for big machines (mt.threads 2..16) still works on a 2-thread profile."""
    space, ctx = space_for(
        pm=narrowing(lambda space, hw: {"mt.threads": IntDistribution(2, 16)}), hw="local")
    assert ctx.hw.p("engines.mt.max_threads") == 2
    assert space.distributions["mt.threads"] == IntDistribution(2, 2)
