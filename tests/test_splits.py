"""Purged, embargoed, time-ordered splits: checked on the indices they return."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from pipeline_core.errors import ConfigError, DataValidationError, InsufficientHistoryError
from pipeline_core.splits import Fold, SplitIndices, chronological_split, walk_forward_folds

START = datetime(2024, 3, 4, 14, 30, tzinfo=timezone.utc)
N_TIMES = 400


def multi_symbol_frame() -> pl.DataFrame:
    """Rows sorted by symbol then time: a dense symbol, one with random gaps, two starting late
    (DDD one bar after the validation boundary of the default 0.6 / 0.2 split)."""
    rng = np.random.default_rng(0)
    grid = np.arange(N_TIMES)
    minutes = {
        "AAA": grid,
        "BBB": np.sort(rng.choice(grid, size=280, replace=False)),  # missing bars
        "CCC": grid[150:],  # starts late
        "DDD": grid[241:],
    }
    return pl.concat(
        pl.DataFrame(
            {
                "timestamp": pl.Series([START + timedelta(minutes=int(m)) for m in mins],
                                       dtype=pl.Datetime("us", "UTC")),
                "symbol": symbol,
            }
        )
        for symbol, mins in minutes.items()
    )


def label_window_end(frame: pl.DataFrame, horizon: int) -> pl.Series:
    """Timestamp of bar t+horizon of the same symbol (its last bar when fewer are left)."""
    ahead = pl.col("timestamp").shift(-horizon).over("symbol")
    return frame.select(ahead.fill_null(pl.col("timestamp").last().over("symbol"))).to_series()


def bars_between(frame: pl.DataFrame, symbol: str, start, end) -> int:
    """Number of `symbol` bars with start <= timestamp < end."""
    ts = frame.filter(pl.col("symbol") == symbol)["timestamp"]
    return int(((ts >= start) & (ts < end)).sum())


def assert_no_leak(frame: pl.DataFrame, earlier: np.ndarray, later: np.ndarray, horizon: int) -> None:
    """Every label window of `earlier` ends before the first timestamp of `later`, which comes after."""
    ts = frame["timestamp"]
    later_start = ts.gather(later).min()
    assert ts.gather(earlier).max() < later_start
    assert label_window_end(frame, horizon).gather(earlier).max() < later_start


def assert_embargo(frame: pl.DataFrame, rows: np.ndarray, boundary, embargo: int) -> None:
    """Each symbol's first row in `rows` has at least `embargo` of its bars in [boundary, itself)."""
    chosen = frame[rows]
    for symbol in chosen["symbol"].unique():
        first = chosen.filter(pl.col("symbol") == symbol)["timestamp"].min()
        assert bars_between(frame, symbol, boundary, first) >= embargo
    dense_first = chosen.filter(pl.col("symbol") == "AAA")["timestamp"].min()
    assert bars_between(frame, "AAA", boundary, dense_first) == embargo  # no more than asked


def unique_time(frame: pl.DataFrame, index: int):
    return frame["timestamp"].unique().sort()[index]


@pytest.mark.parametrize(("horizon", "embargo"), [(5, None), (20, 3), (10, 0)])
def test_chronological_split_is_purged_ordered_and_embargoed(horizon, embargo):
    frame = multi_symbol_frame()
    split = chronological_split(frame["timestamp"], horizon=horizon, embargo=embargo, symbols=frame["symbol"])
    assert isinstance(split, SplitIndices)
    assert all(part.dtype == np.int64 for part in (split.train, split.val, split.test))
    assert_no_leak(frame, split.train, np.concatenate([split.val, split.test]), horizon)
    assert_no_leak(frame, split.val, split.test, horizon)
    gap = horizon if embargo is None else embargo
    assert_embargo(frame, split.val, unique_time(frame, int(0.6 * N_TIMES)), gap)
    assert_embargo(frame, split.test, unique_time(frame, int(0.8 * N_TIMES)), gap)
    # only the purged and embargoed bars are dropped: the dense symbol loses exactly those
    dense = frame.with_row_index().filter(pl.col("symbol") == "AAA")["index"].to_numpy()
    kept = np.isin(dense, np.concatenate([split.train, split.val, split.test])).sum()
    assert kept == N_TIMES - 2 * horizon - 2 * gap


