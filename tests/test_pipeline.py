"""The stage pipeline: hand-computed epochs, invariants of windowed pricing, results, contract.

Checked against things independent of the pipeline's arithmetic: a 3-epoch,
2-tenant request priced by hand with a test plugin whose stages cost
constants; invariants (per-epoch, per-engine and per-tenant costs sum to the
totals; pricing many epochs in one call equals pricing each epoch alone;
:func:`price_uniform` equals :func:`run_pipeline` on the full array; failed
folios are the pinned ones; a batch's folios complete together, in batch
order); the published RFC V2 batch-size table; and thread safety.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migpolicy.contract import BatchPlan, CopyEngine, IsolateResult, consecutive_batches
from migpolicy.costs import COST_DTYPE, CostTotals, zero_costs
from migpolicy.errors import InputError, PluginError
from migpolicy.folios import (
    BUSY,
    FAILED,
    FOLIO_DTYPE,
    MOVED,
    PINNED,
    PMD_MAPPED,
    Reason,
    make_folios,
)
from migpolicy.hardware.tables import read_table, shipped_table
from migpolicy.hookspecs import hookimpl
from migpolicy.pipeline import STAGES, Report, price_uniform, run_pipeline

KIB, MIB = 1 << 10, 1 << 20
US = 1e-6
PROFILES = ("zen3-epyc-ptdma", "gh200", "dram-cxl", "local")
ENGINES = ("cpu", "mt", "dma", "gpu", "auto")
TIME_FIELDS = ("wall_s", "cpu_s", "engine_s", "worker_s")
COUNT_FIELDS = ("bytes", "folios", "failures", "retries")
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-18)


def assert_reports_equal(a: Report, b: Report, rel: float = 1e-9) -> None:
    """Two reports agree: counts exactly, times within ``rel``."""
    assert a.hw == b.hw
    assert a.requested_folios == b.requested_folios
    for group in ("stages", "engines"):
        left, right = getattr(a, group), getattr(b, group)
        assert left.keys() == right.keys(), group
        for key in left:
            assert_totals_equal(left[key], right[key], rel, (group, key))
    assert a.engine_workers == b.engine_workers
    assert a.accounting.keys() == b.accounting.keys()
    for payer, charge in a.accounting.items():
        assert charge.keys() == b.accounting[payer].keys()
        for key, value in charge.items():
            assert close(value, b.accounting[payer][key], rel), (payer, key)


def assert_totals_equal(a: CostTotals, b: CostTotals, rel: float = 1e-9, where=()) -> None:
    for name in COUNT_FIELDS:
        assert getattr(a, name) == getattr(b, name), (*where, name)
    for name in TIME_FIELDS:
        assert close(getattr(a, name), getattr(b, name), rel), (*where, name, a, b)


def engine_args(engine: str, workers: int = 1) -> dict:
    """``engine`` and, for a fixed engine, its worker count (auto chooses its own)."""
    return {"engine": engine} if engine == "auto" else {"engine": engine, "workers": workers}


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


def folios_of(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Folios from ``(epoch, tenant, size, flags)`` rows; page i is row i; node 0 → 1."""
    folios = np.zeros(len(rows), dtype=FOLIO_DTYPE)
    if rows:
        folios["epoch"], folios["tenant"], folios["size"], folios["flags"] = zip(*rows,
                                                                                  strict=True)
    folios["page"] = np.arange(len(rows))
    folios["src"], folios["dst"], folios["mapcount"] = 0, 1, 1
    folios["reason"] = Reason.NUMA_MISPLACED
    return folios


# -- a request priced by hand ---------------------------------------------------------------------


