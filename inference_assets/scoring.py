"""Scoring one date for several horizons, and the figures the UI shows per partition.

Plain functions over `pipeline_core` (no Dagster objects), shared by the scoring asset
and its checks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from pipeline_core.data import list_partition_dates, read_bars, write_partition
from pipeline_core.errors import DataValidationError, InsufficientHistoryError
from pipeline_core.pipeline import InferencePipeline

from inference_assets.defs.partitions import ScoringPartition

CLASS_NAMES = {-1: "down", 0: "flat", 1: "up"}


@dataclass(frozen=True)
class ScoredPartition:
    """What scoring one partition wrote, and how fast."""

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


def require_raw_dates(ohlcv_dir: Path, days: list[date]) -> None:
    """DataValidationError naming every requested date without raw bars."""
    missing = sorted(set(days) - set(list_partition_dates(ohlcv_dir)))
    if missing:
        shown = ", ".join(day.isoformat() for day in missing[:5])
        raise DataValidationError(
            f"No raw bars for {len(missing)} requested date(s): {shown}. Expected "
            f"{ohlcv_dir}/date=YYYY-MM-DD/*.parquet; load the data for those dates, or "
            "exclude them from the run. Nothing was scored."
        )


def partition_bars(pipeline: InferencePipeline, ohlcv_dir: Path, day: date) -> pl.DataFrame:
    """The bars of `day` plus the lookback the pipeline declares, from earlier dates."""
    return read_bars(ohlcv_dir, day, lookback_bars=pipeline.required_lookback)


def score_date(
    pipeline: InferencePipeline, ohlcv_dir: Path, predictions_dir: Path, day: date, horizons: list[int]
) -> Iterator[tuple[ScoringPartition, ScoredPartition]]:
    """Score `day` for each horizon and write each partition atomically."""
    bars = partition_bars(pipeline, ohlcv_dir, day)
    started = time.perf_counter()
    inputs = pipeline.model_inputs(bars)  # features once for all horizons
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
        path = write_partition(frame, predictions_dir, day, horizon)
        yield ScoringPartition(day, horizon), _summary(frame, path, unscored, seconds, pipeline.version)


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
