"""The ``auto`` engine selector: per batch, the engine and worker count of lowest predicted cost.

Every check prices the candidates independently, one fixed engine and worker
count at a time through the ordinary pipeline (``build_context(engine=...,
workers=...)``), and compares auto's choice with the cheapest of them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from migpolicy.context import build_context
from migpolicy.contract import (
    ASYNC_REASONS,
    CopyEngine,
    Parameter,
    Reason,
    hookimpl,
    make_folios,
    zero_costs,
)
from migpolicy.errors import InputError
from migpolicy.plugin_manager import get_plugin_manager

KIB, MIB = 1 << 10, 1 << 20
#: The V2-kernel fit of the RFC platform: the choices below were worked out on its numbers.
V2 = "zen3-epyc-ptdma-6.14"
#: The worker parameter of each built-in engine (cpu copies with one thread).
WORKER_PARAM = {"cpu": None, "mt": "mt.threads", "dma": "dma.channels", "gpu": "gpu.streams"}


def folios_for(ctx, size: int, count: int, reason: Reason = Reason.SYSCALL) -> np.ndarray:
    dst = 1 if 1 in ctx.hw.nodes else 0
    return make_folios(size, count, dst=dst, pmd_size=ctx.hw.pmd_size, reason=reason)


def limit(ctx, name: str) -> int:
    """The most workers auto may give ``name``: its parameter, capped by the profile."""
    engine = ctx.engines[name]
    param = WORKER_PARAM.get(name, engine.workers_param or None)
    wanted = int(ctx.params[param]) if param else 1
    return min(wanted, engine.max_workers(ctx.hw))


def grid(ctx, folios: np.ndarray, every: bool = False) -> list[tuple[str, int]]:
    """Candidates: every engine serving the folios' node pair with workers on the profile,
    at 1, 2, 4 ... and its limit (``every``: at every worker count from 1 to the limit).
    """
    src, dst = int(folios["src"][0]), int(folios["dst"][0])
    out = []
    for name, engine in ctx.engines.items():
        if not engine.serves(ctx.hw, src, dst):
            continue
        top = limit(ctx, name)
        for w in range(1, top + 1):
            if every or w & (w - 1) == 0 or w == top:
                out.append((name, w))
    return out


def fixed_copy(ctx, hw: str, folios: np.ndarray, name: str, workers: int) -> tuple[float, float]:
    """(wall_s, cpu_s) of the copy stage with ``name`` fixed at ``workers``, else as ``ctx``."""
    worker_params = {e.workers_param for e in ctx.engines.values()}
    params = {k: v for k, v in ctx.params.items() if k != "engine" and k not in worker_params}
    run = build_context(pm=ctx.pm, hw=hw, params={**params, "engine": name, "workers": workers})
    copy = run.price(folios).stages["copy"]
    return copy.wall_s, copy.cpu_s


def costs_of(ctx, hw: str, folios: np.ndarray, weight: float,
             every: bool = False) -> dict[tuple[str, int], float]:
    """Each candidate's cost, ``wall_s + weight * cpu_s``, priced with the engine fixed."""
    out = {}
    for name, w in grid(ctx, folios, every):
        wall, cpu = fixed_copy(ctx, hw, folios, name, w)
        out[name, w] = wall + weight * cpu
    return out


def chosen(report) -> tuple[str, int]:
    """The one (engine, workers) a single-batch report used."""
    ((name, workers),) = report.engine_workers.items()
    (count,) = workers
    return name, count


def contract_quote(ctx):
    """A batch plugin's quote as the contract defines it: what the copy stage would charge."""

    def quote(batches, engine):
        return ctx.pm.hook.migpolicy_copy(batches=batches, engine=engine, hw=ctx.hw,
                                          params=ctx.params, cache=ctx.cache)

    return quote


def plan_of(ctx, folios):
    return ctx.pm.hook.migpolicy_batch(folios=folios, hw=ctx.hw, params=ctx.params,
                                       engines=ctx.engines, quote=contract_quote(ctx))


# -- a fixed engine --------------------------------------------------------------------------


def test_declines_unless_engine_is_auto(ctx_for) -> None:
    ctx = ctx_for(engine="mt", workers=4)

    def no_quote(batches, engine):
        raise AssertionError("a fixed engine needs no quote")

    folios = make_folios(4 * KIB, 10)
    plan = ctx.pm.hook.migpolicy_batch(folios=folios, hw=ctx.hw, params=ctx.params,
                                       engines=ctx.engines, quote=no_quote)
    assert plan.engines == ("mt",) and plan.workers.tolist() == [4]


