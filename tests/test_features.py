"""Causality, declared lookback, warm-up and finiteness of the feature sets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline_core import features
from pipeline_core.errors import ConfigError, DataValidationError
from pipeline_core.features import (
    DEFAULT_FEATURE_SET,
    FEATURE_COLUMNS,
    REQUIRED_LOOKBACK,
    FeatureSet,
    compute_features,
    get_feature_set,
    register_feature_set,
)

START = datetime(2024, 3, 4, 13, 30, tzinfo=timezone.utc)


def random_walk(
    n_bars: int,
    symbols: tuple[str, ...] = ("AAA", "BBB", "CCC"),
    *,
    interval: timedelta = timedelta(minutes=1),
    seed: int = 0,
    offsets: tuple[int, ...] | None = None,
) -> pl.DataFrame:
    """A validated OHLCV frame: seeded random walks, one per symbol, sorted by symbol then time.

    `offsets[i]` delays symbol i's first bar by that many intervals (symbols need not align).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for i, symbol in enumerate(symbols):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n_bars)))
        open_ = np.concatenate([[100.0], close[:-1]])
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 5e-4, n_bars)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 5e-4, n_bars)))
        offset = offsets[i] if offsets else 0
        times = [START + interval * (offset + k) for k in range(n_bars)]
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
                    "symbol": symbol,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.uniform(0.0, 5_000.0, n_bars).round(),
                }
            )
        )
    return pl.concat(frames)


def with_dead_stretch(frame: pl.DataFrame, symbol: str, start: int, length: int) -> pl.DataFrame:
    """Make `length` bars of `symbol` from row `start` flat (open=high=low=close) with zero volume."""
    position = pl.int_range(pl.len()).over("symbol")
    dead = (pl.col("symbol") == symbol) & position.is_between(start, start + length - 1)
    price = pl.col("close").filter(position == start - 1).first().over("symbol")
    return frame.with_columns(
        [pl.when(dead).then(price).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")]
        + [pl.when(dead).then(0.0).otherwise(pl.col("volume")).alias("volume")]
    )


def feature_matrix(frame: pl.DataFrame) -> np.ndarray:
    return frame.select(FEATURE_COLUMNS).to_numpy()


def test_default_feature_set_shape_and_schema():
    bars = random_walk(150)
    out = compute_features(bars)
    assert 25 <= len(FEATURE_COLUMNS) <= 35
    assert REQUIRED_LOOKBACK == 60 == get_feature_set(DEFAULT_FEATURE_SET).lookback
    assert out.columns == ["timestamp", "symbol", *FEATURE_COLUMNS]
    assert all(out.schema[c] == pl.Float64 for c in FEATURE_COLUMNS)
    assert_frame_equal(out.select("timestamp", "symbol"), bars.select("timestamp", "symbol"))


@pytest.mark.parametrize("cut", [REQUIRED_LOOKBACK - 1, REQUIRED_LOOKBACK + 3, 137, 239])
def test_features_unchanged_when_later_bars_removed(cut):
    bars = with_dead_stretch(random_walk(240, offsets=(0, 7, 31)), "BBB", 100, 70)
    cut_time = START + timedelta(minutes=cut)
    full = compute_features(bars).filter(pl.col("timestamp") <= cut_time)
    truncated = compute_features(bars.filter(pl.col("timestamp") <= cut_time))
    assert truncated.height > 0
    assert_frame_equal(truncated, full, check_exact=True)


def on_tick_grid(frame: pl.DataFrame, tick: float = 0.01) -> pl.DataFrame:
    """Prices rounded to a tick, as real quotes are: many returns are exactly zero."""
    rounded = frame.with_columns(pl.col(c).round(2) for c in ("open", "high", "low", "close"))
    return rounded.with_columns(
        high=pl.max_horizontal("open", "high", "close"), low=pl.min_horizontal("open", "low", "close")
    )


@pytest.mark.parametrize("seed", [1, 5])
def test_features_from_exactly_lookback_history_match_all_history(seed):
    bars = with_dead_stretch(on_tick_grid(random_walk(400, seed=seed)), "BBB", 150, 40)
    full = compute_features(bars)
    position = pl.int_range(pl.len()).over("symbol")
    # every bar t >= lookback, recomputed from a frame holding only bars t-lookback..t
    windows = pl.concat(
        bars.filter(position.is_between(t - REQUIRED_LOOKBACK, t)).with_columns(
            window=pl.col("symbol") + f"@{t:04d}"
        )
        for t in range(REQUIRED_LOOKBACK, 400)
    ).sort("window", "timestamp")
    short = compute_features(windows.drop("symbol").rename({"window": "symbol"}))
    last = short.filter(pl.int_range(pl.len()).over("symbol") == REQUIRED_LOOKBACK).with_columns(
        pl.col("symbol").str.split("@").list.first()
    )
    expected = last.select("symbol", "timestamp").join(full, on=["symbol", "timestamp"], how="left")
    assert last.height == 3 * (400 - REQUIRED_LOOKBACK)
    np.testing.assert_allclose(feature_matrix(last), feature_matrix(expected), rtol=1e-9, atol=1e-12)


def test_declared_lookback_is_tight():
    """Without the warm-up mask the default set needs exactly REQUIRED_LOOKBACK earlier bars."""
    fs = get_feature_set(DEFAULT_FEATURE_SET)
    bars = random_walk(REQUIRED_LOOKBACK + 1, symbols=("AAA",))
    raw = fs.compute(bars.lazy()).select(FEATURE_COLUMNS).collect()
    assert raw.row(REQUIRED_LOOKBACK - 1, named=True)["ret_60"] is None
    assert raw.slice(REQUIRED_LOOKBACK).null_count().sum_horizontal().item() == 0


@pytest.mark.parametrize(
    "interval",
    [timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)],
    ids=["minute", "hourly", "daily"],
)
def test_features_null_during_warmup_then_finite_on_flat_and_zero_volume_bars(interval):
    bars = random_walk(300, interval=interval, seed=5, offsets=(0, 3, 11))
    bars = with_dead_stretch(with_dead_stretch(bars, "AAA", 70, 100), "CCC", 200, 3)
    bars = bars.with_columns(volume=pl.when(pl.col("symbol") == "BBB").then(0.0).otherwise(pl.col("volume")))
    out = compute_features(bars)
    warm = pl.int_range(pl.len()).over("symbol") < REQUIRED_LOOKBACK
    warm_rows = out.filter(warm).select(FEATURE_COLUMNS)
    assert warm_rows.height == 3 * REQUIRED_LOOKBACK
    assert warm_rows.null_count().row(0) == (warm_rows.height,) * len(FEATURE_COLUMNS)
    assert out.filter(warm.not_()).select(FEATURE_COLUMNS).null_count().sum_horizontal().item() == 0
    assert np.isfinite(feature_matrix(out.filter(warm.not_()))).all()


