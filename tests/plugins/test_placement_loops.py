"""The placement policies' compiled loops against the numpy expressions they replace."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from migpolicy.plugins._placement_loops import hint_faults, remember, stable_order
from tests.conftest import touched_pages


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 200),
                  elements=st.sampled_from([1e9 + 5e5, 1e9 + 2.5e5, 1e9, 7.0, 0.0, -0.0])),
       st.integers(1, 8))
def test_stable_order_is_a_stable_argsort(values, most):
    order, few = stable_order(values, most)
    if few:
        assert order.tolist() == np.argsort(values, kind="stable").tolist()
    else:
        assert len(np.unique(values)) > most


@st.composite
def _epoch(draw):
    npages, pages, node_of = draw(touched_pages(300))
    accesses = draw(hnp.arrays(np.float64, len(pages), elements=st.sampled_from(
        [1.0, 2.0, 3.0, 0.5, 40.0])))
    scan_time = draw(hnp.arrays(np.float64, npages, elements=st.sampled_from(
        [-1.0, 0.0, 4e5, 9e5, 1.2e6])))
    return pages, accesses, scan_time, node_of


@settings(max_examples=150, deadline=None)
@given(_epoch(), st.sampled_from([1e5, 6e5, 1e9]))
def test_hint_faults_are_the_numpy_expression(epoch, threshold):
    """Marked pages fault at start + length / (accesses + 1); hot ones off the fast node."""
    pages, accesses, scan_time, node_of = epoch
    start, length = 1_000_000, 500_000
    marked = scan_time[pages] >= 0
    faulted = pages[marked]
    first = start + length / (accesses[marked] + 1.0)
    hot = (first - scan_time[faulted] < threshold) & (node_of[faulted] != 0)
    expected_scan = scan_time.copy()
    expected_scan[faulted] = -1.0
    got_pages, got_first, faults = hint_faults(pages, accesses, scan_time, node_of, 0, start,
                                               length, threshold)
    assert faults == len(faulted)
    assert got_pages.tolist() == faulted[hot].tolist()
    assert got_first.tobytes() == first[hot].tobytes()
    assert scan_time.tobytes() == expected_scan.tobytes()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**20), max_size=300), st.lists(st.integers(0, 10), max_size=300))
def test_remember_is_the_numpy_expression(seen, accesses):
    """Last access and halved-then-added counts of an epoch's pages."""
    pages = np.unique(np.asarray(seen, dtype=np.int64) % 512)
    counts = np.resize(np.asarray(accesses, dtype=float), len(pages)) if accesses else \
        np.zeros(len(pages))
    recency = np.stack([np.full(512, -1.0), np.linspace(0.0, 3.0, 512)], axis=1)
    expected = recency.copy()
    expected[pages, 0] = 7
    expected[pages, 1] = expected[pages, 1] * 0.5 + counts
    remember(pages, counts, 7, recency)
    assert recency.tobytes() == expected.tobytes()
