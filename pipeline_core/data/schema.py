"""The OHLCV data contract: one entry point that reads, normalizes and validates bars."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd
import polars as pl

from pipeline_core.data.files import file_batches
from pipeline_core.errors import DataValidationError

PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_COLUMNS = (*PRICE_COLUMNS, "volume")
OHLCV_COLUMNS = ("timestamp", "symbol", *REQUIRED_COLUMNS)
DEFAULT_SYMBOL = "default"
TIMESTAMP_DTYPE = pl.Datetime("us", "UTC")
MAX_ROWS_SHOWN = 5
FILE_BATCH_ROWS = 1_000_000
VALIDATED_SCHEMA = pl.Schema(
    {"timestamp": TIMESTAMP_DTYPE, "symbol": pl.String, **{name: pl.Float64 for name in REQUIRED_COLUMNS}}
)
# Below this many rows, a frame already of VALIDATED_SCHEMA is checked in numpy: polars'
# fixed cost per query (about a millisecond) would be most of the time.
NUMPY_CHECK_ROWS = 8192

OhlcvSource = Union[pl.DataFrame, pd.DataFrame, str, Path]


def validate_ohlcv(source: OhlcvSource) -> pl.DataFrame:
    """Return `source` as a validated OHLCV frame.

    Accepts a polars or pandas frame (a timestamp index is fine) or a path to a parquet
    file, a CSV file or a hive-partitioned folder (`root/date=YYYY-MM-DD/*.parquet`).
    The result has exactly `OHLCV_COLUMNS` (timestamp UTC, symbol, float prices and
    volume), sorted by symbol then timestamp. Raises `DataValidationError` naming the
    column, symbol and first offending rows on any breach of the contract.
    """
    return _validated(_normalize_columns(_to_polars(source)))


def _validated(frame: pl.DataFrame, first_row: int = 0) -> pl.DataFrame:
    """Validate a frame with normalized column names whose first row is input row `first_row`."""
    if frame.height == 0:
        raise DataValidationError("OHLCV input is empty: expected at least one bar.")
    if _passes_in_numpy(frame):
        return frame[list(OHLCV_COLUMNS)]  # a column selection: no query
    # `row` keeps the input position so errors point at the rows the user gave us.
    columns = [_as_float(frame, name) for name in REQUIRED_COLUMNS]
    try:
        frame = frame.with_row_index("row", offset=first_row).select(
            "row",
            pl.col("timestamp").pipe(_as_utc_timestamp, frame.schema["timestamp"]),
            pl.col("symbol").cast(pl.String),
            *columns,
        )
    except pl.exceptions.PolarsError as err:
        raise _unparsable_timestamps(frame) from err
    _check_values(frame)
    return frame.sort("symbol", "timestamp", maintain_order=True).drop("row")


def validate_row_history(source: OhlcvSource, idx: int, lookback: int) -> tuple[pl.DataFrame, int]:
    """Row `idx` of `validate_ohlcv(source)` with at most `lookback` earlier bars of its own
    symbol (validated, in time order, the row last), and how many earlier bars its symbol has.

    When `source` is a frame with datetime timestamps already sorted by symbol then time
    (what `validate_ohlcv` returns), only those rows are read and validated, so the cost
    does not grow with the frame; any other source is validated whole first. Raises
    IndexError when `idx` is outside the frame.
    """
    frame = _sorted_frame(source)
    checked = frame is None
    if checked:
        frame = validate_ohlcv(source)
    if not 0 <= idx < frame.height:
        raise IndexError(f"Row {idx} is outside the frame of {frame.height} rows.")
    first = frame["symbol"].search_sorted(frame["symbol"][idx], side="left")
    start = max(first, idx - lookback)
    window = frame.slice(start, idx - start + 1)
    return (window if checked else _validated(window, first_row=start)), idx - first


def _sorted_frame(source: OhlcvSource) -> pl.DataFrame | None:
    """`source` with normalized column names if it is a polars frame with datetime timestamps
    and no missing keys, sorted by symbol then time (so validating it keeps every row in
    place); None otherwise."""
    if not isinstance(source, pl.DataFrame):
        return None
    try:
        frame = _normalize_columns(source)
    except DataValidationError:
        return None
    if not isinstance(frame.schema["timestamp"], pl.Datetime) or frame.schema["symbol"] != pl.String:
        return None
    symbol, stamps = frame["symbol"], frame["timestamp"]
    if symbol.null_count() or stamps.null_count() or not symbol.is_sorted():
        return None
    values = symbol.to_numpy()
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    micros = stamps.dt.epoch("us").to_numpy()
    backwards = np.flatnonzero(np.diff(micros) < 0) + 1
    if np.setdiff1d(backwards, starts).size:
        return None
    return frame


def _to_polars(source: OhlcvSource) -> pl.DataFrame:
    if isinstance(source, pl.DataFrame):
        return source
    if isinstance(source, pd.DataFrame):
        return _from_pandas(source)
    if isinstance(source, (str, Path)):
        return _read_path(Path(source))
    raise DataValidationError(
        f"OHLCV input of type {type(source).__name__} is not supported: expected a polars "
        "or pandas DataFrame, or a path to a parquet file, CSV file or partitioned folder."
    )


def _from_pandas(frame: pd.DataFrame) -> pl.DataFrame:
    index = frame.index
    if isinstance(index, pd.DatetimeIndex) and "timestamp" not in _lower(frame.columns):
        frame = frame.reset_index(names="timestamp")
    return pl.from_pandas(frame)


def _read_path(path: Path) -> pl.DataFrame:
    if not path.is_dir():
        return pl.concat(list(file_batches(path, rows=FILE_BATCH_ROWS)))
    files = sorted(path.glob("date=*/*.parquet"))
    if not files:
        raise DataValidationError(f"Folder {path} holds no partitions: expected date=YYYY-MM-DD/*.parquet.")
    try:
        return pl.read_parquet(files, hive_partitioning=False)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as err:
        reason = str(err).strip().splitlines()[0]
        raise DataValidationError(f"Partitions under {path} cannot be read ({reason}).") from err


def _lower(columns) -> list[str]:
    return [str(name).strip().lower() for name in columns]


# What readers call a CSV's unnamed first column (a written pandas index): polars "" , pandas
# "Unnamed: 0", pyarrow through polars "column_0". Without a timestamp column, it is the timestamp.
UNNAMED_FIRST = ("", "unnamed: 0", "column_0")


def _normalize_columns(frame: pl.DataFrame) -> pl.DataFrame:
    lowered = _lower(frame.columns)
    if lowered and lowered[0] in UNNAMED_FIRST and "timestamp" not in lowered:
        lowered[0] = "timestamp"
    duplicated = sorted({name for name in lowered if lowered.count(name) > 1})
    if duplicated:
        raise DataValidationError(
            f"Columns {duplicated} appear more than once when matched case-insensitively."
        )
    if lowered != frame.columns:
        frame = frame.rename(dict(zip(frame.columns, lowered)))
    missing = sorted(set(("timestamp", *REQUIRED_COLUMNS)) - set(lowered))
    if missing:
        raise DataValidationError(
            f"OHLCV input is missing columns {missing[:MAX_ROWS_SHOWN]}: got "
            f"{sorted(lowered)[:12]}; expected timestamp, open, high, low, close, volume "
            "and an optional symbol (names match case-insensitively)."
        )
    if "symbol" not in lowered:
        frame = frame.with_columns(symbol=pl.lit(DEFAULT_SYMBOL))
    return frame


def _as_utc_timestamp(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        expr = expr.str.to_datetime(time_zone="UTC", time_unit="us")
    elif dtype == pl.Date:
        expr = expr.cast(pl.Datetime("us"))
    elif not isinstance(dtype, pl.Datetime):
        raise DataValidationError(
            f"Column 'timestamp' has type {dtype}: expected datetimes or ISO-8601 strings."
        )
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    # Naive timestamps are taken to be UTC already.
    return expr.dt.replace_time_zone("UTC").dt.cast_time_unit("us")


def _unparsable_timestamps(frame: pl.DataFrame) -> DataValidationError:
    """The error for timestamp text not in one format: unparsable, or an offset where the first row has none."""
    text = frame.with_row_index("row").select("row", pl.col("timestamp").cast(pl.String))
    has_offset = text["timestamp"].str.contains(r"(Z|[+-]\d\d:?\d\d)$")
    odd = text["timestamp"].str.to_datetime(strict=False).is_null() | (has_offset != has_offset[0])
    bad = text.filter(odd).head(MAX_ROWS_SHOWN)
    return DataValidationError(
        f"Column 'timestamp' is not in one parseable format: rows {bad['row'].to_list()} are "
        f"{bad['timestamp'].to_list()}, unlike row 0 {text['timestamp'][0]!r}. Write every timestamp in one "
        "ISO-8601 format (all naive UTC, or all with an offset)."
    )


def _as_float(frame: pl.DataFrame, name: str) -> pl.Expr:
    dtype = frame.schema[name]
    if not (dtype.is_numeric() or dtype == pl.Null):
        raise DataValidationError(
            f"Column {name!r} has type {dtype}: expected numbers. "
            f"First values: {frame[name].head(3).to_list()}."
        )
    return pl.col(name).cast(pl.Float64)


def _value_checks() -> list[tuple[pl.Expr, str, str]]:
    """(offending rows, column, problem) of every value check, in the order they are reported."""
    checks = [(pl.col("timestamp").is_null(), "timestamp", "has missing timestamps")]
    for name in REQUIRED_COLUMNS:
        bad = pl.col(name).is_null() | pl.col(name).is_nan() | pl.col(name).is_infinite()
        checks.append((bad, name, "has NaN, missing or infinite values"))
    checks += [(pl.col(name) <= 0, name, "has non-positive prices") for name in PRICE_COLUMNS]
    checks += [
        (pl.col("high") < pl.max_horizontal("open", "close"), "high", "is below max(open, close)"),
        (pl.col("low") > pl.min_horizontal("open", "close"), "low", "is above min(open, close)"),
        (pl.col("volume") < 0, "volume", "has negative values"),
        (pl.struct("symbol", "timestamp").is_duplicated(), "timestamp", "has duplicate timestamps within a symbol"),
    ]
    return checks


_VALUE_CHECKS = _value_checks()


def _passes_in_numpy(frame: pl.DataFrame) -> bool:
    """Whether `frame` is small, already typed (VALIDATED_SCHEMA), sorted by symbol then
    strictly increasing time, and passes every value check: then validating it changes
    nothing. False means "take the polars path", which also names any problem."""
    schema = frame.schema
    if frame.height >= NUMPY_CHECK_ROWS or any(schema.get(k) != v for k, v in VALIDATED_SCHEMA.items()):
        return False
    symbol, stamps = frame["symbol"], frame["timestamp"]
    if symbol.null_count() or stamps.null_count() or not symbol.is_sorted():
        return False
    o, h, l, c, v = (frame[name].to_numpy() for name in REQUIRED_COLUMNS)
    with np.errstate(invalid="ignore"):
        values_ok = (
            np.isfinite(v).all() and (v >= 0).all()
            and all(np.isfinite(x).all() and (x > 0).all() for x in (o, h, l, c))
            and (h >= np.maximum(o, c)).all() and (l <= np.minimum(o, c)).all()
        )
    if not values_ok:
        return False
    names = symbol.to_numpy()
    same_symbol = names[1:] == names[:-1]
    return not (same_symbol & (np.diff(stamps.to_numpy().view(np.int64)) <= 0)).any()


def _check_values(frame: pl.DataFrame) -> None:
    """Every value check in one pass over `frame`; the details only for the first that fails."""
    failed = frame.select(bad.any().alias(str(i)) for i, (bad, _, _) in enumerate(_VALUE_CHECKS)).row(0)
    for flag, (bad, column, problem) in zip(failed, _VALUE_CHECKS):
        if flag:
            _reject(frame, bad, column, problem)


def _reject(frame: pl.DataFrame, bad: pl.Expr, column: str, problem: str) -> None:
    offending = frame.filter(bad)
    if offending.height == 0:
        return
    first = offending.head(MAX_ROWS_SHOWN)
    symbols = sorted(set(offending["symbol"].to_list()))
    shown = ", ".join(
        f"row {row['row']} ({row['symbol']} {row['timestamp']}: {column}={row[column]})"
        for row in first.iter_rows(named=True)
    )
    raise DataValidationError(
        f"Column {column!r} {problem}: {offending.height} rows for symbols "
        f"{symbols[:MAX_ROWS_SHOWN]}; first: {shown}."
    )
