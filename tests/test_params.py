"""Policy parameters: declarations, defaults, coercion, conditions, and bad keys and values."""

from __future__ import annotations

import math

import pytest

from migpolicy.context import build_context, copy_engines, declared_parameters
from migpolicy.contract import CopyEngine, hookimpl
from migpolicy.errors import InputError
from migpolicy.params import Parameter, resolve
from migpolicy.plugin_manager import get_plugin_manager

DECLARED = (
    Parameter("mt.threads", 8, "int", "threads", low=1, high=64),
    Parameter("mt.placement", "spread", "choice", "placement", choices=("spread", "fill")),
    Parameter("auto.cpu_weight", 0.5, "float", "weight", low=0.0, high=1.0),
    Parameter("batch.max_folios", 512, "int", "folios", low=1, high=4096, log=True),
    Parameter("gpu.pinned", True, "bool", "pinned", tunable=False),
    Parameter("engine", "cpu", "choice", "engine", registry="engine"),
    Parameter("trace.label", "", "str", "label", tunable=False),
)


# -- declarations ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["integer", "list", "", "Int"])
def test_an_unknown_kind_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match=rf"parameter x\.y: unknown kind '{kind}'"):
        Parameter("x.y", 1, kind, "help")


def test_an_unknown_registry_is_refused() -> None:
    with pytest.raises(ValueError, match=r"parameter x\.y: unknown registry 'engines'"):
        Parameter("x.y", "cpu", "choice", "help", registry="engines")


def test_a_free_text_parameter_cannot_be_tuned() -> None:
    with pytest.raises(ValueError, match=r"x\.y: a str parameter cannot be tunable"):
        Parameter("x.y", "", "str", "help")
    assert Parameter("x.y", "", "str", "help", tunable=False).kind == "str"


# -- conditions ------------------------------------------------------------------------------


def test_a_parameter_without_conditions_always_counts() -> None:
    p = Parameter("x.n", 1, "int", "n", low=1, high=2)
    assert p.active({}) and p.active({"engine": "dma"})


@pytest.mark.parametrize(
    ("values", "active"),
    [({"engine": "mt"}, True), ({"engine": "auto"}, True), ({"engine": "dma"}, False),
     ({"engine": "cpu", "mt.side": "pull"}, False), ({}, False)],
)
def test_conditions_follow_the_values_chosen(values: dict, active: bool) -> None:
    threads = Parameter("mt.threads", 8, "int", "threads", low=1, high=64,
                        when={"engine": ("mt", "auto")})
    assert threads.active(values) is active


def test_every_condition_must_hold() -> None:
    p = Parameter("x.n", 1, "int", "n", low=1, high=2,
                  when={"engine": ("mt",), "mt.side": ("pull",)})
    assert p.active({"engine": "mt", "mt.side": "pull"})
    assert not p.active({"engine": "mt", "mt.side": "push"})
    assert not p.active({"engine": "dma", "mt.side": "pull"})


# -- resolve ---------------------------------------------------------------------------------


def test_defaults_when_nothing_is_given() -> None:
    assert resolve(DECLARED, {}) == {p.name: p.default for p in DECLARED}


def test_given_values_override_and_are_coerced() -> None:
    values = resolve(DECLARED, {"mt.threads": "16", "auto.cpu_weight": "0.5",
                                "gpu.pinned": "no", "mt.placement": "fill", "engine": "dma"})
    assert values["mt.threads"] == 16 and isinstance(values["mt.threads"], int)
    assert values["auto.cpu_weight"] == 0.5 and isinstance(values["auto.cpu_weight"], float)
    assert values["gpu.pinned"] is False
    assert values["mt.placement"] == "fill"
    assert values["engine"] == "dma"
    assert values["batch.max_folios"] == 512


def test_a_registry_choice_takes_any_registered_name() -> None:
    # the registry is known only once plugins are loaded: build_context checks the name
    assert resolve(DECLARED, {"engine": "teleport"})["engine"] == "teleport"
    assert resolve(DECLARED, {"engine": 7})["engine"] == "7"


def test_integral_float_is_an_int() -> None:
    assert resolve(DECLARED, {"mt.threads": 4.0})["mt.threads"] == 4


@pytest.mark.parametrize("text", ["1", "true", "True", "YES", "on", " On "])
def test_bool_true_spellings(text: str) -> None:
    assert resolve(DECLARED, {"gpu.pinned": text})["gpu.pinned"] is True


@pytest.mark.parametrize("text", ["0", "false", "FALSE", "no", "off", False, 0])
def test_bool_false_spellings(text: object) -> None:
    assert resolve(DECLARED, {"gpu.pinned": text})["gpu.pinned"] is False