class ConstantStages:
    """Every stage at a constant price, so a request can be priced by hand.

    isolate 1 µs per folio (pinned folios fail, no retries); batches of at most
    two folios, 10 µs of set-up each, on engine ``const``; copy 100 µs per batch
    plus 1 ns per byte; remap 5 µs per folio. CPU time equals wall time.
    """

    @hookimpl
    def migpolicy_copy_engines(self):
        return (CopyEngine("const", "100 us per batch + 1 ns per byte", "thread",
                           lambda hw: 1, modelled_only="test engine"),)

    @hookimpl(tryfirst=True)
    def migpolicy_isolate(self, folios):
        costs = zero_costs(len(folios))
        costs["wall_s"] = costs["cpu_s"] = US
        costs["folios"] = 1
        pinned = (folios["flags"] & PINNED) != 0
        costs["failures"] = pinned
        return IsolateResult(costs=costs, isolated=~pinned)

    @hookimpl(tryfirst=True)
    def migpolicy_batch(self, folios):
        bounds = consecutive_batches(folios, 2)
        nb = len(bounds) - 1
        overhead = zero_costs(nb)
        overhead["wall_s"] = overhead["cpu_s"] = 10 * US
        return BatchPlan(folios=folios, bounds=bounds, engines=("const",),
                         engine=np.zeros(nb, dtype=np.int64), workers=np.ones(nb, dtype=np.int64),
                         overhead=overhead)

    @hookimpl
    def migpolicy_copy(self, batches, engine):
        if engine != "const":
            return None
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = rows["cpu_s"] = 100 * US + batches.nbytes * 1e-9
        rows["bytes"], rows["folios"] = batches.nbytes, batches.nfolios
        return rows

    @hookimpl(tryfirst=True)
    def migpolicy_remap(self, batches):
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = rows["cpu_s"] = batches.nfolios * 5 * US
        return rows


#: Epochs 0, 1 and 3 (no folio in epoch 2); tenants 1 and 2; page 3 is pinned.
HAND_ROWS = [(0, 1, 4096, 0), (0, 2, 8192, 0), (0, 1, 4096, 0),
             (1, 2, 4096, int(PINNED)), (1, 2, 4096, 0),
             (3, 1, 4096, 0), (3, 1, 4096, 0)]


def test_a_three_epoch_two_tenant_request_priced_by_hand(pm, ctx_for) -> None:
    """Batches: epoch 0 [p0 p1] [p2]; epoch 1 [p4] (p3 pinned fails); epoch 3 [p5 p6].

    copy: 100 + 12.288, 100 + 4.096, 100 + 4.096, 100 + 8.192 µs; each batch's
    duration is its folios' isolate + 10 µs set-up + copy + remap:
    [p0 p1] 2 + 10 + 112.288 + 10 = 134.288; [p2] 1 + 10 + 104.096 + 5 = 120.096;
    [p4] 120.096 after p3's failed isolate (1 µs); [p5 p6] 130.192.
    """
    pm.register(ConstantStages(), name="constant")
    ctx = ctx_for(params={"account.policy": "split"}, engine="const")
    report = ctx.price(folios_of(HAND_ROWS), initiator=1)
    epochs = report.epochs
    assert epochs.ids.tolist() == [0, 1, 3]
    expected = {"isolate": [3, 2, 2], "batch": [20, 10, 10], "copy": [216.384, 104.096, 108.192],
                "remap": [15, 5, 10]}
    for stage, micros in expected.items():
        assert epochs.stages[stage]["wall_s"] == pytest.approx(np.array(micros) * US, rel=1e-12)
        assert epochs.stages[stage]["cpu_s"] == pytest.approx(np.array(micros) * US, rel=1e-12)
    assert epochs.wall_s == pytest.approx(np.array([254.384, 121.096, 130.192]) * US, rel=1e-12)
    assert report.total_s == pytest.approx(505.672 * US, rel=1e-12)
    assert epochs.engines["const"]["bytes"].tolist() == [16384, 4096, 8192]
    assert epochs.stages["isolate"]["failures"].tolist() == [0, 1, 0]
    assert (report.bytes, report.folios, report.stages["isolate"].failures) == (28672, 6, 1)

    results = report.results
    assert results["status"].tolist() == [MOVED] * 3 + [FAILED] + [MOVED] * 3
    assert results["retries"].tolist() == [0] * 7
    done = [134.288, 134.288, 254.384, 1, 121.096, 130.192, 130.192]
    assert results["done_s"] == pytest.approx(np.array(done) * US, rel=1e-12)

    # split by bytes within a batch: tenant 1 owns 1/3 of [p0 p1], all of [p2], [p5 p6]
    tenant_wall = {1: [2 + 132.288 / 3 + 119.096, 0, 130.192],
                   2: [1 + 132.288 * 2 / 3, 2 + 119.096, 0]}
    for tenant, micros in tenant_wall.items():
        assert epochs.tenants[tenant]["wall_s"] == pytest.approx(np.array(micros) * US,
                                                                 rel=1e-12, abs=1e-18)
    assert epochs.tenants[1]["bytes"].tolist() == [8192, 0, 8192]
    assert epochs.tenants[2]["bytes"].tolist() == [8192, 4096, 0]
    assert epochs.tenants[1]["folios"].tolist() == [2, 0, 2]
    assert epochs.tenants[2]["failures"].tolist() == [0, 1, 0]
    assert report.accounting["1"]["cpu_s"] == pytest.approx((165.192 + 130.192) * US, rel=1e-12)
    assert report.accounting["2"]["cpu_s"] == pytest.approx((89.192 + 121.096) * US, rel=1e-12)


