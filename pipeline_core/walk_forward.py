"""Walk-forward (rolling-origin) evaluation: retrain on everything before a block, test on the block.

The unique timestamps are cut into an initial span (`min_train_frac`) and `folds`
consecutive test blocks. Fold k trains a fresh pipeline on the bars strictly before block k
(so no training label reads a bar of the block: labels whose window runs past the given
bars are unknown and unused), scores the block with its history, and compares with the
realized triple-barrier labels. Each fold and the pooled rows set the final model beside
the block's class prior (hindsight), the training bars' prior and persistence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import polars as pl
from joblib import Parallel, delayed

from pipeline_core.data import validate_ohlcv
from pipeline_core.errors import ConfigError, InsufficientHistoryError
from pipeline_core.labels import labels_to_index, triple_barrier_labels
from pipeline_core.metrics import (
    block_bootstrap_intervals,
    classification_metrics,
    persistence_probabilities,
    prior_probabilities,
    time_blocks,
)
from pipeline_core.constants import PROBABILITY_COLUMNS, horizon_or_longest
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.training import TrainOptions, train_pipeline

FORECASTS = ("final", "class prior", "train prior", "persistence")


@dataclass(frozen=True)
class FoldResult:
    fold: int  # -1: all folds pooled
    trained_before: str
    test_start: str
    test_end: str
    n: int
    metrics: dict[str, dict[str, float]]  # forecast -> metrics
    log_loss_ci: list[float]  # of the final model


@dataclass(frozen=True)
class _Block:
    """One fold's judged rows: labels, each forecast's probabilities, timestamps."""

    y: np.ndarray
    forecasts: dict[str, np.ndarray]
    timestamps: np.ndarray


def walk_forward(
    ohlcv, config: InferenceConfig, folds: int = 4, horizon: int | None = None,
    options: TrainOptions = TrainOptions(), min_train_frac: float = 0.5,
    progress: Callable[[int], None] | None = None, jobs: int = 1,
) -> list[FoldResult]:
    """One result per fold, then the pooled result (fold -1). `jobs` > 1 trains folds in
    parallel processes (joblib; the folds are independent)."""
    bars = validate_ohlcv(ohlcv)
    horizon = horizon_or_longest(horizon, config.horizons)
    realized = _realized(bars, horizon)
    spans = _blocks(bars, folds, min_train_frac)
    judged = Parallel(n_jobs=jobs, return_as="generator")(
        delayed(_judge_block)(bars, realized, config, options, horizon, start, end) for start, end in spans
    )
    results, blocks = [], []
    for k, ((start, _), block) in enumerate(zip(spans, judged)):
        blocks.append(block)
        results.append(_result(k, block, horizon, trained_before=str(start)))
        if progress:
            progress(k)
    pooled = _Block(
        y=np.concatenate([b.y for b in blocks]),
        forecasts={name: np.concatenate([b.forecasts[name] for b in blocks]) for name in FORECASTS},
        timestamps=np.concatenate([b.timestamps for b in blocks]),
    )
    results.append(_result(-1, pooled, horizon, trained_before="each fold's own"))
    return results


def to_dicts(results: list[FoldResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]


def _realized(bars: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """Each bar's realized label, and the last label realized at that bar (that of bar t - h)."""
    labels = triple_barrier_labels(bars, horizon)
    return labels.with_columns(previous=pl.col("label").shift(horizon).over("symbol"))


def _blocks(bars: pl.DataFrame, folds: int, min_train_frac: float) -> list[tuple[Any, Any]]:
    if folds < 1 or not 0 < min_train_frac < 1:
        raise ConfigError(f"folds={folds} must be >= 1 and min_train_frac={min_train_frac} in (0, 1).")
    times = bars["timestamp"].unique().sort()
    first = int(len(times) * min_train_frac)
    size = (len(times) - first) // folds
    if size < 2:
        raise InsufficientHistoryError(f"{len(times)} timestamps are too few for {folds} walk-forward folds.")
    starts = [times[first + k * size] for k in range(folds)]
    return list(zip(starts, [*starts[1:], None]))


def _judge_block(bars, realized, config, options, horizon, start, end) -> _Block:
    """Train on the bars before `start`, score [start, end), and build the baselines."""
    history = bars.filter(pl.col("timestamp") < start)
    pipeline = train_pipeline(history, config, options)
    visible = bars if end is None else bars.filter(pl.col("timestamp") < end)
    scored = (
        pipeline.predict(visible, horizon=horizon).to_frame().filter(pl.col("timestamp") >= start)
        .join(realized, on=["timestamp", "symbol"], how="left").drop_nulls("label")
    )
    # What training could know: labels computed from the history alone.
    known = _realized(history, horizon).drop_nulls("label")
    y_train = labels_to_index(known["label"].to_numpy())
    transitions = known.drop_nulls("previous")
    last = scored["previous"].fill_null(-2).to_numpy().astype(np.int64) + 1  # class index; -1: none yet
    y = labels_to_index(scored["label"].to_numpy())
    forecasts = {
        "final": scored.select(PROBABILITY_COLUMNS).to_numpy(),
        "class prior": prior_probabilities(y, len(y)),
        "train prior": prior_probabilities(y_train, len(y)),
        "persistence": persistence_probabilities(
            last, labels_to_index(transitions["previous"].to_numpy()),
            labels_to_index(transitions["label"].to_numpy()),
        ),
    }
    return _Block(y=y, forecasts=forecasts, timestamps=scored["timestamp"].to_numpy())


def _result(k: int, block: _Block, horizon: int, trained_before: str) -> FoldResult:
    blocks = time_blocks(block.timestamps, horizon)
    return FoldResult(
        fold=k, trained_before=trained_before, test_start=str(block.timestamps.min()), test_end=str(block.timestamps.max()),
        n=int(len(block.y)),
        metrics={name: classification_metrics(p, block.y) for name, p in block.forecasts.items()},
        log_loss_ci=block_bootstrap_intervals(block.forecasts["final"], block.y, blocks)["log_loss"],
    )
