"""Time-ordered, purged and embargoed splits of a (multi-symbol) bar frame.

Rows are sorted by symbol then timestamp; symbols share the timestamp axis. Segments are
cut on the sorted unique timestamps, so a boundary is one instant for every symbol, and
the functions return row indices (np.int64) into the frame.

- Purge: the label of the row at bar t reads bars t+1..t+horizon of its symbol. A row in
  an earlier segment is dropped when that window reaches a timestamp of the next segment
  (for a row with fewer than `horizon` bars left, the window runs to its symbol's last bar).
- Embargo: the first `embargo` bars of each symbol at or after a boundary are dropped
  from the later segment (default: `embargo = horizon`).

Pass `symbols` for a multi-symbol frame; without it the rows are one instrument and the
timestamps must be strictly increasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline_core.errors import ConfigError, DataValidationError, InsufficientHistoryError

Column = pl.Series | np.ndarray | Sequence


@dataclass(frozen=True)
class SplitIndices:
    """Row indices of the train, validation and test segments, each ascending."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: training rows, then a later validation block."""

    train: np.ndarray
    val: np.ndarray


@dataclass(frozen=True)
class _TimeAxis:
    """Per-row timestamps (int64) with each row's label-window end and symbol start."""

    times: np.ndarray
    label_end: np.ndarray
    symbol_start: np.ndarray
    unique_times: np.ndarray

    def earlier(self, boundary: int) -> np.ndarray:
        """Rows before `boundary` whose label window ends before it (purged)."""
        return (self.times < boundary) & (self.label_end < boundary)

    def at_or_after(self, boundary: int, embargo: int) -> np.ndarray:
        """Rows at or after `boundary`, minus each symbol's first `embargo` bars there."""
        back = np.arange(self.times.size) - embargo
        embargoed = (back < self.symbol_start) | (self.times[np.maximum(back, 0)] < boundary)
        return (self.times >= boundary) & ~embargoed


def chronological_split(
    timestamps: Column,
    train_frac: float = 0.6,
    val_frac: float = 0.2,
    *,
    horizon: int,
    embargo: int | None = None,
    symbols: Column | None = None,
) -> SplitIndices:
    """Train / val / test rows cut at fractions of the unique timestamps, purged and embargoed.

    Train rows' label windows end before the validation start, validation rows' before the
    test start; each later segment skips its first `embargo` bars per symbol.
    """
    embargo = _check_horizon_embargo(horizon, embargo)
    if not (0 < train_frac < 1 and 0 < val_frac < 1 and train_frac + val_frac < 1):
        raise ConfigError(
            f"train_frac={train_frac!r} and val_frac={val_frac!r} must each be in (0, 1) and sum "
            "below 1 so the test segment is not empty (e.g. 0.6 and 0.2)."
        )
    axis = _time_axis(timestamps, symbols, horizon)
    n_times = axis.unique_times.size
    n_train = int(train_frac * n_times)
    n_val = int(val_frac * n_times)
    needed = {"train": horizon + 1, "val": embargo + horizon + 1, "test": embargo + 1}
    counts = {"train": n_train, "val": n_val, "test": n_times - n_train - n_val}
    short = sorted(name for name in counts if counts[name] < needed[name])
    if short:
        raise InsufficientHistoryError(
            f"{n_times} unique timestamps give {counts} timestamps to train/val/test, but with "
            f"horizon={horizon} and embargo={embargo} they need at least {needed}; too short: {short}. "
            "Provide more history, or lower horizon/embargo, or change the fractions."
        )
    val_start = axis.unique_times[n_train]
    test_start = axis.unique_times[n_train + n_val]
    split = SplitIndices(
        train=_rows(axis.earlier(val_start)),
        val=_rows(axis.at_or_after(val_start, embargo) & axis.earlier(test_start)),
        test=_rows(axis.at_or_after(test_start, embargo)),
    )
    _require_rows({"train": split.train, "val": split.val, "test": split.test}, horizon, embargo)
    return split


def walk_forward_folds(
    timestamps: Column,
    n_folds: int,
    horizon: int,
    embargo: int | None = None,
    min_train_frac: float = 0.5,
    *,
    symbols: Column | None = None,
) -> list[Fold]:
    """Expanding-window folds for out-of-fold predictions, in time order.

    The first `min_train_frac` of the unique timestamps is training only; the rest is cut
    into `n_folds` consecutive validation blocks (the last one takes the remainder). Fold k
    trains on every row before block k, purged so no training label window reaches block k,
    and validates on block k minus its first `embargo` bars per symbol. Validation rows
    keep their full label windows: no fold trains on anything after its validation block.
    """
    embargo = _check_horizon_embargo(horizon, embargo)
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 1:
        raise ConfigError(f"n_folds={n_folds!r} must be an int >= 1.")
    if not 0 < min_train_frac < 1:
        raise ConfigError(f"min_train_frac={min_train_frac!r} must be in (0, 1), e.g. 0.5.")
    axis = _time_axis(timestamps, symbols, horizon)
    n_times = axis.unique_times.size
    first = int(min_train_frac * n_times)
    block = (n_times - first) // n_folds
    if first <= horizon or block <= embargo:
        raise InsufficientHistoryError(
            f"{n_times} unique timestamps are too few for {n_folds} folds with min_train_frac="
            f"{min_train_frac}, horizon={horizon}, embargo={embargo}: the first training window has "
            f"{first} timestamps (needs > {horizon}) and each validation block {block} (needs > {embargo}). "
            "Provide more history or use fewer folds."
        )
    starts = [axis.unique_times[first + k * block] for k in range(n_folds)]
    ends = starts[1:] + [np.iinfo(np.int64).max]
    folds = [
        Fold(
            train=_rows(axis.earlier(start)),
            val=_rows(axis.at_or_after(start, embargo) & (axis.times < end)),
        )
        for start, end in zip(starts, ends, strict=True)
    ]
    for k, fold in enumerate(folds):
        _require_rows({f"fold {k} train": fold.train, f"fold {k} val": fold.val}, horizon, embargo)
    return folds


