"""Cost records: zero_costs, CostTotals.of, addition, scaling and the JSON form.

Totals are checked against hand-summed rows and against plain Python sums of
the same rows; scaling against the totals of the rows repeated.
"""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.costs import COST_DTYPE, CostTotals, zero_costs

FLOAT_FIELDS = ("wall_s", "cpu_s", "engine_s", "worker_s")
INT_FIELDS = ("bytes", "folios", "failures", "retries")


def test_totals_have_one_field_per_cost_column() -> None:
    assert [f.name for f in fields(CostTotals)] == list(COST_DTYPE.names)


def test_zero_costs() -> None:
    rows = zero_costs(4)
    assert rows.dtype == COST_DTYPE and len(rows) == 4
    assert all((rows[name] == 0).all() for name in COST_DTYPE.names)
    assert len(zero_costs(0)) == 0


def test_of_sums_each_column_with_python_types() -> None:
    rows = zero_costs(3)
    rows["wall_s"] = [1.0, 2.0, 0.5]
    rows["cpu_s"] = [0.25, 0.25, 0.5]
    rows["engine_s"] = [0.0, 3.0, 0.0]
    rows["worker_s"] = [0.1, 0.1, 0.1]
    rows["bytes"] = [4096, 8192, 1 << 40]
    rows["folios"] = [1, 2, 3]
    rows["failures"] = [0, 1, 0]
    rows["retries"] = [5, 0, 0]
    totals = CostTotals.of(rows)
    assert totals.wall_s == 3.5 and totals.cpu_s == 1.0 and totals.engine_s == 3.0
    assert totals.worker_s == pytest.approx(0.3)
    assert totals.bytes == 12288 + (1 << 40)
    assert (totals.folios, totals.failures, totals.retries) == (6, 1, 5)
    for name in FLOAT_FIELDS:
        assert type(getattr(totals, name)) is float
    for name in INT_FIELDS:
        assert type(getattr(totals, name)) is int


def test_of_empty_is_zero() -> None:
    assert CostTotals.of(zero_costs(0)) == CostTotals()


def test_add() -> None:
    a = CostTotals(1.0, 2.0, 3.0, 0.5, 100, 1, 0, 2)
    b = CostTotals(0.5, 0.5, 0.0, 0.0, 50, 2, 1, 0)
    assert a + b == CostTotals(1.5, 2.5, 3.0, 0.5, 150, 3, 1, 2)
    assert a + CostTotals() == a
    # neither operand changes
    assert a == CostTotals(1.0, 2.0, 3.0, 0.5, 100, 1, 0, 2)


def test_as_dict_is_json_ready() -> None:
    import json

    totals = CostTotals.of(np.ones(2, dtype=COST_DTYPE))
    data = totals.as_dict()
    assert set(data) == set(COST_DTYPE.names)
    assert json.loads(json.dumps(data)) == data


rows_strategy = st.lists(
    st.tuples(*(st.floats(0, 1e3) for _ in FLOAT_FIELDS),
              *(st.integers(0, 1 << 40) for _ in INT_FIELDS)),
    max_size=20,
)


@settings(max_examples=40, deadline=None)
@given(rows_strategy, rows_strategy)
def test_of_is_additive_over_concatenation(first: list, second: list) -> None:
    a = np.array(first, dtype=COST_DTYPE)
    b = np.array(second, dtype=COST_DTYPE)
    together = CostTotals.of(np.concatenate([a, b]))
    apart = CostTotals.of(a) + CostTotals.of(b)
    for name in INT_FIELDS:
        assert getattr(together, name) == getattr(apart, name)
    for name in FLOAT_FIELDS:
        assert getattr(together, name) == pytest.approx(getattr(apart, name), rel=1e-12,
                                                         abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(rows_strategy, st.integers(0, 12))
def test_scaled_equals_the_totals_of_repeated_rows(rows: list, k: int) -> None:
    """``k`` repetitions of a migration cost what its rows repeated ``k`` times sum to."""
    one = np.array(rows, dtype=COST_DTYPE)
    scaled = CostTotals.of(one).scaled(k)
    repeated = CostTotals.of(np.tile(one, k))
    for name in INT_FIELDS:
        assert getattr(scaled, name) == getattr(repeated, name)
    for name in FLOAT_FIELDS:
        assert getattr(scaled, name) == pytest.approx(getattr(repeated, name), rel=1e-12,
                                                      abs=1e-9)
    assert scaled.as_dict().keys() == repeated.as_dict().keys()


@pytest.mark.parametrize("n", [1, 16384, 16385, 50_001])
def test_long_arrays_total_like_python_sums(n: int) -> None:
    """Long arrays are transposed in blocks before summing; the totals must not change."""
    rng = np.random.default_rng(n)
    rows = zero_costs(n)
    for name in FLOAT_FIELDS:
        rows[name] = rng.random(n) * 1e-3
    for name in INT_FIELDS:
        rows[name] = rng.integers(0, 1 << 30, size=n)
    totals = CostTotals.of(rows)
    spaced = zero_costs(2 * n)
    spaced[::2] = rows
    assert CostTotals.of(spaced[::2]) == totals  # not contiguous: summed field by field
    for name in INT_FIELDS:
        assert getattr(totals, name) == sum(int(v) for v in rows[name])
    for name in FLOAT_FIELDS:
        assert getattr(totals, name) == pytest.approx(math.fsum(rows[name].tolist()), rel=1e-12)
