"""Registration answers checked at the boundary: engines, parameters, placement policies.

A malformed answer (not a sequence, an item of the wrong type, a plugin that
raises) or two plugins claiming one name is a :class:`PluginError` that names
the plugin and the hook, raised where a run is built (``build_context``,
``build_space``, ``migpolicy plugins``), never deep inside a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy
import pytest

from migpolicy.context import build_context
from migpolicy.engines import CopyEngine
from migpolicy.errors import InputError, PluginError
from migpolicy.hardware.registry import find_profile
from migpolicy.hookspecs import hookimpl
from migpolicy.params import Parameter
from migpolicy.placement import PlacementPolicy, PlacementPolicyInfo
from migpolicy.plugin_manager import BUILTIN_PLUGINS, get_plugin_manager
from migpolicy.registries import copy_engines, declared_parameters, placement_policies
from migpolicy.traces import trace_formats, trace_generators
from migpolicy.tuning.space import build_space


@pytest.fixture
def pm() -> pluggy.PluginManager:
    return get_plugin_manager(entry_points=False)


def engine(name: str) -> CopyEngine:
    return CopyEngine(name, f"the {name} engine", "thread", lambda hw: 1, modelled_only="test")


def policy(name: str, role: str = "promotion") -> PlacementPolicyInfo:
    return PlacementPolicyInfo(name=name, summary=f"the {name} policy", factory=PlacementPolicy,
                               role=role)


def answering(hook: str, answer: Callable[[], Any]) -> object:
    """A plugin object whose registration ``hook`` returns ``answer()``."""
    namespace = {hook: hookimpl(lambda self: answer())}
    namespace[hook].__name__ = hook
    return type(f"Answers_{hook}", (), namespace)()


REGISTRIES = {
    "migpolicy_copy_engines": (copy_engines, engine, CopyEngine, "copy engine"),
    "migpolicy_parameters": (declared_parameters,
                             lambda name: Parameter(name, 1, "int", "a test knob", low=0, high=9),
                             Parameter, "parameter"),
    "migpolicy_placement_policies": (placement_policies, policy, PlacementPolicyInfo,
                                     "placement policy"),
}


def names(found: Any) -> list[str]:
    return [p.name for p in found] if isinstance(found, list) else list(found)


# -- what the built-ins register -----------------------------------------------------------------


def test_builtins_register_the_documented_names(pm) -> None:
    assert set(copy_engines(pm)) == {"cpu", "mt", "dma", "gpu", "dsa", "sdxi"}
    assert set(placement_policies(pm)) == {"none", "numab", "hist", "damos", "watermark"}
    assert placement_policies(pm)["none"].role == "promotion"
    assert placement_policies(pm)["watermark"].role == "demotion"
    declared = names(declared_parameters(pm))
    assert len(declared) == len(set(declared))
    assert {"engine", "batch.max_folios", "placement", "placement.demotion", "mt.threads",
            "dma.channels", "gpu.streams", "account.policy"} <= set(declared)


def test_engines_name_their_worker_parameter(pm) -> None:
    engines = copy_engines(pm)
    declared = set(names(declared_parameters(pm)))
    assert engines["cpu"].workers_param == ""
    for name in ("mt", "dma", "gpu"):
        assert engines[name].workers_param in declared, name
    run = build_context(pm=pm, params={"engine": "mt", "workers": 3})
    assert run.params["mt.threads"] == 3


@pytest.mark.parametrize(("hw", "engine"), [("dram-cxl", "dma"), ("local", "mt")])
def test_choosing_an_engine_without_workers_works_on_every_profile(pm, hw: str,
                                                                   engine: str) -> None:
    run = build_context(pm=pm, hw=hw, params={"engine": engine})
    limit = run.engines[engine].max_workers(run.hw)
    assert 1 <= run.engines[engine].workers(run.params) <= limit


def test_parameters_come_in_registration_order(pm) -> None:
    declared = names(declared_parameters(pm))
    first = {"isolate.busy_retries": "kernel_isolate", "engine": "kernel_batch",
             "placement": "placement_none"}
    order = [m.rsplit(".", 1)[1] for m in BUILTIN_PLUGINS]
    by_plugin = sorted(first, key=lambda name: order.index(first[name]))
    assert sorted(first, key=declared.index) == by_plugin


# -- answers checked at the boundary -------------------------------------------------------------


@pytest.mark.parametrize("hook", REGISTRIES)
def test_a_plugin_added_to_a_registry_is_found(pm, hook: str) -> None:
    collect, make, _, _ = REGISTRIES[hook]
    pm.register(answering(hook, lambda: (make("tplug.extra"),)), name="extra")
    pm.register(answering(hook, lambda: None), name="silent")  # None: nothing to declare
    assert "tplug.extra" in names(collect(pm))


@pytest.mark.parametrize("hook", REGISTRIES)
@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda: "cpu", "answered {hook} with str; expected a sequence of {kind}"),
        (lambda: 42, "answered {hook} with int; expected a sequence of {kind}"),
        (lambda: ({"name": "x"},), "answered {hook} with a dict; expected {kind} objects"),
    ],
)
def test_a_malformed_answer_names_plugin_and_hook(pm, hook: str, answer, message: str) -> None:
    collect, _, kind, _ = REGISTRIES[hook]
    pm.register(answering(hook, answer), name="tplug_bad")
    expected = "plugin 'tplug_bad' " + message.format(hook=hook, kind=kind.__name__)
    with pytest.raises(PluginError) as caught:
        collect(pm)
    assert str(caught.value) == expected
    with pytest.raises(PluginError, match="'tplug_bad'"):
        build_context(pm=pm)  # where a user meets it


@pytest.mark.parametrize("hook", REGISTRIES)
def test_a_raising_plugin_names_plugin_and_hook(pm, hook: str) -> None:
    collect = REGISTRIES[hook][0]

    def fail() -> Any:
        raise RuntimeError("no such device")

    pm.register(answering(hook, fail), name="tplug_fire")
    with pytest.raises(PluginError) as caught:
        collect(pm)
    assert str(caught.value) == (f"plugin 'tplug_fire' raised RuntimeError in hook {hook}: "
                                 "no such device")
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.mark.parametrize("hook", REGISTRIES)
def test_two_plugins_claiming_one_name(pm, hook: str) -> None:
    collect, make, _, what = REGISTRIES[hook]
    pm.register(answering(hook, lambda: (make("tplug.twin"),)), name="first")
    pm.register(answering(hook, lambda: (make("tplug.twin"),)), name="second")
    with pytest.raises(PluginError, match=rf"plugins '\w+' and '\w+' both register the {what} "
                                          r"'tplug\.twin'"):
        collect(pm)


TRACE_REGISTRIES = {"migpolicy_trace_formats": (trace_formats, "TraceFormat"),
                    "migpolicy_trace_generators": (trace_generators, "TraceGenerator")}


@pytest.mark.parametrize("hook", TRACE_REGISTRIES)
def test_trace_registrations_are_checked_like_the_others(pm, hook: str) -> None:
    collect, kind = TRACE_REGISTRIES[hook]
    pm.register(answering(hook, lambda: "zipf"), name="tplug_bad")
    with pytest.raises(PluginError) as caught:
        collect(pm)
    assert str(caught.value) == (f"plugin 'tplug_bad' answered {hook} with str; expected a "
                                 f"sequence of {kind}")


@pytest.mark.parametrize("clash", ["cpu", "none"])
def test_a_plugin_cannot_take_a_builtin_name(pm, clash: str) -> None:
    hook, make = (("migpolicy_copy_engines", engine) if clash == "cpu"
                  else ("migpolicy_placement_policies", policy))
    pm.register(answering(hook, lambda: (make(clash),)), name="tplug_clash")
    with pytest.raises(PluginError, match=f"both register the .* '{clash}'") as caught:
        build_context(pm=pm)
    assert "'tplug_clash'" in str(caught.value)


def test_registries_feed_the_search_space(pm) -> None:
    """A registered engine and policies become choices of the space build_space derives."""
    pm.register(answering("migpolicy_copy_engines", lambda: (engine("tplug_eng"),)), name="e")
    pm.register(answering("migpolicy_placement_policies",
                          lambda: (policy("tplug_hot"), policy("tplug_cold", "demotion"))),
                name="p")
    space = build_space(pm, find_profile(pm, None))
    assert {"tplug_eng", "auto", "cpu"} <= set(space.distributions["engine"].choices)
    assert set(space.distributions["placement"].choices) == {"none", "numab", "hist", "damos",
                                                             "tplug_hot"}
    assert set(space.distributions["placement.demotion"].choices) == {"none", "watermark",
                                                                      "tplug_cold"}


def test_a_policy_is_chosen_by_role(pm) -> None:
    pm.register(answering("migpolicy_placement_policies",
                          lambda: (policy("tplug_hot"), policy("tplug_cold", "demotion"))),
                name="p")
    run = build_context(pm=pm, params={"placement": "tplug_hot",
                                       "placement.demotion": "tplug_cold"})
    made = run.placement_policies(seed=3)
    assert [type(p) for p in made] == [PlacementPolicy, PlacementPolicy]
    assert all(p.seed == 3 and p.hw is run.hw for p in made)
    with pytest.raises(InputError, match=r"placement=tplug_cold: unknown promotion policy "
                                         r"\(known: damos, hist, none, numab, tplug_hot\)"):
        build_context(pm=pm, params={"placement": "tplug_cold"})
    with pytest.raises(InputError, match=r"placement\.demotion=tplug_hot: unknown demotion "
                                         r"policy \(known: none, tplug_cold, watermark\)"):
        build_context(pm=pm, params={"placement.demotion": "tplug_hot"})


BAD_REGISTRATION = ("from migpolicy.hookspecs import hookimpl\n\n"
                    "@hookimpl\ndef migpolicy_copy_engines():\n    return 'dma'\n")
BAD_REGISTRATION_ERROR = ("Error: plugin 'tplug_badreg' answered migpolicy_copy_engines with "
                          "str; expected a sequence of CopyEngine")


@pytest.fixture
def bad_registration(tmp_path, monkeypatch) -> None:
    """A module ``tplug_badreg`` on PYTHONPATH whose engine answer is a string."""
    (tmp_path / "tplug_badreg.py").write_text(BAD_REGISTRATION)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))


def test_a_bad_registration_stops_a_command(bad_registration, run_cli) -> None:
    code, out, err = run_cli("-p", "tplug_badreg", "move", "--bytes", "4M", "--json")
    assert (code, out, err.strip()) == (1, "", BAD_REGISTRATION_ERROR)


@pytest.mark.parametrize("args", [("plugins",), ("plugins", "--json")])
def test_plugins_rejects_a_bad_registration_before_printing(bad_registration, run_cli,
                                                            args) -> None:
    code, out, err = run_cli("-p", "tplug_badreg", *args)
    assert (code, out, err.strip()) == (1, "", BAD_REGISTRATION_ERROR)
