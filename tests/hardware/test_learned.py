"""The learned cost model: its target, cross-validated error, constraints and skops files."""

from __future__ import annotations

import fractions
import json

import numpy as np
import pytest
import skops.io as sio

from migpolicy.context import build_context
from migpolicy.errors import ConfigError, InputError
from migpolicy.hardware import learned
from migpolicy.hardware.learned import load_model, save_model, sidecar_path, train, training_set
from migpolicy.hardware.predict import pipeline_row_pricer
from migpolicy.hardware.tables import ROW_DTYPE, read_table, shipped_table


def price(ctx):
    """The row pricer of a context, as ``migpolicy hw learn`` builds it."""
    return pipeline_row_pricer(ctx.pm, ctx.params)


@pytest.fixture(scope="module")
def zen3():
    return build_context(hw="zen3-epyc-ptdma")


@pytest.fixture(scope="module")
def data(zen3):
    rows = np.concatenate([read_table(shipped_table(k), zen3.engines) for k in ("1ab", "2")])
    return training_set(price(zen3), zen3.hw, rows, zen3.params, ["1ab.csv", "2.csv"])


@pytest.fixture(scope="module")
def model(data):
    return train(data, base_profile="zen3-epyc-ptdma")


def test_the_target_plus_the_other_stages_is_the_observed_time(data) -> None:
    rows = data.rows
    observed_s = rows["folio_bytes"] * rows["folio_count"] / (rows["throughput_gbps"] * 1e9)
    np.testing.assert_allclose(data.other_s + data.batches * data.copy_s, observed_s, rtol=1e-9)
    assert (data.copy_s > 0).all() and (data.other_s > 0).all()  # move rows: other stages
    np.testing.assert_allclose(data.throughput(data.copy_s), data.observed_gbps, rtol=1e-9)
    assert data.engines == ("dma", "mt")
    one_batch = (rows["folio_count"] == 512) & (rows["folio_bytes"] == 2 << 20)
    assert (data.batches[one_batch] == 1).all()
    assert (data.batches[rows["folio_count"] == 8192] == 16).all()


def test_a_copy_row_is_all_copy(zen3) -> None:
    rows = np.array([("mt", 65536, 2, 1024, "spread", "push", "copy", 5.0, 2)], dtype=ROW_DTYPE)
    one = training_set(price(zen3), zen3.hw, rows, zen3.params)
    assert one.other_s[0] == 0 and one.batches[0] == 2
    assert one.copy_s[0] == pytest.approx(65536 * 1024 / 5e9 / 2)


def test_the_error_is_cross_validated_and_reported_beside_the_analytic_one(model, data) -> None:
    meta = model.meta
    assert meta["cv"]["folds"] == 5 and meta["samples"] == len(data.rows)
    for key in ("cv", "in_sample", "analytic"):
        assert np.isfinite(meta[key]["median_abs_pct_err"])
        assert meta[key]["max_abs_pct_err"] >= meta[key]["median_abs_pct_err"]
    # rows never seen by their model are predicted worse than rows it was fitted to
    assert meta["cv"]["median_abs_pct_err"] > meta["in_sample"]["median_abs_pct_err"]
    assert meta["in_sample"]["median_abs_pct_err"] < 10
    assert meta["features"] == [*learned.NUMERIC_FEATURES, "engine=dma", "engine=mt"]
    assert meta["tables"] == ["1ab.csv", "2.csv"]


def test_copy_time_never_falls_as_folios_grow_or_batches_fill(model) -> None:
    sizes = 4096.0 * 2 ** np.arange(10)
    for engine in ("mt", "dma"):
        for workers in (1, 4, 16):
            by_size = model.copy_seconds(engine, sizes, np.full(10, 512.0), np.full(10, workers))
            assert (np.diff(by_size) >= 0).all()
            counts = 2.0 ** np.arange(10)
            by_count = model.copy_seconds(engine, np.full(10, 65536.0), counts,
                                          np.full(10, workers))
            assert (np.diff(by_count) >= 0).all()


def test_too_few_rows_are_refused(zen3, data) -> None:
    few = training_set(price(zen3), zen3.hw, data.rows[:5], zen3.params)
    with pytest.raises(InputError, match="at least 10 table rows, got 5"):
        train(few)


def test_the_model_round_trips_through_skops(model, tmp_path) -> None:
    path = tmp_path / "m.skops"
    save_model(model, path)
    assert path.read_bytes()[:2] == b"PK"  # a skops zip, not a pickle
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["model"] == "m.skops" and meta["cv"] == model.meta["cv"]
    again = load_model(path)
    assert again.engines == model.engines
    args = (np.array([4096.0, 2 << 20]), np.array([512.0, 512.0]), np.array([1, 16]))
    np.testing.assert_array_equal(again.copy_seconds("mt", *args), model.copy_seconds("mt", *args))


def test_an_untrusted_type_is_refused(model, tmp_path) -> None:
    path = tmp_path / "m.skops"
    save_model(model, path)
    path.write_bytes(sio.dumps({"estimator": fractions.Fraction(1, 3)}))
    with pytest.raises(ConfigError, match=r"m.skops: refusing to load .*untrusted.*Fraction"):
        load_model(path)


def test_a_foreign_estimator_or_missing_metadata_is_refused(model, tmp_path) -> None:
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "m.skops"
    save_model(model, path)
    path.write_bytes(sio.dumps(LinearRegression()))
    with pytest.raises(ConfigError, match="expected a HistGradientBoostingRegressor, got "
                                          "LinearRegression"):
        load_model(path)
    sidecar_path(path).unlink()
    with pytest.raises(ConfigError, match=r"m.skops.json: cannot read"):
        load_model(path)
