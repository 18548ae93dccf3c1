"""Realized outcomes of predictions: the training label after the fact, a strategy's return."""

import math
from datetime import date
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from pipeline_core.constants import PROBABILITY_COLUMNS
from pipeline_core.data import MarketSpec, generate_market, validate_ohlcv, write_daily_partitions, write_partition
from pipeline_core.errors import DataValidationError
from pipeline_core.labels import triple_barrier_labels
from pipeline_core.monitoring import DriftConfig, ReferenceStats
from pipeline_core.realized import hit_rate_by_confidence, metrics_by_symbol, realized_metrics, realized_outcomes
from pipeline_core.realized_partitions import realize_date

HORIZON = 10
COST_BPS = 2.0
THRESHOLD = 0.45


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return validate_ohlcv(generate_market(MarketSpec(start=date(2024, 3, 4), days=2, symbols=2, bars_per_day=200, seed=3)))


def _predictions(bars: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Random but valid predictions for every bar after the volatility window."""
    rows = bars.filter(pl.int_range(pl.len()).over("symbol") >= 25).select("timestamp", "symbol")
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet([1.0, 1.0, 1.0], rows.height)
    return rows.with_columns(
        prediction=pl.Series(probabilities.argmax(axis=1) - 1, dtype=pl.Int8),
        **{name: probabilities[:, i] for i, name in enumerate(PROBABILITY_COLUMNS)},
        confidence=probabilities.max(axis=1),
    )


def _slow_outcome(bars: pl.DataFrame, symbol: str, t: int) -> tuple[int | None, float | None]:
    """The label and the 1-unit long return of bar t of `symbol`, by the definitions, in a loop."""
    own = bars.filter(pl.col("symbol") == symbol)
    close, high, low = (own[c].to_list() for c in ("close", "high", "low"))
    if t + HORIZON >= len(close):
        return None, None
    returns = [math.log(close[i] / close[i - 1]) for i in range(t - 19, t + 1)]
    mean = sum(returns) / 20
    sigma = math.sqrt(sum((r - mean) ** 2 for r in returns) / 19)
    upper, lower = close[t] * (1 + sigma * math.sqrt(HORIZON)), close[t] * (1 - sigma * math.sqrt(HORIZON))
    label = 0
    for k in range(t + 1, t + HORIZON + 1):
        up, down = high[k] >= upper, low[k] <= lower
        if up or down:
            label = 0 if (up and down) else (1 if up else -1)
            break
    return label, close[t + HORIZON] / close[t] - 1.0


def test_accuracy_and_strategy_return_match_an_independent_recomputation(bars):
    predictions = _predictions(bars)
    outcomes = realized_outcomes(predictions, bars, HORIZON, threshold=THRESHOLD, cost_bps=COST_BPS)
    figures = realized_metrics(outcomes)
    position = {key: i for i, key in enumerate(zip(bars["symbol"], bars["timestamp"]))}
    first_of = {s: bars["symbol"].to_list().index(s) for s in bars["symbol"].unique()}
    hits, realized, total, trades = 0, 0, 0.0, 0
    for row in predictions.iter_rows(named=True):
        t = position[(row["symbol"], row["timestamp"])] - first_of[row["symbol"]]
        label, move = _slow_outcome(bars, row["symbol"], t)
        if label is None:
            continue
        realized += 1
        hits += label == row["prediction"]
        if row["prediction"] != 0 and row["confidence"] >= THRESHOLD:
            trades += 1
            total += row["prediction"] * move - COST_BPS / 1e4
    assert figures["realized"] == realized and figures["pending"] == predictions.height - realized
    assert figures["accuracy"] == pytest.approx(hits / realized)
    assert figures["trades"] == trades and figures["total_return"] == pytest.approx(total)


def test_a_realized_label_reads_no_bar_at_or_before_t_beyond_its_window_and_none_after_t_plus_h(bars):
    predictions = _predictions(bars)
    baseline = realized_outcomes(predictions, bars, HORIZON)["actual"]
    own = bars.filter(pl.col("symbol") == "SYN01")
    t = 100  # the 101st bar of SYN01; its label reads bars t-20..t and t+1..t+h
    row = predictions.with_row_index("i").filter(
        (pl.col("symbol") == "SYN01") & (pl.col("timestamp") == own["timestamp"][t])
    )["i"][0]

    def shocked(offsets) -> int | None:
        index = pl.int_range(pl.len()).over("symbol")
        hit = (pl.col("symbol") == "SYN01") & index.is_in([t + k for k in offsets])
        changed = bars.with_columns(
            high=pl.when(hit).then(pl.col("high") * 1.5).otherwise(pl.col("high")),
            close=pl.when(hit).then(pl.col("close") * 1.2).otherwise(pl.col("close")),
        )
        return realized_outcomes(predictions, changed, HORIZON)["actual"][row]

    outside = [*range(-60, -20), *range(HORIZON + 1, HORIZON + 40)]
    assert shocked(outside) == baseline[row]  # bars before the volatility window or after t+h
    assert shocked([1]) == 1  # a jump inside (t, t+h] decides the label


def test_outcomes_at_the_end_of_the_data_are_pending_not_guessed(bars):
    predictions = _predictions(bars)
    outcomes = realized_outcomes(predictions, bars, HORIZON)
    tail = outcomes.group_by("symbol").tail(HORIZON)
    assert tail["actual"].null_count() == tail.height and tail["trade_return"].null_count() == tail.height
    assert realized_metrics(outcomes)["pending"] == 2 * HORIZON
    cut = bars.filter(pl.col("timestamp") < bars["timestamp"].max() - pl.duration(minutes=30))
    fewer = realized_metrics(realized_outcomes(predictions.filter(pl.col("timestamp") <= cut["timestamp"].max()), cut, HORIZON))
    assert fewer["pending"] == 2 * HORIZON  # the latest bars given decide what is still pending


def test_tables_per_symbol_and_per_confidence_decile(bars):
    outcomes = realized_outcomes(_predictions(bars), bars, HORIZON)
    rows = metrics_by_symbol(outcomes)
    assert [r["symbol"] for r in rows] == ["SYN01", "SYN02", "all"]
    assert rows[-1]["realized"] == rows[0]["realized"] + rows[1]["realized"]
    assert rows[-1]["share_down"] + rows[-1]["share_flat"] + rows[-1]["share_up"] == pytest.approx(1.0)
    deciles = hit_rate_by_confidence(outcomes)
    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert sum(d["rows"] for d in deciles) == rows[-1]["realized"]
    assert all(a["confidence_to"] <= b["confidence_from"] for a, b in zip(deciles, deciles[1:], strict=False))


def test_predictions_on_bars_not_given_are_refused(bars):
    predictions = _predictions(bars)
    with pytest.raises(DataValidationError, match="predicted bars are not among the raw bars given"):
        realized_outcomes(predictions, bars.filter(pl.col("symbol") == "SYN01"), HORIZON)
    with pytest.raises(DataValidationError, match=r"lack the columns \['confidence'\]"):
        realized_outcomes(predictions.drop("confidence"), bars, HORIZON)


@pytest.fixture(scope="module")
def skilled_partition(tmp_path_factory):
    """Three dates of raw bars and, for the first, predictions right 70% of the time with
    honest probabilities, and the reference such a model would have on record."""
    root = tmp_path_factory.mktemp("realized")
    market = generate_market(MarketSpec(start=date(2024, 5, 1), days=3, symbols=3, bars_per_day=390, seed=8))
    write_daily_partitions(market, root / "ohlcv")
    day = date(2024, 5, 1)
    bars = validate_ohlcv(market)
    truth = triple_barrier_labels(bars, HORIZON).filter(pl.col("timestamp").dt.date() == day).drop_nulls("label")
    rng = np.random.default_rng(1)
    right = rng.random(truth.height) < 0.7
    predicted = np.where(right, truth["label"].to_numpy(), (truth["label"].to_numpy() + 2) % 3 - 1)
    probabilities = np.full((truth.height, 3), 0.15)
    probabilities[np.arange(truth.height), predicted + 1] = 0.7
    frame = truth.select("timestamp", "symbol").with_columns(
        horizon=pl.lit(HORIZON, pl.Int32), prediction=pl.Series(predicted, dtype=pl.Int8),
        **{name: probabilities[:, i] for i, name in enumerate(PROBABILITY_COLUMNS)},
        confidence=probabilities.max(axis=1), bundle_version=pl.lit("pipeline_v1"),
    )
    stats = ReferenceStats.from_data(rng.normal(size=(500, 2)), ["a", "b"], predictions=rng.choice([-1, 0, 1], 500),
                                     accuracy=0.7, log_loss=float(-0.7 * np.log(0.7) - 0.3 * np.log(0.15)))
    return root, day, frame, SimpleNamespace(reference_stats={HORIZON: stats}, metadata={})


def _realize(root, day, frame, bundle, name):
    write_partition(frame, root / name, day, HORIZON)
    [(horizon, outcome)] = realize_date(lambda version: bundle, root / "ohlcv", root / name, root / f"{name}-realized",
                                        day, [HORIZON], threshold=0.5, cost_bps=1.0, config=DriftConfig())
    return outcome


def test_realized_performance_raises_no_alert_when_the_model_keeps_its_skill(skilled_partition):
    outcome = _realize(*skilled_partition, "predictions")
    assert outcome.pooled["accuracy"] == pytest.approx(0.7, abs=0.05)
    assert outcome.severity in ("none", "INFO")
    assert {row.metric for row in outcome.performance} == {"accuracy", "log_loss"}


def test_realized_performance_catches_predictions_scored_against_shuffled_outcomes(skilled_partition):
    root, day, frame, bundle = skilled_partition
    order = np.random.default_rng(2).permutation(frame.height)
    shuffled = frame.select("timestamp", "symbol", "horizon").hstack(
        frame.drop("timestamp", "symbol", "horizon")[order]
    )
    outcome = _realize(root, day, shuffled, bundle, "shuffled")
    assert outcome.pooled["accuracy"] < 0.45
    assert outcome.severity == "CRITICAL"
    assert all(row.severity is not None for row in outcome.performance)
