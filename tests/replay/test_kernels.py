"""The compiled inner loops against the numpy expressions they replace: per-page figures to the
last bit, an epoch's sums in page order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from migpolicy.replay import kernels
from tests.conftest import touched_pages


@st.composite
def _epoch(draw):
    _, pages, node_of = draw(touched_pages(500))
    writes = draw(hnp.arrays(np.float64, len(pages), elements=st.sampled_from(
        [0.0, 1.0, 2.5, 1e-3, 7e5])))
    reads = draw(hnp.arrays(np.float64, len(pages), elements=st.sampled_from(
        [0.0, 1.0, 3.0, 0.25, 1e6])))
    return pages, reads + writes, writes, node_of


_LATENCY = (9e-8, 1.1e-7, 2.7e-7, 3.3e-7)  # load and store of the fast node, then the slow


def _in_page_order(terms: np.ndarray) -> float:
    """The terms summed one after another, as the kernels sum them."""
    total = 0.0
    for term in terms.tolist():
        total += term
    return total


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b))


@settings(max_examples=150, deadline=None)
@given(_epoch())
def test_access_cost_is_the_numpy_expression(epoch):
    """The terms are numpy's to the last bit; their sums run in page order (and agree with
    numpy's pairwise sums to 12 digits)."""
    pages, accesses, writes, node_of = epoch
    load_f, store_f, load_s, store_s = _LATENCY
    on_fast = node_of[pages] == 0
    reads = accesses - writes
    loads = reads * np.where(on_fast, load_f, load_s)
    stores = writes * np.where(on_fast, store_f, store_s)
    seconds, hits = kernels.access_cost(pages, accesses, writes, node_of, 0, *_LATENCY)
    assert seconds == _in_page_order(loads) + _in_page_order(stores)
    assert hits == _in_page_order(accesses[on_fast])
    assert _close(seconds, float(loads.sum() + stores.sum()))
    assert _close(hits, float(accesses[on_fast].sum()))


@settings(max_examples=150, deadline=None)
@given(_epoch())
def test_bounds_add_is_the_numpy_expression(epoch):
    """Totals per page, the oracle's sums with every page fast, and the access time."""
    pages, accesses, writes, node_of = epoch
    load_f, store_f, load_s, store_s = _LATENCY
    totals = np.ones((len(node_of), 2))
    both, fast_s, never = kernels.bounds_add(pages, accesses, writes, totals, node_of, 0,
                                             *_LATENCY)
    reads = accesses - writes
    expected = np.ones((len(node_of), 2))
    expected[pages, 0] += reads
    expected[pages, 1] += writes
    assert totals.tobytes() == expected.tobytes()
    slow = reads * load_s + writes * store_s
    gain = slow - (reads * load_f + writes * store_f)
    assert both == _in_page_order(reads + writes)
    assert fast_s == _in_page_order(slow - gain)
    assert _close(both, float((reads + writes).sum()))
    assert never == kernels.access_cost(pages, accesses, writes, node_of, 0, *_LATENCY)[0]
