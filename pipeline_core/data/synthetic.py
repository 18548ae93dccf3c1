"""A deterministic synthetic market of multi-symbol minute bars.

Each symbol follows a two-regime process: a trending regime with short-horizon momentum
and calm volatility, and a choppy regime with mean reversion and high volatility. Shock
variance follows GARCH(1,1) (volatility clustering) scaled by a U-shaped intraday profile,
and volume rises with the open, the close and large moves. The momentum / reversion
component is weak but real, so a model can beat the class prior by a small margin.
An optional drift date changes the regime structure from then on (for drift demos).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import numpy as np

from pipeline_core.errors import ConfigError

if TYPE_CHECKING:
    import polars as pl

SESSION_OPEN_UTC = timedelta(hours=14, minutes=30)
# Per regime: (signal loading, base volatility multiplier, switch-out probability per bar).
TREND, CHOP = 0, 1
SIGNAL_LOADING = np.array([0.22, -0.16])
VOL_LEVEL = np.array([0.8, 1.4])
SWITCH_PROB = np.array([1 / 900, 1 / 600])
GARCH_ALPHA, GARCH_BETA = 0.06, 0.90
SIGNAL_DECAY = 0.9  # memory of the momentum state, about ten bars


@dataclass(frozen=True)
class MarketSpec:
    """What to generate; the same spec always gives the same bars."""

    start: date = date(2024, 1, 1)
    days: int = 60
    symbols: int = 8
    bars_per_day: int = 390
    seed: int = 7
    base_volatility: float = 0.0008  # per-bar return standard deviation
    drift_start: date | None = None  # from this date on the market behaves differently
    drift_volatility: float = 2.5  # volatility multiplier after drift_start

    def __post_init__(self) -> None:
        for name in ("days", "symbols", "bars_per_day"):
            if getattr(self, name) < 1:
                raise ConfigError(f"MarketSpec.{name} must be at least 1, got {getattr(self, name)}.")
        if not 1 <= self.bars_per_day <= 1440:
            raise ConfigError(f"bars_per_day must be 1..1440 minute bars, got {self.bars_per_day}.")

    @property
    def symbol_names(self) -> list[str]:
        return [f"SYN{i:02d}" for i in range(1, self.symbols + 1)]


def generate_market(spec: MarketSpec = MarketSpec()) -> pl.DataFrame:
    """Minute bars for every symbol and calendar day of `spec`, as a validated OHLCV frame.

    Randomness is drawn per day, so a longer market, or one drifted from a later date,
    has exactly the same bars on the days it shares with a shorter one.
    """
    import polars as pl  # here, not at the top: `generate --help` reads MarketSpec only

    timestamps, day_index, intraday = _session_clock(spec)
    noise = _daily_noise(spec)
    drifted = _drift_mask(spec, day_index)
    opening = np.random.default_rng(spec.seed)
    start_price = opening.uniform(20, 400, spec.symbols)
    start_regime = opening.integers(0, 2, spec.symbols)
    returns, sigma = _simulate_returns(noise, intraday, drifted, start_regime, spec)
    close = start_price * np.exp(np.cumsum(returns, axis=0))
    bars = _bars(noise, close, sigma, intraday, day_index)
    symbols = np.array(spec.symbol_names)
    return pl.DataFrame(
        {
            "timestamp": pl.Series(np.repeat(timestamps, spec.symbols)).dt.replace_time_zone("UTC"),
            "symbol": np.tile(symbols, len(timestamps)),
            **{name: values.ravel() for name, values in bars.items()},
        }
    ).sort("symbol", "timestamp")


def _daily_noise(spec: MarketSpec) -> dict[str, np.ndarray]:
    """Every random draw, shaped (bars, symbols), from one generator per day."""
    shape = (spec.bars_per_day, spec.symbols)
    parts: dict[str, list[np.ndarray]] = {"shock": [], "switch": [], "gap": [], "wick_up": [], "wick_down": [], "volume": []}
    for day in range(spec.days):
        rng = np.random.default_rng([spec.seed, day])
        parts["shock"].append(rng.standard_normal(shape))
        parts["switch"].append(rng.random(shape))
        parts["gap"].append(rng.normal(0, 4, shape))
        parts["wick_up"].append(np.abs(rng.normal(0, 0.6, shape)))
        parts["wick_down"].append(np.abs(rng.normal(0, 0.6, shape)))
        parts["volume"].append(rng.lognormal(7, 0.4, shape))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def _session_clock(spec: MarketSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bar timestamps, the day number of each bar, and its position in the session (0..1)."""
    start = datetime.combine(spec.start, datetime.min.time(), tzinfo=timezone.utc)
    day_index = np.repeat(np.arange(spec.days), spec.bars_per_day)
    minute = np.tile(np.arange(spec.bars_per_day), spec.days)
    offsets = day_index * 86_400_000_000 + minute * 60_000_000
    base = np.datetime64(start.replace(tzinfo=None) + SESSION_OPEN_UTC, "us")
    timestamps = base + offsets.astype("timedelta64[us]")
    intraday = minute / max(spec.bars_per_day - 1, 1)
    return timestamps, day_index, intraday