def _rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


def _require_rows(segments: dict[str, np.ndarray], horizon: int, embargo: int) -> None:
    """InsufficientHistoryError naming the segments left empty by purging and embargo."""
    empty = sorted(name for name, rows in segments.items() if rows.size == 0)
    if empty:
        raise InsufficientHistoryError(
            f"{empty} have no rows left after purging horizon={horizon} and embargo={embargo} bars; "
            "the symbols have too few bars per segment. Provide more history or lower horizon/embargo."
        )


def _check_horizon_embargo(horizon: int, embargo: int | None) -> int:
    """Validate `horizon` and `embargo`; return the embargo (default: the horizon)."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ConfigError(f"horizon={horizon!r} must be an int >= 1 (bars in the label window).")
    if embargo is None:
        return horizon
    if isinstance(embargo, bool) or not isinstance(embargo, int) or embargo < 0:
        raise ConfigError(f"embargo={embargo!r} must be an int >= 0 bars, or None for the horizon.")
    return embargo


def _time_axis(timestamps: Column, symbols: Column | None, horizon: int) -> _TimeAxis:
    """Check the row order and derive each row's symbol start and label-window end."""
    times = _as_int64_times(timestamps)
    runs = _symbol_runs(symbols, times.size)
    is_start = np.ones(times.size, dtype=bool)
    is_start[1:] = runs[1:] != runs[:-1]
    disordered = np.flatnonzero(~is_start[1:] & (np.diff(times) <= 0))
    if disordered.size:
        row = int(disordered[0]) + 1
        raise DataValidationError(
            f"timestamps must increase strictly within each symbol; row {row} ({times[row]}) does not come "
            f"after row {row - 1} ({times[row - 1]}); {disordered.size} such rows. Sort by symbol then "
            "timestamp, drop duplicates, and pass symbols= for a multi-symbol frame."
        )
    starts = np.flatnonzero(is_start)
    lasts = np.append(starts[1:] - 1, times.size - 1)
    symbol_start, symbol_last = starts[runs], lasts[runs]
    label_end = times[np.minimum(np.arange(times.size) + horizon, symbol_last)]
    return _TimeAxis(
        times=times, label_end=label_end, symbol_start=symbol_start, unique_times=np.unique(times)
    )


def _symbol_runs(symbols: Column | None, n_rows: int) -> np.ndarray:
    """Run id (0, 1, ...) of each row's symbol; DataValidationError if a symbol is split up."""
    if symbols is None:
        return np.zeros(n_rows, dtype=np.int64)
    series = symbols if isinstance(symbols, pl.Series) else pl.Series("symbol", np.asarray(symbols))
    if series.len() != n_rows:
        raise DataValidationError(
            f"symbols has {series.len()} rows but timestamps has {n_rows}; pass the same frame's columns."
        )
    if series.null_count():
        raise DataValidationError(f"symbols contain {series.null_count()} nulls; every row needs a symbol.")
    runs = series.rle_id().to_numpy().astype(np.int64)
    n_runs = int(runs[-1]) + 1 if n_rows else 0
    if n_runs != series.n_unique():
        raise DataValidationError(
            f"rows must be sorted by symbol then timestamp, but {series.n_unique()} symbols appear in "
            f"{n_runs} separate runs. Sort the frame by symbol, then timestamp."
        )
    return runs


def _as_int64_times(timestamps: Column) -> np.ndarray:
    """Timestamps (polars/pandas Series, numpy datetime64 or integers) as int64 microseconds."""
    if not isinstance(timestamps, pl.Series | np.ndarray) or timestamps.dtype == object:
        timestamps = pl.Series("timestamp", timestamps)
    if isinstance(timestamps, pl.Series):
        if timestamps.null_count():
            raise DataValidationError(
                f"timestamps contain {timestamps.null_count()} nulls; drop or fill them first."
            )
        if timestamps.dtype == pl.Date or isinstance(timestamps.dtype, pl.Datetime):
            return timestamps.dt.epoch("us").to_numpy().astype(np.int64)
        timestamps = timestamps.to_numpy()
    if timestamps.dtype.kind == "M":
        if np.isnat(timestamps).any():
            raise DataValidationError("timestamps contain NaT values; drop or fill them first.")
        return timestamps.astype("datetime64[us]").astype(np.int64)
    if timestamps.dtype.kind in "iu":
        return timestamps.astype(np.int64)
    raise DataValidationError(
        f"timestamps must be datetimes or integers, got dtype {timestamps.dtype}; "
        "pass the frame's timestamp column."
    )
