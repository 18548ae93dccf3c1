"""A backtest over scored periods: realized outcomes per date, month and symbol, over time,
by confidence, and the strategy's trades with its equity curve.

Every figure comes from `realized.realized_outcomes` (the training label after the fact;
the strategy and its cost convention are described there). The baseline is the class
prior of the period's realized labels: the best constant forecast, known only afterwards.
Rolling figures cover the last `rolling_rows` realized predictions in time order (all
symbols). The equity curve is the cumulative sum of the closed trades' net returns in
order of exit time: each trade is one unit of notional, overlapping trades are not netted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pipeline_core.calibration import ECE_BINS
from pipeline_core.constants import PROBABILITY_COLUMNS
from pipeline_core.labels import labels_to_index
from pipeline_core.metrics import prior_probabilities, row_log_loss
from pipeline_core.realized import (
    hit_rate_by_confidence,
    metrics_by_symbol,
    partition_outcomes,
    realized_metrics,
    realized_outcomes,
)

ROLLING_ROWS = 1000
MAX_CURVE_POINTS = 2000  # rolling curves are thinned to this many points


@dataclass(frozen=True)
class BacktestReport:
    """What happened after a period's predictions of one horizon."""

    horizon: int
    period: tuple[str, str]  # first and last predicted date
    bundle_versions: tuple[str, ...]  # of the bundles that made the predictions
    threshold: float
    cost_bps: float  # per trade, the round trip
    summary: dict[str, Any]  # `realized_metrics` of the whole period
    by_date: pl.DataFrame  # one row per date partition
    by_month: pl.DataFrame
    by_symbol: pl.DataFrame  # each symbol, then "all"
    by_confidence: pl.DataFrame  # hit rate per confidence decile
    reliability: pl.DataFrame  # per top-label confidence bin: rows, mean confidence, accuracy
    rolling: pl.DataFrame  # timestamp, accuracy, log_loss, prior_log_loss
    rolling_rows: int  # the window of `rolling`: realized predictions
    trades: pl.DataFrame  # closed trades by exit time, with the pooled and per-symbol equity
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Settings, the summary and every table except the rolling curves and the trades."""
        tables = ("by_date", "by_month", "by_symbol", "by_confidence", "reliability")
        return {
            "horizon": self.horizon, "period": list(self.period), "bundle_versions": list(self.bundle_versions),
            "threshold": self.threshold, "cost_bps": self.cost_bps,
            "cost_convention": "cost_bps once per trade, for the round trip",
            "summary": self.summary, **{name: getattr(self, name).to_dicts() for name in tables},
            "notes": list(self.notes),
        }


def backtest_report(
    predictions: pl.DataFrame, raw_root: str | Path, horizon: int, *, label_spec: dict[str, Any] | None = None,
    threshold: float = 0.5, cost_bps: float = 1.0, rolling_rows: int = ROLLING_ROWS,
) -> BacktestReport:
    """The backtest of `predictions` (one horizon, e.g. a period's predictions partitions),
    realized from the raw partitions under `raw_root`; `label_spec` is the bundle's."""
    outcomes = partition_outcomes(
        predictions, raw_root, horizon, label_spec=label_spec, threshold=threshold, cost_bps=cost_bps
    )
    return _report(outcomes, horizon, threshold, cost_bps, rolling_rows)


def run_backtest(
    predictions: pl.DataFrame, bars: pl.DataFrame, horizon: int, *, threshold: float = 0.5, cost_bps: float = 1.0,
    label_params: dict[str, Any] | None = None, rolling_rows: int = ROLLING_ROWS,
) -> BacktestReport:
    """The backtest of `predictions` against validated raw `bars` in memory (see `realized_outcomes`)."""
    outcomes = realized_outcomes(
        predictions, bars, horizon, threshold=threshold, cost_bps=cost_bps, label_params=label_params
    )
    return _report(outcomes, horizon, threshold, cost_bps, rolling_rows)


def _report(outcomes: pl.DataFrame, horizon: int, threshold: float, cost_bps: float, rolling_rows: int) -> BacktestReport:
    dated = outcomes.with_columns(date=pl.col("timestamp").dt.date(), month=pl.col("timestamp").dt.strftime("%Y-%m"))
    versions = outcomes["bundle_version"].unique().sort() if "bundle_version" in outcomes.columns else []
    return BacktestReport(
        horizon=horizon, period=(str(dated["date"].min()), str(dated["date"].max())),
        bundle_versions=tuple(versions), threshold=threshold, cost_bps=cost_bps,
        summary=realized_metrics(outcomes),
        by_date=_metrics_by(dated, "date"),
        by_month=_metrics_by(dated, "month"),
        by_symbol=_table(metrics_by_symbol(outcomes)),
        by_confidence=_table(hit_rate_by_confidence(outcomes)),
        reliability=_reliability(outcomes),
        rolling=_rolling(outcomes, rolling_rows),
        rolling_rows=rolling_rows,
        trades=_trades(outcomes),
    )


def _table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    # rows without realized outcomes lack the metric keys: they become nulls
    return pl.from_dicts(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _metrics_by(outcomes: pl.DataFrame, key: str) -> pl.DataFrame:
    groups = outcomes.sort(key).group_by(key, maintain_order=True)
    return _table([{key: value, **realized_metrics(group)} for (value,), group in groups])


def _reliability(outcomes: pl.DataFrame, bins: int = ECE_BINS) -> pl.DataFrame:
    """Top-label reliability in equal-width confidence bins (the bins of the ECE)."""
    known = outcomes.filter(pl.col("actual").is_not_null())
    binned = known.with_columns(bin=(pl.col("confidence") * bins).floor().cast(pl.Int64).clip(0, bins - 1))
    return binned.group_by("bin").agg(
        rows=pl.len(), mean_confidence=pl.col("confidence").mean(),
        accuracy=(pl.col("prediction") == pl.col("actual")).mean(),
    ).sort("bin")


def _rolling(outcomes: pl.DataFrame, window: int) -> pl.DataFrame:
    """Accuracy and log-loss of the model and of the period's realized prior over the last
    `window` realized predictions, in time order."""
    known = outcomes.filter(pl.col("actual").is_not_null()).sort("timestamp", "symbol")
    if known.height == 0:
        return pl.DataFrame(schema={"timestamp": pl.Datetime("us", "UTC"), "accuracy": pl.Float64,
                                    "log_loss": pl.Float64, "prior_log_loss": pl.Float64})
    y = labels_to_index(known["actual"].to_numpy())
    window = min(window, known.height)
    rows = pl.DataFrame({
        "timestamp": known["timestamp"],
        "hit": (known["prediction"] == known["actual"]).cast(pl.Float64),
        "loss": row_log_loss(known.select(PROBABILITY_COLUMNS).to_numpy(), y),
        "prior_loss": row_log_loss(prior_probabilities(y, len(y)), y),
    })
    curves = rows.select(
        "timestamp", accuracy=pl.col("hit").rolling_mean(window), log_loss=pl.col("loss").rolling_mean(window),
        prior_log_loss=pl.col("prior_loss").rolling_mean(window),
    ).slice(window - 1)
    step = max(curves.height // MAX_CURVE_POINTS, 1)
    return curves.gather_every(step)


def _trades(outcomes: pl.DataFrame) -> pl.DataFrame:
    """One row per closed trade, by exit time, with the pooled and per-symbol cumulative net return."""
    closed = outcomes.filter(pl.col("traded") & pl.col("trade_return").is_not_null())
    return closed.sort("exit_time", "symbol", "timestamp").select(
        "symbol", entry_time="timestamp", exit_time="exit_time", side="prediction", confidence="confidence",
        net_return="trade_return",
    ).with_columns(
        equity=pl.col("net_return").cum_sum(),
        symbol_equity=pl.col("net_return").cum_sum().over("symbol"),
    )