def test_the_first_folio_waits_for_its_batch_published_table(ctx_for) -> None:
    """Batching trades first-folio latency for throughput (RFC V2 table 2, 2 MiB, mt 1 thread).

    Larger batches complete their first folio later but move the whole request
    faster, and at the kernel's 512 the throughput is the published one.
    """
    rows = read_table(shipped_table("2"), ("cpu", "mt", "dma", "gpu"))
    published = {int(r["folio_count"]): float(r["throughput_gbps"])
                 for r in rows if r["engine"] == "mt"}
    firsts, totals = [], []
    for max_folios in (1, 8, 64, 512):
        ctx = ctx_for("zen3-epyc-ptdma", {"batch.max_folios": max_folios}, engine="mt",
                      workers=1)
        report = ctx.price(make_folios(2 * MIB, 512, pmd_size=ctx.hw.pmd_size))
        firsts.append(report.results["done_s"][0])
        totals.append(report.total_s)
        assert report.results["done_s"][max_folios - 1] == report.results["done_s"][0]
        assert report.results["done_s"][-1] == pytest.approx(report.total_s, rel=1e-12)
    assert firsts == sorted(firsts) and len(set(firsts)) == 4
    assert totals == sorted(totals, reverse=True)
    gbps = 512 * 2 * MIB / totals[-1] / 1e9
    assert gbps == pytest.approx(published[512], rel=0.1)


# -- shape and trivial requests -------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_report_shape(ctx_for, engine: str) -> None:
    ctx = ctx_for(**engine_args(engine))
    report = price_uniform(ctx.pm, 64 * KIB, 1000, ctx.hw, ctx.params)
    assert tuple(report.stages) == STAGES
    assert all(stage.wall_s >= 0 and stage.cpu_s >= 0 for stage in report.stages.values())
    assert report.stages["account"] == CostTotals()
    assert report.bytes == 1000 * 64 * KIB and report.folios == 1000
    assert report.requested_folios == 1000 and report.stages["isolate"].folios == 1000
    assert report.hw == "zen3-epyc-ptdma"
    assert sum(t.bytes for t in report.engines.values()) == report.bytes
    assert report.results is None and report.epochs is None  # scaled from a sample


def test_price_uniform_rejects_nothing_to_move(ctx_for) -> None:
    ctx = ctx_for()
    with pytest.raises(InputError, match="at least one folio"):
        price_uniform(ctx.pm, 4 * KIB, 0, ctx.hw, ctx.params)


def test_empty_request_costs_nothing(ctx_for) -> None:
    ctx = ctx_for(engine="mt", workers=4)
    report = ctx.price(make_folios(4 * KIB, 0))
    assert report.total_s == 0 and report.bytes == 0 and report.throughput_gbps == 0
    assert len(report.results) == 0 and len(report.epochs.ids) == 0