@pytest.mark.parametrize("text", ["maybe", "", "2", "tru"])
def test_bool_rejects_other_text(text: str) -> None:
    with pytest.raises(InputError, match=r"gpu\.pinned expects true or false"):
        resolve(DECLARED, {"gpu.pinned": text})


def test_unknown_key_suggests_the_close_one() -> None:
    with pytest.raises(InputError) as info:
        resolve(DECLARED, {"mt.thread": 4}, where="policy.yaml")
    message = str(info.value)
    assert message.startswith("policy.yaml: unknown parameter 'mt.thread'")
    assert "did you mean mt.threads" in message


def test_unknown_key_without_close_match_has_no_hint() -> None:
    with pytest.raises(InputError) as info:
        resolve(DECLARED, {"zzz.qqq": 1})
    assert "unknown parameter 'zzz.qqq'" in str(info.value)
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("mt.threads", 0, r"mt\.threads expects an integer in \[1, 64\], got 0"),
        ("mt.threads", 65, r"expects an integer in \[1, 64\], got 65"),
        ("mt.threads", "eight", r"expects an integer in \[1, 64\], got 'eight'"),
        ("mt.threads", 2.5, r"expects an integer in \[1, 64\], got 2\.5"),
        ("mt.threads", None, r"expects an integer"),
        ("auto.cpu_weight", 1.5, r"expects a number in \[0, 1\], got 1\.5"),
        ("auto.cpu_weight", "-0.1", r"expects a number in \[0, 1\]"),
        ("auto.cpu_weight", "nan", r"expects a number in \[0, 1\]"),
        ("auto.cpu_weight", "high", r"expects a number"),
        ("mt.placement", "zigzag", r"mt\.placement expects one of spread, fill, got 'zigzag'"),
    ],
)
def test_bad_values_name_parameter_and_range(key: str, value: object, expected: str) -> None:
    with pytest.raises(InputError, match=expected) as info:
        resolve(DECLARED, {key: value}, where="--param")
    assert str(info.value).startswith("--param: ")
    assert "\n" not in str(info.value)


def test_one_sided_bound_is_checked_and_described() -> None:
    at_least_one = Parameter("x.n", 1, "int", "n", low=1)
    assert resolve([at_least_one], {"x.n": 10**6})["x.n"] == 10**6
    with pytest.raises(InputError, match=r"x\.n expects an integer >= 1, got 0"):
        resolve([at_least_one], {"x.n": 0})
    at_most_one = Parameter("x.f", 0.5, "float", "f", high=1.0)
    with pytest.raises(InputError, match=r"x\.f expects a number <= 1, got 2"):
        resolve([at_most_one], {"x.f": 2})


def test_unbounded_float_accepts_anything_numeric() -> None:
    free = Parameter("x.f", 0.0, "float", "f")
    assert resolve([free], {"x.f": "-1e9"})["x.f"] == -1e9


# -- the built-in declarations ---------------------------------------------------------------


def test_every_builtin_parameter_is_well_formed(pm) -> None:
    declared = declared_parameters(pm)
    names = [p.name for p in declared]
    assert len(names) == len(set(names)), "two plugins declare the same parameter"
    for p in declared:
        assert p.help, p
        # the default passes the parameter's own validation
        assert p.coerce(p.default) == p.default, p
        if p.kind in ("int", "float") and p.tunable:
            assert p.low is not None and p.high is not None and p.low <= p.high, p
            assert math.isfinite(p.low) and math.isfinite(p.high), p
        if p.kind == "choice" and not p.registry:
            assert p.default in p.choices, p


def test_builtin_conditions_name_declared_parameters_and_valid_values(pm) -> None:
    """A typo in a condition would silently keep a parameter out of every trial."""
    declared = {p.name: p for p in declared_parameters(pm)}
    engines = {*copy_engines(pm), "auto"}
    conditioned = [p for p in declared.values() if p.when]
    assert {"mt.threads", "dma.channels", "gpu.streams", "auto.cpu_weight"} <= {
        p.name for p in conditioned}
    for p in conditioned:
        for key, allowed in p.when.items():
            assert key in declared, (p.name, key)
            target = declared[key]
            for value in allowed:
                if target.registry == "engine":
                    assert value in engines, (p.name, value)
                else:
                    assert target.coerce(value) == value, (p.name, value)


def test_registry_defaults_are_registered(pm) -> None:
    ctx = build_context(pm=pm)
    assert ctx.params["engine"] in ctx.engines
    assert ctx.params["placement"] in ctx.policies


