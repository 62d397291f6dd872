"""The sums of one priced pipeline run: per epoch, per tenant, and per folio.

:func:`migpolicy.pipeline.run_pipeline` prices the stages batch by batch and
folio by folio; a :class:`Priced` holds those arrays and sums them the ways a
:class:`~migpolicy.pipeline.Report` is read: per epoch (always), and per tenant
and per folio only when a caller asks. Folios come in epoch order and batches
never span two epochs, so every per-epoch sum is a sum over contiguous runs.
A long run's sums are compiled loops (:mod:`migpolicy.pricing_kernels`) that
give the numpy form's numbers to the last bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from migpolicy.compiled import pricing_kernels, sum_runs, use_compiled
from migpolicy.costs import COST_DTYPE, CostColumns, CostTotals, cost_words, zero_costs
from migpolicy.folios import FAILED, RESULT_DTYPE, BatchPlan

__all__ = ["Priced", "run_starts"]

#: The cost fields, in the order of :data:`migpolicy.costs.COST_DTYPE`.
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


def run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal ``values`` begins (0 first); empty for no values."""
    if use_compiled(len(values)):
        return pricing_kernels().run_starts(values)
    if not len(values):
        return np.zeros(0, np.int64)
    return np.concatenate(([0], np.flatnonzero(values[1:] != values[:-1]) + 1))


class Priced:
    """The priced arrays of one pipeline run, summed per epoch and per tenant on demand."""

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
        starts = run_starts(rows)
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