# -- price_uniform == run_pipeline ----------------------------------------------------------------


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
                  **engine_args(engine, workers))
    dst = 1 if 1 in ctx.hw.nodes else 0  # a one-node profile moves within its node
    uniform = ctx.price_uniform(size, count, dst=dst)
    full = ctx.price(make_folios(size, count, dst=dst, pmd_size=ctx.hw.pmd_size))
    assert_reports_equal(uniform, full)
    assert uniform.bytes == size * count


def test_price_uniform_moves_between_the_nodes_asked(ctx_for) -> None:
    ctx = ctx_for("dram-cxl", engine="mt", workers=8)
    promote = ctx.price_uniform(2 * MIB, 600, src=1, dst=0)
    full = ctx.price(make_folios(2 * MIB, 600, src=1, dst=0))
    assert_reports_equal(promote, full)


# -- windowed pricing: many epochs in one call ----------------------------------------------------


@st.composite
def epoch_requests(draw) -> np.ndarray:
    """Folios of 1-6 epochs (ids with gaps), mixed sizes, tenants, node pairs, pinned and busy."""
    n_epochs = draw(st.integers(1, 6))
    ids = sorted(draw(st.sets(st.integers(0, 50), min_size=n_epochs, max_size=n_epochs)))
    parts = []
    for epoch in ids:
        n = draw(st.integers(1, 40))
        rows = np.zeros(n, dtype=FOLIO_DTYPE)
        rows["epoch"] = epoch
        rows["size"] = draw(st.lists(st.sampled_from([4 * KIB, 64 * KIB, 2 * MIB]), min_size=n,
                                     max_size=n))
        rows["tenant"] = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
        rows["flags"] = draw(st.lists(st.sampled_from([0, 0, 0, int(PINNED), int(BUSY)]),
                                      min_size=n, max_size=n))
        promote = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        rows["src"] = np.where(promote, 1, 0)
        rows["dst"] = np.where(promote, 0, 1)
        rows["reason"] = np.where(promote, Reason.NUMA_MISPLACED, Reason.DEMOTION)
        rows["mapcount"] = 1
        parts.append(rows)
    folios = np.concatenate(parts)
    folios["page"] = np.arange(len(folios))
    folios["flags"][folios["size"] == 2 * MIB] |= PMD_MAPPED  # THPs are PMD-mapped
    return folios


WINDOWED = dict(
    folios=epoch_requests(),
    profile=st.sampled_from(["zen3-epyc-ptdma", "gh200", "dram-cxl"]),
    engine=st.sampled_from(["cpu", "mt", "dma", "auto"]),
    max_folios=st.sampled_from([1, 3, 16, 512]),
)


def _windowed_ctx(ctx_for, profile: str, engine: str, max_folios: int):
    probe = ctx_for(profile)
    if engine != "auto" and probe.engines[engine].max_workers(probe.hw) < 1:
        engine = "cpu"
    return ctx_for(profile, {"batch.max_folios": max_folios, "account.policy": "split",
                             "isolate.busy_retries": 1}, **engine_args(engine))


@PROPERTY
@given(**WINDOWED)
def test_epoch_tenant_and_engine_costs_sum_to_the_totals(pm, ctx_for, folios, profile, engine,
                                                         max_folios) -> None:
    ctx = _windowed_ctx(ctx_for, profile, engine, max_folios)
    report = ctx.price(folios, initiator=-1)
    epochs = report.epochs
    assert epochs.ids.tolist() == sorted(set(folios["epoch"].tolist()))
    for stage, rows in epochs.stages.items():
        assert len(rows) == len(epochs.ids)
        assert_totals_equal(CostTotals.of(rows), report.stages[stage], where=(stage,))
    assert epochs.engines.keys() == report.engines.keys()
    for engine_name, rows in epochs.engines.items():
        assert_totals_equal(CostTotals.of(rows), report.engines[engine_name], where=(engine_name,))
    assert set(epochs.tenants) == set(folios["tenant"].tolist())
    for name in ("wall_s", "cpu_s", "engine_s", "worker_s", "failures", "retries"):
        per_epoch = sum(rows[name] for rows in epochs.stages.values())
        by_tenant = sum(rows[name] for rows in epochs.tenants.values())
        assert by_tenant == pytest.approx(per_epoch, rel=1e-9, abs=1e-18), name
    for name in ("bytes", "folios"):
        by_tenant = sum(rows[name] for rows in epochs.tenants.values())
        assert by_tenant.tolist() == epochs.stages["copy"][name].tolist(), name
    for tenant, rows in epochs.tenants.items():
        mine = (folios["tenant"] == tenant) & (report.results["status"] == MOVED)
        assert int(rows["bytes"].sum()) == int(folios["size"][mine].sum())
        assert report.accounting[str(tenant)]["cpu_s"] == pytest.approx(rows["cpu_s"].sum(),
                                                                        rel=1e-9, abs=1e-18)


