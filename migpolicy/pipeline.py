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

Its checks and sums walk per-folio arrays; a long call (a replay window)
runs them as compiled loops (:mod:`migpolicy.pricing_kernels`, chosen by
:func:`migpolicy.compiled.use_compiled`) that give the numpy form's numbers to
the last bit.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pluggy

from migpolicy.answers import Accounting, IsolateResult, Quote
from migpolicy.compiled import pricing_kernels, sum_runs, use_compiled
from migpolicy.costs import COST_DTYPE, CostColumns, CostTotals, cost_words, zero_costs
from migpolicy.engines import CopyEngine
from migpolicy.errors import InputError, PluginError
from migpolicy.folios import FAILED, RESULT_DTYPE, BatchPlan, Reason, make_folios
from migpolicy.plugin_manager import call_hook
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
    return _run_starts(epoch), None


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
    priced = _Priced(folios, epoch_starts, iso_costs, isolated, plan, batch_level)
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


_FIELDS = tuple(COST_DTYPE.names)
#: Cost fields split among tenants (``bytes`` and ``folios`` count what each moved).
_SPLIT = tuple(name for name in _FIELDS if name not in ("bytes", "folios"))


def _sum_runs(costs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cost rows summed over contiguous runs beginning at ``starts`` (ascending, non-empty)."""
    out = zero_costs(len(starts))
    if not len(starts):
        return out
    if use_compiled(len(costs)):
        pricing_kernels().sum_cost_runs(*cost_words(costs), starts, *cost_words(out))
        return out
    for name in _FIELDS:
        out[name] = np.add.reduceat(costs[name], starts)
    return out


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal ``values`` begins (0 first); empty for no values."""
    if use_compiled(len(values)):
        return pricing_kernels().run_starts(values)
    if not len(values):
        return np.zeros(0, np.int64)
    return np.concatenate(([0], np.flatnonzero(values[1:] != values[:-1]) + 1))


class _Priced:
    """The priced arrays of one pipeline run, summed per epoch and per tenant on demand.

    Folios come in epoch order and batches never span two epochs, so every
    per-epoch sum is a sum over contiguous runs; per-folio results and
    per-epoch tenant splits are computed only when a caller asks for them.
    """

    def __init__(self, folios: np.ndarray, epoch_starts: np.ndarray, iso_costs: CostColumns,
                 isolated: np.ndarray, plan: BatchPlan, batch_level: tuple[np.ndarray, ...]
                 ) -> None:
        # the lazy sums read only copies: the caller may reuse its arrays once priced
        self.tenants = folios["tenant"].copy()
        self.moved_size = plan.folios["size"].copy()
        plan.nbytes  # noqa: B018 -- cached now, from the folios as they are
        self.iso_costs, self.isolated = iso_costs, isolated
        self.plan, self.batch_level = plan, batch_level
        self.folio_starts = epoch_starts
        self.epoch_ids = folios["epoch"][epoch_starts]
        first = plan.folios["epoch"][plan.bounds[:-1]]
        self.batch_row = np.searchsorted(self.epoch_ids, first)

    @property
    def n_epochs(self) -> int:
        return len(self.epoch_ids)

    def per_epoch_of_folios(self, costs: CostColumns) -> np.ndarray:
        """Per-folio costs summed per epoch, as cost rows."""
        starts = self.folio_starts
        out = zero_costs(len(starts))
        if not len(starts):
            return out
        lengths = np.diff(np.append(starts, len(costs)))
        counts = {name: value for name in _FIELDS
                  if isinstance(value := costs.constant(name), int)}
        for name, value in counts.items():  # a count, the same in every row: exact
            out[name] = value * lengths
        varying = [name for name in _FIELDS if name not in counts]
        for name, sums in _by_column(costs, varying,
                                     lambda column: sum_runs(column, starts)).items():
            out[name] = sums
        return out

    def per_epoch_of_batches(self, costs: np.ndarray, mask: np.ndarray | None = None
                             ) -> np.ndarray:
        """Per-batch cost rows (of the batches in ``mask``) summed per epoch."""
        rows = self.batch_row
        if mask is not None:
            costs, rows = costs[mask], rows[mask]
        out = zero_costs(self.n_epochs)
        if len(rows) == 0:
            return out
        starts = _run_starts(rows)
        out[rows[starts]] = _sum_runs(costs, starts)
        return out

    def owned(self, stages: Mapping[str, CostTotals]) -> dict[int, CostTotals]:
        """What each tenant owns of the run's costs (for the accounting hook)."""
        tenants = self.tenants
        if len(tenants) == 0:
            return {}
        if tenants.min() == tenants.max():  # one owner: the exact totals
            only = sum(stages.values(), CostTotals())
            only.bytes, only.folios = stages["copy"].bytes, stages["copy"].folios
            return {int(tenants[0]): only}
        totals = self._split(np.zeros(1, np.int64), np.zeros(self.plan.n_batches, np.int64))
        return {tenant: CostTotals.of(rows) for tenant, rows in totals.items()}

    def per_epoch_tenants(self) -> dict[int, np.ndarray]:
        """Tenant → one cost row per epoch."""
        return self._split(self.folio_starts, self.batch_row)

    def _split(self, group_starts: np.ndarray, batch_group: np.ndarray
               ) -> dict[int, np.ndarray]:
        """Every cost split among the tenants owning the folios, per group, by bytes.

        Folio-level (isolate) costs go to the folio's tenant; batch-level costs
        are shared by the tenants in the batch by their bytes in it; ``bytes``
        and ``folios`` count what each tenant moved. Groups are runs of folios
        beginning at ``group_starts`` (the epochs, or one run for totals);
        ``batch_group`` is each batch's group.
        """
        plan, tenants = self.plan, self.tenants
        if len(tenants) == 0:
            return {}
        index = _Tenants.of(tenants)
        ids, nt = index.ids, len(index.ids)
        cells = len(group_starts) * nt
        out = zero_costs(cells)
        folio_sums, owned, count = self._folio_sums(group_starts, index)
        for k, name in enumerate(_SPLIT):
            out[name] = folio_sums[:, k]
        if plan.n_batches:
            fraction = owned.reshape(plan.n_batches, nt) / np.maximum(plan.nbytes, 1)[:, None]
            batch_cells = (batch_group[:, None] * nt + np.arange(nt)[None, :]).ravel()
            for name in _SPLIT:
                per_batch = sum(c[name] for c in self.batch_level).astype(np.float64)
                share = np.bincount(batch_cells, weights=(per_batch[:, None] * fraction).ravel(),
                                    minlength=cells)
                out[name] += share.astype(out[name].dtype)
            out["bytes"] = np.bincount(batch_cells, weights=owned, minlength=cells)
            out["folios"] = np.bincount(batch_cells, weights=count, minlength=cells)
        return {int(tenant): out[i::nt].copy() for i, tenant in enumerate(ids)}

    def _folio_sums(self, group_starts: np.ndarray, tenants: _Tenants
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The per-folio sums of :meth:`_split`, in folio order.

        Returns per cell (``group * nt + tenant``) the folio-level costs of
        ``_SPLIT`` as float64 columns, and per ``batch * nt + tenant`` the
        bytes (float64) and folios each tenant has in each batch.
        """
        plan, n, nt = self.plan, len(tenants.key), len(tenants.ids)
        cells = len(group_starts) * nt
        sums = np.zeros((cells, len(_SPLIT)))
        if use_compiled(n):
            kernels = pricing_kernels()
            key, low, position = tenants.key, tenants.low, tenants.position
            by_column = _by_column(self.iso_costs, _SPLIT, lambda column: kernels.cell_sums(
                column, group_starts, key, low, position, nt, cells))
            for k, name in enumerate(_SPLIT):
                if name in by_column:
                    sums[:, k] = by_column[name]
            owned, count = kernels.batch_tenant_bytes(key, low, position, nt, self.isolated,
                                                      plan.bounds, self.moved_size)
            return sums, owned, count
        group_of_folio = np.repeat(np.arange(len(group_starts)),
                                   np.diff(np.append(group_starts, n)))
        inverse = tenants.inverse()
        folio_cell = group_of_folio * nt + inverse
        for k, name in enumerate(_SPLIT):
            column = self.iso_costs[name]
            if column.any():  # most folio-level columns are zero (no engine, no retries)
                sums[:, k] = np.bincount(folio_cell, weights=column, minlength=cells)
        every = len(self.moved_size) == n
        cell = plan.batch_of_folio() * nt + (inverse if every else inverse[self.isolated])
        owned = np.bincount(cell, weights=self.moved_size, minlength=plan.n_batches * nt)
        count = np.bincount(cell, minlength=plan.n_batches * nt)
        return sums, owned, count

    def results(self) -> np.ndarray:
        """Per folio: moved or failed, retries, and when it completed within its epoch.

        Each epoch's migration runs from its start: first the folios that fail
        isolation (each pays its isolate time), then the batches one after
        another, each taking its folios' isolate time plus its batch, copy and
        remap time; a folio completes when its batch does.
        """
        n, isolated, plan = len(self.tenants), self.isolated, self.plan
        iso_wall = self.iso_costs["wall_s"]
        out = np.zeros(n, dtype=RESULT_DTYPE)
        out["retries"] = self.iso_costs["retries"]
        fail_time = np.zeros(self.n_epochs)
        failed = ~isolated
        if failed.any():
            epoch_of_folio = np.repeat(np.arange(self.n_epochs),
                                       np.diff(np.append(self.folio_starts, n)))
            out["status"][failed] = FAILED
            fail_epoch = epoch_of_folio[failed]
            fail_time = np.bincount(fail_epoch, weights=iso_wall[failed],
                                    minlength=self.n_epochs)
            out["done_s"][failed] = _within_groups(fail_epoch, iso_wall[failed])
        if plan.n_batches:
            duration = plan.per_batch(iso_wall if len(self.moved_size) == n else iso_wall[isolated])
            duration += sum(c["wall_s"] for c in self.batch_level)
            done = _within_groups(self.batch_row, duration) + fail_time[self.batch_row]
            out["done_s"][isolated] = np.repeat(done, plan.nfolios)
        return out


def _by_column(costs: CostColumns, names: Sequence[str],
               reduce: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    """``reduce`` of each field in ``names`` that is not zero in every row.

    A field that shares its array with another (the CPU time that is the
    wall time) is reduced once.
    """
    out: dict[str, np.ndarray] = {}
    done: dict[int, np.ndarray] = {}
    for name in names:
        if costs.constant(name) == 0:
            continue
        column = costs[name]
        key = id(costs.given.get(name))
        if key not in done:
            done[key] = reduce(column)
        out[name] = done[key]
    return out


@dataclass(frozen=True)
class _Tenants:
    """The distinct tenants of a run's folios (``ids``, ascending) and each folio's position.

    Folio ``i``'s tenant is ``ids[position[key[i] - low]]``. Tenant ids are
    cgroup ids, usually a narrow range: then ``key`` is the folios' tenant
    ids and ``position`` a table over the range. Ids spread wide are sorted
    instead: ``key`` holds the positions, ``low`` is 0 and ``position`` the
    identity.
    """

    ids: np.ndarray
    key: np.ndarray
    low: int
    position: np.ndarray

    @classmethod
    def of(cls, tenants: np.ndarray) -> _Tenants:
        low, high = int(tenants.min()), int(tenants.max())
        if high - low > 4 * len(tenants) + 1024:
            ids, inverse = np.unique(tenants, return_inverse=True)
            return cls(ids, inverse, 0, np.arange(len(ids)))
        if use_compiled(len(tenants)):
            ids, position = pricing_kernels().tenant_table(tenants, low, high)
            return cls(ids, tenants, low, position)
        present = np.bincount(tenants - low, minlength=high - low + 1) > 0
        return cls(np.flatnonzero(present) + low, tenants, low, np.cumsum(present) - 1)

    def inverse(self) -> np.ndarray:
        """Per folio, the position of its tenant in ``ids``."""
        return self.position[self.key - self.low]


def _within_groups(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting where ``group`` changes (groups are contiguous)."""
    total = np.cumsum(values)
    starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    before = np.concatenate(([0.0], total[starts[1:] - 1]))
    return total - np.repeat(before, np.diff(np.append(starts, len(values))))


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
