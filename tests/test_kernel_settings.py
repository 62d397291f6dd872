"""Kernel settings of a policy: hand-checked conversions, the damo JSON, nothing dropped."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from migpolicy.context import build_context
from migpolicy.contract import KernelSetting, NoKernelEquivalent, hookimpl
from migpolicy.errors import InputError, PluginError
from migpolicy.hardware.locations import shipped_dir
from migpolicy.kernel_settings import damo_document, kernel_settings
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.registries import declared_parameters

GIB = 2**30
#: The module-scoped fixtures hold no state a test changes.
FIXTURES = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def pm():
    return get_plugin_manager(entry_points=False)


@pytest.fixture(scope="module")
def two_64g(tmp_path_factory) -> Path:
    """dram-cxl with both nodes 64 GiB: the hand-checked watermark case."""
    text = (shipped_dir() / "dram-cxl.yaml").read_text()
    text = text.replace("capacity: 512GiB", "capacity: 64GiB").replace("capacity: 256GiB",
                                                                         "capacity: 64GiB")
    path = tmp_path_factory.mktemp("hw") / "two-64g.yaml"
    path.write_text(text.replace("name: dram-cxl", "name: two-64g"))
    return path


def settings_of(pm, given: dict, hw: str | Path = "dram-cxl"):
    run = build_context(pm=pm, hw=str(hw), params=given)
    result = kernel_settings(pm, run.params, run.hw, list(given), declared_parameters(pm))
    return {s.name: s for s in result.settings}, result


def test_watermark_scale_factor_hand_checked(pm, two_64g):
    # total 128 GiB = 134217728 KiB: min_free_kbytes = isqrt(134217728 * 16) = 46340 (46340^2 =
    # 2147395600 <= 2147483648 < 46341^2); node 0 holds half: 23170 KiB = 23726080 bytes.
    # watermark.low 0.97 keeps 3% of 64 GiB = 2061584302.08 bytes free. In tiering mode kswapd
    # balances to promo = min + 3 gap: gap = (2061584302.08 - 23726080) / 3 = 679286074.03 bytes
    # = 98.85 / 10000 of the node -> 99.
    tiering, _ = settings_of(pm, {"placement": "numab", "placement.demotion": "watermark",
                                  "watermark.low": 0.97}, two_64g)
    assert tiering["vm.min_free_kbytes"].value == 46340
    assert tiering["vm.watermark_scale_factor"].value == 99
    assert "64 GiB" in tiering["vm.watermark_scale_factor"].note
    # without tiering mode (promotion by DAMOS) kswapd stops at high = min + 2 gap:
    # (2061584302.08 - 23726080) / 2 / 68719476736 * 10000 = 148.27 -> 148
    damos, _ = settings_of(pm, {"placement": "damos", "placement.demotion": "watermark",
                                "watermark.low": 0.97}, two_64g)
    assert damos["vm.watermark_scale_factor"].value == 148
    assert damos["kernel.numa_balancing"].value == 0


def _kernel_watermarks(min_free_kbytes: int, factor: int, node_pages: int, total_pages: int,
                       tiering: bool) -> tuple[int, int]:
    """__setup_per_zone_wmarks in pages for one zone: (low, balanced-to) watermarks."""
    pages_min = min_free_kbytes // 4  # 4 KiB pages
    wmark_min = pages_min * node_pages // total_pages
    gap = max(wmark_min >> 2, node_pages * factor // 10000)
    low = wmark_min + gap
    high = low + gap
    return low, high + gap if tiering else high


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES)
@given(low=st.floats(0.5, 0.995), tiering=st.booleans())
def test_the_kernel_balances_where_the_policy_asks(pm, two_64g, low, tiering):
    """Forward through the kernel's own formula: kswapd stops within a factor step of the target."""
    found, _ = settings_of(pm, {"placement": "numab" if tiering else "damos",
                                "placement.demotion": "watermark", "watermark.low": low},
                           two_64g)
    factor = found["vm.watermark_scale_factor"].value
    assert 1 <= factor <= 3000
    node_pages = 64 * GIB // 4096
    _, balanced = _kernel_watermarks(found["vm.min_free_kbytes"].value, factor, node_pages,
                                     2 * node_pages, tiering)
    steps = 3 if tiering else 2
    assert abs(balanced / node_pages - (1 - low)) <= steps * 0.5 / 10000 + 1e-6


