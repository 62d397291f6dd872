"""The compiled pricing loops give the numpy form's numbers to the last bit.

Every figure of a report (totals, per-epoch rows by stage, engine and tenant,
accounting, per-folio results) is priced twice, with ``MIGPOLICY_COMPILED=never``
and ``always``, on random requests (hypothesis: sizes, mappings, pinned and
busy folios, epochs, node pairs, narrow and wide tenant ids, every engine),
and must be equal, not close. The loops that answer only yes or no must
leave the numpy form's error message; the loops that sum are checked against
numpy's own ``reduceat`` and ``bincount``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migpolicy import pricing_kernels
from migpolicy.contract import BatchPlan, IsolateResult, cost_columns, hookimpl
from migpolicy.costs import COST_DTYPE
from migpolicy.errors import ConfigError, InputError, PluginError
from migpolicy.folios import BUSY, FOLIO_DTYPE, PINNED, PMD_MAPPED, Reason, page_table_entries
from migpolicy.pipeline import Report, run_pipeline

KIB, MIB = 1 << 10, 1 << 20
PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def requests(draw, nodes=(0, 1)) -> np.ndarray:
    """A request of many epochs: folios in epoch order, every field drawn."""
    n = draw(st.integers(1, 600))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    folios = np.zeros(n, dtype=FOLIO_DTYPE)
    folios["size"] = rng.choice([4 * KIB, 16 * KIB, 64 * KIB, 2 * MIB], n)
    folios["flags"] = np.where(folios["size"] == 2 * MIB, PMD_MAPPED, 0)
    folios["flags"] |= rng.choice([0, 0, 0, 0, int(PINNED), int(BUSY)], n).astype(np.uint16)
    folios["mapcount"] = rng.integers(0, 4, n)
    folios["page"] = rng.integers(0, 1 << 20, n)
    folios["epoch"] = np.sort(rng.integers(0, draw(st.integers(1, 40)), n))
    folios["src"] = rng.choice(nodes, n)
    folios["dst"] = rng.choice(nodes, n)
    wide = draw(st.booleans())
    folios["tenant"] = rng.choice([3, 7, 2_000_000_000] if wide else [3, 4, 9], n)
    folios["reason"] = rng.choice([int(Reason.NUMA_MISPLACED), int(Reason.DEMOTION)], n)
    return folios


def priced(monkeypatch, mode: str, ctx, folios: np.ndarray) -> Report:
    monkeypatch.setenv("MIGPOLICY_COMPILED", mode)
    report = run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)
    report.results  # noqa: B018 -- computed now, in this mode
    report.epochs.tenants  # noqa: B018
    return report


def assert_identical(a: Report, b: Report) -> None:
    """Every figure of two reports, equal to the last bit."""
    assert a.stages == b.stages and a.engines == b.engines
    assert a.accounting == b.accounting and a.engine_workers == b.engine_workers
    assert np.array_equal(a.results, b.results)
    assert np.array_equal(a.epochs.ids, b.epochs.ids)
    for group in ("stages", "engines", "tenants"):
        left, right = getattr(a.epochs, group), getattr(b.epochs, group)
        assert left.keys() == right.keys(), group
        for key in left:
            assert left[key].tobytes() == right[key].tobytes(), (group, key)


@pytest.mark.parametrize("engine", ["cpu", "mt", "dma", "auto"])
@PROPERTY
@given(folios=requests())
def test_compiled_pricing_equals_numpy_pricing(monkeypatch, ctx_for, engine, folios) -> None:
    ctx = ctx_for(hw="zen3-epyc-ptdma", engine=engine,
                  params={"isolate.busy_retries": 2, "batch.max_folios": 64})
    assert_identical(priced(monkeypatch, "never", ctx, folios),
                     priced(monkeypatch, "always", ctx, folios))


def test_a_long_replay_window_prices_the_same_both_ways(monkeypatch, ctx_for) -> None:
    rng = np.random.default_rng(5)
    n = 70_000
    folios = np.zeros(n, dtype=FOLIO_DTYPE)
    folios["size"] = 4 * KIB
    folios["epoch"] = np.repeat(np.arange(n // 500), 500)[:n]
    folios["src"], folios["dst"], folios["mapcount"] = 1, 0, 1
    folios["tenant"] = rng.integers(0, 3, n)
    folios["flags"][rng.integers(0, n, 50)] = PINNED
    ctx = ctx_for(hw="zen3-epyc-ptdma", engine="cpu")
    assert_identical(priced(monkeypatch, "never", ctx, folios),
                     priced(monkeypatch, "always", ctx, folios))


@pytest.mark.parametrize("mode", ["never", "always"])
def test_a_malformed_request_gets_the_same_sentence_both_ways(monkeypatch, ctx_for, mode) -> None:
    monkeypatch.setenv("MIGPOLICY_COMPILED", mode)
    ctx = ctx_for(hw="zen3-epyc-ptdma")
    folios = np.zeros(4, dtype=FOLIO_DTYPE)
    folios["size"], folios["dst"] = 4 * KIB, 1
    folios["epoch"] = [0, 2, 1, 3]
    with pytest.raises(InputError, match="folio 2 belongs to epoch 1 after a folio of epoch 2"):
        run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)
    folios["epoch"] = 0
    folios["dst"][3] = 7
    with pytest.raises(InputError, match="folio 3 has dst node 7, which profile"):
        run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)


class SpanningBatches:
    """A batch plugin that puts every folio in one batch, across epochs and node pairs."""

    @hookimpl(tryfirst=True)
    def migpolicy_batch(self, folios, hw, params, engines):
        n = len(folios)
        return BatchPlan(folios=folios, bounds=np.array([0, n]), engines=("cpu",),
                         engine=np.zeros(1, np.int64), workers=np.ones(1, np.int64),
                         overhead=np.zeros(1, COST_DTYPE))


@pytest.mark.parametrize("mode", ["never", "always"])
@pytest.mark.parametrize(("column", "pinned", "why"), [
    ("epoch", False, "spanning two epochs"), ("dst", False, "more than one pair of nodes"),
    ("dst", True, "more than one pair of nodes")])
def test_a_batch_across_a_cut_is_caught_both_ways(monkeypatch, ctx_for, mode, column, pinned,
                                                   why) -> None:
    monkeypatch.setenv("MIGPOLICY_COMPILED", mode)
    ctx = ctx_for(hw="zen3-epyc-ptdma")
    ctx.pm.register(SpanningBatches())
    folios = np.zeros(6, dtype=FOLIO_DTYPE)
    folios["size"], folios["src"], folios["dst"], folios["mapcount"] = 4 * KIB, 0, 1, 1
    folios["epoch"][3:] = 1 if column == "epoch" else 0
    if column == "dst":
        folios["dst"][3:] = 0  # from node 0 to 0 after three from 0 to 1
    if pinned:  # then the batches hold only the isolated folios, and the check walks them
        folios["flags"][0] = PINNED
    with pytest.raises(PluginError, match=why):
        run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)


class ColumnsAndRows:
    """An isolate plugin answering per-folio costs either as rows or as cost columns."""

    def __init__(self, as_rows: bool) -> None:
        self.as_rows = as_rows

    @hookimpl(tryfirst=True)
    def migpolicy_isolate(self, folios, hw, params):
        wall = 1e-7 + folios["size"] * 1e-12
        retries = (folios["flags"] & BUSY != 0).astype(np.int64)
        costs = cost_columns(len(folios), wall_s=wall, cpu_s=wall * 0.5, folios=1,
                             retries=retries, engine_s=2.5e-8)
        return IsolateResult(costs=np.asarray(costs) if self.as_rows else costs,
                             isolated=np.ones(len(folios), dtype=bool))


@pytest.mark.parametrize("mode", ["never", "always"])
@PROPERTY
@given(folios=requests())
def test_cost_columns_price_as_the_rows_they_stand_for(monkeypatch, ctx_for, mode,
                                                        folios) -> None:
    monkeypatch.setenv("MIGPOLICY_COMPILED", mode)
    reports = []
    for as_rows in (True, False):
        ctx = ctx_for(hw="zen3-epyc-ptdma")
        ctx.pm.register(ColumnsAndRows(as_rows))
        reports.append(priced(monkeypatch, mode, ctx, folios))
    assert_identical(*reports)


@PROPERTY
@given(data=st.data(), n=st.integers(1, 5000), strided=st.booleans())
def test_sum_runs_adds_in_numpys_pairwise_order(data, n, strided) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rows = np.zeros(n, dtype=COST_DTYPE)
    rows["wall_s"] = rng.random(n) * 10.0 ** rng.integers(-12, 3, n)
    values = rows["wall_s"] if strided else rows["wall_s"].copy()
    starts = np.unique(np.concatenate(([0], rng.integers(0, n, data.draw(st.integers(0, 30))))))
    assert pricing_kernels.sum_runs(values, starts).tobytes() == \
        np.add.reduceat(values, starts).tobytes()


@PROPERTY
@given(data=st.data(), n=st.integers(1, 3000))
def test_cell_sums_add_in_row_order_as_bincount(data, n) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    values = rng.random(n) * 10.0 ** rng.integers(-12, 3, n)
    tenants = rng.integers(5, 9, n).astype(np.int32)
    starts = np.unique(np.concatenate(([0], rng.integers(0, n, 5))))
    ids, position = pricing_kernels.tenant_table(tenants, 5, 8)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    cell = group * len(ids) + np.searchsorted(ids, tenants)
    expected = np.bincount(cell, weights=values, minlength=len(starts) * len(ids))
    got = pricing_kernels.cell_sums(values, starts, tenants, 5, position, len(ids),
                                    len(starts) * len(ids))
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("mode", ["never", "always"])
@pytest.mark.parametrize("base_page", [4 * KIB, 16 * KIB, 12 * KIB])
def test_page_table_entries_both_ways(monkeypatch, mode, base_page) -> None:
    monkeypatch.setenv("MIGPOLICY_COMPILED", mode)
    folios = np.zeros(5, dtype=FOLIO_DTYPE)
    folios["size"] = [4 * KIB, 64 * KIB, 2 * MIB, 2 * MIB, 36 * KIB]
    folios["flags"][3] = PMD_MAPPED
    folios["mapcount"] = [0, 3, 2, 5, 1]
    pages = [max(int(s) // base_page, 1) for s in folios["size"]]
    pages[3] = 1
    assert page_table_entries(folios, base_page).tolist() == pages
    assert page_table_entries(folios, base_page, mappings=True).tolist() == [
        p * max(int(m), 1) for p, m in zip(pages, folios["mapcount"], strict=True)]


def test_an_unknown_mode_is_one_sentence(monkeypatch, ctx_for) -> None:
    monkeypatch.setenv("MIGPOLICY_COMPILED", "sometimes")
    ctx = ctx_for(hw="zen3-epyc-ptdma")
    folios = np.zeros(2, dtype=FOLIO_DTYPE)
    folios["size"], folios["dst"] = 4 * KIB, 1
    with pytest.raises(ConfigError, match="MIGPOLICY_COMPILED is 'sometimes'; expected auto"):
        run_pipeline(ctx.pm, folios, ctx.hw, ctx.params)


def test_a_short_call_does_not_load_numba_a_long_one_does() -> None:
    """``migpolicy move`` stays quick: only a long call (or a loaded numba) compiles."""
    script = (
        "import sys, numpy as np\n"
        "from migpolicy.context import build_context\n"
        "from migpolicy.folios import make_folios\n"
        "from migpolicy.compiled import LONG\n"
        "ctx = build_context(hw='zen3-epyc-ptdma')\n"
        "ctx.price(make_folios(4096, 512))\n"
        "print('numba' in sys.modules)\n"
        "ctx.price(make_folios(4096, LONG))\n"
        "print('numba' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", "MIGPOLICY_PLUGINS": ""})
    assert out.stdout.split() == ["False", "True"]