def test_chronological_split_purges_by_bars_of_the_same_symbol():
    """A symbol with gaps needs a longer purge in time than one with every bar."""
    frame = multi_symbol_frame()
    split = chronological_split(frame["timestamp"], horizon=10, symbols=frame["symbol"])
    val_start = unique_time(frame, int(0.6 * N_TIMES))
    train = frame[split.train]
    last_train = {s: train.filter(pl.col("symbol") == s)["timestamp"].max() for s in ("AAA", "BBB")}
    assert bars_between(frame, "AAA", last_train["AAA"], val_start) == 11  # itself + 10 purged bars
    assert bars_between(frame, "BBB", last_train["BBB"], val_start) <= 11
    assert last_train["BBB"] < last_train["AAA"]


def test_chronological_split_single_symbol_numpy_timestamps():
    times = np.datetime64("2024-01-02") + np.arange(100).astype("timedelta64[D]")
    split = chronological_split(times, 0.5, 0.25, horizon=5, embargo=2)
    assert split.train.tolist() == list(range(0, 45))  # bars 45..49 look into val (starts at 50)
    assert split.val.tolist() == list(range(52, 70))  # embargo 50, 51; purge 70..74
    assert split.test.tolist() == list(range(77, 100))  # embargo 75, 76


@pytest.mark.parametrize("n_folds", [1, 3, 5])
def test_walk_forward_folds_expand_and_never_leak(n_folds):
    frame = multi_symbol_frame()
    horizon = 10
    folds = walk_forward_folds(frame["timestamp"], n_folds, horizon, symbols=frame["symbol"])
    assert len(folds) == n_folds and all(isinstance(fold, Fold) for fold in folds)
    ts = frame["timestamp"]
    for k, fold in enumerate(folds):
        assert_no_leak(frame, fold.train, fold.val, horizon)
        block_start = unique_time(frame, N_TIMES // 2 + k * ((N_TIMES - N_TIMES // 2) // n_folds))
        assert_embargo(frame, fold.val, block_start, horizon)
        if k:
            previous = folds[k - 1]
            assert set(previous.train) < set(fold.train)  # expanding window
            assert ts.gather(previous.val).max() < ts.gather(fold.val).min()  # blocks move forward
    assert ts.gather(folds[-1].val).max() == ts.max()  # the last block runs to the end


def test_splits_reject_bad_configuration():
    frame = multi_symbol_frame()
    ts, symbols = frame["timestamp"], frame["symbol"]
    bad_fractions = r"train_frac=0.7 and val_frac=0.3 must each be in \(0, 1\) and sum below 1"
    with pytest.raises(ConfigError, match=bad_fractions):
        chronological_split(ts, 0.7, 0.3, horizon=5, symbols=symbols)
    with pytest.raises(ConfigError, match="horizon=0 must be an int >= 1"):
        chronological_split(ts, horizon=0, symbols=symbols)
    with pytest.raises(ConfigError, match="embargo=-1 must be an int >= 0"):
        walk_forward_folds(ts, 3, 5, embargo=-1, symbols=symbols)
    with pytest.raises(ConfigError, match="n_folds=0 must be an int >= 1"):
        walk_forward_folds(ts, 0, 5, symbols=symbols)


def test_splits_report_too_little_history():
    times = np.arange(40)
    too_short = r"40 unique timestamps give .* too short: \['test', 'val'\]"
    with pytest.raises(InsufficientHistoryError, match=too_short):
        chronological_split(times, horizon=10)
    with pytest.raises(InsufficientHistoryError, match="too few for 8 folds"):
        walk_forward_folds(times, 8, 5)


def test_splits_require_rows_sorted_by_symbol_then_time():
    frame = multi_symbol_frame()
    with pytest.raises(DataValidationError, match="timestamps must increase strictly within each symbol"):
        chronological_split(frame["timestamp"], horizon=5)  # multi-symbol frame without symbols=
    shuffled = frame.sort("timestamp")
    with pytest.raises(DataValidationError, match="rows must be sorted by symbol then timestamp"):
        chronological_split(shuffled["timestamp"], horizon=5, symbols=shuffled["symbol"])
