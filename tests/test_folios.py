"""The folio data model: make_folios, page-table entry counts and BatchPlan invariants."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from migpolicy.costs import zero_costs
from migpolicy.folios import (
    ASYNC_REASONS,
    BUSY,
    FAILED,
    FOLIO_DTYPE,
    MOVED,
    PINNED,
    PMD_MAPPED,
    REQUEST_DTYPE,
    RESULT_DTYPE,
    BatchPlan,
    Reason,
    consecutive_batches,
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
    # no page named, epoch 0, a move_pages(2) call unless told otherwise
    assert (folios["page"] == -1).all() and (folios["epoch"] == 0).all()
    assert (folios["reason"] == Reason.SYSCALL).all()
    demoted = make_folios(4 * KIB, 2, reason=Reason.DEMOTION)
    assert (demoted["reason"] == Reason.DEMOTION).all()


#: include/linux/migrate_mode.h, enum migrate_reason (MR_DAMON: DAMOS migrate_hot/cold).
KERNEL_MIGRATE_REASONS = ["MR_COMPACTION", "MR_MEMORY_FAILURE", "MR_MEMORY_HOTPLUG",
                          "MR_SYSCALL", "MR_MEMPOLICY_MBIND", "MR_NUMA_MISPLACED",
                          "MR_CONTIG_RANGE", "MR_LONGTERM_PIN", "MR_DEMOTION", "MR_DAMON"]


def test_reasons_are_the_kernels_migrate_reason() -> None:
    assert [f"MR_{r.name}" for r in sorted(Reason)] == KERNEL_MIGRATE_REASONS
    assert [int(r) for r in sorted(Reason)] == list(range(len(KERNEL_MIGRATE_REASONS)))
    # the folio and request rows hold every reason
    assert np.iinfo(FOLIO_DTYPE["reason"]).max >= max(Reason)
    assert np.iinfo(REQUEST_DTYPE["reason"]).max >= max(Reason)


def test_asynchronous_reasons_are_the_kernel_threads() -> None:
    # kcompactd, kswapd and kdamond migrate on their own; the others run in the task asking
    assert ASYNC_REASONS == {Reason.COMPACTION, Reason.DEMOTION, Reason.DAMON}


def test_request_and_result_rows() -> None:
    assert set(REQUEST_DTYPE.names) == {"page", "dst", "reason"}
    assert set(RESULT_DTYPE.names) == {"status", "retries", "done_s"}
    assert MOVED != FAILED
    assert {"page", "epoch", "reason"} <= set(FOLIO_DTYPE.names)
    # a page index beyond 2**32 pages (16 TiB of 4 KiB pages) fits
    assert np.iinfo(FOLIO_DTYPE["page"]).max > 1 << 40


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


# -- consecutive batches ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "most", "bounds"),
    [(0, 512, [0]), (1, 512, [0, 1]), (512, 512, [0, 512]), (513, 512, [0, 512, 513]),
     (1025, 512, [0, 512, 1024, 1025]), (3, 1, [0, 1, 2, 3])],
)
def test_consecutive_batches_of_one_run(n: int, most: int, bounds: list[int]) -> None:
    assert consecutive_batches(make_folios(4 * KIB, n), most).tolist() == bounds


def test_consecutive_batches_end_at_epochs_and_node_pairs() -> None:
    folios = make_folios(4 * KIB, 7)
    folios["epoch"] = [0, 0, 0, 5, 5, 5, 5]
    folios["src"] = [0, 0, 0, 0, 1, 1, 0]
    folios["dst"] = [1, 1, 1, 1, 0, 0, 1]
    assert consecutive_batches(folios, 2).tolist() == [0, 2, 3, 4, 6, 7]


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([(0, 1), (1, 0), (1, 2)])),
                max_size=300),
       st.integers(min_value=1, max_value=64))
def test_consecutive_batches_properties(rows: list, most: int) -> None:
    rows = sorted(rows, key=lambda r: r[0])  # folios come in epoch order
    folios = make_folios(4 * KIB, len(rows))
    folios["epoch"] = [e for e, _ in rows]
    folios["src"] = [s for _, (s, _) in rows]
    folios["dst"] = [d for _, (_, d) in rows]
    bounds = consecutive_batches(folios, most)
    assert bounds.dtype == np.int64
    assert bounds[0] == 0 and bounds[-1] == len(rows)
    sizes = np.diff(bounds)
    assert ((sizes >= 1) & (sizes <= most)).all()
    keys = [(e, s, d) for e, (s, d) in rows]
    for start, stop in itertools.pairwise(bounds):
        assert len(set(keys[start:stop])) == 1
    # the fewest batches: each run of one epoch and node pair in ceil(run / most) batches
    runs = [len(list(group)) for _, group in itertools.groupby(keys)]
    assert len(sizes) == sum(-(-run // most) for run in runs)
