"""BatchInference: a file or a partitioned dataset in, predictions parquet out.

Files are streamed in chunks of `chunk_rows`; each chunk is scored together with the
last `required_lookback` bars of every symbol before it, so chunked results equal one
`predict` over the whole file while memory stays bounded by the chunk size. Datasets are
scored one date at a time by `score_date` (features once for all horizons of the date),
which the Dagster scoring asset calls too. Outputs are written to a temporary file and
renamed into place.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pipeline_core.atomic import atomic_path
from pipeline_core.data import list_partition_dates, read_bars, validate_ohlcv, write_partition
from pipeline_core.data.files import file_batches
from pipeline_core.errors import DataValidationError, InsufficientHistoryError
from pipeline_core.constants import CLASS_NAMES, CLASSES
from pipeline_core.pipeline import InferencePipeline

Progress = Callable[[int], None]  # called with the number of input rows just consumed
# Columns with few distinct values. Dictionary-encoding the probabilities too (pyarrow's
# default) tries and abandons a dictionary per page: it doubled the write time.
DICTIONARY_COLUMNS = ["symbol", "horizon", "prediction", "bundle_version"]


@dataclass
class BatchResult:
    n_samples: int  # predictions written: scored rows x horizons ("horizon-rows")
    total_time: float  # seconds, reading and writing included
    avg_latency_ms: float  # per batch of `batch_size` predictions
    n_unscored: int = 0  # rows without enough history
    output_paths: list[Path] = field(default_factory=list)
    class_balance: dict[int, float] = field(default_factory=dict)
    mean_confidence: float = float("nan")
    n_rows: int = 0  # input rows scored, each counted once whatever the number of horizons

    @property
    def rows_per_sec(self) -> float:
        """Input rows scored per second (a row scored at 4 horizons counts once)."""
        return self.n_rows / self.total_time if self.total_time > 0 else float("inf")

    @property
    def horizon_rows_per_sec(self) -> float:
        """Predictions written per second (rows x horizons)."""
        return self.n_samples / self.total_time if self.total_time > 0 else float("inf")


@dataclass(frozen=True)
class ScoredPartition:
    """What scoring one (date, horizon) partition wrote, and how fast."""

    path: Path
    rows: int
    unscored_rows: int
    seconds: float
    class_share: dict[str, float]  # "down" / "flat" / "up" -> share of predictions
    mean_confidence: float
    bundle_version: str

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def figures(self) -> dict[str, float | int | str]:
        """Rows, speed, class shares, mean confidence and bundle version of the partition."""
        return {
            "rows": self.rows,
            "unscored_rows": self.unscored_rows,
            "rows_per_s": round(self.rows_per_s, 1),
            "mean_confidence": round(self.mean_confidence, 6),
            **{f"share_{name}": round(share, 6) for name, share in self.class_share.items()},
            "bundle_version": self.bundle_version,
        }


def partition_bars(pipeline: InferencePipeline, raw_root: str | Path, day: date) -> pl.DataFrame:
    """The bars of `day` plus the lookback the pipeline declares, from earlier dates."""
    return read_bars(raw_root, day, lookback_bars=pipeline.required_lookback)


def day_predictions(
    pipeline: InferencePipeline, raw_root: str | Path, day: date, horizon: int
) -> tuple[pl.DataFrame, int]:
    """The predictions of `day` for one horizon as `score_date` computes them (nothing is
    written), and the number of its bars without enough history."""
    result = pipeline.predict(partition_bars(pipeline, raw_root, day), horizon=horizon)
    return _rows_of(result.to_frame(), day), _rows_of(result.unscored, day).height


def score_date(
    pipeline: InferencePipeline, raw_root: str | Path, predictions_root: str | Path, day: date, horizons: list[int]
) -> Iterator[tuple[int, ScoredPartition]]:
    """Score `day` for each horizon (features once) and write each partition atomically."""
    bars = partition_bars(pipeline, raw_root, day)
    started = time.perf_counter()
    inputs = pipeline.model_inputs(bars, check_input=False)  # read_bars validated them
    feature_seconds = (time.perf_counter() - started) / len(horizons)
    for horizon in horizons:
        started = time.perf_counter()
        result = pipeline.score_inputs(inputs, horizon)
        seconds = feature_seconds + time.perf_counter() - started
        frame = _rows_of(result.to_frame(), day)
        unscored = _rows_of(result.unscored, day).height
        if frame.height == 0:
            raise InsufficientHistoryError(
                f"No bar of {day} could be scored for horizon {horizon}: all {unscored} bars lack the "
                f"{pipeline.required_lookback} bars of history the bundle needs. Load earlier dates."
            )
        path = write_partition(frame, predictions_root, day, horizon)
        yield horizon, _summary(frame, path, unscored, seconds, pipeline.version)


def _rows_of(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    return frame.filter(pl.col("timestamp").dt.date() == day)


def _summary(frame: pl.DataFrame, path: Path, unscored: int, seconds: float, version: str) -> ScoredPartition:
    predictions = frame["prediction"].to_numpy()
    share = {name: float(np.mean(predictions == value)) for value, name in CLASS_NAMES.items()}
    return ScoredPartition(
        path=path,
        rows=frame.height,
        unscored_rows=unscored,
        seconds=seconds,
        class_share=share,
        mean_confidence=float(frame["confidence"].mean()),
        bundle_version=version,
    )


class BatchInference:
    def __init__(self, pipeline, batch_size: int = 1000, chunk_rows: int = 250_000) -> None:
        self.pipeline = pipeline
        self.batch_size = batch_size
        self.chunk_rows = chunk_rows

    def process_file(
        self,
        path: str | Path,
        horizon: int | Iterable[int] = 20,
        output_path: str | Path | None = None,
        progress: Progress | None = None,
    ) -> BatchResult:
        """Score a parquet or CSV file (or a date-partitioned folder, date by date) chunk by chunk
        into `output_path` (parquet)."""
        horizons = _horizon_list(horizon, self.pipeline.config.horizons)
        output = Path(output_path) if output_path else Path(path).with_suffix(".predictions.parquet")
        if output.resolve() == Path(path).resolve():
            raise DataValidationError(f"The output {output} is the input: choose another output path.")
        if output.suffix.lower() != ".parquet":
            raise DataValidationError(f"The output {output} must be a .parquet file (predictions are written as parquet).")
        started = time.perf_counter()
        tally = _Tally()
        with _parquet_writer(output) as write:
            for frame in self._scored_chunks(_read_chunks(Path(path), self.chunk_rows, progress), horizons, tally):
                write(frame)
            if tally.rows == 0:
                raise DataValidationError(
                    f"No bar in {path} has enough history to score: each symbol needs more than "
                    f"{self.pipeline.required_lookback} bars."
                )
        return tally.result(time.perf_counter() - started, self.batch_size, [output])

    def process_dataset(
        self,
        root: str | Path,
        output_root: str | Path,
        horizon: int | Iterable[int] = 20,
        start: date | None = None,
        end: date | None = None,
    ) -> BatchResult:
        """Score every date partition of `root` (optionally a range) into
        `output_root/horizon=H/date=D/part-0.parquet`, one partition at a time."""
        days = [d for d in list_partition_dates(root) if (start is None or d >= start) and (end is None or d <= end)]
        if not days:
            raise DataValidationError(f"No date partitions under {root} in {start or '...'}..{end or '...'}.")
        horizons = _horizon_list(horizon, self.pipeline.config.horizons)
        started = time.perf_counter()
        tally = _Tally()
        paths = []
        for day in days:
            for h, scored in score_date(self.pipeline, root, output_root, day, horizons):
                first = h == horizons[0]
                tally.add_partition(scored, scored.unscored_rows if first else 0, new_rows=first)
                paths.append(scored.path)
        return tally.result(time.perf_counter() - started, self.batch_size, paths)

    def _scored_chunks(self, chunks: Iterator[pl.DataFrame], horizons: list[int], tally: _Tally):
        carry: pl.DataFrame | None = None
        lookback = self.pipeline.required_lookback
        for chunk in chunks:
            bars = validate_ohlcv(chunk)
            if carry is not None:
                _check_continues(carry, bars)
                # Both parts are validated and each symbol's carry precedes its chunk.
                bars = pl.concat([carry, bars]).sort("symbol", "timestamp", maintain_order=True)
            results = self.pipeline.predict(bars, horizon=horizons, check_input=False)
            carried = 0 if carry is None else carry.height
            for h in horizons:
                frame = results[h].to_frame()
                first = h == horizons[0]
                tally.add(frame, results[h].unscored.height - carried if first else 0, new_rows=first)
                yield frame
            carry = bars.group_by("symbol", maintain_order=True).tail(lookback).select(bars.columns)


class _Tally:
    """Running totals for a BatchResult."""

    def __init__(self) -> None:
        self.rows = 0  # predictions (rows x horizons)
        self.input_rows = 0  # rows, each once
        self.unscored = 0
        self.counts = np.zeros(len(CLASSES))
        self.confidence_sum = 0.0

    def add(self, frame: pl.DataFrame, unscored: int, new_rows: bool) -> None:
        self.rows += frame.height
        self.input_rows += frame.height if new_rows else 0
        self.unscored += unscored
        predictions = frame["prediction"].to_numpy()
        self.counts += [(predictions == c).sum() for c in CLASSES]
        self.confidence_sum += float(frame["confidence"].sum())

    def add_partition(self, scored: ScoredPartition, unscored: int, new_rows: bool) -> None:
        self.rows += scored.rows
        self.input_rows += scored.rows if new_rows else 0
        self.unscored += unscored
        self.counts += [scored.class_share[CLASS_NAMES[c]] * scored.rows for c in CLASSES]
        self.confidence_sum += scored.mean_confidence * scored.rows

    def result(self, seconds: float, batch_size: int, paths: list[Path]) -> BatchResult:
        batches = max(math.ceil(self.rows / batch_size), 1)
        total = max(self.rows, 1)
        return BatchResult(
            n_samples=self.rows,
            total_time=seconds,
            avg_latency_ms=seconds * 1000 / batches,
            n_unscored=self.unscored,
            output_paths=paths,
            class_balance={c: float(n / total) for c, n in zip(CLASSES, self.counts)},
            mean_confidence=self.confidence_sum / total,
            n_rows=self.input_rows,
        )


def _horizon_list(horizon, trained: list[int]) -> list[int]:
    if horizon is None:
        return list(trained)
    return [int(horizon)] if isinstance(horizon, (int, np.integer)) else [int(h) for h in horizon]


def _read_chunks(path: Path, rows: int, progress: Progress | None) -> Iterator[pl.DataFrame]:
    """Batches of a parquet or CSV file (.csv.gz too), or one date of a partitioned folder at a time."""
    if path.is_dir():
        yield from _read_partitions(path, progress)
        return
    for batch in file_batches(path, rows):
        if progress:
            progress(batch.height)
        yield batch


def _read_partitions(root: Path, progress: Progress | None) -> Iterator[pl.DataFrame]:
    """Each date partition of `root` in date order, so each symbol's bars stay in time order."""
    days = list_partition_dates(root)
    if not days:
        raise DataValidationError(f"Input folder {root} holds no date=YYYY-MM-DD partitions.")
    for day in days:
        frame = read_bars(root, day, day)
        if progress:
            progress(frame.height)
        yield frame


