"""What happened after each prediction: the realized label and a simple strategy's return.

The realized label of a prediction at bar t of horizon h is the training label
(`labels.triple_barrier_labels`, the same barrier and volatility window): it reads the bars
t-vol_window..t (the causal volatility and the entry close) and t+1..t+h, nothing after.
While a symbol has fewer than h bars after t the outcome is *pending* (null), never guessed.

The strategy goes long (short) when the prediction is +1 (-1) and its confidence is at
least `threshold`, enters at the close of t, exits at the close of t+h, and pays `cost_bps`
basis points once per trade, for the round trip (entry and exit together). Every signal is
its own trade of equal notional; overlapping trades are not netted. A trade whose exit bar
t+h is not yet known is open: it has no return and counts in no total (`open_trades`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline_core.constants import CLASS_NAMES, CLASSES, PROBABILITY_COLUMNS
from pipeline_core.data import read_bars
from pipeline_core.errors import DataValidationError
from pipeline_core.labels import label_params as recorded_label_params
from pipeline_core.labels import labels_to_index, triple_barrier_labels
from pipeline_core.metrics import classification_metrics, prior_probabilities

PREDICTION_COLUMNS = ("timestamp", "symbol", "prediction", *PROBABILITY_COLUMNS, "confidence")
DECILES = 10


def realized_outcomes(
    predictions: pl.DataFrame, bars: pl.DataFrame, horizon: int, *,
    threshold: float = 0.5, cost_bps: float = 1.0, label_params: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """`predictions` of one horizon with `actual` (-1/0/1, null while pending), `exit_time`
    (the time of bar t+h, null while pending), `traded` and `trade_return` (net of costs;
    null when not traded or pending).

    `bars` are validated OHLCV bars covering every predicted bar, the volatility window
    before it and as many bars after it as are known (`outcome_bars` reads them);
    `label_params` the bundle's (`labels.label_params(pipeline.metadata["label_spec"])`).
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise DataValidationError(f"Predictions lack the columns {missing}: expected a predictions file's columns.")
    outcomes = _labels_and_exit_returns(bars, horizon, label_params or {})
    joined = predictions.join(outcomes, on=["timestamp", "symbol"], how="left")
    unmatched = joined.filter(pl.col("bar_known").is_null()).height
    if unmatched:
        raise DataValidationError(
            f"{unmatched} predicted bars are not among the raw bars given: the outcomes need the bars predicted on."
        )
    traded = (pl.col("prediction") != 0) & (pl.col("confidence") >= threshold)
    return joined.drop("bar_known").with_columns(
        traded=traded,
        trade_return=pl.when(traded & pl.col("actual").is_not_null()).then(
            pl.col("prediction").cast(pl.Float64) * pl.col("exit_return") - cost_bps / 1e4
        ),
    ).drop("exit_return")


def _labels_and_exit_returns(bars: pl.DataFrame, horizon: int, label_params: dict[str, Any]) -> pl.DataFrame:
    labels = triple_barrier_labels(bars, horizon, **label_params)
    exits = bars.select(
        exit_return=(pl.col("close").shift(-horizon) / pl.col("close") - 1.0).over("symbol"),
        exit_time=pl.col("timestamp").shift(-horizon).over("symbol"),
    )
    known = pl.col("label").is_not_null()
    return pl.concat([labels, exits], how="horizontal").select(
        "timestamp", "symbol", actual=pl.col("label"), exit_time=pl.when(known).then("exit_time"),
        exit_return=pl.when(known).then("exit_return"), bar_known=pl.lit(True),
    )


def outcome_bars(raw_root: str | Path, start: date, end: date, horizon: int, vol_window: int) -> pl.DataFrame:
    """The raw bars that realize the labels of predictions on the dates `start..end`: those
    dates, the `vol_window` bars before them and up to `horizon` bars after them."""
    return read_bars(raw_root, start, end, lookback_bars=vol_window, following_bars=horizon)


def partition_outcomes(
    predictions: pl.DataFrame, raw_root: str | Path, horizon: int, *, label_spec: dict[str, Any] | None = None,
    threshold: float = 0.5, cost_bps: float = 1.0,
) -> pl.DataFrame:
    """`realized_outcomes` of `predictions` (one horizon, e.g. a predictions partition)
    from the raw partitions under `raw_root`; `label_spec` is the bundle's (its manifest's)."""
    params = recorded_label_params(label_spec or {})
    days = predictions["timestamp"].dt.date()
    bars = outcome_bars(raw_root, days.min(), days.max(), horizon, params["vol_window"])
    return realized_outcomes(predictions, bars, horizon, threshold=threshold, cost_bps=cost_bps, label_params=params)


def realized_metrics(outcomes: pl.DataFrame, reference_prior: np.ndarray | None = None) -> dict[str, Any]:
    """Figures of the realized rows of `outcomes`: accuracy, log-loss, Brier, the realized
    class prior and its log-loss (the no-skill baseline; or `reference_prior`'s, e.g. the
    training prior), and the strategy's trades; `pending` counts rows not yet realized."""
    known = outcomes.filter(pl.col("actual").is_not_null())
    figures: dict[str, Any] = {
        "rows": outcomes.height, "realized": known.height, "pending": outcomes.height - known.height,
        "open_trades": outcomes.filter(pl.col("traded") & pl.col("actual").is_null()).height,
    }
    if known.height == 0:
        return figures
    probabilities = known.select(PROBABILITY_COLUMNS).to_numpy()
    y = labels_to_index(known["actual"].to_numpy())
    counts = np.bincount(y, minlength=len(CLASSES))
    prior = prior_probabilities(y, known.height) if reference_prior is None else np.tile(reference_prior, (known.height, 1))
    metrics = classification_metrics(probabilities, y)
    trades = known.filter(pl.col("traded"))["trade_return"]
    figures.update({
        "accuracy": metrics["accuracy"],
        "log_loss": metrics["log_loss"],
        "brier": metrics["brier"],
        "prior_log_loss": classification_metrics(prior, y)["log_loss"],
        **{f"share_{CLASS_NAMES[c]}": float(counts[i] / known.height) for i, c in enumerate(CLASSES)},
        "trades": trades.len(),
        "hit_rate": float((trades > 0).mean()) if trades.len() else float("nan"),
        "mean_return_bps": float(trades.mean() * 1e4) if trades.len() else float("nan"),
        "total_return": float(trades.sum()),
    })
    return figures


def metrics_by_symbol(outcomes: pl.DataFrame) -> list[dict[str, Any]]:
    """`realized_metrics` per symbol, then pooled (symbol "all")."""
    rows = [{"symbol": symbol, **realized_metrics(group)}
            for (symbol,), group in outcomes.sort("symbol").group_by("symbol", maintain_order=True)]
    return [*rows, {"symbol": "all", **realized_metrics(outcomes)}]


def hit_rate_by_confidence(outcomes: pl.DataFrame, bins: int = DECILES) -> list[dict[str, Any]]:
    """Share of realized predictions that were right, per confidence decile (equal-count bins)."""
    known = outcomes.filter(pl.col("actual").is_not_null())
    if known.height < bins:
        return []
    ranked = known.with_columns(
        decile=(pl.col("confidence").rank("ordinal") - 1) * bins // known.height + 1,
        hit=pl.col("prediction") == pl.col("actual"),
    )
    table = ranked.group_by("decile").agg(
        rows=pl.len(), confidence_from=pl.col("confidence").min(), confidence_to=pl.col("confidence").max(),
        hit_rate=pl.col("hit").mean(),
    ).sort("decile")
    return table.to_dicts()
