"""Kernel-default isolate, batch and remap stages, priced from the profile's parameters."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.context import build_context
from migpolicy.contract import (
    BUSY,
    COST_DTYPE,
    FAILED,
    MOVED,
    PINNED,
    Reason,
    hookimpl,
    make_folios,
)
from migpolicy.plugins._pricing import batch_nodes

KIB, MIB = 1 << 10, 1 << 20
NS = 1e-9


def isolate(ctx, folios):
    return ctx.pm.hook.migpolicy_isolate(folios=folios, hw=ctx.hw, params=ctx.params)


def no_quote(batches, engine):
    raise AssertionError("the kernel's batch stage on a fixed engine asks for no price")


def batch(ctx, folios):
    """The batch stage as the pipeline calls it; these tests fix the engine."""
    assert ctx.engine != "auto"
    return ctx.pm.hook.migpolicy_batch(folios=folios, hw=ctx.hw, params=ctx.params,
                                       engines=ctx.engines, quote=no_quote)


def remap(ctx, plan):
    return ctx.pm.hook.migpolicy_remap(batches=plan, hw=ctx.hw, params=ctx.params)


# -- isolate ------------------------------------------------------------------------------------


def test_isolate_prices_each_folio(ctx_for) -> None:
    ctx = ctx_for()
    folios = np.concatenate([make_folios(2 * MIB, 3), make_folios(64 * KIB, 2),
                             make_folios(4 * KIB, 1)])
    result = isolate(ctx, folios)
    assert np.asarray(result.costs).dtype == COST_DTYPE and len(result.costs) == 6
    assert result.isolated.all()
    assert (result.costs["folios"] == 1).all()
    assert (result.costs["cpu_s"] == result.costs["wall_s"]).all()
    assert (result.costs["failures"] == 0).all() and (result.costs["retries"] == 0).all()
    p = ctx.hw.p
    ptes = np.array([1, 1, 1, 16, 16, 1])
    expected = (p("stages.isolate.folio_ns") + p("stages.isolate.pte_ns") * ptes) * NS
    assert result.costs["wall_s"] == pytest.approx(expected)


def test_unmapping_an_mthp_costs_more_than_a_thp(ctx_for) -> None:
    ctx = ctx_for()
    assert ctx.hw.p("stages.isolate.pte_ns") > 0
    thp = isolate(ctx, make_folios(2 * MIB, 1)).costs["wall_s"][0]
    mthp = isolate(ctx, make_folios(1 * MIB, 1)).costs["wall_s"][0]
    assert mthp > thp


def test_isolate_cost_grows_with_mapcount(ctx_for) -> None:
    ctx = ctx_for()
    folio_s = ctx.hw.p("stages.isolate.folio_ns") * NS
    one = isolate(ctx, make_folios(64 * KIB, 1, mapcount=1)).costs["wall_s"][0]
    three = isolate(ctx, make_folios(64 * KIB, 1, mapcount=3)).costs["wall_s"][0]
    assert three - folio_s == pytest.approx(3 * (one - folio_s))


@pytest.mark.parametrize("needed", [0, 1, 5, 10, 11, 100])
def test_pinned_fail_busy_are_retried(ctx_for, needed: int) -> None:
    ctx = ctx_for(params={"isolate.busy_retries": needed})
    max_retries = int(ctx.hw.p("stages.isolate.max_retries"))
    folios = make_folios(4 * KIB, 4)
    folios["flags"] = [0, PINNED, BUSY, PINNED | BUSY]
    result = isolate(ctx, folios)
    busy_retries = min(needed, max_retries)
    busy_fails = needed > max_retries
    assert result.isolated.tolist() == [True, False, not busy_fails, False]
    assert result.costs["failures"].tolist() == [0, 1, int(busy_fails), 1]
    assert result.costs["retries"].tolist() == [0, max_retries, busy_retries, max_retries]
    base = result.costs["wall_s"][0]
    retry_s = ctx.hw.p("stages.isolate.retry_ns") * NS
    assert result.costs["wall_s"][1] == pytest.approx(base + max_retries * retry_s)
    assert result.costs["wall_s"][2] == pytest.approx(base + busy_retries * retry_s)


def test_isolate_of_nothing(ctx_for) -> None:
    result = isolate(ctx_for(), make_folios(4 * KIB, 0))
    assert len(result.costs) == 0 and len(result.isolated) == 0


# -- batch --------------------------------------------------------------------------------------


def test_kernel_batch_uses_the_fixed_engine(ctx_for) -> None:
    ctx = ctx_for(params={"batch.max_folios": 100}, engine="mt", workers=6)
    assert ctx.params["mt.threads"] == 6
    plan = batch(ctx, make_folios(4 * KIB, 250))
    assert plan.engines == ("mt",)
    assert plan.nfolios.tolist() == [100, 100, 50]
    assert plan.engine.tolist() == [0, 0, 0]
    assert plan.workers.tolist() == [6, 6, 6]
    assert plan.overhead.dtype == COST_DTYPE and len(plan.overhead) == 3
    batch_s = ctx.hw.p("stages.batch.batch_ns") * NS
    assert plan.overhead["wall_s"] == pytest.approx([batch_s] * 3)
    assert (plan.overhead["cpu_s"] == plan.overhead["wall_s"]).all()


@pytest.mark.parametrize(("engine", "param", "value"),
                         [("mt", "mt.threads", 12), ("dma", "dma.channels", 5),
                          ("gpu", "gpu.streams", 2), ("cpu", None, 1)])
def test_each_engine_uses_its_own_worker_parameter(ctx_for, engine, param, value) -> None:
    params = {param: value} if param else {}
    plan = batch(ctx_for(params=params, engine=engine), make_folios(2 * MIB, 3))
    assert plan.engines == (engine,) and plan.workers.tolist() == [value]


def test_the_batch_hook_is_given_every_engine(ctx_for) -> None:
    ctx = ctx_for(engine="dma", workers=3)
    seen = {}

    class Spy:
        @hookimpl(hookwrapper=True)
        def migpolicy_batch(self, engines, quote):
            seen["engines"], seen["quote"] = engines, quote
            yield

    ctx.pm.register(Spy(), name="spy")
    report = ctx.price(make_folios(2 * MIB, 4))
    assert {"cpu", "mt", "dma", "gpu"} <= set(seen["engines"])
    assert seen["engines"]["dma"].workers_param == "dma.channels"
    # the quote prices a plan as the copy stage does
    quote = seen["quote"]
    quoted = quote(batch(ctx, make_folios(2 * MIB, 4)), "dma")
    assert quoted["wall_s"].sum() == pytest.approx(report.stages["copy"].wall_s)


def test_default_batch_is_the_kernels_512(ctx_for) -> None:
    ctx = ctx_for()
    assert ctx.params["batch.max_folios"] == 512
    assert batch(ctx, make_folios(4 * KIB, 1000)).nfolios.tolist() == [512, 488]


def test_batch_of_nothing(ctx_for) -> None:
    plan = batch(ctx_for(), make_folios(4 * KIB, 0))
    assert plan.n_batches == 0 and len(plan.overhead) == 0


def test_batches_split_at_epochs_and_node_pairs(ctx_for) -> None:
    ctx = ctx_for(params={"batch.max_folios": 3})
    folios = make_folios(4 * KIB, 10)
    folios["epoch"] = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    folios["dst"] = [1, 1, 1, 1, 1, 1, 1, 2, 2, 1]
    plan = batch(ctx, folios)
    # epoch 0: 3 + 1; epoch 1: 2; epoch 2: (0→1) 1, (0→2) 2, (0→1) 1
    assert plan.bounds.tolist() == [0, 3, 4, 6, 7, 9, 10]


@st.composite
def folio_runs(draw):
    """Folios in epoch order with random node pairs and sizes, and a batch limit."""
    n = draw(st.integers(min_value=0, max_value=200))
    steps = draw(st.lists(st.integers(min_value=0, max_value=2), min_size=n, max_size=n))
    pairs = draw(st.lists(st.sampled_from([(0, 1), (1, 0), (0, 2)]), min_size=n, max_size=n))
    folios = make_folios(4 * KIB, n)
    folios["epoch"] = np.cumsum(steps)
    folios["src"] = [s for s, _ in pairs]
    folios["dst"] = [d for _, d in pairs]
    folios["size"] = draw(st.lists(st.sampled_from([4 * KIB, 64 * KIB, 2 * MIB]),
                                   min_size=n, max_size=n))
    folios["page"] = np.arange(n)
    return folios, draw(st.integers(min_value=1, max_value=40))


@pytest.fixture(scope="module")
def default_ctx():
    return build_context()


@settings(max_examples=60, deadline=None)
@given(folio_runs())
def test_kernel_batches_are_consecutive_within_one_epoch_and_node_pair(default_ctx,
                                                                       case) -> None:
    folios, most = case
    ctx = replace(default_ctx, params={**default_ctx.params, "batch.max_folios": most})
    plan = batch(ctx, folios)
    bounds = plan.bounds.tolist()
    assert bounds[0] == 0 and bounds[-1] == len(folios)
    assert plan.folios["page"].tolist() == list(range(len(folios)))  # every folio, in order
    key = list(zip(folios["epoch"].tolist(), folios["src"].tolist(), folios["dst"].tolist(),
                   strict=True))
    for start, stop in itertools.pairwise(bounds):
        assert 1 <= stop - start <= most
        assert len(set(key[start:stop])) == 1  # one epoch, one node pair
        # greedy, as migrate_pages_batch(): a batch ends full or where the pair or epoch changes
        if stop < len(folios):
            assert stop - start == most or key[stop] != key[stop - 1]
    assert plan.n_batches == len(plan.overhead) == len(plan.workers) == len(plan.engine)


def test_a_batch_never_mixes_migration_reasons(ctx_for) -> None:
    ctx = ctx_for()
    folios = make_folios(64 * KIB, 8, reason=Reason.NUMA_MISPLACED)
    folios["reason"][4:] = Reason.DAMON
    plan = batch(ctx, folios)
    for start, stop in itertools.pairwise(plan.bounds.tolist()):
        assert len(set(plan.folios["reason"][start:stop].tolist())) == 1


def test_batch_nodes_groups_by_node_pair() -> None:
    from migpolicy.costs import zero_costs
    from migpolicy.folios import BatchPlan

    folios = np.concatenate([make_folios(4 * KIB, 2, src=0, dst=1),
                             make_folios(4 * KIB, 2, src=1, dst=0),
                             make_folios(4 * KIB, 2, src=0, dst=1)])
    plan = BatchPlan(folios=folios, bounds=np.array([0, 2, 4, 6]), engines=("cpu",),
                     engine=np.zeros(3, dtype=np.int64), workers=np.ones(3, dtype=np.int64),
                     overhead=zero_costs(3))
    groups = {(src, dst): mask.tolist() for mask, src, dst in batch_nodes(plan)}
    assert groups == {(0, 1): [True, False, True], (1, 0): [False, True, False]}


# -- remap --------------------------------------------------------------------------------------


def test_remap_prices_each_batch(ctx_for) -> None:
    ctx = ctx_for(params={"batch.max_folios": 3})
    folios = np.concatenate([make_folios(2 * MIB, 3), make_folios(64 * KIB, 2, mapcount=2)])
    plan = batch(ctx, folios)
    costs = remap(ctx, plan)
    assert costs.dtype == COST_DTYPE and len(costs) == plan.n_batches == 2
    assert costs["folios"].tolist() == [3, 2]
    assert costs["bytes"].tolist() == [6 * MIB, 128 * KIB]
    assert (costs["cpu_s"] == costs["wall_s"]).all()
    p = ctx.hw.p
    folio_ns, pte_ns = p("stages.remap.folio_ns"), p("stages.remap.pte_ns")
    expected = [3 * (folio_ns + pte_ns) * NS, 2 * (folio_ns + pte_ns * 16 * 2) * NS]
    assert costs["wall_s"] == pytest.approx(expected)


def test_remapping_an_mthp_costs_more_than_a_thp(ctx_for) -> None:
    ctx = ctx_for()
    thp = remap(ctx, batch(ctx, make_folios(2 * MIB, 4)))["wall_s"][0]
    mthp = remap(ctx, batch(ctx, make_folios(1 * MIB, 4)))["wall_s"][0]
    assert mthp > thp


def test_remap_on_64k_base_pages(ctx_for) -> None:
    ctx = ctx_for("gh200")
    assert ctx.hw.base_page == 64 * KIB
    p = ctx.hw.p
    costs = remap(ctx, batch(ctx, make_folios(2 * MIB, 1, pmd_size=ctx.hw.pmd_size)))
    expected = (p("stages.remap.folio_ns") + p("stages.remap.pte_ns") * 32) * NS
    assert costs["wall_s"][0] == pytest.approx(expected)


def test_folios_that_fail_isolation_are_not_remapped(ctx_for) -> None:
    ctx = ctx_for()
    folios = make_folios(2 * MIB, 5)
    folios["page"] = [10, 11, 12, 13, 14]
    folios["flags"][[1, 3]] |= PINNED
    report = ctx.price(folios)
    p = ctx.hw.p
    remap_s = 3 * (p("stages.remap.folio_ns") + p("stages.remap.pte_ns")) * NS
    assert report.stages["remap"].wall_s == pytest.approx(remap_s)
    assert report.stages["remap"].folios == 3 and report.stages["remap"].bytes == 6 * MIB
    assert report.results["status"].tolist() == [MOVED, FAILED, MOVED, FAILED, MOVED]