@PROPERTY
@given(**WINDOWED)
def test_results_failed_are_the_pinned_and_batches_complete_together(
    pm, ctx_for, folios, profile, engine, max_folios
) -> None:
    spy = BatchSpy()
    pm.register(spy, name="spy")
    try:
        ctx = _windowed_ctx(ctx_for, profile, engine, max_folios)
        report = ctx.price(folios)
    finally:
        pm.unregister(name="spy")
    results = report.results
    assert len(results) == len(folios)
    pinned = (folios["flags"] & PINNED) != 0
    assert ((results["status"] == FAILED) == pinned).all()  # busy ones retry once and move
    max_retries = int(ctx.hw.p("stages.isolate.max_retries"))
    busy = ((folios["flags"] & BUSY) != 0) & ~pinned
    assert results["retries"].tolist() == np.where(pinned, max_retries, busy * 1).tolist()
    assert (results["done_s"] > 0).all()

    (plan,) = spy.plans
    moved = np.flatnonzero(~pinned)
    assert plan.folios["page"].tolist() == folios["page"][moved].tolist()
    assert (plan.nfolios <= max_folios).all()
    for start, stop in zip(plan.bounds[:-1], plan.bounds[1:], strict=True):
        rows = moved[start:stop]
        batch = folios[rows]
        assert len(set(batch["epoch"].tolist())) == 1  # a batch never spans two epochs
        assert len(set(zip(batch["src"].tolist(), batch["dst"].tolist(), strict=True))) == 1
        assert (results["done_s"][rows] == results["done_s"][rows[0]]).all()
    for index, epoch in enumerate(report.epochs.ids):
        mine = folios["epoch"] == epoch
        done = results["done_s"][mine & ~pinned]
        assert (np.diff(done) >= 0).all()  # batches complete one after another
        failed_done = results["done_s"][mine & pinned]
        if len(done) and len(failed_done):
            assert failed_done.max() <= done.min()  # failures give up before any batch
        # the epoch's last completion is its whole migration time
        last = results["done_s"][mine].max()
        assert last == pytest.approx(report.epochs.wall_s[index], rel=1e-9)


@PROPERTY
@given(**WINDOWED)
def test_many_epochs_in_one_call_equal_each_epoch_alone(ctx_for, folios, profile, engine,
                                                        max_folios) -> None:
    ctx = _windowed_ctx(ctx_for, profile, engine, max_folios)
    together = ctx.price(folios)
    for index, epoch in enumerate(together.epochs.ids):
        mine = folios["epoch"] == epoch
        alone = ctx.price(folios[mine])
        for stage in ("isolate", "batch", "copy", "remap"):
            row = together.epochs.stages[stage][index:index + 1]
            assert_totals_equal(CostTotals.of(row), alone.stages[stage], where=(epoch, stage))
        for name, totals in alone.engines.items():
            row = together.epochs.engines[name][index:index + 1]
            assert_totals_equal(CostTotals.of(row), totals, where=(epoch, name))
        assert together.results[mine]["status"].tolist() == alone.results["status"].tolist()
        assert together.results[mine]["retries"].tolist() == alone.results["retries"].tolist()
        assert together.results[mine]["done_s"] == pytest.approx(alone.results["done_s"],
                                                                 rel=1e-9)
        for tenant, rows in alone.epochs.tenants.items():
            assert rows["cpu_s"][0] == pytest.approx(together.epochs.tenants[tenant]["cpu_s"]
                                                     [index], rel=1e-9, abs=1e-18)


