"""The watermark policy's choice of victims against a full lexicographic sort."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.plugins.placement_watermark import coldest


@st.composite
def _fast_tier(draw):
    n = draw(st.integers(1, 80))
    pages = np.asarray(sorted(draw(st.sets(st.integers(0, 10_000), min_size=n, max_size=n))))
    last = np.asarray(draw(st.lists(st.integers(-1, 5), min_size=n, max_size=n)))
    count = np.asarray(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 7.0, np.nan]),
                                     min_size=n, max_size=n)))
    return pages, last, count, draw(st.integers(1, n))


@settings(max_examples=300, deadline=None)
@given(_fast_tier())
def test_coldest_picks_what_a_full_sort_puts_first(tier):
    """Oldest last access first, then fewest accesses (NaN last), then lowest page."""
    pages, last, count, need = tier
    expected = np.sort(pages[np.lexsort((count, last))[:need]])
    assert np.array_equal(coldest(pages, last, count, need), expected)


def test_coldest_hand_case():
    pages = np.array([3, 5, 8, 13, 21])
    last = np.array([2, 0, 2, 1, 0])
    count = np.array([1.0, 4.0, 0.5, 9.0, 2.0])
    # by (last, count): 21 (0, 2), 5 (0, 4), 13 (1, 9), 8 (2, 0.5), 3 (2, 1)
    assert coldest(pages, last, count, 3).tolist() == [5, 13, 21]
    assert coldest(pages, last, count, 4).tolist() == [5, 8, 13, 21]

