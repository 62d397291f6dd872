"""The fitter, and the shipped zen3-epyc-ptdma profile against the published tables."""

from __future__ import annotations

import numpy as np
import pytest

from migpolicy.context import build_context
from migpolicy.hardware.fit import abs_pct_err, default_free, fit_parameters
from migpolicy.hardware.profile import Provenance
from migpolicy.hardware.tables import (
    predict_copy_share,
    predict_rows,
    read_stage_table,
    read_table,
    shipped_table,
)

FITTED = Provenance("test-fit", "fitted", {"source": "t", "date": "d", "command": "c"})


@pytest.fixture(scope="module")
def zen3():
    return build_context(hw="zen3-epyc-ptdma")


def errors_on(run, key):
    rows = read_table(shipped_table(key), run.engines)
    predicted = predict_rows(run.pm, run.hw, rows, run.params)
    return rows, predicted, abs_pct_err(predicted, rows["throughput_gbps"])


def test_tables_1a_1b_within_published_targets(zen3):
    _, _, err = errors_on(zen3, "1ab")
    assert len(err) == 90
    assert np.median(err) <= 10.0
    assert err.max() <= 25.0


def test_table_2_plateaus_at_the_512_folio_batch(zen3):
    rows, predicted, err = errors_on(zen3, "2")
    for engine in ("mt", "dma"):
        mine = rows["engine"] == engine
        counts, gbps = rows["folio_count"][mine], predicted[mine]
        assert np.all(np.diff(gbps) > -1e-9), "throughput must not fall with more folios"
        at_512 = gbps[counts == 512][0]
        assert gbps[counts == 1][0] < 0.85 * at_512
        assert gbps[counts == 8192][0] < 1.03 * at_512  # flat past one full batch
    assert err.max() <= 25.0


def test_table_3_spread_beats_fill_like_published(zen3):
    rows, predicted, err = errors_on(zen3, "3")
    spread = predicted[(rows["placement"] == "spread") & (rows["workers"] == 8)][0]
    fill = predicted[(rows["placement"] == "fill") & (rows["workers"] == 8)][0]
    assert spread / fill == pytest.approx(37.07 / 11.08, rel=0.15)
    assert err.max() <= 25.0


def test_v1_copy_share_of_256m_within_five_points(zen3):
    rows = read_stage_table(shipped_table("v1"))
    row = rows[(rows["path"] == "cpu_generic") & (rows["total_bytes"] == 256 << 20)][0]
    share = predict_copy_share(zen3.pm, zen3.hw, int(row["total_bytes"]), zen3.params)
    assert abs(share - row["copy_fraction"]) <= 0.05


def test_fit_recovers_perturbed_parameters(zen3):
    rows = np.concatenate([read_table(shipped_table(k), zen3.engines) for k in ("2", "3")])
    truth = {"memory.ccd_gbps": zen3.hw.value("memory.ccd_gbps"),
             "stages.batch.batch_ns": zen3.hw.value("stages.batch.batch_ns")}
    # Make the "observations" the shipped model's own predictions, then start far away.
    rows["throughput_gbps"] = predict_rows(zen3.pm, zen3.hw, rows, zen3.params)
    start = zen3.hw.with_values({"memory.ccd_gbps": truth["memory.ccd_gbps"] * 1.6,
                                 "stages.batch.batch_ns": truth["stages.batch.batch_ns"] * 0.4},
                                FITTED)
    result = fit_parameters(zen3.pm, start, rows, list(truth), zen3.params, FITTED)
    assert result.converged
    for name, value in truth.items():
        assert result.values[name] == pytest.approx(value, rel=0.02)
        assert result.profile.sections[name.rsplit(".", 1)[0]][name.rsplit(".", 1)[1]] \
            .provenance.kind == "fitted"
    assert result.abs_pct_err.max() < 1.0


def test_fit_that_runs_out_of_evaluations_is_not_converged(zen3):
    rows = read_table(shipped_table("3"), zen3.engines)
    result = fit_parameters(zen3.pm, zen3.hw, rows, ["memory.ccd_gbps", "memory.link_gbps"],
                            zen3.params, FITTED, max_evaluations=1)
    assert not result.converged


def test_default_free_depends_on_engines():
    assert "engines.dma.desc_ns" in default_free(["dma"])
    assert "engines.dma.desc_ns" not in default_free(["mt"])
    assert "engines.mt.thread_start_ns" in default_free(["mt", "cpu"])