def test_folios_out_of_epoch_order_are_an_input_error(ctx_for) -> None:
    ctx = ctx_for()
    folios = folios_of([(1, 0, 4096, 0), (0, 0, 4096, 0)])
    with pytest.raises(InputError, match="folios must be in epoch order"):
        ctx.price(folios)


# -- batch plans ----------------------------------------------------------------------------------


@PROPERTY
@given(
    sizes=st.lists(st.sampled_from([4 * KIB, 16 * KIB, 64 * KIB, 2 * MIB]), max_size=2000),
    max_folios=st.integers(1, 600),
    engine=st.sampled_from(["cpu", "mt", "auto"]),
    load=st.sampled_from([0.0, 0.5, 0.9]),
)
def test_batch_plans_hold_every_folio_once(pm, ctx_for, sizes, max_folios, engine,
                                           load) -> None:
    spy = BatchSpy()
    pm.register(spy, name="spy")
    try:
        ctx = ctx_for(params={"batch.max_folios": max_folios, "system.load": load},
                      **engine_args(engine, 2 if engine == "mt" else 1))
        folios = make_folios(4 * KIB, len(sizes))
        folios["size"] = sizes
        folios["tenant"] = np.arange(len(sizes))
        ctx.price(folios)
    finally:
        pm.unregister(name="spy")
    (plan,) = spy.plans
    assert plan.folios["tenant"].tolist() == list(range(len(sizes)))
    assert plan.nfolios.sum() == len(sizes)
    assert (plan.nfolios >= 1).all()
    assert (plan.nfolios <= max_folios).all()
    assert len(plan.engine) == len(plan.workers) == len(plan.overhead) == plan.n_batches
    assert plan.overhead.dtype == COST_DTYPE
    if plan.n_batches:
        assert 0 <= plan.engine.min() and plan.engine.max() < len(plan.engines)
        assert (plan.workers >= 1).all()
    if engine != "auto":
        assert set(plan.engine_names()) <= {engine}


# -- conservation ---------------------------------------------------------------------------------


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
                      **engine_args(engine))
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
    assert_totals_equal(report.stages["isolate"], CostTotals.of(direct.costs), rel=1e-12)
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
        ctx = ctx_for(**engine_args(engine))
        folios = make_folios(2 * MIB, 20)
        folios["flags"] |= PINNED
        report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)
        assert report.bytes == 0 and report.folios == 0
        assert report.stages["isolate"].failures == 20
        assert report.stages["copy"] == CostTotals()
        assert report.total_s > 0 and report.throughput_gbps == 0.0


# -- accounting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", ["initiator", "kthread", "split"])
def test_payers_cpu_sums_to_total(ctx_for, engine: str, policy: str) -> None:
    ctx = ctx_for(params={"account.policy": policy}, **engine_args(engine))
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
    ctx = ctx_for(**engine_args(engine))
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


def test_scaled_report_equals_pricing_the_repetitions(ctx_for) -> None:
    """k repetitions of whole batches cost what pricing them all at once costs."""
    ctx = ctx_for(params={"account.policy": "kthread", "batch.max_folios": 50}, engine="mt",
                  workers=4)
    one = ctx.price(make_folios(2 * MIB, 100))
    for k in (1, 3, 7):
        assert_reports_equal(one.scaled(k), ctx.price(make_folios(2 * MIB, 100 * k)))
    assert one.requested_folios == 100  # scaling returns a new report


def test_report_sum_equals_pricing_both_epochs(ctx_for) -> None:
    ctx = ctx_for(params={"account.policy": "split", "batch.max_folios": 64}, engine="mt",
                  workers=4)
    first = make_folios(2 * MIB, 128, tenant=1)
    second = make_folios(64 * KIB, 64, tenant=2)
    second["epoch"] = 1
    both = ctx.price(np.concatenate([first, second]))
    assert_reports_equal(ctx.price(first) + ctx.price(second), both)