def _drift_mask(spec: MarketSpec, day_index: np.ndarray) -> np.ndarray:
    if spec.drift_start is None:
        return np.zeros(len(day_index), dtype=bool)
    return day_index >= (spec.drift_start - spec.start).days


def _intraday_profile(intraday: np.ndarray) -> np.ndarray:
    """U-shaped multiplier: busiest at the open and the close."""
    return 0.75 + 1.5 * (intraday - 0.5) ** 2 * 4 / 2


def _simulate_returns(noise, intraday, drifted, regime, spec):
    """Log returns and conditional volatility, bar by bar across all symbols at once."""
    shocks, switches = noise["shock"], noise["switch"]
    season = _intraday_profile(intraday)
    variance = np.ones(spec.symbols)
    momentum = np.zeros(spec.symbols)
    returns = np.empty_like(shocks)
    sigma = np.empty_like(shocks)
    for t in range(len(shocks)):
        regime = np.where(switches[t] < SWITCH_PROB[regime], 1 - regime, regime)
        loading = SIGNAL_LOADING[regime]
        vol_level = VOL_LEVEL[regime]
        if drifted[t]:
            loading, vol_level = -loading, vol_level * spec.drift_volatility
        sigma[t] = spec.base_volatility * vol_level * season[t] * np.sqrt(variance)
        returns[t] = sigma[t] * (loading * momentum + shocks[t])
        variance = (1 - GARCH_ALPHA - GARCH_BETA) + GARCH_ALPHA * shocks[t] ** 2 + GARCH_BETA * variance
        momentum = SIGNAL_DECAY * momentum + (1 - SIGNAL_DECAY) * 3 * shocks[t]
    return returns, sigma


def _bars(noise, close, sigma, intraday, day_index) -> dict[str, np.ndarray]:
    """Open, high, low, close and volume arrays shaped (bars, symbols)."""
    prev_close = np.vstack([close[:1], close[:-1]])
    # The first bar of a day opens with an overnight gap; later bars open at the last close.
    new_day = np.concatenate([[True], day_index[1:] != day_index[:-1]])[:, None]
    open_ = prev_close * np.exp(np.where(new_day, noise["gap"] * sigma, 0.0))
    high = np.maximum(open_, close) * np.exp(noise["wick_up"] * sigma)
    low = np.minimum(open_, close) * np.exp(-noise["wick_down"] * sigma)
    move = np.abs(np.log(close / open_)) / np.maximum(sigma, 1e-12)
    volume = np.round(noise["volume"] * _intraday_profile(intraday)[:, None] * (1 + 0.5 * move))
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
