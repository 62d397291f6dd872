"""Measuring copies: the grid of experiments, real cold copies, every sample in the table."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from migpolicy.hardware.measure import (
    GPU_STREAMS,
    QUICK_SIZES,
    Settings,
    measure,
    plan,
    write_table,
)
from migpolicy.hardware.tables import read_table

K, M = 1 << 10, 1 << 20
#: Two sizes, two counts, two samples: small enough for a unit test.
TINY = Settings(engines=("cpu", "mt"), sizes=(64 * K, 256 * K), counts=(1, 4), max_bytes=M,
                samples=2, threads=(1, 2))


def test_plan_covers_sizes_counts_and_threads_within_the_byte_limits() -> None:
    settings = Settings(sizes=(4 * K, 64 * K, 2 * M), counts=(1, 16, 512), max_bytes=2 * M,
                        min_bytes=64 * K, threads=(1, 2, 4))
    experiments = plan(settings, gpu=False, nodes=1)
    pairs = {(e.folio_bytes, e.count) for e in experiments}
    assert pairs == {(4 * K, 16), (4 * K, 512), (64 * K, 1), (64 * K, 16), (2 * M, 1)}
    assert {e.workers for e in experiments if e.engine == "cpu"} == {1}
    assert {e.workers for e in experiments if e.engine == "mt"} == {1, 2, 4}
    assert {e.scope for e in experiments} == {"copy"}


def test_plan_adds_gpu_batches_and_moves_only_where_the_machine_has_them() -> None:
    settings = Settings(sizes=(256 * K,), counts=(1, 1024), max_bytes=256 * M, threads=(1,))
    without = plan(settings, gpu=False, nodes=1)
    with_both = plan(settings, gpu=True, nodes=2)
    assert not any(e.engine == "gpu" or e.scope == "move" for e in without)
    gpu = [e for e in with_both if e.engine == "gpu"]
    assert {e.workers for e in gpu} == set(GPU_STREAMS)
    assert {e.count for e in gpu} == {1}  # a GPU experiment is one batch (<= 512 folios)
    moves = [e for e in with_both if e.scope == "move"]
    assert moves and all(e.engine == "cpu" and e.folio_bytes == 4 * K for e in moves)


def test_thread_counts_are_powers_of_two_and_every_cpu(monkeypatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert Settings().thread_counts() == (1, 2, 4, 6)
    assert Settings(threads=(3,)).thread_counts() == (3,)


def test_quick_preset_is_smaller_and_overrides_apply() -> None:
    full, quick = Settings.preset(), Settings.preset(quick=True, samples=9, sizes=None)
    assert len(quick.sizes) < len(full.sizes) and quick.max_bytes < full.max_bytes
    assert quick.samples == 9 and quick.sizes == QUICK_SIZES
    assert min(full.sizes) == 4 * K and max(full.sizes) == 2 * M


def test_measure_keeps_every_sample_and_the_table_reads_back(tmp_path) -> None:
    experiments = plan(TINY, gpu=False, nodes=1)
    results = measure(experiments, TINY)
    assert [m.experiment for m in results] == experiments
    for m in results:
        assert len(m.seconds) == TINY.samples and min(m.seconds) > 0
    path = tmp_path / "measured.csv"
    write_table(path, results)
    rows = read_table(path, ["cpu", "mt"])
    assert len(rows) == len(experiments)
    assert set(rows["scope"]) == {"copy"}
    np.testing.assert_allclose(rows["throughput_gbps"], [m.median_gbps for m in results],
                               rtol=1e-5)
    with path.open() as handle:
        record = next(csv.DictReader(handle))
    samples = [float(v) for v in record["sample_gbps"].split()]
    assert len(samples) == TINY.samples == int(record["samples"])
    assert float(record["min_gbps"]) == pytest.approx(min(samples), rel=1e-5)
    assert float(record["max_gbps"]) == pytest.approx(max(samples), rel=1e-5)
