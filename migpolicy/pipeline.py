"""The stage pipeline: isolate → batch → copy → remap → account, by calling the hooks.

:func:`run_pipeline` prices the folios of one or many epochs in one call (a
replay prices thousands of epochs at once, so no cost is paid per epoch) and
returns a :class:`Report`: totals per stage, engine and payer, the same per
epoch (:class:`EpochCosts`), and per folio whether it moved and when it
completed. :func:`price_uniform` prices ``count`` identical folios, the
experiment of the published move_pages() tables, by pricing one batch-sized
chunk and scaling it; that is exact because batches are priced independently
(the contract of the copy and remap hooks), and it makes a 1 TiB experiment as
cheap as a 1 MiB one.

The pipeline times its own stages (``Report.pricing_s``, host seconds spent
pricing): nothing is kept between two calls, so two threads pricing at once
get independent reports and a failed call leaves nothing behind.

Its checks and its sums (:mod:`migpolicy.priced`) walk per-folio arrays; a
long call (a replay window) runs them as compiled loops
(:mod:`migpolicy.pricing_kernels`, chosen by
:func:`migpolicy.compiled.use_compiled`) that give the numpy form's numbers to
the last bit.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pluggy

from migpolicy.answers import Accounting, IsolateResult, Quote
from migpolicy.compiled import pricing_kernels, use_compiled
from migpolicy.costs import COST_DTYPE, CostColumns, CostTotals, zero_costs
from migpolicy.engines import CopyEngine
from migpolicy.errors import InputError, PluginError
from migpolicy.folios import BatchPlan, Reason, make_folios
from migpolicy.plugin_manager import call_hook
from migpolicy.priced import Priced, run_starts
from migpolicy.registries import copy_engines

if TYPE_CHECKING:
    from migpolicy.hardware.profile import Profile

__all__ = [
    "STAGES",
    "Accounting",
    "EpochCosts",
    "IsolateResult",
    "Quote",
    "Report",
    "price_uniform",
    "run_pipeline",
]

#: The five stages, in order.
STAGES = ("isolate", "batch", "copy", "remap", "account")

class EpochCosts:
    """Costs per epoch: ``ids[i]`` is the epoch of row ``i`` of every array.

    ``stages``, ``engines`` and ``tenants`` map a stage, engine or tenant id to
    one :data:`~migpolicy.costs.COST_DTYPE` row per epoch. The tenant split is
    computed when first asked for.
    """

    def __init__(self, ids: np.ndarray, stages: dict[str, np.ndarray],
                 engines: dict[str, np.ndarray],
                 tenants_of: Callable[[], dict[int, np.ndarray]]) -> None:
        self.ids, self.stages, self.engines = ids, stages, engines
        self._tenants_of = tenants_of

    @functools.cached_property
    def tenants(self) -> dict[int, np.ndarray]:
        """Tenant id → one cost row per epoch (costs shared in a batch split by bytes)."""
        return self._tenants_of()

    @property
    def wall_s(self) -> np.ndarray:
        """Modelled wall time of each epoch's migrations (the stages run one after another)."""
        return sum(costs["wall_s"] for costs in self.stages.values())