def test_numab_settings_name_the_kernel_knobs(pm):
    found, result = settings_of(pm, {"placement": "numab", "numab.rate_limit_mbps": 1234.5,
                                     "numab.hot_threshold_ms": 0.01, "numab.hint_fault_ns": 900})
    assert found["kernel.numa_balancing"].value == 2  # NUMA_BALANCING_MEMORY_TIERING
    rate = found["kernel.numa_balancing_promote_rate_limit_MBps"]
    assert rate.value == 1234 and rate.mechanism == "sysctl" and "1234.5" in rate.note
    debugfs = "/sys/kernel/debug/sched/numa_balancing/"
    for knob, value in (("scan_size_mb", 256), ("scan_period_min_ms", 1000),
                        ("scan_period_max_ms", 60000), ("hot_threshold_ms", 1)):
        assert found[debugfs + knob].value == value and found[debugfs + knob].mechanism == \
            "debugfs"
    assert found["/sys/kernel/mm/numa/demotion_enabled"].value == "false"  # no demotion policy
    assert "model" in result.unmapped["numab.hint_fault_ns"]
    assert set(result.unmapped) == {"numab.hint_fault_ns"}


def test_damo_document_round_trips_and_has_what_damo_needs(pm):
    found, _ = settings_of(pm, {"placement": "damos", "damos.quota_mbps": 1024.0,
                                "damos.free_low": 0.02, "damos.free_high": 0.05,
                                "damos.cold_min_age": 7})
    doc = damo_document([s for s in found.values() if s.mechanism == "damo"])
    assert json.loads(json.dumps(doc)) == doc
    cold, hot = (k["contexts"][0] for k in doc["kdamonds"])
    for ctx in (cold, hot):
        assert ctx["ops"] == "paddr" and ctx["targets"][0].keys() == {"pid", "regions"}
        assert {"sample_us", "aggr_us", "ops_update_us"} <= ctx["intervals"].keys()
        assert ctx["nr_regions"] == {"min": 10, "max": 1000}
        (scheme,) = ctx["schemes"]
        assert {"sz_bytes", "nr_accesses", "age"} == scheme["access_pattern"].keys()
        assert {"time_ms", "sz_bytes", "reset_interval_ms", "weights"} <= scheme["quotas"].keys()
        assert {"metric", "interval_us", "high_permil", "mid_permil", "low_permil"} == \
            scheme["watermarks"].keys()
    # dram-cxl: node 0 DRAM 512 GiB, node 1 CXL 256 GiB
    assert (cold["schemes"][0]["action"], cold["schemes"][0]["target_nid"]) == ("migrate_cold", 1)
    assert (hot["schemes"][0]["action"], hot["schemes"][0]["target_nid"]) == ("migrate_hot", 0)
    # 1024 MB/s = 1,024,000,000 bytes per 1000 ms
    assert hot["schemes"][0]["quotas"]["sz_bytes"] == 1_024_000_000
    assert hot["schemes"][0]["quotas"]["reset_interval_ms"] == 1000
    # free_mem_rate is of all RAM: 2% of 512 GiB out of 768 GiB = 13.3 per mille, 5% -> 33.3
    marks = cold["schemes"][0]["watermarks"]
    assert (marks["metric"], marks["mid_permil"], marks["high_permil"]) == ("free_mem_rate", 13, 33)
    assert cold["schemes"][0]["access_pattern"]["age"]["min"] == "7 aggr_intervals"


def test_damo_parses_the_document(pm):
    """damo's own parser (damo start --kdamonds) reads the document into the same scheme."""
    damo = pytest.importorskip("damo")
    sys.path.insert(0, os.path.dirname(damo.__file__))
    try:
        import _damon  # damo's modules import each other by their top-level names
    finally:
        sys.path.remove(os.path.dirname(damo.__file__))
    found, _ = settings_of(pm, {"placement": "damos", "damos.cold_min_age": 7,
                                "damos.hot_min_pct": 40.0, "damos.sample_us": 2000.0})
    doc = damo_document([s for s in found.values() if s.mechanism == "damo"])
    cold, hot = (_damon.Kdamond.from_kvpairs(k).contexts[0] for k in doc["kdamonds"])
    assert cold.intervals.sample == 2000 and cold.nr_regions.maximum == 1000
    assert cold.schemes[0].action == "migrate_cold" and cold.schemes[0].target_nid == 1
    assert cold.schemes[0].access_pattern.age_min_max[0].aggr_intervals == 7
    assert cold.schemes[0].watermarks.metric == "free_mem_rate"
    assert hot.schemes[0].access_pattern.nr_acc_min_max[0].percent == 40.0
    assert hot.schemes[0].quotas.reset_interval_ms == 1000


