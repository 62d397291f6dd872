"""Replay end to end through the Python API: the model against hand-computed figures."""

from __future__ import annotations

import numpy as np
import pytest

from migpolicy.context import build_context
from migpolicy.contract import IsolateResult, hookimpl, zero_costs
from migpolicy.errors import InputError
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.replay import ReplayOptions, replay, replay_many
from migpolicy.traces import open_trace

PROMOTION = ("none", "numab", "hist", "damos")


def _ctx(pm, placement="none", demotion="none", **params):
    return build_context(pm=pm, hw="dram-cxl", params={
        "placement": placement, "placement.demotion": demotion, **params})


def test_never_migrating_costs_the_initial_placement_exactly(zipf_trace, builtin_pm):
    """Hand-computed: the first quarter of pages touched sit in DRAM (100 ns), the rest in
    CXL (250 ns, profile dram-cxl); every access costs its page's latency."""
    trace = open_trace(zipf_trace, builtin_pm)
    pages = np.concatenate([c["page"] for c in trace.chunks()])
    fast = np.zeros(trace.meta.distinct_pages, dtype=bool)  # the first quarter touched
    fast[trace.first_touch[: trace.meta.distinct_pages // 4]] = True
    expected = np.where(fast[pages], 100e-9, 250e-9).sum()
    result = replay(trace, _ctx(builtin_pm), ReplayOptions(fast="25%"))
    assert result["app_time_s"] == pytest.approx(expected, rel=1e-9)
    assert result["baseline_app_time_s"] == pytest.approx(expected, rel=1e-9)
    assert result["fast_hit_ratio"] == pytest.approx(fast[pages].mean())
    assert result["promoted_pages"] == result["demoted_pages"] == 0
    assert result["events"] == len(pages)


def test_policies_beat_none_when_the_hot_set_moves(phases_trace, builtin_pm):
    """Done means: numab and hist beat never migrating at a fast tier of 25% of the footprint."""
    trace = open_trace(phases_trace, builtin_pm)
    none, numab, hist = replay_many(trace, [
        _ctx(builtin_pm), _ctx(builtin_pm, "numab", "watermark"),
        _ctx(builtin_pm, "hist", "watermark")], ReplayOptions(fast="25%"))
    assert numab.app_time_s < none.app_time_s
    assert hist.app_time_s < none.app_time_s
    for r in (none, numab, hist):
        assert r["fast_hit_ratio"] <= r["bound"]["oracle_hit_ratio"] + 1e-12
        assert r["app"]["access_s"] >= r["bound"]["oracle_access_s"] - 1e-12
    assert numab["app"]["migration_stall_s"] > 0  # promotion in the faulting task
    assert hist["app"]["migration_stall_s"] == 0  # a daemon migrates: no stall
    assert hist["migration"]["async_cpu_s"] > 0


@pytest.mark.parametrize("placement", PROMOTION)
def test_a_trace_that_fits_the_fast_tier_ties_with_none(zipf_trace, builtin_pm, placement):
    """With room to spare in DRAM every page is there from its first touch: nothing moves."""
    trace = open_trace(zipf_trace, builtin_pm)
    none, other = replay_many(trace, [_ctx(builtin_pm), _ctx(builtin_pm, placement,
                                                            "watermark")],
                              ReplayOptions(fast="200%"))
    assert other["fast_hit_ratio"] == none["fast_hit_ratio"] == 1.0
    assert other["promoted_pages"] == 0
    assert other["app"]["access_s"] == pytest.approx(none.app_time_s)


def test_windowed_pricing_prices_like_one_epoch_at_a_time(phases_trace, builtin_pm):
    """The window changes when requests are priced, never what they cost."""
    trace = open_trace(phases_trace, builtin_pm)
    options = dict(fast="25%", max_events=1_000_000)
    one = replay(trace, _ctx(builtin_pm, "numab", "watermark"),
                 ReplayOptions(window_epochs=1, **options))
    many = replay(trace, _ctx(builtin_pm, "numab", "watermark"),
                  ReplayOptions(window_epochs=4096, **options))
    assert one["promoted_pages"] == many["promoted_pages"] > 0
    assert one["migration"]["wall_s"] == pytest.approx(many["migration"]["wall_s"])
    assert one.app_time_s == pytest.approx(many.app_time_s)


def test_compare_on_one_pass_equals_separate_replays(phases_trace, builtin_pm):
    trace = open_trace(phases_trace, builtin_pm)
    options = ReplayOptions(max_events=500_000, epoch_ns=2_000_000)
    together = replay_many(trace, [_ctx(builtin_pm, "hist"), _ctx(builtin_pm, "damos")],
                           options)
    alone = [replay(trace, _ctx(builtin_pm, name), options) for name in ("hist", "damos")]
    for a, b in zip(together, alone, strict=True):
        assert a.app_time_s == b.app_time_s
        assert a["promoted_pages"] == b["promoted_pages"]
        assert a["events"] == 500_000


def test_a_replay_without_bounds_gives_each_policy_the_same_figures(phases_trace, builtin_pm):
    """What a tuner asks for: the bounds and the never-migrating baseline left out, nothing
    else changed."""
    trace = open_trace(phases_trace, builtin_pm)
    ctx = _ctx(builtin_pm, "numab", "watermark")
    full = replay(trace, ctx, ReplayOptions(max_events=500_000)).as_dict()
    lean = replay(trace, ctx, ReplayOptions(max_events=500_000, bounds=False)).as_dict()
    left_out = ("bound", "baseline_app_time_s", "speedup_vs_none")
    assert all(lean[key] is None for key in left_out)
    assert full["bound"]["oracle_hit_ratio"] > 0 and full["promoted_pages"] > 0
    assert {k: v for k, v in lean.items() if k not in left_out} == \
        {k: v for k, v in full.items() if k not in left_out}


def test_checkpoints_report_exactly_what_a_prefix_replay_costs(phases_trace, builtin_pm):
    """The phases trace has one event every 100 ns over 0 .. 399.9999 ms: with 1 ms epochs
    the checkpoint at 1/4 comes after epoch 99 (the first to end past 99.999975 ms), so it
    must equal a replay of exactly its first 1 M events; likewise 2 M and 3 M. Reporting
    prices every pending window early, which must not change the final figures."""
    trace = open_trace(phases_trace, builtin_pm)
    ctx = _ctx(builtin_pm, "hist", "watermark")
    seen = []
    plain = replay(trace, ctx, ReplayOptions(epoch_ns=1_000_000))
    checked = replay(trace, ctx, ReplayOptions(epoch_ns=1_000_000, checkpoints=4,
                                               on_checkpoint=lambda f, p: seen.append((f, p))))
    assert checked.app_time_s == pytest.approx(plain.app_time_s, rel=1e-12)
    assert [f for f, _ in seen] == [0.25, 0.5, 0.75]
    for (fraction, (point,)), events in zip(seen, (1_000_000, 2_000_000, 3_000_000),
                                            strict=True):
        prefix = replay(trace, ctx, ReplayOptions(max_events=events, epoch_ns=1_000_000))
        assert point.app_time_s == pytest.approx(prefix.app_time_s, rel=1e-9), fraction
        assert point.migration_cpu_s == pytest.approx(prefix["migration"]["cpu_s"], rel=1e-9)


def test_a_prefix_replays_only_its_events(zipf_trace, builtin_pm):
    trace = open_trace(zipf_trace, builtin_pm)
    result = replay(trace, _ctx(builtin_pm), ReplayOptions(max_events=12_345))
    assert result["events"] == 12_345
    assert result["accesses"] == 12_345


def test_final_placement_keeps_the_invariants(phases_trace, builtin_pm):
    trace = open_trace(phases_trace, builtin_pm)
    result = replay(trace, _ctx(builtin_pm, "damos", "watermark"),
                    ReplayOptions(max_events=1_000_000))
    placement = result.placement
    assert set(np.unique(placement.node_of)) <= {0, 1}
    sizes = np.bincount(placement.node_of, weights=placement.page_bytes, minlength=2)
    assert sizes.sum() == result["footprint_bytes"]
    assert sizes[0] == placement.used[0] <= placement.capacity[0]
    assert sizes[1] == placement.used[1]


def test_errors_are_one_sentence(zipf_trace, builtin_pm):
    trace = open_trace(zipf_trace, builtin_pm)
    with pytest.raises(InputError, match=r"larger than node 0 \(ddr5\)"):
        replay(trace, _ctx(builtin_pm), ReplayOptions(fast="1T"))
    with pytest.raises(InputError, match="shorter than the trace's resolution"):
        replay(trace, _ctx(builtin_pm), ReplayOptions(epoch_ns=10))
    with pytest.raises(InputError, match="one node"):
        replay(trace, build_context(pm=builtin_pm, hw="local"), ReplayOptions())


class _FailOddPages:
    """An isolate stage that fails every folio of an odd page (as if pinned)."""

    @staticmethod
    @hookimpl(tryfirst=True)
    def migpolicy_isolate(folios, hw, params):
        costs = zero_costs(len(folios))
        costs["wall_s"] = costs["cpu_s"] = 1e-6
        failed = folios["page"] % 2 == 1
        costs["failures"] = failed
        return IsolateResult(costs=costs, isolated=~failed)


def test_failed_requests_are_put_back_and_learned(phases_trace):
    pm = get_plugin_manager(entry_points=False)
    pm.register(_FailOddPages(), name="fail_odd")
    run = build_context(pm=pm, hw="dram-cxl", params={"placement": "hist",
                                                      "placement.demotion": "watermark"})
    trace = open_trace(phases_trace, pm)
    result = replay(trace, run, ReplayOptions(max_events=1_000_000, window_epochs=16))
    assert result["failed_pages"] > 0
    assert result["promoted_pages"] > 0
    placement = result.placement
    # a page whose every request failed never moved: odd pages stay where they started
    start = replay(trace, build_context(pm=pm, hw="dram-cxl"),
                   ReplayOptions(max_events=1))  # the initial placement only
    odd = np.arange(1, len(placement.node_of), 2)
    assert np.array_equal(placement.node_of[odd], start.placement.node_of[odd])
    held = np.bincount(placement.node_of, minlength=2) * 4096
    assert held[0] == placement.used[0] <= placement.capacity[0]


def test_page_ids_computed_once_serve_many_prefix_replays(builtin_pm):
    """A lackey trace's pages are numbered by one pass; prefix replays reuse the numbering."""
    from migpolicy.replay import page_ids

    from .conftest import LACKEY

    trace = open_trace(LACKEY / "true.lackey.gz", builtin_pm)
    ids = page_ids(trace)
    assert sorted(ids.of_dense) == list(range(ids.count))
    numbers = trace.page_numbers
    assert np.all(np.diff(numbers[np.argsort(ids.of_dense)]) > 0)  # replay ids: address order
    ctx = _ctx(builtin_pm, "hist", "watermark")
    full = replay(trace, ctx, ReplayOptions(ids=ids, epoch_ns=5000))
    prefix = replay(trace, ctx, ReplayOptions(ids=ids, epoch_ns=5000, max_events=10_000))
    assert prefix["events"] == 10_000 < full["events"]
    assert prefix["pages"] == full["pages"] == ids.count


def test_a_native_file_replays_as_the_trace_it_was_written_from(tmp_path, builtin_pm):
    """The file numbers pages by address and keeps the first-touch order in its footer; the
    source numbers them as it first touches them: every figure is the same."""
    from migpolicy.traces import generated_trace, trace_generators, write_native

    def source():
        return generated_trace(trace_generators(builtin_pm)["phases"], 150_000, 2000, 3,
                               {"interval_ns": 50})

    with open(tmp_path / "phases.mpt", "wb") as handle:
        write_native(source(), handle)
    native = open_trace(tmp_path / "phases.mpt", builtin_pm)
    assert native.first_touch is not None  # renumbered: the generator touches pages randomly
    contexts = [_ctx(builtin_pm, "numab", "watermark"), _ctx(builtin_pm, "damos", "watermark")]
    for initial in ("first-touch", "interleave"):
        options = ReplayOptions(fast="25%", epoch_ns=100_000, initial=initial)
        assert [r.as_dict() | {"trace": ""} for r in replay_many(native, contexts, options)] \
            == [r.as_dict() | {"trace": ""} for r in replay_many(source(), contexts, options)]
