"""Kernel-default isolate, batch and remap stages, priced from the profile's parameters."""

from __future__ import annotations

import numpy as np
import pytest

from migpolicy.costs import COST_DTYPE
from migpolicy.folios import BUSY, PINNED, make_folios
from migpolicy.plugins import kernel_batch
from migpolicy.plugins._pricing import batch_nodes

KIB, MIB = 1 << 10, 1 << 20
NS = 1e-9


def isolate(ctx, folios):
    return ctx.pm.hook.migpolicy_isolate(folios=folios, hw=ctx.hw, params=ctx.params)


def batch(ctx, folios):
    return ctx.pm.hook.migpolicy_batch(folios=folios, hw=ctx.hw, params=ctx.params)


def remap(ctx, plan):
    return ctx.pm.hook.migpolicy_remap(batches=plan, hw=ctx.hw, params=ctx.params)


# -- isolate ------------------------------------------------------------------------------------


def test_isolate_prices_each_folio(ctx_for) -> None:
    ctx = ctx_for()
    folios = np.concatenate([make_folios(2 * MIB, 3), make_folios(64 * KIB, 2),
                             make_folios(4 * KIB, 1)])
    result = isolate(ctx, folios)
    assert result.costs.dtype == COST_DTYPE and len(result.costs) == 6
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


@pytest.mark.parametrize(
    ("n", "most", "bounds"),
    [(0, 512, [0]), (1, 512, [0, 1]), (512, 512, [0, 512]), (513, 512, [0, 512, 513]),
     (1025, 512, [0, 512, 1024, 1025]), (3, 1, [0, 1, 2, 3])],
)
def test_split_batches(n: int, most: int, bounds: list[int]) -> None:
    assert kernel_batch.split_batches(n, most).tolist() == bounds


def test_kernel_batch_uses_the_fixed_engine(ctx_for) -> None:
    ctx = ctx_for(params={"batch.max_folios": 100}, engine="mt", workers=6)
    plan = batch(ctx, make_folios(4 * KIB, 250))
    assert plan.engines == ("mt",)
    assert plan.nfolios.tolist() == [100, 100, 50]
    assert plan.engine.tolist() == [0, 0, 0]
    assert plan.workers.tolist() == [6, 6, 6]
    assert plan.overhead.dtype == COST_DTYPE and len(plan.overhead) == 3
    batch_s = ctx.hw.p("stages.batch.batch_ns") * NS
    assert plan.overhead["wall_s"] == pytest.approx([batch_s] * 3)
    assert (plan.overhead["cpu_s"] == plan.overhead["wall_s"]).all()


def test_default_batch_is_the_kernels_512(ctx_for) -> None:
    ctx = ctx_for()
    assert ctx.params["batch.max_folios"] == 512
    assert batch(ctx, make_folios(4 * KIB, 1000)).nfolios.tolist() == [512, 488]


def test_batch_of_nothing(ctx_for) -> None:
    plan = batch(ctx_for(), make_folios(4 * KIB, 0))
    assert plan.n_batches == 0 and len(plan.overhead) == 0


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