def _values(parameter):
    if parameter.kind == "bool":
        return st.booleans()
    if parameter.kind == "choice":
        return st.sampled_from(parameter.choices or ("cpu", "mt", "dma", "auto", "none",
                                                     "numab", "hist", "damos", "watermark"))
    if parameter.kind == "str":
        return st.just(parameter.default)
    low = parameter.low if parameter.low is not None else 0
    high = parameter.high if parameter.high is not None else max(2 * parameter.default, 1)
    if parameter.kind == "int":
        return st.integers(int(low), int(high))
    return st.floats(low, high, allow_nan=False)


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_every_parameter_is_mapped_or_has_no_equivalent(pm, data):
    declared = declared_parameters(pm)
    keys = data.draw(st.lists(st.sampled_from([p.name for p in declared]), unique=True))
    table = {p.name: p for p in declared}
    policy = {key: data.draw(_values(table[key]), label=key) for key in keys}
    try:
        run = build_context(pm=pm, hw="dram-cxl", params=policy)
    except InputError:
        assume(False)  # not a valid policy (an engine the profile lacks, a bad pair)
    result = kernel_settings(pm, run.params, run.hw, list(policy), declared)
    covered = {name for s in result.settings for name in s.from_params}
    assert set(policy) <= covered | set(result.unmapped)
    assert all(reason for reason in result.unmapped.values())
    assert covered <= set(table)
    json.dumps(result.as_dict())  # everything printable as --json
    keys = [(s.mechanism, s.name) for s in result.settings]
    assert len(keys) == len(set(keys))


def _plugin(name: str, function) -> types.ModuleType:
    module = types.ModuleType(name)
    module.migpolicy_kernel_settings = hookimpl(function)
    return module


def test_a_plugin_that_raises_is_named(pm):
    def broken(params):
        raise RuntimeError("no such node")

    pm2 = get_plugin_manager(entry_points=False)
    pm2.register(_plugin("broken_kernel", broken), name="broken_kernel")
    run = build_context(pm=pm2)
    with pytest.raises(PluginError, match="'broken_kernel' raised RuntimeError in hook "
                                          "migpolicy_kernel_settings: no such node"):
        kernel_settings(pm2, run.params, run.hw, [], declared_parameters(pm2))


def test_two_plugins_setting_one_knob_is_an_error():
    def again(params):
        return (KernelSetting("sysctl", "kernel.numa_balancing", 1, ("placement",)),)

    pm2 = get_plugin_manager(entry_points=False)
    pm2.register(_plugin("again", again), name="again")
    run = build_context(pm=pm2)
    with pytest.raises(PluginError, match=r"both register the kernel setting "
                                          r"'sysctl kernel\.numa_balancing'"):
        kernel_settings(pm2, run.params, run.hw, [], declared_parameters(pm2))


def test_an_answer_that_is_not_settings_is_named():
    pm2 = get_plugin_manager(entry_points=False)
    pm2.register(_plugin("wrong", lambda params: ({"sysctl": 1},)), name="wrong")
    run = build_context(pm=pm2)
    with pytest.raises(PluginError, match="'wrong' answered migpolicy_kernel_settings with a "
                                          "dict; expected KernelSetting or NoKernelEquivalent"):
        kernel_settings(pm2, run.params, run.hw, [], declared_parameters(pm2))


def test_two_plugins_may_both_say_a_parameter_has_no_equivalent(pm):
    pm2 = get_plugin_manager(entry_points=False)
    pm2.register(_plugin("also", lambda params: (NoKernelEquivalent(("system.load",), "x"),)),
                 name="also")
    run = build_context(pm=pm2)
    result = kernel_settings(pm2, run.params, run.hw, ["system.load"], declared_parameters(pm2))
    assert "system.load" in result.unmapped


def test_damo_paths_that_disagree_are_a_plugin_error():
    rows = [KernelSetting("damo", "kdamonds/0/contexts", [], ("placement",)),
            KernelSetting("damo", "kdamonds/0/contexts/x", 1, ("placement",))]
    with pytest.raises(PluginError, match="damo setting"):
        damo_document(rows)


def test_a_setting_must_name_its_mechanism_and_parameters():
    with pytest.raises(ValueError, match="unknown mechanism"):
        KernelSetting("procfs", "x", 1, ("placement",))
    with pytest.raises(ValueError, match="name the parameters"):
        KernelSetting("sysctl", "x", 1, ())
