"""The compiled inner loops against the numpy expressions they replace, to the last bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from migpolicy.replay import kernels
from tests.conftest import touched_pages

_FLOATS = st.floats(min_value=0.0, max_value=1e12, allow_nan=False, allow_subnormal=False)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 3000), elements=_FLOATS))
def test_pairwise_sum_is_numpys_sum(values):
    assert kernels.pairwise_sum(values) == values.sum()


def test_pairwise_sum_of_long_arrays_is_numpys_sum():
    """Lengths whose halving runs deep, with terms of very different sizes."""
    rng = np.random.default_rng(5)
    for n in (129, 1000, 65_537, 1_000_003):
        values = rng.random(n) * rng.choice([1e-9, 1.0, 1e9], n)
        assert kernels.pairwise_sum(values) == values.sum()


@st.composite
def _epoch(draw):
    _, pages, node_of = draw(touched_pages(500))
    writes = draw(hnp.arrays(np.float64, len(pages), elements=st.sampled_from(
        [0.0, 1.0, 2.5, 1e-3, 7e5])))
    reads = draw(hnp.arrays(np.float64, len(pages), elements=st.sampled_from(
        [0.0, 1.0, 3.0, 0.25, 1e6])))
    return pages, reads + writes, writes, node_of


_LATENCY = (9e-8, 1.1e-7, 2.7e-7, 3.3e-7)  # load and store of the fast node, then the slow


@settings(max_examples=150, deadline=None)
@given(_epoch())
def test_access_cost_is_the_numpy_expression(epoch):
    pages, accesses, writes, node_of = epoch
    load_f, store_f, load_s, store_s = _LATENCY
    on_fast = node_of[pages] == 0
    reads = accesses - writes
    load = np.where(on_fast, load_f, load_s)
    store = np.where(on_fast, store_f, store_s)
    expected = (float((reads * load).sum() + (writes * store).sum()),
                float(accesses[on_fast].sum()))
    assert kernels.access_cost(pages, accesses, writes, node_of, 0, *_LATENCY) == expected


@settings(max_examples=150, deadline=None)
@given(_epoch())
def test_bounds_add_is_the_numpy_expression(epoch):
    """Totals per page, the oracle's terms with every page fast, and the access cost."""
    pages, accesses, writes, node_of = epoch
    load_f, store_f, load_s, store_s = _LATENCY
    totals = np.ones((len(node_of), 2))
    hits, seconds, never_s = kernels.bounds_add(pages, accesses, writes, totals, node_of, 0,
                                                *_LATENCY)
    reads = accesses - writes
    expected = np.ones((len(node_of), 2))
    expected[pages, 0] += reads
    expected[pages, 1] += writes
    assert totals.tobytes() == expected.tobytes()
    slow = reads * load_s + writes * store_s
    gain = slow - (reads * load_f + writes * store_f)
    assert (hits, seconds) == (float((reads + writes).sum()), float((slow - gain).sum()))
    assert never_s == kernels.access_cost(pages, accesses, writes, node_of, 0, *_LATENCY)[0]
