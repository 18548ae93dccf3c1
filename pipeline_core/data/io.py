"""Hive-partitioned parquet I/O: `root/[horizon=H/]date=YYYY-MM-DD/part-0.parquet`."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl

from pipeline_core.atomic import atomic_path
from pipeline_core.data.schema import validate_ohlcv
from pipeline_core.errors import DataValidationError

PART_FILE = "part-0.parquet"


def partition_dir(root: str | Path, day: date, horizon: int | None = None) -> Path:
    """The folder of one partition."""
    root = Path(root)
    if horizon is not None:
        root = root / f"horizon={horizon}"
    return root / f"date={day.isoformat()}"


def list_partition_dates(root: str | Path, horizon: int | None = None) -> list[date]:
    """Dates that have at least one parquet file under `root`, sorted."""
    base = Path(root) / f"horizon={horizon}" if horizon is not None else Path(root)
    days = [
        date.fromisoformat(folder.name.removeprefix("date="))
        for folder in base.glob("date=*")
        if folder.is_dir() and any(folder.glob("*.parquet"))
    ]
    return sorted(days)


def read_bars(
    root: str | Path, start: date, end: date | None = None, lookback_bars: int = 0, following_bars: int = 0
) -> pl.DataFrame:
    """Validated bars of the dates `start..end` plus up to `lookback_bars` earlier and
    `following_bars` later bars per symbol.

    Every date in the range must exist; the extra bars are taken from the nearest earlier
    (later) date folders, across as many as they need. Fewer extra bars than asked for is
    not an error here: the scorer reports the rows it could not score, realized outcomes
    the rows still pending.
    """
    end = end or start
    if end < start:
        raise DataValidationError(f"Date range {start}..{end} is empty: end is before start.")
    wanted = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    available = require_dates(root, wanted)
    target = _read_dates(root, wanted)
    history = _extra_bars(root, [d for d in reversed(available) if d < start], target, lookback_bars, "tail")
    future = _extra_bars(root, [d for d in available if d > end], target, following_bars, "head")
    parts = [part for part in (history, target, future) if part is not None]
    return target if len(parts) == 1 else _joined(parts)


def require_dates(root: str | Path, days: list[date]) -> list[date]:
    """The dates under `root`; DataValidationError naming every one of `days` without raw
    bars, or whose files are not readable parquet (checked from their footers, before any
    run writes anything)."""
    available = list_partition_dates(root)
    missing = sorted(set(days) - set(available))
    if missing:
        shown = ", ".join(day.isoformat() for day in missing[:5])
        raise DataValidationError(
            f"No raw bars for {len(missing)} requested date(s): {shown}. Expected "
            f"{Path(root)}/date=YYYY-MM-DD/*.parquet; load the data for those dates, or "
            "exclude them from the run."
        )
    for day in days:
        for file in _parquet_files(root, day):
            _check_parquet(file, day)
    return available


def _parquet_files(root: str | Path, day: date) -> list[Path]:
    return sorted(partition_dir(root, day).glob("*.parquet"))


def _check_parquet(file: Path, day: date) -> None:
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(file)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise DataValidationError(
            f"The raw bars of {day} are not readable parquet: {file} ({err}). Re-write that file; nothing was scored."
        ) from err


def _read_dates(root: str | Path, days: list[date]) -> pl.DataFrame:
    files = [f for day in days for f in _parquet_files(root, day)]
    try:
        return validate_ohlcv(pl.read_parquet(files))
    except pl.exceptions.ComputeError as err:
        raise DataValidationError(f"The raw bars of {', '.join(map(str, days[:5]))} are not readable: {err}") from err


def _joined(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Validated frames of different dates as one, sorted; only the seams need checking: no bar twice."""
    bars = pl.concat(parts).sort("symbol", "timestamp", maintain_order=True)
    twice = bars.filter(pl.struct("symbol", "timestamp").is_duplicated())
    if twice.height:
        row = twice.row(0, named=True)
        raise DataValidationError(
            f"Bar {row['symbol']} {row['timestamp']} is in two date folders: each bar must be in its own date's folder."
        )
    return bars


def _extra_bars(
    root: str | Path, days: list[date], target: pl.DataFrame, bars: int, end: str
) -> pl.DataFrame | None:
    """Up to `bars` bars per symbol of the target from `days` (nearest first, read one at a
    time until every symbol has enough): the `tail` of earlier dates or the `head` of later ones."""
    if bars <= 0 or not days:
        return None
    symbols = target["symbol"].unique().to_list()
    chunks: list[pl.DataFrame] = []
    for day in days:
        chunks.append(_read_dates(root, [day]).filter(pl.col("symbol").is_in(symbols)))
        counts = pl.concat(chunks)["symbol"].value_counts()
        if counts.height == len(symbols) and counts["count"].min() >= bars:
            break
    extra = pl.concat(chunks).sort("symbol", "timestamp").group_by("symbol", maintain_order=True)
    return (extra.tail(bars) if end == "tail" else extra.head(bars)).select(target.columns)


def write_partition(
    frame: pl.DataFrame, root: str | Path, day: date, horizon: int | None = None
) -> Path:
    """Write `frame` as the partition's only file, atomically replacing an earlier write."""
    folder = partition_dir(root, day, horizon)
    final = folder / PART_FILE
    with atomic_path(final) as temporary:
        frame.write_parquet(temporary)
    for stale in folder.glob("*.parquet"):
        if stale != final:
            stale.unlink()
    return final


def write_daily_partitions(frame: pl.DataFrame, root: str | Path) -> list[Path]:
    """Split bars by UTC date and write one partition per date."""
    dated = frame.with_columns(_date=pl.col("timestamp").dt.date())
    return [
        write_partition(part.drop("_date"), root, day)
        for (day,), part in dated.partition_by("_date", as_dict=True, maintain_order=True).items()
    ]
