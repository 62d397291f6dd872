"""The folio data model: make_folios, page-table entry counts and BatchPlan invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from migpolicy.costs import zero_costs
from migpolicy.folios import (
    BUSY,
    FOLIO_DTYPE,
    PINNED,
    PMD_MAPPED,
    BatchPlan,
    make_folios,
    page_table_entries,
)

KIB, MIB = 1 << 10, 1 << 20


def plan_of(folios: np.ndarray, bounds: list[int], engines=("cpu", "mt")) -> BatchPlan:
    nb = len(bounds) - 1
    return BatchPlan(
        folios=folios,
        bounds=np.asarray(bounds, dtype=np.int64),
        engines=tuple(engines),
        engine=np.arange(nb, dtype=np.int64) % len(engines),
        workers=np.arange(1, nb + 1, dtype=np.int64),
        overhead=zero_costs(nb),
    )


def test_make_folios_fills_every_field() -> None:
    folios = make_folios(64 * KIB, 7, src=2, dst=3, tenant=9, mapcount=4)
    assert folios.dtype == FOLIO_DTYPE
    assert len(folios) == 7
    assert (folios["size"] == 64 * KIB).all()
    assert (folios["src"] == 2).all() and (folios["dst"] == 3).all()
    assert (folios["tenant"] == 9).all() and (folios["mapcount"] == 4).all()
    assert (folios["flags"] == 0).all()


def test_only_pmd_sized_folios_are_pmd_mapped() -> None:
    assert (make_folios(2 * MIB, 3)["flags"] == PMD_MAPPED).all()
    assert (make_folios(1 * MIB, 3)["flags"] == 0).all()
    assert (make_folios(4 * MIB, 3)["flags"] == 0).all()
    # a 512 MiB PMD (64 KiB base pages, as on gh200)
    assert (make_folios(2 * MIB, 2, pmd_size=512 * MIB)["flags"] == 0).all()
    assert (make_folios(512 * MIB, 2, pmd_size=512 * MIB)["flags"] == PMD_MAPPED).all()


def test_make_folios_empty() -> None:
    assert len(make_folios(4 * KIB, 0)) == 0


def test_flag_bits_are_distinct() -> None:
    bits = [int(PMD_MAPPED), int(PINNED), int(BUSY)]
    assert all(b and b & (b - 1) == 0 for b in bits)
    assert len(set(bits)) == 3


@pytest.mark.parametrize(
    ("size", "base", "pmd", "expected"),
    [(4 * KIB, 4 * KIB, 2 * MIB, 1), (16 * KIB, 4 * KIB, 2 * MIB, 4),
     (64 * KIB, 4 * KIB, 2 * MIB, 16), (1 * MIB, 4 * KIB, 2 * MIB, 256),
     (2 * MIB, 4 * KIB, 2 * MIB, 1), (4 * KIB, 64 * KIB, 512 * MIB, 1),
     (2 * MIB, 64 * KIB, 512 * MIB, 32), (512 * MIB, 64 * KIB, 512 * MIB, 1)],
)
def test_page_table_entries_pmd_vs_mthp(size: int, base: int, pmd: int, expected: int) -> None:
    folios = make_folios(size, 5, pmd_size=pmd)
    assert (page_table_entries(folios, base) == expected).all()


def test_page_table_entries_mixed_array() -> None:
    folios = np.concatenate([make_folios(2 * MIB, 2), make_folios(1 * MIB, 2),
                             make_folios(4 * KIB, 1)])
    assert page_table_entries(folios, 4 * KIB).tolist() == [1, 1, 256, 256, 1]
    # flags, not size, decide: a 2 MiB folio that is PTE-mapped (split PMD) uses 512 entries
    folios["flags"][0] = 0
    assert page_table_entries(folios, 4 * KIB)[0] == 512


def test_page_table_entries_does_not_modify_input() -> None:
    folios = make_folios(2 * MIB, 3)
    before = folios.copy()
    page_table_entries(folios, 4 * KIB)
    assert (folios == before).all()


def test_plan_accessors() -> None:
    folios = make_folios(4 * KIB, 10)
    folios["size"][7:] = 64 * KIB
    plan = plan_of(folios, [0, 3, 7, 10])
    assert plan.n_batches == 3
    assert plan.nfolios.tolist() == [3, 4, 3]
    assert plan.nbytes.tolist() == [12 * KIB, 16 * KIB, 192 * KIB]
    assert plan.batch_of_folio().tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert plan.engine_names().tolist() == ["cpu", "mt", "cpu"]
    assert plan.per_batch(np.ones(10)).tolist() == [3, 4, 3]


@pytest.mark.parametrize(
    "bounds",
    [[1, 10], [0, 9], [0, 11], [0, 5, 5, 10], [0, 6, 4, 10], [0]],
)
def test_plan_rejects_bad_bounds(bounds: list[int]) -> None:
    with pytest.raises(ValueError, match="batch"):
        plan_of(make_folios(4 * KIB, 10), bounds)


def test_plan_rejects_empty_bounds() -> None:
    with pytest.raises(ValueError, match="batch bounds"):
        BatchPlan(folios=make_folios(4 * KIB, 0), bounds=np.zeros(0, dtype=np.int64),
                  engines=("cpu",), engine=np.zeros(0, dtype=np.int64),
                  workers=np.zeros(0, dtype=np.int64), overhead=zero_costs(0))


def test_empty_plan() -> None:
    plan = plan_of(make_folios(4 * KIB, 0), [0])
    assert plan.n_batches == 0
    assert len(plan.nbytes) == 0 and len(plan.batch_of_folio()) == 0
    assert len(plan.per_batch(np.zeros(0))) == 0


def test_select_keeps_chosen_batches_whole() -> None:
    folios = make_folios(4 * KIB, 10)
    folios["tenant"] = np.arange(10)
    plan = plan_of(folios, [0, 3, 7, 10])
    sub = plan.select(np.array([True, False, True]))
    assert sub.n_batches == 2
    assert sub.bounds.tolist() == [0, 3, 6]
    assert sub.folios["tenant"].tolist() == [0, 1, 2, 7, 8, 9]
    assert sub.engine.tolist() == [plan.engine[0], plan.engine[2]]
    assert sub.workers.tolist() == [1, 3]
    assert sub.nbytes.tolist() == [12 * KIB, 12 * KIB]
    assert sub.engines == plan.engines


def test_select_all_and_none() -> None:
    plan = plan_of(make_folios(4 * KIB, 6), [0, 2, 6])
    assert plan.select(np.array([True, True])) is plan
    empty = plan.select(np.array([False, False]))
    assert empty.n_batches == 0 and len(empty.folios) == 0


@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30),
       st.data())
def test_select_partitions_folios(sizes: list[int], data: st.DataObject) -> None:
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    folios = make_folios(4 * KIB, int(bounds[-1]))
    folios["tenant"] = np.arange(len(folios))
    plan = plan_of(folios, bounds.tolist())
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(sizes),
                                       max_size=len(sizes))))
    chosen, rest = plan.select(mask), plan.select(~mask)
    assert chosen.n_batches + rest.n_batches == plan.n_batches
    ids = np.sort(np.concatenate([chosen.folios["tenant"], rest.folios["tenant"]]))
    assert ids.tolist() == list(range(len(folios)))
    assert chosen.nfolios.tolist() == plan.nfolios[mask].tolist()
    assert int(chosen.nbytes.sum() + rest.nbytes.sum()) == int(folios["size"].sum())