def test_report_sum_merges_engines_and_worker_counts(ctx_for) -> None:
    four = ctx_for(params={"account.policy": "kthread"}, engine="mt", workers=4)
    eight = ctx_for(params={"account.policy": "kthread"}, engine="mt", workers=8)
    cpu = ctx_for(engine="cpu")
    a = four.price(make_folios(2 * MIB, 100))
    both = a + cpu.price(make_folios(4 * KIB, 50))
    assert both.engine_workers == {"mt": [4], "cpu": [1]}
    assert set(both.accounting) == {"0", "kthread"}
    assert both.accounting["kthread"] == a.accounting["kthread"]
    assert (a + eight.price(make_folios(2 * MIB, 10))).engine_workers == {"mt": [4, 8]}


# -- plugins that break the contract --------------------------------------------------------------


class WrongCopy:
    @hookimpl(tryfirst=True)
    def migpolicy_copy(self, batches, engine):
        return np.zeros(batches.n_batches + 1, dtype=COST_DTYPE)


def _plan_on(folios: np.ndarray, engine: str, bounds: np.ndarray | None = None) -> BatchPlan:
    bounds = consecutive_batches(folios, 512) if bounds is None else bounds
    nb = len(bounds) - 1
    return BatchPlan(folios=folios, bounds=bounds, engines=(engine,),
                     engine=np.zeros(nb, dtype=np.int64), workers=np.ones(nb, dtype=np.int64),
                     overhead=zero_costs(nb))


class UnknownEngine:
    @hookimpl(tryfirst=True)
    def migpolicy_batch(self, folios):
        return _plan_on(folios, "warp")


class Reorders:
    """Returns the folios in reverse order."""

    @hookimpl(tryfirst=True)
    def migpolicy_batch(self, folios):
        return _plan_on(folios[::-1].copy(), "cpu")


class DropsOne:
    @hookimpl(tryfirst=True)
    def migpolicy_batch(self, folios):
        return _plan_on(folios[1:], "cpu")


class SpansEpochs:
    """One batch for everything, whatever the epochs."""

    @hookimpl(tryfirst=True)
    def migpolicy_batch(self, folios):
        return _plan_on(folios, "cpu", np.array([0, len(folios)]))


def _paged(n: int) -> np.ndarray:
    folios = make_folios(4 * KIB, n)
    folios["page"] = np.arange(n)
    return folios


@pytest.mark.parametrize(
    ("plugin", "message"),
    [(WrongCopy(), r"hook migpolicy_copy must return \d+ cost rows"),
     (UnknownEngine(), r"no plugin prices copy engine 'warp'"),
     (Reorders(), r"hook migpolicy_batch must keep the folios in the order given"),
     (DropsOne(), r"hook migpolicy_batch must return a BatchPlan holding every folio")],
)
def test_contract_violations_are_plugin_errors(pm, ctx_for, plugin, message) -> None:
    pm.register(plugin, name="bad")
    with pytest.raises(PluginError, match=message):
        ctx_for().price(_paged(10))


def test_reordering_folios_without_pages_is_a_plugin_error(pm, ctx_for) -> None:
    pm.register(Reorders(), name="bad")
    folios = make_folios(4 * KIB, 10)
    folios["size"][0] = 2 * MIB
    with pytest.raises(PluginError, match="must keep the folios in the order given"):
        ctx_for().price(folios)


def test_a_batch_spanning_two_epochs_is_a_plugin_error(pm, ctx_for) -> None:
    pm.register(SpansEpochs(), name="bad")
    folios = _paged(4)
    folios["epoch"] = [0, 0, 1, 1]
    with pytest.raises(PluginError, match="epoch"):
        ctx_for().price(folios)


# -- no state between runs ------------------------------------------------------------------------


def _timed_price(ctx, folios: np.ndarray) -> tuple[Report, float]:
    start = time.perf_counter()
    report = ctx.price(folios)
    return report, time.perf_counter() - start