# -- the cheapest candidate ------------------------------------------------------------------


CASES = [
    ("zen3-epyc-ptdma", 4 * KIB, 4, {}),
    ("zen3-epyc-ptdma", 4 * KIB, 512, {}),
    ("zen3-epyc-ptdma", 64 * KIB, 16, {}),
    ("zen3-epyc-ptdma", 2 * MIB, 512, {}),
    ("zen3-epyc-ptdma", 64 * KIB, 512, {"system.load": 0.9}),
    ("gh200", 4 * KIB, 512, {"mt.threads": 72}),
    ("dram-cxl", 2 * MIB, 1, {}),
    ("local", 2 * MIB, 64, {}),
]


@pytest.mark.parametrize(("profile", "size", "count", "extra"), CASES)
def test_a_synchronous_batch_goes_to_the_fastest_candidate(ctx_for, profile, size, count,
                                                          extra) -> None:
    ctx = ctx_for(profile, params={**extra, "auto.cpu_weight": 0.0}, engine="auto")
    folios = folios_for(ctx, size, count, Reason.SYSCALL)
    report = ctx.price(folios)
    costs = costs_of(ctx, profile, folios, weight=0.0)
    best = min(costs.values())
    assert report.stages["copy"].wall_s == pytest.approx(best, rel=1e-9)
    assert costs[chosen(report)] == pytest.approx(best, rel=1e-9)
    # the 1, 2, 4 ... grid lands close to the best of every worker count
    every = min(costs_of(ctx, profile, folios, weight=0.0, every=True).values())
    assert every <= best <= every * 1.05


def test_gpu_wins_large_folios_on_gh200(ctx_for) -> None:
    ctx = ctx_for("gh200", params={"gpu.streams": 4}, engine="auto")
    folios = folios_for(ctx, 2 * MIB, 512)
    name, streams = chosen(ctx.price(folios))
    assert name == "gpu" and 1 <= streams <= 4
    gpu = fixed_copy(ctx, "gh200", folios, "gpu", streams)[0]
    for other in ("cpu", "mt", "dma"):
        for w in range(1, limit(ctx, other) + 1, 3):
            assert fixed_copy(ctx, "gh200", folios, other, w)[0] > gpu, (other, w)


def test_the_gpu_moves_only_to_or_from_gpu_memory(ctx_for) -> None:
    """A GPU copy engine moves between host memory and its own HBM, not between two sockets."""
    gh200 = ctx_for("gh200", engine="auto")
    assert [gh200.hw.node(n).kind for n in (0, 1)] == ["dram", "hbm"]
    assert chosen(gh200.price(folios_for(gh200, 2 * MIB, 512)))[0] == "gpu"
    zen3 = ctx_for(V2, params={"auto.async_cpu_weight": 64.0}, engine="auto")
    assert zen3.engines["gpu"].max_workers(zen3.hw) == 2  # a PCIe GPU is there ...
    folios = folios_for(zen3, 4 * KIB, 512, Reason.DEMOTION)
    # ... and by its price alone it would win this demotion between the two sockets
    weighted = {name: wall + 64.0 * cpu for name, (wall, cpu) in
                ((name, fixed_copy(zen3, V2, folios, name, limit(zen3, name)))
                 for name in ("gpu", "mt", "dma", "cpu"))}
    assert min(weighted, key=weighted.get) == "gpu"
    assert chosen(zen3.price(folios))[0] != "gpu"


@pytest.mark.parametrize("reason", list(Reason))
def test_asynchronous_reasons_trade_wall_time_for_cpu_time(ctx_for, reason: Reason) -> None:
    """kswapd, kcompactd and kdamond stall no task: their CPU time is what costs."""
    weights = {"auto.cpu_weight": 0.0, "auto.async_cpu_weight": 64.0}
    ctx = ctx_for(V2, params=weights, engine="auto")
    folios = folios_for(ctx, 64 * KIB, 512, reason)
    report = ctx.price(folios)
    in_a_kthread = reason in (Reason.COMPACTION, Reason.DEMOTION, Reason.DAMON)
    assert (reason in ASYNC_REASONS) == in_a_kthread
    weight = 64.0 if in_a_kthread else 0.0
    costs = costs_of(ctx, ctx.hw.name, folios, weight)
    copy = report.stages["copy"]
    assert copy.wall_s + weight * copy.cpu_s == pytest.approx(min(costs.values()), rel=1e-9)
    name, _ = chosen(report)
    assert name == ("dma" if in_a_kthread else "mt")


