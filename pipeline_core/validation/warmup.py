"""The warm-up audit: scoring with exactly the declared lookback equals scoring with all history.

A pipeline declares `required_lookback`, the bars before t that scoring t reads; batch
scoring reads exactly that much history before a partition. For sampled bars t, this
audit scores the window of the `required_lookback` bars before t plus t itself (t's
symbol only) and compares it with scoring the whole frame:

- probabilities: max |difference| must be <= `tolerance` (1e-6);
- features (the unscaled features the pipeline returns, in units of the scaler's spread,
  `|difference| / scale_`), relative to max(1, |scaled value|): must be <= `tolerance` too.

Rolling windows are computed incrementally, so the two runs differ in the last bits only
(~1e-12); a feature whose memory exceeds its declared lookback (an EWM, a longer rolling
window) differs far more. Checking the features as well as the probabilities catches it
even when the current models happen to be insensitive to that feature (trees only move
when a split threshold is crossed). A window that raises `InsufficientHistoryError` or
does not score t also fails the audit: the declared lookback is too short.

The window ends at t, as it does when t is scored live, so a feature that reads bars
after t fails this audit as well as the lookahead audit; a feature with undeclared
memory but no lookahead fails only this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from pipeline_core.data import validate_ohlcv
from pipeline_core.errors import ConfigError, DataValidationError, InsufficientHistoryError

DEFAULT_TOLERANCE = 1e-6
MAX_WORST = 5


@dataclass(frozen=True)
class WarmupDiff:
    """How far one bar moved between the lookback-only window and the full history."""

    timestamp: datetime
    symbol: str
    prob_diff: float  # max |difference| over the three probabilities (inf: not scored)
    feature_diff: float  # max scaled feature difference (inf: not scored)
    feature: str  # the feature with the largest difference
    problem: str = ""  # set when the window could not be scored


@dataclass(frozen=True)
class WarmupAuditResult:
    passed: bool
    max_abs_diff: float  # probabilities
    max_feature_diff: float  # features, in units of the scaler's spread (relative)
    n_checked: int
    worst: tuple[WarmupDiff, ...]  # the rows that moved most, worst first
    lookback: int
    tolerance: float

    def summary(self) -> str:
        verdict = "declared lookback suffices" if self.passed else "scoring reads more history than declared"
        text = (
            f"{verdict}: {self.n_checked} bars scored from {self.lookback} bars of history; max "
            f"probability diff {self.max_abs_diff:.3g}, max feature diff {self.max_feature_diff:.3g} "
            f"(tolerance {self.tolerance:g})"
        )
        if not self.passed and self.worst:
            worst = self.worst[0]
            text += f"; worst {worst.symbol} {worst.timestamp} feature {worst.feature!r} {worst.problem}".rstrip()
        return text


def warmup_audit(
    pipeline, df: Any, horizon: int, *, n_samples: int = 50, seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
) -> WarmupAuditResult:
    """Compare `n_samples` bars scored from exactly `pipeline.required_lookback` bars of
    history with the same bars scored from the whole frame (the last bar of every symbol
    is always among them)."""
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ConfigError(f"n_samples={n_samples!r}: expected an int >= 1.")
    bars = validate_ohlcv(df)
    lookback = int(pipeline.required_lookback)
    full = pipeline.predict(bars, horizon=horizon)
    full_index = _row_index(full)
    units = np.asarray(pipeline.scaler.scale_, dtype=np.float64)
    names = list(pipeline.config.feature_columns)
    diffs = []
    for row in _sample_rows(bars, lookback, n_samples, seed):
        window = bars.slice(row - lookback, lookback + 1)
        key = (window["timestamp"][-1], window["symbol"][-1])
        if key not in full_index:
            continue  # not scored on the full frame either: not the audit's business
        diffs.append(_compare_window(pipeline, window, horizon, full, full_index[key], units, names))
    if not diffs:
        raise DataValidationError(
            f"No bar of the frame has more than {lookback} bars of history before it in its "
            "symbol, so the warm-up audit has nothing to compare: give it a longer frame."
        )
    return _result(diffs, lookback, tolerance)


def _sample_rows(bars: pl.DataFrame, lookback: int, n_samples: int, seed: int) -> np.ndarray:
    """Positions (in the symbol/time-sorted frame) of bars with MORE than `lookback`
    earlier bars of their symbol: each symbol's last bar plus random ones."""
    position = bars.select(pl.int_range(pl.len()).over("symbol")).to_series().to_numpy()
    eligible = np.flatnonzero(position > lookback)
    symbols = bars["symbol"].to_numpy()
    last_of_symbol = np.flatnonzero(np.append(symbols[1:] != symbols[:-1], True))
    anchors = np.intersect1d(last_of_symbol, eligible)
    others = np.setdiff1d(eligible, anchors)
    size = min(max(n_samples - len(anchors), 0), len(others))
    chosen = np.random.default_rng(seed).choice(others, size=size, replace=False)
    return np.sort(np.concatenate([anchors, chosen]))


def _row_index(result) -> dict[tuple[datetime, str], int]:
    keys = pl.DataFrame({"timestamp": result.timestamps, "symbol": result.symbols}).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    )
    return {key: i for i, key in enumerate(keys.iter_rows())}


def _compare_window(
    pipeline, window: pl.DataFrame, horizon: int, full, full_row: int, units: np.ndarray, names: list[str]
) -> WarmupDiff:
    timestamp, symbol = window["timestamp"][-1], window["symbol"][-1]
    try:
        scored = pipeline.predict(window, horizon=horizon)
    except InsufficientHistoryError as err:
        return WarmupDiff(timestamp, symbol, np.inf, np.inf, "", f"window raised: {err}")
    if scored.n_samples == 0 or _row_index(scored).get((timestamp, symbol)) != scored.n_samples - 1:
        return WarmupDiff(timestamp, symbol, np.inf, np.inf, "", "not scored from the declared lookback")
    prob_diff = float(np.max(np.abs(scored.probabilities[-1] - full.probabilities[full_row])))
    delta = _feature_diff(scored.features[-1], full.features[full_row], units)
    worst = int(np.argmax(delta))
    return WarmupDiff(timestamp, symbol, prob_diff, float(delta[worst]), names[worst])


def _feature_diff(window: np.ndarray, full: np.ndarray, units: np.ndarray) -> np.ndarray:
    """|window - full| in scaler units, relative to max(1, |scaled full|); NaN on both
    sides is no difference, NaN on one side an infinite one."""
    window, full = window.astype(np.float64), full.astype(np.float64)
    delta = np.abs(window - full) / units / np.maximum(1.0, np.abs(full / units))
    both_nan = np.isnan(window) & np.isnan(full)
    return np.where(both_nan, 0.0, np.where(np.isnan(delta), np.inf, delta))


def _result(diffs: list[WarmupDiff], lookback: int, tolerance: float) -> WarmupAuditResult:
    ordered = sorted(diffs, key=lambda d: (max(d.prob_diff, d.feature_diff), d.prob_diff), reverse=True)
    max_prob = max(d.prob_diff for d in diffs)
    max_feature = max(d.feature_diff for d in diffs)
    return WarmupAuditResult(
        passed=max_prob <= tolerance and max_feature <= tolerance,
        max_abs_diff=max_prob,
        max_feature_diff=max_feature,
        n_checked=len(diffs),
        worst=tuple(d for d in ordered[:MAX_WORST] if max(d.prob_diff, d.feature_diff) > 0),
        lookback=lookback,
        tolerance=tolerance,
    )
