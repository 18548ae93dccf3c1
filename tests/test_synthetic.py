from datetime import date

import numpy as np
import polars as pl
import pytest

from pipeline_core.data import MarketSpec, generate_market, validate_ohlcv
from pipeline_core.errors import ConfigError

SPEC = MarketSpec(start=date(2024, 1, 1), days=6, symbols=3, bars_per_day=390, seed=3)


def test_generate_market_is_deterministic_for_a_seed():
    assert generate_market(SPEC).equals(generate_market(SPEC))
    other = generate_market(MarketSpec(**{**SPEC.__dict__, "seed": 4}))
    assert not other["close"].equals(generate_market(SPEC)["close"])


def test_generate_market_bars_pass_the_contract():
    bars = generate_market(SPEC)
    assert validate_ohlcv(bars).equals(bars)
    assert bars.height == 6 * 3 * 390
    assert bars["symbol"].unique().sort().to_list() == ["SYN01", "SYN02", "SYN03"]


def _log_returns(bars: pl.DataFrame) -> np.ndarray:
    return bars.select(pl.col("close").log().diff().over("symbol")).drop_nulls().to_series().to_numpy()


def test_generate_market_has_volatility_clustering_and_intraday_seasonality():
    bars = generate_market(MarketSpec(days=20, symbols=4, seed=5))
    returns = _log_returns(bars)
    absolute = np.abs(returns - returns.mean())
    # Volatility clustering: absolute returns are autocorrelated, raw returns much less so.
    assert np.corrcoef(absolute[:-1], absolute[1:])[0, 1] > 0.1
    minute = bars.select(pl.col("timestamp").dt.hour() * 60 + pl.col("timestamp").dt.minute()).to_series()
    by_minute = bars.with_columns(minute=minute).group_by("minute").agg(pl.col("volume").mean()).sort("minute")
    volume = by_minute["volume"].to_numpy()
    assert volume[:30].mean() > 1.3 * volume[180:210].mean()  # busier at the open than midday
    assert volume[-30:].mean() > 1.3 * volume[180:210].mean()  # and at the close


def test_generate_market_has_weak_but_real_momentum():
    bars = generate_market(MarketSpec(days=30, symbols=4, seed=9))
    past = bars.select((pl.col("close").log() - pl.col("close").log().shift(10)).over("symbol")).to_series()
    future = bars.select((pl.col("close").log().shift(-10) - pl.col("close").log()).over("symbol")).to_series()
    both = pl.DataFrame({"past": past, "future": future}).drop_nulls()
    correlation = np.corrcoef(both["past"], both["future"])[0, 1]
    assert 0.01 < abs(correlation) < 0.3


def test_generate_market_drift_raises_volatility_after_the_drift_date():
    spec = MarketSpec(days=10, symbols=2, seed=1, drift_start=date(2024, 1, 6))
    bars = generate_market(spec)
    returns = bars.select(pl.col("timestamp").dt.date().alias("day"), pl.col("close").log().diff().over("symbol").alias("r"))
    vol = returns.drop_nulls().group_by(pl.col("day") >= date(2024, 1, 6)).agg(pl.col("r").std()).sort("day")
    before, after = vol["r"].to_list()
    assert after > 1.8 * before
    assert generate_market(MarketSpec(days=5, symbols=2, seed=1)).equals(bars.filter(pl.col("timestamp").dt.date() < date(2024, 1, 6)))


def test_market_spec_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="symbols must be at least 1"):
        MarketSpec(symbols=0)
