"""Triple-barrier labels: hand-built paths, a row-by-row reference, class conventions."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from pipeline_core.constants import CLASSES, HORIZONS
from pipeline_core.errors import ConfigError, DataValidationError
from pipeline_core.labels import (
    index_to_labels,
    labels_to_index,
    triple_barrier_labels,
)

START = datetime(2024, 3, 4, 14, 30, tzinfo=timezone.utc)
HORIZON, VOL_WINDOW = 5, 4
# Closes 100, 101, 100, 101, 100: four log returns of +-ln(1.01), sample std
# ln(1.01) * sqrt(4/3); at bar 4 the barriers are 100 * (1 +- std * sqrt(5)) ~ 102.57 / 97.43.
WARMUP_CLOSES = [100.0, 101.0, 100.0, 101.0, 100.0]
HALF_WIDTH = math.log(1.01) * math.sqrt(4 / 3) * math.sqrt(HORIZON)
QUIET = (100.5, 99.5)  # high, low of a bar that touches neither barrier
UP, DOWN, BOTH = (103.0, 99.5), (100.5, 97.0), (103.0, 97.0)


def bars_from_path(paths: dict[str, list[tuple[float, float]]]) -> pl.DataFrame:
    """One symbol per path: the warm-up closes, then bars with the given (high, low), close 100."""
    frames = []
    for symbol, future in paths.items():
        highs = [c + 0.1 for c in WARMUP_CLOSES] + [high for high, _ in future]
        lows = [c - 0.1 for c in WARMUP_CLOSES] + [low for _, low in future]
        closes = WARMUP_CLOSES + [100.0] * len(future)
        n_bars = len(closes)
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": pl.Series(
                        [START + timedelta(minutes=k) for k in range(n_bars)], dtype=pl.Datetime("us", "UTC")
                    ),
                    "symbol": symbol,
                    "open": closes,
                    "high": highs,
                    "low": lows,
                    "close": closes,
                    "volume": [1000.0] * n_bars,
                }
            )
        )
    return pl.concat(frames)


def test_hand_built_barrier_rule_matches_the_documented_numbers():
    assert 100 * (1 + HALF_WIDTH) == pytest.approx(102.569, abs=1e-3)
    assert 100 * (1 - HALF_WIDTH) == pytest.approx(97.431, abs=1e-3)


@pytest.mark.parametrize(
    ("future", "expected"),
    [
        ([QUIET, QUIET, UP, DOWN, QUIET], 1),  # upper first; the later lower touch is ignored
        ([QUIET, DOWN, QUIET, UP, QUIET], -1),  # lower first
        ([QUIET, QUIET, QUIET, QUIET, UP], 1),  # a touch on the last bar t+h counts
        ([QUIET] * 5, 0),  # neither barrier by t+h
        ([QUIET, BOTH, QUIET, QUIET, QUIET], 0),  # both in the same bar: 0 by rule
        ([QUIET, BOTH, UP, UP, UP], 0),  # ... even when only the upper is touched afterwards
        ([(102.5, 99.5), (100.5, 97.5)] + [QUIET] * 3, 0),  # near misses on both sides
    ],
    ids=["up-first", "down-first", "up-on-last-bar", "neither", "same-bar", "same-bar-then-up", "near-miss"],
)
def test_labels_on_hand_built_paths(future, expected):
    bars = bars_from_path({"X": future})
    labels = triple_barrier_labels(bars, HORIZON, barrier_k=1.0, vol_window=VOL_WINDOW)
    # bars 0..3: volatility not defined yet; bar 4: decided; bars 5..9: fewer than 5 bars ahead
    assert labels["label"].to_list() == [None] * 4 + [expected] + [None] * 5
    assert labels.schema["label"] == pl.Int8


def test_touch_after_the_horizon_does_not_count_and_symbols_do_not_mix():
    paths = {"LATE": [QUIET] * 5 + [UP], "EARLY": [DOWN] + [QUIET] * 5}
    labels = triple_barrier_labels(bars_from_path(paths), HORIZON, barrier_k=1.0, vol_window=VOL_WINDOW)
    by_symbol = {s: labels.filter(pl.col("symbol") == s)["label"].to_list() for s in paths}
    assert by_symbol["LATE"][4] == 0  # the upper touch is at t+6
    assert by_symbol["EARLY"][4] == -1
    assert by_symbol["LATE"][-5:] == by_symbol["EARLY"][-5:] == [None] * 5


def _reference_labels(high, low, close, horizon, k, vol_window):
    """Row-by-row triple barrier labels, written independently of the vectorized code."""
    log_ret = np.diff(np.log(close), prepend=np.nan)
    labels = []
    for t in range(len(close)):
        if t < vol_window or t + horizon >= len(close):
            labels.append(None)
            continue
        sigma = np.std(log_ret[t - vol_window + 1 : t + 1], ddof=1)
        upper = close[t] * (1 + k * sigma * math.sqrt(horizon))
        lower = close[t] * (1 - k * sigma * math.sqrt(horizon))
        label = 0
        for j in range(t + 1, t + horizon + 1):
            up, down = high[j] >= upper, low[j] <= lower
            if up or down:
                label = 0 if (up and down) else (1 if up else -1)
                break
        labels.append(label)
    return labels


@pytest.mark.parametrize("horizon", HORIZONS)
def test_labels_match_a_row_by_row_reference_on_a_random_walk(horizon):
    rng = np.random.default_rng(horizon)
    frames = []
    for symbol, n_bars in (("AAA", 160), ("BBB", 90)):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n_bars)))
        open_ = np.concatenate([[100.0], close[:-1]])
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 1e-3, n_bars)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 1e-3, n_bars)))
        minutes = [START + timedelta(minutes=m) for m in range(n_bars)]
        times = pl.Series(minutes, dtype=pl.Datetime("us", "UTC"))
        frames.append(
            pl.DataFrame(
                {"timestamp": times, "symbol": symbol, "open": open_, "high": high, "low": low,
                 "close": close, "volume": 1.0}
            )
        )
    bars = pl.concat(frames)
    labels = triple_barrier_labels(bars, horizon, barrier_k=1.3, vol_window=20)
    for symbol, part in bars.group_by("symbol", maintain_order=True):
        expected = _reference_labels(
            part["high"].to_numpy(), part["low"].to_numpy(), part["close"].to_numpy(), horizon, 1.3, 20
        )
        assert labels.filter(pl.col("symbol") == symbol[0])["label"].to_list() == expected
    assert set(labels["label"].drop_nulls().unique()) == set(CLASSES)  # every class occurs


def test_default_barrier_gives_reasonably_balanced_classes_on_minute_bars():
    rng = np.random.default_rng(7)
    n_bars, ticks = 6000, 10
    steps = rng.normal(0, 1e-3 / math.sqrt(ticks), n_bars * ticks)  # 10 ticks per bar
    path = np.log(100) + np.cumsum(steps).reshape(n_bars, ticks)
    close = np.exp(path[:, -1])
    open_ = np.concatenate([[100.0], close[:-1]])
    bars = pl.DataFrame(
        {
            "timestamp": pl.Series([START + timedelta(minutes=m) for m in range(n_bars)],
                                   dtype=pl.Datetime("us", "UTC")),
            "symbol": "RW",
            "open": open_,
            "high": np.maximum(np.exp(path.max(axis=1)), open_),
            "low": np.minimum(np.exp(path.min(axis=1)), open_),
            "close": close,
            "volume": 1.0,
        }
    )
    for horizon in (5, 20):
        shares = triple_barrier_labels(bars, horizon)["label"].drop_nulls().value_counts(normalize=True)
        assert shares.height == 3
        assert shares["proportion"].min() > 0.2, shares


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"horizon": 7}, ConfigError, r"horizon=7 is not supported; expected one of \[5, 10, 15, 20\]"),
        ({"horizon": 5, "barrier_k": 0.0}, ConfigError, "barrier_k=0.0 must be a finite number > 0"),
        ({"horizon": 5, "vol_window": 1}, ConfigError, "vol_window=1 must be an int >= 2"),
    ],
)
def test_triple_barrier_labels_rejects_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        triple_barrier_labels(bars_from_path({"X": [QUIET] * 5}), **kwargs)


def test_triple_barrier_labels_names_missing_columns():
    with pytest.raises(DataValidationError, match=r"missing columns \['high'\]"):
        triple_barrier_labels(bars_from_path({"X": [QUIET] * 5}).drop("high"), 5)


def test_class_index_round_trip():
    labels = np.array([-1, 0, 1, 1, -1], dtype=np.int8)
    indices = labels_to_index(labels)
    assert indices.tolist() == [0, 1, 2, 2, 0] and indices.dtype == np.int64
    assert index_to_labels(indices).tolist() == labels.tolist()
    assert labels_to_index(pl.Series([1, 0, -1], dtype=pl.Int8)).tolist() == [2, 1, 0]


def test_class_index_rejects_nulls_and_unknown_values():
    with pytest.raises(DataValidationError, match="contain 1 null/NaN values; drop rows with null labels"):
        labels_to_index(pl.Series([1, None, -1], dtype=pl.Int8))
    bad_label = r"labels must be in \[-1, 0, 1\]; got unexpected values \[2\]"
    with pytest.raises(DataValidationError, match=bad_label):
        labels_to_index([0, 2])
    bad_index = r"class indices must be in \[0, 1, 2\]; got unexpected values \[-1\]"
    with pytest.raises(DataValidationError, match=bad_index):
        index_to_labels([-1, 0])