def test_async_choice_uses_less_cpu_and_more_wall_time(ctx_for) -> None:
    ctx = ctx_for(V2, params={"auto.async_cpu_weight": 64.0}, engine="auto")
    sync = ctx.price(folios_for(ctx, 64 * KIB, 512, Reason.NUMA_MISPLACED)).stages["copy"]
    demote = ctx.price(folios_for(ctx, 64 * KIB, 512, Reason.DEMOTION)).stages["copy"]
    assert demote.cpu_s < sync.cpu_s / 4
    assert demote.wall_s > sync.wall_s


def test_a_synchronous_cpu_weight_counts_too(ctx_for) -> None:
    folios = folios_for(ctx_for(V2), 64 * KIB, 512, Reason.SYSCALL)
    fast = ctx_for(V2, params={"auto.cpu_weight": 0.0}, engine="auto")
    frugal = ctx_for(V2, params={"auto.cpu_weight": 4.0}, engine="auto")
    assert chosen(fast.price(folios))[0] == "mt"
    copy = frugal.price(folios).stages["copy"]
    costs = costs_of(frugal, frugal.hw.name, folios, weight=4.0)
    assert copy.wall_s + 4.0 * copy.cpu_s == pytest.approx(min(costs.values()), rel=1e-9)
    assert copy.cpu_s < fast.price(folios).stages["copy"].cpu_s


# -- third-party engines ---------------------------------------------------------------------


class Teleport:
    """A third-party engine copying at 1 TB/s per lane, up to ``lanes`` lanes on any profile."""

    def __init__(self, name: str = "teleport", gbps: float = 1000.0, lanes: int = 2,
                 serves=lambda hw, src, dst: True) -> None:
        self.name, self.gbps, self.lanes, self.serves = name, gbps, lanes, serves
        self.param = f"{name}.lanes"

    @hookimpl
    def migpolicy_copy_engines(self):
        return (CopyEngine(name=self.name, summary="test engine", worker_unit="lane",
                           max_workers=lambda hw: self.lanes, workers_param=self.param,
                           serves=self.serves),)

    @hookimpl
    def migpolicy_parameters(self):
        return (Parameter(self.param, 8, "int", "lanes", low=1, high=64,
                          when={"engine": (self.name, "auto")}),)

    @hookimpl
    def migpolicy_copy(self, batches, engine):
        if engine != self.name:
            return None
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = batches.nbytes / (batches.workers * self.gbps * 1e9)
        rows["cpu_s"] = 1e-9
        rows["bytes"] = batches.nbytes
        rows["folios"] = batches.nfolios
        return rows


def with_plugin(*plugins):
    pm = get_plugin_manager()
    for plugin in plugins:
        pm.register(plugin, name=plugin.name)
    return pm


@pytest.mark.parametrize(("lanes_param", "lanes_hw", "expected"),
                         [(8, 2, 2), (1, 2, 1), (3, 64, 3), (64, 5, 5)])
def test_a_cheaper_third_party_engine_is_chosen(lanes_param, lanes_hw, expected) -> None:
    pm = with_plugin(Teleport(lanes=lanes_hw))
    ctx = build_context(pm=pm, params={"engine": "auto", "teleport.lanes": lanes_param})
    report = ctx.price(folios_for(ctx, 2 * MIB, 512))
    assert chosen(report) == ("teleport", expected)
    wall, _ = fixed_copy(ctx, ctx.hw.name, folios_for(ctx, 2 * MIB, 512), "teleport", expected)
    assert report.stages["copy"].wall_s == pytest.approx(wall)


def test_a_slower_third_party_engine_is_not(ctx_for) -> None:
    pm = with_plugin(Teleport(name="snail", gbps=0.001))
    ctx = build_context(pm=pm, params={"engine": "auto"})
    folios = folios_for(ctx, 2 * MIB, 512)
    assert chosen(ctx.price(folios)) == chosen(ctx_for(engine="auto").price(folios))