@dataclass
class Report:
    """Totals of one priced migration: per stage, per engine, per payer.

    ``results`` has one :data:`~migpolicy.folios.RESULT_DTYPE` row per
    requested folio (in request order, computed when first asked for) and
    ``epochs`` the costs per epoch; both are ``None`` for a report scaled from
    a sample (:func:`price_uniform`).
    """

    hw: str
    stages: dict[str, CostTotals]
    engines: dict[str, CostTotals]
    engine_workers: dict[str, list[int]]
    accounting: Accounting
    requested_folios: int
    pricing_s: dict[str, float] = field(default_factory=dict)
    epochs: EpochCosts | None = None
    results_of: Callable[[], np.ndarray] | None = field(default=None, repr=False,
                                                        compare=False)

    @functools.cached_property
    def results(self) -> np.ndarray | None:
        """Per requested folio: moved or failed, retries, completion time."""
        return None if self.results_of is None else self.results_of()

    @property
    def total_s(self) -> float:
        """Modelled wall time of the whole migration: the stages run one after another."""
        return sum(stage.wall_s for stage in self.stages.values())

    @property
    def bytes(self) -> int:
        """Bytes actually moved (folios that failed isolation move nothing)."""
        return self.stages["copy"].bytes

    @property
    def folios(self) -> int:
        """Folios actually moved."""
        return self.stages["copy"].folios

    @property
    def throughput_gbps(self) -> float:
        """Bytes moved per second of modelled wall time, in GB/s (10^9 bytes)."""
        return self.bytes / self.total_s / 1e9 if self.total_s > 0 else 0.0

    def scaled(self, k: int) -> Report:
        """The totals of ``k`` identical repetitions of this migration."""
        return Report(
            hw=self.hw,
            stages={s: t.scaled(k) for s, t in self.stages.items()},
            engines={e: t.scaled(k) for e, t in self.engines.items()},
            engine_workers=dict(self.engine_workers),
            accounting={
                p: {key: v * k for key, v in charge.items()}
                for p, charge in self.accounting.items()
            },
            requested_folios=self.requested_folios * k,
            pricing_s=dict(self.pricing_s),
        )

    def __add__(self, other: Report) -> Report:
        def merge_totals(a: dict, b: dict) -> dict:
            out = dict(a)
            for key, value in b.items():
                out[key] = out[key] + value if key in out else value
            return out

        accounting: Accounting = {p: dict(c) for p, c in self.accounting.items()}
        for payer, charge in other.accounting.items():
            mine = accounting.setdefault(payer, dict.fromkeys(charge, 0.0))
            for key, value in charge.items():
                mine[key] = mine.get(key, 0.0) + value
        workers = {e: list(w) for e, w in self.engine_workers.items()}
        for engine, counts in other.engine_workers.items():
            workers[engine] = sorted(set(workers.get(engine, [])) | set(counts))
        return Report(
            hw=self.hw,
            stages=merge_totals(self.stages, other.stages),
            engines=merge_totals(self.engines, other.engines),
            engine_workers=workers,
            accounting=accounting,
            requested_folios=self.requested_folios + other.requested_folios,
            pricing_s=merge_totals(self.pricing_s, other.pricing_s),
        )


def _folio_costs(costs: Any, n: int) -> CostColumns:
    """The isolate stage's per-folio costs, as columns (rows are read by field)."""
    if isinstance(costs, CostColumns):
        if len(costs) != n:
            raise PluginError(f"hook migpolicy_isolate must return {n} cost rows, got "
                              f"cost columns of {len(costs)}")
        return costs
    if not isinstance(costs, np.ndarray) or costs.dtype != COST_DTYPE or len(costs) != n:
        got = getattr(costs, "shape", type(costs).__name__)
        raise PluginError(f"hook migpolicy_isolate must return {n} cost rows of COST_DTYPE "
                          f"or cost_columns of {n} rows, got {got}")
    return CostColumns.of(costs)


def _checked(costs: Any, n: int, hook: str) -> np.ndarray:
    if not isinstance(costs, np.ndarray) or costs.dtype != COST_DTYPE or len(costs) != n:
        got = getattr(costs, "shape", type(costs).__name__)
        raise PluginError(
            f"hook {hook} must return {n} cost rows of COST_DTYPE, got {got}"
        )
    return costs


class _Stages:
    """Calls the stage hooks of one pipeline run and times each (host seconds).

    A hook called while another runs (a batch plugin asking for a ``quote``)
    counts for its own stage only: each stage's time excludes the calls nested
    in it, so the stage times add up to the time spent.
    """

    def __init__(self, pm: pluggy.PluginManager, hw: Profile, params: Mapping[str, Any],
                 cache: dict) -> None:
        self.pm, self.hw, self.params, self.cache = pm, hw, params, cache
        self.elapsed: dict[str, float] = {}
        self._nested: list[float] = []  # time spent in nested calls, per active call

    def call(self, stage: str, hook: str, **kwargs: Any) -> Any:
        start = time.perf_counter()
        self._nested.append(0.0)
        try:
            return call_hook(self.pm, hook, hw=self.hw, params=self.params, **kwargs)
        finally:
            spent = time.perf_counter() - start
            inner = self._nested.pop()
            self.elapsed[stage] = self.elapsed.get(stage, 0.0) + spent - inner
            if self._nested:
                self._nested[-1] += spent

    def quote(self, batches: BatchPlan, engine: str) -> np.ndarray:
        """Price the copy of ``batches`` on ``engine`` (what the copy stage would charge)."""
        priced = self.call("copy", "migpolicy_copy", batches=batches, engine=engine,
                           cache=self.cache)
        if priced is None:
            raise PluginError(f"no plugin prices copy engine {engine!r}")
        return _checked(priced, batches.n_batches, "migpolicy_copy")