def _check_continues(carry: pl.DataFrame, chunk: pl.DataFrame) -> None:
    """A chunk must not go back in time for any symbol (the file must be time-ordered per symbol)."""
    last = carry.group_by("symbol").agg(pl.col("timestamp").max().alias("last"))
    first = chunk.group_by("symbol").agg(pl.col("timestamp").min().alias("first"))
    behind = first.join(last, on="symbol").filter(pl.col("first") <= pl.col("last"))
    if behind.height:
        row = behind.row(0, named=True)
        raise DataValidationError(
            f"Input is not in time order for symbol {row['symbol']!r}: a later chunk starts at {row['first']}, "
            f"at or before {row['last']} seen earlier. Sort the file by symbol and timestamp (or by timestamp)."
        )


@contextmanager
def _parquet_writer(path: Path) -> Iterator[Callable[[pl.DataFrame], None]]:
    """`write(frame)` appends to a parquet file that is renamed into place only on success."""
    writer: pq.ParquetWriter | None = None
    with atomic_path(path) as temporary:

        def write(frame: pl.DataFrame) -> None:
            nonlocal writer
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(temporary, table.schema, use_dictionary=DICTIONARY_COLUMNS)
            writer.write_table(table)

        try:
            yield write
        finally:
            if writer is not None:
                writer.close()