def test_features_take_neutral_values_on_a_dead_market():
    bars = with_dead_stretch(random_walk(300, symbols=("AAA",)), "AAA", 100, 150)
    row = compute_features(bars).row(240, named=True)  # 140 bars into the flat, zero-volume stretch
    assert row["ret_1"] == row["ret_60"] == row["rvol_60"] == row["hl_range"] == row["parkinson_30"] == 0.0
    assert row["rsi_14"] == 50.0
    assert row["stoch_k_14"] == row["close_location"] == 0.5
    assert row["volume_ratio_60"] == row["rvol_ratio_5_60"] == row["hl_range_ratio_15"] == 1.0
    assert row["zscore_30"] == row["ma_dist_60"] == row["body"] == 0.0


def test_time_of_day_reads_only_the_utc_clock():
    times = [datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(days=d, hours=6 * d) for d in range(4)]
    bars = random_walk(4, symbols=("AAA",)).with_columns(
        timestamp=pl.Series(times, dtype=pl.Datetime("us", "UTC"))
    )
    raw = get_feature_set(DEFAULT_FEATURE_SET).compute(bars.lazy()).select("tod_sin", "tod_cos").collect()
    expected_angle = np.array([0.0, 0.25, 0.5, 0.75]) * 2 * np.pi  # 00:00, 06:00, 12:00, 18:00 UTC
    np.testing.assert_allclose(raw["tod_sin"].to_numpy(), np.sin(expected_angle), atol=1e-12)
    np.testing.assert_allclose(raw["tod_cos"].to_numpy(), np.cos(expected_angle), atol=1e-12)


def test_get_feature_set_unknown_name_lists_known_sets():
    expected = r"Unknown feature set 'nope'; known feature sets: \[.*'ohlcv_v1'.*\]\. Register it"
    with pytest.raises(ConfigError, match=expected):
        get_feature_set("nope")


def test_registered_leaky_set_breaks_the_truncation_property(monkeypatch):
    """The truncation test above is sensitive: a set reading the next close fails it."""
    monkeypatch.setattr(features, "_REGISTRY", dict(features._REGISTRY))
    leak = (pl.col("close").shift(-1) / pl.col("close")).log().alias("next_ret")
    register_feature_set(FeatureSet.from_expressions("leaky_next_close", [leak], lookback=0))
    bars = random_walk(50)
    cut = pl.col("timestamp") <= START + timedelta(minutes=30)
    full = compute_features(bars, "leaky_next_close").filter(cut)
    truncated = compute_features(bars.filter(cut), "leaky_next_close")
    assert full["next_ret"].null_count() == 0
    assert truncated["next_ret"].null_count() == 3  # the last bar of each symbol lost its future
    assert "leaky_next_close" in features.available_feature_sets()


def test_register_feature_set_refuses_a_taken_name(monkeypatch):
    monkeypatch.setattr(features, "_REGISTRY", dict(features._REGISTRY))
    other = FeatureSet.from_expressions(DEFAULT_FEATURE_SET, [pl.col("close").alias("c2")], lookback=0)
    with pytest.raises(ConfigError, match="already registered; choose another name or pass replace=True"):
        register_feature_set(other)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": ()}, "columns must be non-empty and unique"),
        ({"columns": ("close",)}, r"columns \['close'\] clash with OHLCV columns"),
        ({"lookback": -1}, "lookback must be an int >= 0, got -1"),
    ],
)
def test_feature_set_rejects_bad_definitions(kwargs, message):
    spec = {"name": "bad", "columns": ("x",), "lookback": 0, "compute": lambda bars: bars}
    with pytest.raises(ConfigError, match=message):
        FeatureSet(**(spec | kwargs))


def test_compute_features_names_missing_columns():
    bars = random_walk(70).drop("volume")
    with pytest.raises(DataValidationError, match=r"missing columns \['volume'\]"):
        compute_features(bars)


def test_compute_features_refuses_a_set_that_drops_rows():
    dropping = FeatureSet("drops_rows", ("x",), 0, lambda bars: bars.head(5).with_columns(x=pl.col("close")))
    with pytest.raises(ConfigError, match="returned 5 rows for 210 input rows"):
        compute_features(random_walk(70), dropping)
