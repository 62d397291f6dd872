"""The ``auto`` engine selector: which engine and how many workers each batch gets, and why."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import optuna
import pytest

from migpolicy.folios import make_folios
from migpolicy.hardware.model import free_threads
from migpolicy.pipeline import price_uniform
from migpolicy.plugins import auto_select

KIB, MIB = 1 << 10, 1 << 20


def plan_for(ctx, size: int, count: int, hw=None):
    hw = hw or ctx.hw
    folios = make_folios(size, count, pmd_size=hw.pmd_size)
    return ctx.pm.hook.migpolicy_batch(folios=folios, hw=hw, params=ctx.params)


def without_dma(hw):
    sections = {k: v for k, v in hw.sections.items() if k != "engines.dma"}
    return replace(hw, sections=sections, _flat={})


def test_declines_unless_engine_is_auto(ctx_for) -> None:
    ctx = ctx_for(engine="mt", workers=4)
    folios = make_folios(4 * KIB, 10)
    assert auto_select.migpolicy_batch(folios=folios, hw=ctx.hw, params=ctx.params) is None
    plan = ctx.pm.hook.migpolicy_batch(folios=folios, hw=ctx.hw, params=ctx.params)
    assert plan.engines == ("mt",) and plan.workers.tolist() == [4]


def test_small_batches_use_cpu(ctx_for) -> None:
    ctx = ctx_for(engine="auto")
    threshold = ctx.params["auto.min_batch_bytes"]
    count = max(1, threshold // (4 * KIB) - 1)
    plan = plan_for(ctx, 4 * KIB, count)
    assert set(plan.engine_names()) == {"cpu"}
    assert plan.workers.tolist() == [1]


def test_the_min_batch_threshold_is_strict(ctx_for) -> None:
    ctx = ctx_for(params={"auto.min_batch_bytes": 64 * KIB}, engine="auto")
    assert plan_for(ctx, 4 * KIB, 16).engine_names().tolist() != ["cpu"]
    assert plan_for(ctx, 4 * KIB, 15).engine_names().tolist() == ["cpu"]


@pytest.mark.parametrize("profile", ["zen3-epyc-ptdma", "gh200", "dram-cxl", "local"])
def test_large_folios_go_to_dma_when_there_are_channels(ctx_for, profile: str) -> None:
    ctx = ctx_for(profile, engine="auto")
    size = max(ctx.params["auto.dma_min_folio"], 4 * KIB)
    plan = plan_for(ctx, size, 600)
    assert set(plan.engine_names()) == {"dma"}
    channels = int(ctx.hw.p("engines.dma.channels"))
    assert (plan.workers == min(ctx.params["dma.channels"], channels)).all()


def test_large_folios_go_to_mt_without_dma(ctx_for) -> None:
    ctx = ctx_for(engine="auto")
    plan = plan_for(ctx, 2 * MIB, 600, hw=without_dma(ctx.hw))
    assert set(plan.engine_names()) == {"mt"}


def test_dma_min_folio_threshold(ctx_for) -> None:
    ctx = ctx_for(params={"auto.dma_min_folio": 64 * KIB}, engine="auto")
    assert set(plan_for(ctx, 64 * KIB, 512).engine_names()) == {"dma"}
    assert set(plan_for(ctx, 16 * KIB, 512).engine_names()) == {"mt"}


def test_high_load_sends_batches_to_dma(ctx_for) -> None:
    busy = ctx_for(params={"system.load": 0.8, "auto.dma_load": 0.75}, engine="auto")
    assert set(plan_for(busy, 64 * KIB, 512).engine_names()) == {"dma"}
    at_threshold = ctx_for(params={"system.load": 0.75, "auto.dma_load": 0.75}, engine="auto")
    assert set(plan_for(at_threshold, 64 * KIB, 512).engine_names()) == {"dma"}
    calm = ctx_for(params={"system.load": 0.5, "auto.dma_load": 0.75}, engine="auto")
    assert set(plan_for(calm, 64 * KIB, 512).engine_names()) == {"mt"}
    # without channels, load cannot offload anything
    plan = plan_for(busy, 64 * KIB, 512, hw=without_dma(busy.hw))
    assert set(plan.engine_names()) == {"mt"}


def test_small_batches_stay_on_cpu_even_under_load(ctx_for) -> None:
    ctx = ctx_for(params={"system.load": 0.9}, engine="auto")
    assert set(plan_for(ctx, 4 * KIB, 4).engine_names()) == {"cpu"}


def test_threads_are_capped_by_free_cpus(ctx_for) -> None:
    workers = []
    for load in (0.0, 0.5, 0.8, 0.9, 0.99):
        ctx = ctx_for(params={"system.load": load, "auto.dma_load": 1.0,
                              "auto.threads": 64}, engine="auto")
        plan = plan_for(ctx, 64 * KIB, 512)
        assert set(plan.engine_names()) == {"mt"}
        (threads,) = set(plan.workers.tolist())
        node = ctx.hw.nodes[0]
        assert 1 <= threads <= free_threads(node, load)
        assert threads <= ctx.hw.p("engines.mt.max_threads")
        workers.append(threads)
    assert workers == sorted(workers, reverse=True)
    assert workers[0] > workers[-1]


def test_threads_are_capped_by_the_profile(ctx_for) -> None:
    ctx = ctx_for("local", params={"auto.threads": 64, "auto.dma_load": 1.0}, engine="auto")
    plan = plan_for(ctx, 64 * KIB, 512)
    assert set(plan.engine_names()) == {"mt"}
    assert (plan.workers <= ctx.hw.p("engines.mt.max_threads")).all()


def test_requested_threads_are_used_when_free(ctx_for) -> None:
    ctx = ctx_for(params={"auto.threads": 4}, engine="auto")
    plan = plan_for(ctx, 64 * KIB, 512)
    assert plan.workers.tolist() == [4]


def test_dma_channels_capped_by_profile(ctx_for) -> None:
    ctx = ctx_for(params={"dma.channels": 64}, engine="auto")
    plan = plan_for(ctx, 2 * MIB, 10)
    assert (plan.workers == ctx.hw.p("engines.dma.channels")).all()
    ctx = ctx_for(params={"dma.channels": 2}, engine="auto")
    assert (plan_for(ctx, 2 * MIB, 10).workers == 2).all()


def test_mixed_batches_choose_per_batch(ctx_for) -> None:
    ctx = ctx_for(params={"batch.max_folios": 4}, engine="auto")
    folios = np.concatenate([make_folios(2 * MIB, 4), make_folios(64 * KIB, 8),
                             make_folios(4 * KIB, 2)])
    plan = ctx.pm.hook.migpolicy_batch(folios=folios, hw=ctx.hw, params=ctx.params)
    assert plan.engine_names().tolist() == ["dma", "mt", "mt", "cpu"]


def test_priced_through_the_pipeline(ctx_for) -> None:
    ctx = ctx_for(engine="auto")
    report = price_uniform(ctx.pm, 2 * MIB, 1000, ctx.hw, ctx.params)
    assert set(report.engines) == {"dma"}
    report = price_uniform(ctx.pm, 4 * KIB, 10, ctx.hw, ctx.params)
    assert set(report.engines) == {"cpu"}


def test_thresholds_are_tunable(pm, ctx_for) -> None:
    names = {p.name for p in auto_select.PARAMETERS if p.tunable}
    assert {"auto.min_batch_bytes", "auto.dma_min_folio", "auto.dma_load",
            "auto.threads"} <= names
    ctx = ctx_for("local")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(10):
        trial = study.ask()
        space = auto_select.migpolicy_search_space(trial=trial, hw=ctx.hw)
        assert set(space) == names
        assert 1 <= space["auto.threads"] <= ctx.hw.p("engines.mt.max_threads")
        study.tell(trial, 0.0)
