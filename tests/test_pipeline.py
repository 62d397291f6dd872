"""The stage pipeline: totals, the price_uniform shortcut, conservation, accounting, reports.

The central invariant is that :func:`price_uniform` (price one batch-sized
chunk and scale it) equals :func:`run_pipeline` on the full folio array: that
is what makes ``migpolicy move`` exact at any size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migpolicy.costs import COST_DTYPE, CostTotals
from migpolicy.errors import InputError, PluginError
from migpolicy.folios import BUSY, FOLIO_DTYPE, PINNED, make_folios
from migpolicy.hookspecs import hookimpl
from migpolicy.pipeline import STAGES, Report, price_uniform, run_pipeline

KIB, MIB = 1 << 10, 1 << 20
PROFILES = ("zen3-epyc-ptdma", "gh200", "dram-cxl", "local")
ENGINES = ("cpu", "mt", "dma", "gpu", "auto")
TIME_FIELDS = ("wall_s", "cpu_s", "engine_s", "worker_s")
COUNT_FIELDS = ("bytes", "folios", "failures", "retries")
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0) or (abs(a) < 1e-300 and abs(b) < 1e-300)


def assert_reports_equal(a: Report, b: Report, rel: float = 1e-9) -> None:
    """Two reports agree: counts exactly, times within ``rel``."""
    assert a.hw == b.hw
    assert a.requested_folios == b.requested_folios
    for group in ("stages", "engines"):
        left, right = getattr(a, group), getattr(b, group)
        assert left.keys() == right.keys(), group
        for key in left:
            for name in COUNT_FIELDS:
                assert getattr(left[key], name) == getattr(right[key], name), (group, key, name)
            for name in TIME_FIELDS:
                x, y = getattr(left[key], name), getattr(right[key], name)
                assert close(x, y, rel), (group, key, name, x, y)
    assert a.engine_workers == b.engine_workers
    assert a.accounting.keys() == b.accounting.keys()
    for payer, charge in a.accounting.items():
        assert charge.keys() == b.accounting[payer].keys()
        for key, value in charge.items():
            assert close(value, b.accounting[payer][key], rel), (payer, key)
    assert close(a.total_s, b.total_s, rel)
    assert close(a.throughput_gbps, b.throughput_gbps, rel)


def stage_sum(report: Report, name: str) -> float:
    return sum(getattr(stage, name) for stage in report.stages.values())


class BatchSpy:
    """A plugin that records every batch plan the batch stage produces."""

    def __init__(self) -> None:
        self.plans: list = []

    @hookimpl(wrapper=True)
    def migpolicy_batch(self):
        plan = yield
        self.plans.append(plan)
        return plan


# -- totals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_report_shape_and_total(ctx_for, engine: str) -> None:
    ctx = ctx_for(engine=engine, workers=1)
    report = price_uniform(ctx.pm, 64 * KIB, 1000, ctx.hw, ctx.params)
    assert tuple(report.stages) == STAGES
    assert report.total_s == pytest.approx(stage_sum(report, "wall_s"), rel=1e-12)
    assert report.total_s > 0
    assert all(stage.wall_s >= 0 and stage.cpu_s >= 0 for stage in report.stages.values())
    assert report.stages["account"] == CostTotals()
    assert report.bytes == 1000 * 64 * KIB and report.folios == 1000
    assert report.requested_folios == 1000
    assert report.hw == "zen3-epyc-ptdma"
    assert report.throughput_gbps == pytest.approx(report.bytes / report.total_s / 1e9)
    assert sum(t.bytes for t in report.engines.values()) == report.bytes
    assert report.stages["isolate"].folios == 1000


def test_price_uniform_rejects_nothing_to_move(ctx_for) -> None:
    ctx = ctx_for()
    with pytest.raises(InputError, match="at least one folio"):
        price_uniform(ctx.pm, 4 * KIB, 0, ctx.hw, ctx.params)


def test_empty_request_costs_nothing(ctx_for) -> None:
    ctx = ctx_for(engine="mt", workers=4)
    report = run_pipeline(ctx.pm, make_folios(4 * KIB, 0), ctx.hw, ctx.params)
    assert report.total_s == 0 and report.bytes == 0 and report.throughput_gbps == 0


# -- price_uniform == run_pipeline ----------------------------------------------------------


@PROPERTY
@given(
    profile=st.sampled_from(PROFILES),
    engine=st.sampled_from(ENGINES),
    size=st.sampled_from([4 * KIB, 16 * KIB, 64 * KIB, 2 * MIB]),
    count=st.integers(1, 3000),
    max_folios=st.sampled_from([1, 7, 64, 512, 1000]),
    account=st.sampled_from(["initiator", "kthread", "split"]),
    data=st.data(),
)
def test_price_uniform_equals_full_pipeline(
    ctx_for, profile, engine, size, count, max_folios, account, data
) -> None:
    probe = ctx_for(profile)
    limit = 1 if engine == "auto" else probe.engines[engine].max_workers(probe.hw)
    workers = data.draw(st.integers(1, limit), label="workers")
    ctx = ctx_for(profile, {"batch.max_folios": max_folios, "account.policy": account},
                  engine=engine, workers=workers)
    uniform = price_uniform(ctx.pm, size, count, ctx.hw, ctx.params)
    full = run_pipeline(ctx.pm, make_folios(size, count, pmd_size=ctx.hw.pmd_size), ctx.hw,
                        ctx.params)
    assert_reports_equal(uniform, full)
    assert uniform.bytes == size * count


def test_price_uniform_moves_between_the_nodes_asked(ctx_for) -> None:
    ctx = ctx_for("dram-cxl", engine="mt", workers=8)
    promote = price_uniform(ctx.pm, 2 * MIB, 600, ctx.hw, ctx.params, src=1, dst=0)
    full = run_pipeline(ctx.pm, make_folios(2 * MIB, 600, src=1, dst=0), ctx.hw, ctx.params)
    assert_reports_equal(promote, full)


# -- batch plans --------------------------------------------------------------------------------


@PROPERTY
@given(
    sizes=st.lists(st.sampled_from([4 * KIB, 16 * KIB, 64 * KIB, 2 * MIB]), max_size=2000),
    max_folios=st.integers(1, 600),
    engine=st.sampled_from(["cpu", "mt", "auto"]),
    load=st.sampled_from([0.0, 0.5, 0.9]),
)
def test_batch_plans_hold_every_folio_once(ctx_for, sizes, max_folios, engine, load) -> None:
    ctx = ctx_for(params={"batch.max_folios": max_folios, "system.load": load},
                  engine=engine, workers=2 if engine == "mt" else 1)
    folios = np.zeros(len(sizes), dtype=FOLIO_DTYPE)
    folios["size"] = sizes
    folios["dst"] = 1
    folios["tenant"] = np.arange(len(sizes))
    plan = ctx.pm.hook.migpolicy_batch(folios=folios, hw=ctx.hw, params=ctx.params)
    assert plan.folios["tenant"].tolist() == list(range(len(sizes)))
    assert plan.nfolios.sum() == len(sizes)
    assert (plan.nfolios >= 1).all()
    assert (plan.nfolios <= max_folios).all()
    assert len(plan.engine) == len(plan.workers) == len(plan.overhead) == plan.n_batches
    assert plan.overhead.dtype == COST_DTYPE
    if plan.n_batches:
        assert 0 <= plan.engine.min() and plan.engine.max() < len(plan.engines)
        assert (plan.workers >= 1).all()
        assert set(plan.engine_names()) <= {"cpu", "mt", "dma"}
    if engine != "auto":
        assert set(plan.engine_names()) <= {engine}


# -- conservation -------------------------------------------------------------------------------


@PROPERTY
@given(
    flags=st.lists(st.sampled_from([0, 0, 0, int(PINNED), int(BUSY), int(PINNED | BUSY)]),
                   min_size=1, max_size=1500),
    sizes=st.lists(st.sampled_from([4 * KIB, 64 * KIB, 2 * MIB]), min_size=1, max_size=5),
    busy_retries=st.integers(0, 12),
    engine=st.sampled_from(ENGINES),
    max_folios=st.sampled_from([1, 50, 512]),
)
def test_every_folio_moves_once_or_fails(
    pm, ctx_for, flags, sizes, busy_retries, engine, max_folios
) -> None:
    spy = BatchSpy()
    pm.register(spy, name="spy")
    try:
        ctx = ctx_for(params={"isolate.busy_retries": busy_retries,
                              "batch.max_folios": max_folios, "account.policy": "split"},
                      engine=engine, workers=1)
        n = len(flags)
        folios = np.zeros(n, dtype=FOLIO_DTYPE)
        folios["size"] = np.resize(np.asarray(sizes, dtype=np.int64), n)
        folios["src"], folios["dst"], folios["mapcount"] = 0, 1, 1
        folios["flags"] = flags
        folios["tenant"] = np.arange(n)  # a unique label per folio
        report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)
    finally:
        pm.unregister(name="spy")

    max_retries = int(ctx.hw.p("stages.isolate.max_retries"))
    pinned = (folios["flags"] & PINNED) != 0
    busy = ((folios["flags"] & BUSY) != 0) & ~pinned
    failed = pinned | (busy & (busy_retries > max_retries))
    requested_bytes = int(folios["size"].sum())
    failed_bytes = int(folios["size"][failed].sum())

    assert report.bytes + failed_bytes == requested_bytes
    assert report.folios + report.stages["isolate"].failures == n
    assert report.stages["isolate"].failures == int(failed.sum())
    expected_retries = int(pinned.sum()) * max_retries + int(busy.sum()) * min(
        busy_retries, max_retries)
    assert report.stages["isolate"].retries == expected_retries
    # the batch stage saw each isolated folio exactly once, and no failed one
    (plan,) = spy.plans
    assert sorted(plan.folios["tenant"].tolist()) == np.flatnonzero(~failed).tolist()
    # split: every folio's tenant, moved or failed, pays its share
    assert len(report.accounting) == n
    assert math.isclose(sum(c["cpu_s"] for c in report.accounting.values()),
                        stage_sum(report, "cpu_s"), rel_tol=1e-9)


@pytest.mark.parametrize("n", [16384, 16385, 40_000])
def test_long_requests_total_isolate_costs_exactly(ctx_for, n: int) -> None:
    ctx = ctx_for(params={"isolate.busy_retries": 2}, engine="cpu")
    rng = np.random.default_rng(n)
    folios = make_folios(4 * KIB, n)
    folios["size"] = rng.choice([4 * KIB, 64 * KIB, 2 * MIB], size=n)
    folios["mapcount"] = rng.integers(1, 4, size=n)
    folios["flags"] = rng.choice([0, 0, 0, int(PINNED), int(BUSY)], size=n)
    direct = ctx.pm.hook.migpolicy_isolate(folios=folios, hw=ctx.hw, params=ctx.params)
    report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)
    assert report.stages["isolate"] == CostTotals.of(direct.costs)
    assert report.stages["isolate"].failures == int(((folios["flags"] & PINNED) != 0).sum())


def test_busy_folios_within_the_retry_limit_move(ctx_for) -> None:
    ctx = ctx_for(params={"isolate.busy_retries": 3})
    folios = make_folios(4 * KIB, 10)
    folios["flags"][:4] = BUSY
    report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)
    plain = run_pipeline(ctx.pm, make_folios(4 * KIB, 10), ctx.hw, ctx.params)
    assert report.folios == 10 and report.stages["isolate"].failures == 0
    assert report.stages["isolate"].retries == 12
    assert report.stages["isolate"].wall_s > plain.stages["isolate"].wall_s


def test_everything_pinned_moves_nothing(ctx_for) -> None:
    for engine in ENGINES:
        ctx = ctx_for(engine=engine, workers=1)
        folios = make_folios(2 * MIB, 20)
        folios["flags"] |= PINNED
        report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)
        assert report.bytes == 0 and report.folios == 0
        assert report.stages["isolate"].failures == 20
        assert report.stages["copy"] == CostTotals()
        assert report.total_s > 0 and report.throughput_gbps == 0.0


# -- accounting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", ["initiator", "kthread", "split"])
def test_payers_cpu_sums_to_total(ctx_for, engine: str, policy: str) -> None:
    ctx = ctx_for(params={"account.policy": policy}, engine=engine, workers=1)
    folios = make_folios(64 * KIB, 1200)
    folios["tenant"] = np.arange(1200) % 3 + 10
    report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params, initiator=10)
    charges = report.accounting.values()
    assert math.isclose(sum(c["cpu_s"] for c in charges), stage_sum(report, "cpu_s"),
                        rel_tol=1e-9)
    assert math.isclose(sum(c["engine_s"] for c in charges), stage_sum(report, "engine_s"),
                        rel_tol=1e-9, abs_tol=1e-15)
    for charge in charges:
        assert set(charge) == {"cpu_s", "wall_s", "engine_s"}
        assert all(v >= 0 for v in charge.values())


def test_initiator_pays_everything(ctx_for) -> None:
    ctx = ctx_for(params={"account.policy": "initiator"}, engine="mt", workers=8)
    folios = make_folios(2 * MIB, 700)
    folios["tenant"][::2] = 4
    report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params, initiator=7)
    assert list(report.accounting) == ["7"]
    charge = report.accounting["7"]
    assert charge["cpu_s"] == pytest.approx(stage_sum(report, "cpu_s"), rel=1e-9)
    assert charge["wall_s"] == pytest.approx(report.total_s, rel=1e-9)


def test_kthread_pays_the_mt_workers(ctx_for) -> None:
    ctx = ctx_for(params={"account.policy": "kthread"}, engine="mt", workers=8)
    report = price_uniform(ctx.pm, 2 * MIB, 1000, ctx.hw, ctx.params)
    assert set(report.accounting) == {"0", "kthread"}
    worker_s = report.stages["copy"].worker_s
    assert worker_s > 0
    assert report.accounting["kthread"]["cpu_s"] == pytest.approx(worker_s, rel=1e-9)
    assert report.accounting["0"]["cpu_s"] == pytest.approx(
        stage_sum(report, "cpu_s") - worker_s, rel=1e-9)
    assert report.accounting["0"]["wall_s"] == pytest.approx(report.total_s, rel=1e-9)
    assert report.accounting["kthread"]["wall_s"] == 0


def test_kthread_without_workers_charges_only_the_initiator(ctx_for) -> None:
    ctx = ctx_for(params={"account.policy": "kthread"}, engine="cpu")
    report = price_uniform(ctx.pm, 2 * MIB, 100, ctx.hw, ctx.params)
    assert list(report.accounting) == ["0"]


def test_a_kernel_thread_initiator_is_charged_as_kthread(ctx_for) -> None:
    ctx = ctx_for()
    folios = make_folios(4 * KIB, 10, tenant=3)
    report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params, initiator=-1)
    assert list(report.accounting) == ["kthread"]


def test_split_charges_tenants_by_bytes(ctx_for) -> None:
    """Tenants 1 and 2 own 1/4 and 3/4 of every batch: they pay 1:3."""
    ctx = ctx_for(params={"account.policy": "split"}, engine="mt", workers=4)
    folios = make_folios(64 * KIB, 4 * 512)
    folios["tenant"] = np.where(np.arange(len(folios)) % 4 == 0, 1, 2)
    report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)
    one, two = report.accounting["1"], report.accounting["2"]
    for key in ("cpu_s", "wall_s"):
        assert two[key] == pytest.approx(3 * one[key], rel=1e-9)
        assert one[key] + two[key] == pytest.approx(
            stage_sum(report, key), rel=1e-9)


def test_split_shares_batch_costs_by_bytes_not_folios(ctx_for) -> None:
    """With per-folio isolate costs zeroed, every cost is a batch cost, shared by bytes."""
    from migpolicy.hardware.profile import Provenance

    ctx = ctx_for(params={"account.policy": "split"}, engine="dma", workers=4)
    zeroed = Provenance("test", "assumed", {"reason": "isolate costs removed for the test"})
    hw = ctx.hw.with_values({"stages.isolate.folio_ns": 0, "stages.isolate.pte_ns": 0}, zeroed)
    folios = np.concatenate([make_folios(2 * MIB, 3, tenant=1), make_folios(64 * KIB, 32,
                                                                             tenant=2)])
    report = run_pipeline(ctx.pm, folios, hw, ctx.params)
    share = 3 * 2 * MIB / (3 * 2 * MIB + 32 * 64 * KIB)  # 3/4 of the bytes, 3/35 of the folios
    for key in ("cpu_s", "wall_s", "engine_s"):
        total = sum(c[key] for c in report.accounting.values())
        assert total > 0
        assert report.accounting["1"][key] == pytest.approx(share * total, rel=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_time_only_for_offload(ctx_for, engine: str) -> None:
    ctx = ctx_for(engine=engine, workers=1)
    report = price_uniform(ctx.pm, 2 * MIB, 1024, ctx.hw, ctx.params)
    offloaded = set(report.engines) & {"dma", "gpu"}
    for name, stage in report.stages.items():
        if name != "copy" or not offloaded:
            assert stage.engine_s == 0, name
    if offloaded:
        assert report.stages["copy"].engine_s > 0
        assert report.accounting["0"]["engine_s"] > 0
    else:
        assert report.accounting["0"]["engine_s"] == 0
    if engine in ("dma", "gpu"):
        assert offloaded == {engine}


def test_worker_time_is_part_of_cpu_time(ctx_for) -> None:
    ctx = ctx_for(engine="mt", workers=16)
    report = price_uniform(ctx.pm, 2 * MIB, 512, ctx.hw, ctx.params)
    copy = report.stages["copy"]
    assert 0 < copy.worker_s <= copy.cpu_s
    assert copy.cpu_s > copy.wall_s  # sixteen threads burn more CPU than elapsed time


# -- reports --------------------------------------------------------------------------------------


def test_scaled_report(ctx_for) -> None:
    ctx = ctx_for(params={"account.policy": "kthread"}, engine="mt", workers=4)
    one = run_pipeline(ctx.pm, make_folios(2 * MIB, 100), ctx.hw, ctx.params)
    three = one.scaled(3)
    assert three.requested_folios == 300 and three.bytes == 3 * one.bytes
    assert three.total_s == pytest.approx(3 * one.total_s)
    assert three.throughput_gbps == pytest.approx(one.throughput_gbps)
    assert three.engine_workers == one.engine_workers
    for payer, charge in one.accounting.items():
        for key, value in charge.items():
            assert three.accounting[payer][key] == pytest.approx(3 * value)
    assert one.requested_folios == 100  # scaling returns a new report


def test_report_sum_matches_scaling_and_merges(ctx_for) -> None:
    mt = ctx_for(params={"account.policy": "kthread"}, engine="mt", workers=4)
    cpu = ctx_for(engine="cpu")
    a = run_pipeline(mt.pm, make_folios(2 * MIB, 100), mt.hw, mt.params)
    assert_reports_equal(a + a, a.scaled(2), rel=1e-12)
    b = run_pipeline(cpu.pm, make_folios(4 * KIB, 50), cpu.hw, cpu.params)
    both = a + b
    assert set(both.engines) == {"mt", "cpu"}
    assert both.engine_workers == {"mt": [4], "cpu": [1]}
    assert set(both.accounting) == {"0", "kthread"}
    assert both.accounting["kthread"] == a.accounting["kthread"]
    assert both.bytes == a.bytes + b.bytes
    assert both.total_s == pytest.approx(a.total_s + b.total_s)
    assert both.requested_folios == 150
    other = run_pipeline(mt.pm, make_folios(2 * MIB, 10), mt.hw, {**mt.params, "workers": 8})
    assert (a + other).engine_workers == {"mt": [4, 8]}


# -- plugins that break the contract --------------------------------------------------------------


class WrongCopy:
    @hookimpl(tryfirst=True)
    def migpolicy_copy(self, batches, engine):
        return np.zeros(batches.n_batches + 1, dtype=COST_DTYPE)


class UnknownEngine:
    @hookimpl(tryfirst=True)
    def migpolicy_batch(self, folios, hw, params):
        from migpolicy.plugins.kernel_batch import plan_batches

        return plan_batches(folios, hw, ("warp",), 0, 1, 512)


@pytest.mark.parametrize(
    ("plugin", "message"),
    [(WrongCopy(), r"hook migpolicy_copy must return \d+ cost rows"),
     (UnknownEngine(), r"no plugin prices copy engine 'warp'")],
)
def test_contract_violations_are_plugin_errors(pm, ctx_for, plugin, message) -> None:
    pm.register(plugin, name="bad")
    ctx = ctx_for()
    with pytest.raises(PluginError, match=message):
        run_pipeline(pm, make_folios(4 * KIB, 10), ctx.hw, ctx.params)