def test_a_third_party_engine_gets_only_the_node_pairs_it_serves() -> None:
    pm = with_plugin(Teleport(serves=lambda hw, src, dst: (src, dst) == (0, 1)))
    ctx = build_context(pm=pm, params={"engine": "auto"})
    there = make_folios(2 * MIB, 512, src=0, dst=1)
    back = make_folios(2 * MIB, 512, src=1, dst=0)
    report = ctx.price(np.concatenate([there, back, there]))
    assert report.engines["teleport"].folios == 1024
    assert report.stages["copy"].folios == 1536
    assert "teleport" not in ctx.price(back).engines


def test_an_engine_without_workers_on_the_profile_is_never_chosen() -> None:
    pm = with_plugin(Teleport(lanes=0))
    ctx = build_context(pm=pm, params={"engine": "auto"})
    assert "teleport" not in ctx.price(folios_for(ctx, 2 * MIB, 512)).engines


# -- limits and mixed batches ----------------------------------------------------------------


MIXED = [(2 * MIB, 4), (64 * KIB, 8), (4 * KIB, 2), (1 * MIB, 5), (16 * KIB, 7), (2 * MIB, 1)]


def mixed_folios(ctx) -> np.ndarray:
    return np.concatenate([folios_for(ctx, size, count) for size, count in MIXED])


@pytest.mark.parametrize("profile", ["zen3-epyc-ptdma", "gh200", "dram-cxl", "local"])
@pytest.mark.parametrize("wanted", [1, 3, 1000])
def test_workers_never_exceed_the_parameter_or_the_profile(ctx_for, profile, wanted) -> None:
    params = {"mt.threads": wanted, "dma.channels": wanted, "gpu.streams": wanted,
              "batch.max_folios": 4, "system.load": 0.5}
    ctx = ctx_for(profile, params=params, engine="auto")
    plan = plan_of(ctx, mixed_folios(ctx))
    for name, workers in zip(plan.engine_names(), plan.workers, strict=True):
        engine = ctx.engines[name]
        top = min(engine.workers(ctx.params), engine.max_workers(ctx.hw))
        assert top <= (wanted if engine.workers_param in params else top)
        assert 1 <= workers <= top, (name, workers)


def test_mixed_batches_choose_per_batch(ctx_for) -> None:
    ctx = ctx_for(params={"batch.max_folios": 4}, engine="auto")
    folios = mixed_folios(ctx)
    plan = plan_of(ctx, folios)
    assert plan.nfolios.tolist() == [4, 4, 4, 4, 4, 4, 3]  # one node pair, one epoch
    picks = list(zip(plan.engine_names(), plan.workers.tolist(), strict=True))
    assert len({name for name, _ in picks}) >= 2
    for i, pick in enumerate(picks):
        alone = folios[plan.bounds[i]:plan.bounds[i + 1]]
        costs = costs_of(ctx, ctx.hw.name, alone, weight=0.0)
        assert costs[pick] == pytest.approx(min(costs.values()), rel=1e-9), (i, pick, costs)


def test_epochs_priced_in_one_call_choose_per_epoch(ctx_for) -> None:
    ctx = ctx_for(engine="auto")
    small, large = folios_for(ctx, 4 * KIB, 4), folios_for(ctx, 2 * MIB, 512)
    small["epoch"], large["epoch"] = 3, 7
    report = ctx.price(np.concatenate([small, large]))
    assert report.epochs.ids.tolist() == [3, 7]
    alone = {epoch: chosen(ctx.price(f))[0] for epoch, f in ((3, small), (7, large))}
    assert alone[3] != alone[7]
    for row, epoch in enumerate((3, 7)):
        for name, costs in report.epochs.engines.items():
            assert (costs["folios"][row] > 0) == (name == alone[epoch]), (epoch, name)


# -- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize("old", ["auto.min_batch_bytes", "auto.dma_min_folio", "auto.dma_load",
                                 "auto.threads"])
def test_the_old_thresholds_are_gone(ctx_for, old: str) -> None:
    with pytest.raises(InputError, match=rf"unknown parameter '{re.escape(old)}'"):
        ctx_for(params={old: 1}, engine="auto")


def test_workers_needs_a_fixed_engine(ctx_for) -> None:
    with pytest.raises(InputError, match="--workers needs a fixed engine"):
        ctx_for(engine="auto", workers=4)
