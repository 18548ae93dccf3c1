"""The numpy kernel of `ohlcv_v1` equals the polars feature set, and small inputs use it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from real_data import real_bars
from test_features import random_walk

from pipeline_core import features_numpy, inputs
from pipeline_core.data import validate_ohlcv
from pipeline_core.features import DEFAULT_FEATURE_SET, FEATURE_COLUMNS, REQUIRED_LOOKBACK, FeatureSet, compute_features, get_feature_set
from pipeline_core.features_numpy import has_numpy_kernel, ohlcv_v1_matrix

RTOL = 1e-11  # polars updates rolling sums incrementally; the kernel sums each window afresh


def assert_kernel_equals_polars(bars: pl.DataFrame) -> None:
    expected = compute_features(bars).select(FEATURE_COLUMNS).to_numpy()
    got = ohlcv_v1_matrix(bars, inputs.symbol_blocks(bars["symbol"].to_numpy()))
    assert got.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))  # the same warm-up rows
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-15)


def test_the_kernel_equals_polars_on_random_walks_of_several_symbols():
    bars = random_walk(400, offsets=(0, 30, 75))
    assert_kernel_equals_polars(bars)


def test_the_kernel_equals_polars_on_flat_windows():
    """Constant prices, zero range and zero volume: every guarded division takes its neutral value."""
    bars = random_walk(300)
    flat = pl.int_range(pl.len()).over("symbol").is_between(90, 200) & (pl.col("symbol") == "BBB")
    bars = bars.with_columns(
        *(pl.when(flat).then(100.0).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")),
        pl.when(flat).then(0.0).otherwise(pl.col("volume")).alias("volume"),
    )
    assert_kernel_equals_polars(bars)
    row = int(np.flatnonzero(bars["symbol"].to_numpy() == "BBB")[0]) + 199  # 110 flat bars behind it
    assert ohlcv_v1_matrix(bars, inputs.symbol_blocks(bars["symbol"].to_numpy()))[row, FEATURE_COLUMNS.index("rvol_60")] == 0.0


def test_the_kernel_leaves_short_symbols_unfeatured():
    bars = random_walk(REQUIRED_LOOKBACK, symbols=("AAA",))
    assert np.isnan(ohlcv_v1_matrix(bars, [(0, bars.height)])).all()


@pytest.mark.parametrize("name", ["eurusd", "googl"])
def test_the_kernel_equals_polars_on_real_bars(name):
    bars = validate_ohlcv(real_bars(name)).tail(features_numpy.SMALL_INPUT_ROWS - 1)
    assert_kernel_equals_polars(bars)


def test_only_the_builtin_default_set_has_a_kernel():
    default = get_feature_set(DEFAULT_FEATURE_SET)
    assert has_numpy_kernel(default)
    impostor = FeatureSet(DEFAULT_FEATURE_SET, default.columns, default.lookback, lambda bars: bars)
    assert not has_numpy_kernel(impostor)


def test_featurize_uses_the_kernel_below_the_threshold_and_polars_above(monkeypatch):
    calls = []
    monkeypatch.setattr(inputs, "ohlcv_v1_matrix", lambda *a: calls.append(1) or ohlcv_v1_matrix(*a))
    fs = get_feature_set(DEFAULT_FEATURE_SET)
    small = inputs.featurize(random_walk(200), fs, 1, False)
    assert calls == [1]
    monkeypatch.setattr(inputs, "SMALL_INPUT_ROWS", 100)
    large = inputs.featurize(random_walk(200), fs, 1, False)
    assert calls == [1]
    np.testing.assert_allclose(small.raw, large.raw, rtol=1e-6)
    np.testing.assert_array_equal(small.rows, large.rows)