def test_each_engine_names_its_worker_parameter(pm) -> None:
    declared = {p.name: p for p in declared_parameters(pm)}
    engines = copy_engines(pm)
    assert {name: e.workers_param for name, e in engines.items()} == {
        "cpu": "", "mt": "mt.threads", "dma": "dma.channels", "gpu": "gpu.streams",
        "dsa": "dsa.engines", "sdxi": "sdxi.functions"}
    for engine in engines.values():
        if engine.workers_param:
            p = declared[engine.workers_param]
            assert p.kind == "int" and p.low == 1 and p.hw_bounds is not None
            assert set(p.when["engine"]) == {engine.name, "auto"}
    assert "workers" not in declared


# -- workers and registry names in a context ------------------------------------------------


@pytest.mark.parametrize(("engine", "key"), [("mt", "mt.threads"), ("dma", "dma.channels"),
                                             ("gpu", "gpu.streams")])
def test_workers_becomes_the_engines_own_parameter(pm, engine: str, key: str) -> None:
    ctx = build_context(pm=pm, params={"engine": engine, "workers": 2})
    assert ctx.params[key] == 2
    assert ctx.engines[engine].workers(ctx.params) == 2


def test_workers_and_its_parameter_must_agree(pm) -> None:
    same = build_context(pm=pm, params={"engine": "mt", "workers": 4, "mt.threads": "4"})
    assert same.params["mt.threads"] == 4
    with pytest.raises(InputError, match=r"--workers 4 and --param mt\.threads=6"):
        build_context(pm=pm, params={"engine": "mt", "workers": 4, "mt.threads": 6})


def test_a_single_worker_engine_takes_only_one(pm) -> None:
    assert build_context(pm=pm, params={"engine": "cpu", "workers": 1}).params["engine"] == "cpu"
    with pytest.raises(InputError, match=r"--workers 2: engine cpu allows only 1 thread"):
        build_context(pm=pm, params={"engine": "cpu", "workers": 2})


def test_workers_beyond_the_profile_name_the_limit(pm) -> None:
    with pytest.raises(InputError, match=r"--workers 3: engine gpu on profile local allows "
                                         r"at most 1 stream\b"):
        build_context(pm=pm, hw="local", params={"engine": "gpu", "workers": 3})


def test_a_registered_engine_is_a_valid_choice() -> None:
    class Teleport:
        @hookimpl
        def migpolicy_copy_engines(self):
            return (CopyEngine(name="teleport", summary="test", worker_unit="lane",
                               max_workers=lambda hw: 1),)

        @hookimpl
        def migpolicy_copy(self, engine):
            return None

    pm = get_plugin_manager()
    with pytest.raises(InputError, match=r"--engine teleport: unknown copy engine \(known: "
                                         r"auto, cpu, dma, dsa, gpu, mt, sdxi\)"):
        build_context(pm=pm, params={"engine": "teleport"})
    pm.register(Teleport(), name="teleport")
    assert build_context(pm=pm, params={"engine": "teleport"}).engine == "teleport"


def test_unset_worker_parameters_fit_the_profile(pm) -> None:
    # local.yaml: 2 threads, 4 DMA channels, 1 GPU stream; the defaults ask for more
    ctx = build_context(pm=pm, hw="local", params={"engine": "auto"})
    assert (ctx.params["mt.threads"], ctx.params["dma.channels"], ctx.params["gpu.streams"]) \
        == (2, 4, 1)
    zen3 = build_context(pm=pm, params={"engine": "auto"})
    assert (zen3.params["mt.threads"], zen3.params["dma.channels"]) == (8, 16)
    with pytest.raises(InputError, match=r"allows at most 2 threads"):
        build_context(pm=pm, hw="local", params={"engine": "mt", "mt.threads": 8})


def test_default_workers_apply_only_when_nothing_is_given(pm) -> None:
    one = build_context(pm=pm, params={"engine": "mt"}, default_workers=1)
    assert one.params["mt.threads"] == 1
    given = build_context(pm=pm, params={"engine": "mt", "mt.threads": 6}, default_workers=1)
    assert given.params["mt.threads"] == 6
    assert build_context(pm=pm, params={"engine": "mt", "workers": 3},
                         default_workers=1).params["mt.threads"] == 3


def test_an_unregistered_placement_policy_is_named(pm) -> None:
    with pytest.raises(InputError, match=r"placement=lru: unknown promotion policy "
                                         r"\(known: damos, hist, none, numab\)"):
        build_context(pm=pm, params={"placement": "lru"})
    with pytest.raises(InputError, match=r"placement\.demotion=kswapd: unknown demotion "
                                         r"policy \(known: none, watermark\)"):
        build_context(pm=pm, params={"placement.demotion": "kswapd"})