def test_two_threads_pricing_at_once_get_their_own_reports(ctx_for) -> None:
    ctx = ctx_for("zen3-epyc-ptdma", {"account.policy": "split", "batch.max_folios": 64},
                  engine="mt", workers=4)
    requests = [folios_of([(e, t, size, 0) for e in range(8) for t in range(2)
                           for size in (4 * KIB, 64 * KIB, 2 * MIB) * 20]),
                folios_of([(e, 5, 2 * MIB, int(PINNED) * (e % 2)) for e in range(30)])]
    alone = [ctx.price(request) for request in requests]
    barrier = threading.Barrier(2)

    def work(which: int) -> list[tuple[Report, float]]:
        barrier.wait()
        return [_timed_price(ctx, requests[which]) for _ in range(25)]

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(work, (0, 1)))
    for which, reports in enumerate(runs):
        for report, elapsed in reports:
            assert_reports_equal(report, alone[which], rel=0)
            assert report.results.tobytes() == alone[which].results.tobytes()
            assert set(report.pricing_s) == set(STAGES)
            assert sum(report.pricing_s.values()) <= elapsed  # only its own stages' time


class SlowQuote:
    """Engine ``slow`` copies in 20 ms a call; the batch stage quotes it once before choosing it."""

    @hookimpl
    def migpolicy_copy_engines(self):
        return (CopyEngine("slow", "20 ms per call", "thread", lambda hw: 1,
                           modelled_only="test engine"),)

    @hookimpl
    def migpolicy_copy(self, batches, engine):
        if engine != "slow":
            return None
        time.sleep(0.02)
        return zero_costs(batches.n_batches)

    @hookimpl(tryfirst=True)
    def migpolicy_batch(self, folios, quote):
        plan = _plan_on(folios, "slow")
        quote(plan, "slow")
        return plan


def test_stage_timings_do_not_overlap_when_the_batch_stage_quotes(pm, ctx_for) -> None:
    pm.register(SlowQuote(), name="slow")
    report, elapsed = _timed_price(ctx_for(engine="slow"), _paged(10))
    assert sum(report.pricing_s.values()) <= elapsed


def test_reading_results_later_gives_what_pricing_alone_gives(ctx_for) -> None:
    ctx = ctx_for(params={"account.policy": "split", "batch.max_folios": 4})
    first = folios_of([(e, e % 2, 4096 << e, int(PINNED) * (e == 2)) for e in range(5)])
    second = folios_of([(0, 3, 2 * MIB, 0)] * 9)
    early = ctx.price(first)
    ctx.price(second)  # the context prices something else before the results are read
    fresh = ctx_for(params={"account.policy": "split", "batch.max_folios": 4}).price(first)
    assert early.results.tobytes() == fresh.results.tobytes()
    assert early.epochs.tenants.keys() == fresh.epochs.tenants.keys()
    for tenant, rows in fresh.epochs.tenants.items():
        assert early.epochs.tenants[tenant].tobytes() == rows.tobytes()


def test_a_report_does_not_change_when_the_request_array_is_reused(ctx_for) -> None:
    ctx = ctx_for(params={"account.policy": "split"})
    buffer = folios_of([(0, 1, 4096, 0)] * 5 + [(0, 2, 4096, 0)] * 5)
    report = ctx.price(buffer)
    buffer["tenant"] = 7  # the next epoch's requests, written into the same buffer
    buffer["size"] = 2 * MIB
    assert set(report.epochs.tenants) == {1, 2}
    assert set(report.accounting) == {"1", "2"}


class FailsOnce:
    """The copy stage of the first run takes 200 ms and then raises."""

    def __init__(self) -> None:
        self.failed = False

    @hookimpl(tryfirst=True)
    def migpolicy_copy(self):
        if not self.failed:
            self.failed = True
            time.sleep(0.2)
            raise RuntimeError("copy engine on fire")


def test_a_failed_run_leaves_nothing_in_the_next_report(pm, ctx_for) -> None:
    ctx = ctx_for()
    clean = ctx.price(_paged(10))
    pm.register(FailsOnce(), name="flaky")
    with pytest.raises(PluginError, match="copy engine on fire"):
        ctx.price(_paged(10))
    report, elapsed = _timed_price(ctx, _paged(10))
    assert_reports_equal(report, clean, rel=0)
    assert set(report.pricing_s) == set(STAGES)
    assert sum(report.pricing_s.values()) <= elapsed < 0.2