def _check_request(folios: np.ndarray, hw: Profile) -> tuple[np.ndarray, np.ndarray | None]:
    """Check that the folios are in epoch order, on the profile's nodes.

    Returns where each epoch's folios begin and, from the compiled check,
    every place a batch must end (where the epoch or the node pair changes).
    """
    epoch = folios["epoch"]
    nodes = np.fromiter(hw.nodes, dtype=np.int64)
    if use_compiled(len(folios)):
        known = np.zeros(int(nodes.max(initial=0)) + 1, dtype=bool)
        known[nodes[nodes >= 0]] = True
        found = pricing_kernels().request_epochs(epoch, folios["src"], folios["dst"], known)
        if found is not None:
            return found
    if len(epoch) > 1:
        back = np.flatnonzero(epoch[1:] < epoch[:-1])
        if len(back):
            i = int(back[0]) + 1
            raise InputError(f"folio {i} belongs to epoch {int(epoch[i])} after a folio of epoch "
                             f"{int(epoch[i - 1])}; folios must be in epoch order")
    for column in ("src", "dst"):
        unknown = ~np.isin(folios[column], nodes)
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            raise InputError(f"folio {i} has {column} node {int(folios[column][i])}, which "
                             f"profile {hw.name} does not have (nodes: "
                             f"{', '.join(map(str, sorted(hw.nodes)))})")
    return run_starts(epoch), None


def _check_batches(plan: BatchPlan, cuts: np.ndarray | None) -> None:
    """Every batch lies within one epoch and between one pair of nodes.

    ``cuts``, where the plan's folios change epoch or node pair, makes that
    a walk over the bounds.
    """
    if plan.n_batches == 0:
        return
    folios, first, last = plan.folios, plan.bounds[:-1], plan.bounds[1:] - 1
    if use_compiled(len(folios)):
        kernels = pricing_kernels()
        if (kernels.cuts_are_bounds(cuts, plan.bounds) if cuts is not None
                else kernels.batches_fit(folios["epoch"], folios["src"], folios["dst"],
                                         plan.bounds)):
            return
    if np.any(folios["epoch"][first] != folios["epoch"][last]):
        raise PluginError("hook migpolicy_batch formed a batch spanning two epochs")
    for column in ("src", "dst"):
        nodes = folios[column]
        if nodes.min() != nodes.max() and np.any(np.repeat(nodes[first], plan.nfolios) != nodes):
            raise PluginError("hook migpolicy_batch formed a batch moving between more than "
                              "one pair of nodes")


