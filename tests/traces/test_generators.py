"""Generators: deterministic by seed whatever the chunk size, and shaped as their name says
(checked against closed forms: the zipf head share, uniformity, scan order)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from migpolicy.errors import InputError
from migpolicy.traces import OP_MODIFY, generated_trace, trace_generators
from migpolicy.traces.generators import TENANT_STRIDE


def _events(builtin_pm, kind: str, events: int, pages: int, seed: int = 0, chunk: int = 1 << 20,
            **options):
    trace = generated_trace(trace_generators(builtin_pm)[kind], events, pages, seed, options)
    return trace, np.concatenate(list(trace.chunks(chunk)))


@pytest.mark.parametrize("kind", ["zipf", "phases", "scan", "gups", "tenants"])
def test_deterministic_by_seed_and_chunk_size(kind: str, builtin_pm) -> None:
    _, a = _events(builtin_pm, kind, 100_000, 3000, seed=5)
    _, b = _events(builtin_pm, kind, 100_000, 3000, seed=5, chunk=777)
    _, c = _events(builtin_pm, kind, 100_000, 3000, seed=6)
    assert len(a) == 100_000 and np.array_equal(a, b)
    assert kind == "scan" or not np.array_equal(a, c)
    assert np.all(np.diff(a["t_ns"]) == 10)


def test_zipf_head_share_matches_the_harmonic_number(builtin_pm) -> None:
    _, events = _events(builtin_pm, "zipf", 400_000, 1000, alpha=1.0)
    counts = np.bincount(events["page"])
    harmonic = sum(1 / k for k in range(1, 1001))  # H_1000 = 7.485
    assert counts.max() / len(events) == pytest.approx(1 / harmonic, abs=0.005)
    writes = (events["op"] == 2).mean()
    assert writes == pytest.approx(0.3, abs=0.01)


def test_gups_is_uniform_read_modify_write(builtin_pm) -> None:
    trace, events = _events(builtin_pm, "gups", 200_000, 500)
    assert (events["op"] == OP_MODIFY).all() and trace.meta.distinct_pages == 500
    counts = np.bincount(events["page"], minlength=500)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_scan_visits_pages_in_order(builtin_pm) -> None:
    trace, events = _events(builtin_pm, "scan", 10_000, 1000, per_page=4)
    expected = (np.arange(10_000) // 4) % 1000
    assert np.array_equal(trace.page_table[events["page"]] // 4096, expected)


def test_phases_move_the_hot_set(builtin_pm) -> None:
    trace, events = _events(builtin_pm, "phases", 200_000, 10_000, phases=2, hot_fraction=0.01,
                            hot_share=0.9)
    pages = trace.page_table[events["page"]] // 4096
    first, second = pages[:100_000], pages[100_000:]
    hot_first = set(np.argsort(-np.bincount(first, minlength=10_000))[:100].tolist())
    hot_second = set(np.argsort(-np.bincount(second, minlength=10_000))[:100].tolist())
    assert len(hot_first & hot_second) < 50
    top = np.sort(np.bincount(first, minlength=10_000))[::-1][:100].sum() / len(first)
    assert top == pytest.approx(0.9 + 0.1 * 100 / 10_000, abs=0.02)


def test_tenants_own_their_regions(builtin_pm) -> None:
    trace, events = _events(builtin_pm, "tenants", 60_000, 3000, tenants=3)
    assert sorted(np.unique(events["tenant"]).tolist()) == [0, 1, 2]
    region = trace.page_table[events["page"]] // 4096 // TENANT_STRIDE
    assert np.array_equal(region, events["tenant"])


def test_bad_generator_options(builtin_pm) -> None:
    zipf = trace_generators(builtin_pm)["zipf"]
    with pytest.raises(InputError, match="trace generator 'zipf' has no option 'phases'"):
        generated_trace(zipf, 10, 10, 0, {"phases": "3"})
    with pytest.raises(InputError, match=r"option alpha='steep': expected a float"):
        generated_trace(zipf, 10, 10, 0, {"alpha": "steep"})
