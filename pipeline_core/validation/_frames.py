"""Keys of an input frame, cutting it by rows, and aligning a predict function's output.

The audits never validate or reorder the caller's frame: they read its keys (timestamp
and an optional symbol), hand `predict_func` the selected rows in their original order
and type (pandas or polars), and turn whatever comes back into one keyed polars frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from pipeline_core.data import DEFAULT_SYMBOL
from pipeline_core.errors import DataValidationError

TIMESTAMP_DTYPE = pl.Datetime("us", "UTC")
KEYS = ("timestamp", "symbol")
MAX_SHOWN = 5


def input_keys(df: Any) -> pl.DataFrame:
    """`timestamp` (UTC, µs) and `symbol` of every row of `df`, in its order, plus `row`."""
    if isinstance(df, pd.DataFrame):
        frame = df
        if isinstance(df.index, pd.DatetimeIndex) and "timestamp" not in _lowered(df.columns):
            frame = df.reset_index(names="timestamp")
        keys = _key_columns(frame.columns)
        frame = pl.from_pandas(frame[list(keys.values())].reset_index(drop=True))
    elif isinstance(df, pl.DataFrame):
        keys = _key_columns(df.columns)
        frame = df.select(list(keys.values()))
    else:
        raise DataValidationError(
            f"The audit needs a pandas or polars frame of bars, got {type(df).__name__}: "
            "read the file first, e.g. with pipeline_core.data.validate_ohlcv(path)."
        )
    frame = frame.rename({original: key for key, original in keys.items()})
    return _normalize_keys(frame, "The audited frame").with_row_index("row")


def take_rows(df: Any, rows: np.ndarray) -> Any:
    """Rows `rows` (positions, increasing) of `df`, same type and columns."""
    if isinstance(df, pd.DataFrame):
        return df.iloc[rows]
    return df[rows]


def keyed_output(output: Any, keys: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """`output` of a predict function as a frame of timestamp, symbol and `columns`.

    `output` is a pandas or polars frame, or an object with `to_frame()` (such as an
    InferenceResult). With `timestamp` (and `symbol`) columns rows are matched by key;
    without, the rows are the LAST rows of the single-symbol input `keys` (rows without
    enough history are missing at the start). Rows with a null in `columns` are dropped.
    """
    frame = _as_polars(output)
    frame = frame.rename({name: name.strip().lower() for name in frame.columns})
    missing = sorted(set(columns) - set(frame.columns))
    if missing:
        raise DataValidationError(
            f"predict_func returned columns {sorted(frame.columns)[:8]}, missing {missing}: "
            f"return a frame with {list(columns)} (and optionally timestamp, symbol)."
        )
    if "timestamp" in frame.columns:
        keyed = _by_key(frame, keys, columns)
    else:
        keyed = _by_tail(frame, keys, columns)
    keyed = keyed.drop_nulls(list(columns))
    _refuse_duplicates(keyed)
    return keyed


def _by_key(frame: pl.DataFrame, keys: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    if "symbol" not in frame.columns:
        symbols = keys["symbol"].unique()
        if symbols.len() > 1:
            raise DataValidationError(
                f"predict_func returned a timestamp but no symbol column for input of "
                f"{symbols.len()} symbols: add a symbol column so rows can be matched."
            )
        frame = frame.with_columns(symbol=pl.lit(symbols[0] if symbols.len() else DEFAULT_SYMBOL))
    return _normalize_keys(frame.select(*KEYS, *columns), "predict_func's output")


def _by_tail(frame: pl.DataFrame, keys: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    symbols = keys["symbol"].unique()
    if symbols.len() > 1:
        raise DataValidationError(
            f"predict_func returned no timestamp/symbol columns for input of {symbols.len()} "
            "symbols: rows can only be aligned by position for one symbol. Return timestamp "
            "and symbol columns (e.g. InferenceResult.to_frame())."
        )
    if frame.height > keys.height:
        raise DataValidationError(
            f"predict_func returned {frame.height} rows for {keys.height} input rows: without "
            "keys its rows must be the last rows of the input."
        )
    if not keys["timestamp"].is_sorted() or keys["timestamp"].n_unique() != keys.height:
        raise DataValidationError(
            "predict_func returned no timestamp column, so its rows are matched to the input's "
            "last rows, which needs input sorted by strictly increasing timestamp: sort the "
            "frame or return a timestamp column."
        )
    tail = keys.tail(frame.height).select(KEYS) if frame.height else keys.clear().select(KEYS)
    return pl.concat([tail, frame.select(columns)], how="horizontal")


def _as_polars(output: Any) -> pl.DataFrame:
    if not isinstance(output, (pd.DataFrame, pl.DataFrame)) and hasattr(output, "to_frame"):
        output = output.to_frame()
    if isinstance(output, pl.DataFrame):
        return output
    if isinstance(output, pd.DataFrame):
        if isinstance(output.index, pd.DatetimeIndex) and "timestamp" not in _lowered(output.columns):
            output = output.reset_index(names="timestamp")
        return pl.from_pandas(output.reset_index(drop=True))
    raise DataValidationError(
        f"predict_func returned {type(output).__name__}: expected a pandas or polars frame "
        "with prediction and confidence columns, or an object with to_frame()."
    )


def _key_columns(columns) -> dict[str, str]:
    """{"timestamp": original name, "symbol": original name (if any)}."""
    by_lower = {str(name).strip().lower(): name for name in columns}
    if "timestamp" not in by_lower:
        raise DataValidationError(
            f"The audited frame has no timestamp column (got {sorted(map(str, columns))[:8]}): "
            "expected a 'timestamp' column or a DatetimeIndex."
        )
    return {key: by_lower[key] for key in KEYS if key in by_lower}


def _normalize_keys(frame: pl.DataFrame, what: str) -> pl.DataFrame:
    if "symbol" not in frame.columns:
        frame = frame.with_columns(symbol=pl.lit(DEFAULT_SYMBOL))
    dtype = frame.schema["timestamp"]
    if not isinstance(dtype, pl.Datetime):
        raise DataValidationError(f"{what} has a timestamp column of type {dtype}: expected datetimes.")
    stamp = pl.col("timestamp")
    stamp = stamp.dt.convert_time_zone("UTC") if dtype.time_zone else stamp.dt.replace_time_zone("UTC")
    return frame.with_columns(stamp.dt.cast_time_unit("us"), pl.col("symbol").cast(pl.String))


def _refuse_duplicates(frame: pl.DataFrame) -> None:
    duplicated = frame.filter(pl.struct(KEYS).is_duplicated())
    if duplicated.height:
        shown = duplicated.select(KEYS).head(MAX_SHOWN).rows()
        raise DataValidationError(
            f"predict_func returned {duplicated.height} rows with duplicate (timestamp, symbol), "
            f"first {shown}: return one row per bar."
        )


def _lowered(columns) -> list[str]:
    return [str(name).strip().lower() for name in columns]