def run_pipeline(
    pm: pluggy.PluginManager,
    folios: np.ndarray,
    hw: Profile,
    params: Mapping[str, Any],
    *,
    initiator: int = 0,
    engines: Mapping[str, CopyEngine] | None = None,
    cache: dict | None = None,
) -> Report:
    """Price moving ``folios`` (of one or many epochs, in epoch order) through the five stages.

    ``engines`` (every registered copy engine) and ``cache`` (a per-context
    store where plugins keep what they load once, such as a learned model)
    come from :class:`migpolicy.context.Context`; they are looked up or made
    fresh when omitted.
    """
    epoch_starts, cuts = _check_request(folios, hw)
    stages_run = _Stages(pm, hw, params, {} if cache is None else cache)
    engines = copy_engines(pm) if engines is None else engines
    iso = stages_run.call("isolate", "migpolicy_isolate", folios=folios)
    if not isinstance(iso, IsolateResult):
        raise PluginError("hook migpolicy_isolate must return an IsolateResult")
    iso_costs = _folio_costs(iso.costs, len(folios))
    isolated = np.asarray(iso.isolated, dtype=bool)
    everything = isolated.all()
    moved = folios if everything else folios[isolated]
    plan = stages_run.call("batch", "migpolicy_batch", folios=moved, engines=engines,
                           quote=stages_run.quote)
    if not isinstance(plan, BatchPlan) or len(plan.folios) != len(moved):
        raise PluginError("hook migpolicy_batch must return a BatchPlan holding every folio")
    if plan.folios is not moved and not np.array_equal(plan.folios, moved):
        raise PluginError("hook migpolicy_batch must keep the folios in the order given")
    _check_batches(plan, cuts if everything else None)
    batch_costs = _checked(plan.overhead, plan.n_batches, "migpolicy_batch")

    copy_costs = zero_costs(plan.n_batches)
    engine_masks: dict[str, np.ndarray] = {}
    engine_workers: dict[str, list[int]] = {}
    for index, name in enumerate(plan.engines):
        mask = plan.engine == index
        if not mask.any():
            continue
        sub = plan.select(mask)
        copy_costs[mask] = stages_run.quote(sub, name)
        engine_masks[name] = mask
        engine_workers[name] = sorted({int(w) for w in np.unique(sub.workers)})

    remap_costs = _checked(
        stages_run.call("remap", "migpolicy_remap", batches=plan),
        plan.n_batches,
        "migpolicy_remap",
    )
    batch_level = (batch_costs, copy_costs, remap_costs)
    priced = Priced(folios, epoch_starts, iso_costs, isolated, plan, batch_level)
    epoch_stages = {"isolate": priced.per_epoch_of_folios(iso_costs),
                    "batch": priced.per_epoch_of_batches(batch_costs),
                    "copy": priced.per_epoch_of_batches(copy_costs),
                    "remap": priced.per_epoch_of_batches(remap_costs)}
    stages = {name: CostTotals.of(rows) for name, rows in epoch_stages.items()}
    stages["account"] = CostTotals()
    owned = priced.owned(stages)
    accounting = stages_run.call("account", "migpolicy_account", owned=owned,
                                 initiator=initiator)
    if accounting is None:
        raise PluginError(
            f"no accounting plugin answers for account.policy={params.get('account.policy')!r}"
        )
    epoch_engines = {name: priced.per_epoch_of_batches(copy_costs, mask)
                     for name, mask in engine_masks.items()}
    return Report(
        hw=hw.name,
        stages=stages,
        engines={name: CostTotals.of(rows) for name, rows in epoch_engines.items()},
        engine_workers=engine_workers,
        accounting=accounting,
        requested_folios=len(folios),
        pricing_s=stages_run.elapsed,
        epochs=EpochCosts(ids=priced.epoch_ids, stages=epoch_stages, engines=epoch_engines,
                          tenants_of=priced.per_epoch_tenants),
        results_of=priced.results,
    )


def price_uniform(
    pm: pluggy.PluginManager,
    folio_size: int,
    count: int,
    hw: Profile,
    params: Mapping[str, Any],
    *,
    src: int = 0,
    dst: int | None = None,
    reason: Reason = Reason.SYSCALL,
    engines: Mapping[str, CopyEngine] | None = None,
    cache: dict | None = None,
) -> Report:
    """Price moving ``count`` identical folios of ``folio_size`` bytes from ``src`` to ``dst``.

    Prices one full batch (``batch.max_folios`` folios) and the remainder, and
    scales: batch plugins must not form batches larger than
    ``batch.max_folios``, and batches are priced independently. ``dst``
    defaults to node 1, or to ``src`` on a one-node profile.
    """
    if dst is None:
        dst = 1 if 1 in hw.nodes else src
    if count <= 0:
        raise InputError("the migration must move at least one folio")
    chunk = int(params.get("batch.max_folios", 512))
    pmd = int(hw.pmd_size)
    engines = copy_engines(pm) if engines is None else engines
    cache = {} if cache is None else cache
    full, rest = divmod(count, chunk)
    report = None
    for k, n in ((full, chunk), (1, rest)):
        if k == 0 or n == 0:
            continue
        folios = make_folios(folio_size, n, src=src, dst=dst, pmd_size=pmd, reason=reason)
        sample = run_pipeline(pm, folios, hw, params, engines=engines, cache=cache).scaled(k)
        report = sample if report is None else report + sample
    assert report is not None
    return report
