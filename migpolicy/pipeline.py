"""The stage pipeline: isolate → batch → copy → remap → account, by calling the hooks.

:func:`run_pipeline` prices one migration request (a folio array) and returns
a :class:`Report`. :func:`price_uniform` prices ``count`` identical folios, the
experiment of the published move_pages() tables, by pricing one batch-sized
chunk and scaling it; that is exact because batches are priced independently
(the contract of the copy and remap hooks), and it makes a 1 TiB experiment as
cheap as a 1 MiB one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pluggy

from migpolicy.costs import COST_DTYPE, CostTotals, zero_costs
from migpolicy.errors import InputError, PluginError
from migpolicy.folios import BatchPlan, make_folios
from migpolicy.plugin_manager import call_hook

__all__ = [
    "STAGES",
    "Accounting",
    "IsolateResult",
    "Report",
    "price_uniform",
    "run_pipeline",
]

#: The five stages, in order.
STAGES = ("isolate", "batch", "copy", "remap", "account")

#: Payer (tenant id as a string, or ``kthread``) → ``cpu_s``, ``wall_s``, ``engine_s``.
Accounting = dict[str, dict[str, float]]


@dataclass(frozen=True)
class IsolateResult:
    """What the isolate stage returns: one cost row per folio, and which were isolated."""

    costs: np.ndarray
    isolated: np.ndarray


@dataclass
class Report:
    """Totals of one priced migration: per stage, per engine, per payer."""

    hw: str
    stages: dict[str, CostTotals]
    engines: dict[str, CostTotals]
    engine_workers: dict[str, list[int]]
    accounting: Accounting
    requested_folios: int
    pricing_s: dict[str, float] = field(default_factory=dict)

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
        """The report of ``k`` identical repetitions of this migration."""
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


def _checked(costs: Any, n: int, hook: str) -> np.ndarray:
    if not isinstance(costs, np.ndarray) or costs.dtype != COST_DTYPE or len(costs) != n:
        got = getattr(costs, "shape", type(costs).__name__)
        raise PluginError(
            f"hook {hook} must return {n} cost rows of COST_DTYPE, got {got}"
        )
    return costs


def run_pipeline(
    pm: pluggy.PluginManager,
    folios: np.ndarray,
    hw: Any,
    params: dict[str, Any],
    *,
    initiator: int = 0,
) -> Report:
    """Price moving ``folios`` through the five stages and return the report."""
    iso = call_hook(pm, "migpolicy_isolate", folios=folios, hw=hw, params=params)
    iso_costs = _checked(iso.costs, len(folios), "migpolicy_isolate")
    moved = folios if iso.isolated.all() else folios[iso.isolated]
    plan: BatchPlan = call_hook(pm, "migpolicy_batch", folios=moved, hw=hw, params=params)
    if not isinstance(plan, BatchPlan) or len(plan.folios) != len(moved):
        raise PluginError("hook migpolicy_batch must return a BatchPlan holding every folio")
    batch_costs = _checked(plan.overhead, plan.n_batches, "migpolicy_batch")

    copy_costs = zero_costs(plan.n_batches)
    engines: dict[str, CostTotals] = {}
    engine_workers: dict[str, list[int]] = {}
    for index, name in enumerate(plan.engines):
        mask = plan.engine == index
        if not mask.any():
            continue
        sub = plan.select(mask)
        priced = call_hook(pm, "migpolicy_copy", batches=sub, engine=name, hw=hw, params=params)
        if priced is None:
            raise PluginError(f"no plugin prices copy engine {name!r}")
        copy_costs[mask] = _checked(priced, sub.n_batches, "migpolicy_copy")
        engines[name] = CostTotals.of(copy_costs[mask])
        engine_workers[name] = sorted({int(w) for w in np.unique(sub.workers)})

    remap_costs = _checked(
        call_hook(pm, "migpolicy_remap", batches=plan, hw=hw, params=params),
        plan.n_batches,
        "migpolicy_remap",
    )
    stages = {
        "isolate": CostTotals.of(iso_costs),
        "batch": CostTotals.of(batch_costs),
        "copy": CostTotals.of(copy_costs),
        "remap": CostTotals.of(remap_costs),
        "account": CostTotals(),
    }
    tenants = folios["tenant"]
    if len(tenants) and tenants.min() == tenants.max():
        everything = sum(stages.values(), CostTotals())
        everything.bytes, everything.folios = stages["copy"].bytes, stages["copy"].folios
        owned = {int(tenants[0]): everything}
    else:
        owned = _owned_by_tenant(tenants, iso_costs, plan, (batch_costs, copy_costs, remap_costs))
    accounting = call_hook(pm, "migpolicy_account", owned=owned, initiator=initiator,
                           params=params)
    if accounting is None:
        raise PluginError(
            f"no accounting plugin answers for account.policy={params.get('account.policy')!r}"
        )
    timing = pm.get_plugin("stage_timing")
    return Report(
        hw=hw.name if hasattr(hw, "name") else str(hw),
        stages=stages,
        engines=engines,
        engine_workers=engine_workers,
        accounting=accounting,
        requested_folios=len(folios),
        pricing_s=timing.take() if timing is not None else {},
    )


_FIELDS = ("wall_s", "cpu_s", "engine_s", "worker_s", "failures", "retries")


def _owned_by_tenant(
    tenants: np.ndarray,
    iso_costs: np.ndarray,
    plan: BatchPlan,
    batch_level: tuple[np.ndarray, ...],
) -> dict[int, CostTotals]:
    """Split every cost among the tenants owning the folios, proportionally to bytes.

    Folio-level (isolate) costs go to the folio's tenant; batch-level costs are
    shared by the tenants in the batch by their bytes in it.
    """
    per_batch = {name: sum(costs[name] for costs in batch_level) for name in _FIELDS}
    ids, inverse = np.unique(tenants, return_inverse=True)
    nt = len(ids)
    pos = np.searchsorted(ids, plan.folios["tenant"])
    cell = plan.batch_of_folio() * nt + pos
    owned_bytes = np.bincount(cell, weights=plan.folios["size"],
                              minlength=plan.n_batches * nt).reshape(plan.n_batches, nt)
    fraction = owned_bytes / np.maximum(plan.nbytes, 1)[:, None]
    sums = {}
    for name in _FIELDS:
        sums[name] = (np.bincount(inverse, weights=iso_costs[name], minlength=nt)
                      + per_batch[name] @ fraction)
    moved_bytes = owned_bytes.sum(axis=0)
    moved_folios = np.bincount(pos, minlength=nt)
    return {
        int(tenant): CostTotals(
            **{name: (round(float(sums[name][i])) if name in ("failures", "retries")
                      else float(sums[name][i])) for name in _FIELDS},
            bytes=int(moved_bytes[i]), folios=int(moved_folios[i]),
        )
        for i, tenant in enumerate(ids)
    }


def price_uniform(
    pm: pluggy.PluginManager,
    folio_size: int,
    count: int,
    hw: Any,
    params: dict[str, Any],
    *,
    src: int = 0,
    dst: int = 1,
) -> Report:
    """Price moving ``count`` identical folios of ``folio_size`` bytes from ``src`` to ``dst``.

    Prices one full batch (``batch.max_folios`` folios) and the remainder, and
    scales: batch plugins must not form batches larger than
    ``batch.max_folios``, and batches are priced independently.
    """
    if count <= 0:
        raise InputError("the migration must move at least one folio")
    chunk = int(params.get("batch.max_folios", 512))
    pmd = int(hw.pmd_size)
    full, rest = divmod(count, chunk)
    report = None
    if full:
        one = run_pipeline(pm, make_folios(folio_size, chunk, src=src, dst=dst, pmd_size=pmd),
                           hw, params)
        report = one.scaled(full)
    if rest:
        tail = run_pipeline(pm, make_folios(folio_size, rest, src=src, dst=dst, pmd_size=pmd),
                            hw, params)
        report = tail if report is None else report + tail
    assert report is not None
    return report
