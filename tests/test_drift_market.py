"""Drift monitoring of scored day-partitions of the synthetic market, as the sensor sees them.

The reference is the default feature set over the first 12 days (8 symbols x 390 minute
bars, warm-up rows dropped). Every later day is checked as one batch, in order, with its
symbols as groups and the escalation state of a real sensor. From DRIFT_DAY on the market
drifts (volatility x2.5, momentum reversed); the days before are the same bars as an
undrifted market's.

- Undrifted days raise no CRITICAL, escalation included, and at most one alert per seed.
- Every drifted day is CRITICAL by itself (feature share or severe features, not escalation).
- Counted as independent rows, most undrifted days alert: the failure this guards against.

The same for a real trained pipeline's outputs: an xgboost model (horizon 20) trained on
the first TRAIN_DAYS days, its bundle reference (`pipeline.reference_stats[20]`), each
later day scored from its bars plus `required_lookback` earlier ones, actuals from the
triple-barrier labels. Predicted classes of consecutive bars persist and their errors
overlap over the 20-bar label windows, so the class-balance and performance tests must
count effective rows too:

- Undrifted days: no CRITICAL, at most 5% WARNING from prediction and performance
  metrics (10 seeds x 40 days measured: 1.0% WARNING, 0 CRITICAL; as independent rows
  87% of days alert and 30% warn). Drifted days stay CRITICAL.

For the larger measurement, run it as a script (`--model` for the trained pipeline's outputs):
    .venv/bin/python tests/test_drift_market.py --seeds 1 2 3 4 5 --days 40 --drifted-days 10
    .venv/bin/python tests/test_drift_market.py --model --seeds 1 2 3 4 5 6 7 8 9 10 --days 40 --drifted-days 5
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from pipeline_core.data import MarketSpec, generate_market
from pipeline_core.features import FEATURE_COLUMNS, compute_features
from pipeline_core.labels import triple_barrier_labels
from pipeline_core.monitoring import AlertSeverity, DriftConfig, DriftReport, OnlineDriftMonitor, ReferenceStats

START = date(2024, 1, 1)
REFERENCE_DAYS = 12
UNDRIFTED_DAYS = 20
DRIFTED_DAYS = 4
SEEDS = (1, 2)
FEATURE_RULES = {"feature_share", "severe_features"}

Day = tuple[np.ndarray, np.ndarray]  # (symbol of each row, features), rows sorted by symbol then time


def _market_days(seed: int, undrifted: int, drifted: int) -> list[Day]:
    """Feature rows of each calendar day: reference days, undrifted days, then drifted days."""
    drift_day = REFERENCE_DAYS + undrifted
    spec = MarketSpec(
        start=START, days=drift_day + drifted, seed=seed, drift_start=START + timedelta(days=drift_day)
    )
    features = compute_features(generate_market(spec)).drop_nulls()
    days = features.with_columns(day=pl.col("timestamp").dt.date()).partition_by("day", maintain_order=True)
    return [(day["symbol"].to_numpy(), day.select(FEATURE_COLUMNS).to_numpy()) for day in days]


def _check_days(days: list[Day], config: DriftConfig) -> list[DriftReport]:
    """Reference from the first REFERENCE_DAYS days, then `check` on each later day in order."""
    reference = days[:REFERENCE_DAYS]
    monitor = OnlineDriftMonitor(
        np.vstack([rows for _, rows in reference]),
        config,
        feature_names=FEATURE_COLUMNS,
        reference_groups=np.concatenate([symbols for symbols, _ in reference]),
    )
    reports = []
    for symbols, rows in days[REFERENCE_DAYS:]:
        monitor.check(rows, groups=symbols)
        reports.append(monitor.last_report)
    return reports


def _critical_by_features(report: DriftReport) -> bool:
    return any(a.severity == AlertSeverity.CRITICAL and a.metric in FEATURE_RULES for a in report.alerts)


@pytest.fixture(scope="module", params=SEEDS, ids=lambda seed: f"seed{seed}")
def market(request) -> list[Day]:
    return _market_days(request.param, UNDRIFTED_DAYS, DRIFTED_DAYS)


def test_market_undrifted_days_raise_no_critical_and_drifted_days_do(market):
    reports = _check_days(market, DriftConfig())
    undrifted, drifted = reports[:UNDRIFTED_DAYS], reports[UNDRIFTED_DAYS:]
    assert [r.batch_size for r in undrifted] == [3120] * UNDRIFTED_DAYS
    assert not any(r.severity == AlertSeverity.CRITICAL for r in undrifted)
    assert sum(bool(r.alerts) for r in undrifted) <= 1
    assert all(_critical_by_features(r) for r in drifted)


def test_market_days_counted_as_independent_rows_alarm_without_drift(market):
    reports = _check_days(market[: REFERENCE_DAYS + UNDRIFTED_DAYS], DriftConfig(serial_correlation=False))
    assert np.mean([bool(r.alerts) for r in reports]) >= 0.5


HORIZON = 20
TRAIN_DAYS = 16  # the pipeline's train, early-stopping, calibration and test (reference) windows
SCORED_UNDRIFTED_DAYS = 40
SCORED_DRIFTED_DAYS = 3
MODEL_METRICS = {"class_balance", "confidence", "accuracy", "log_loss"}


@dataclass(frozen=True)
class ScoredDay:
    """One day's scored rows (sorted by symbol then time), as the scoring asset writes them."""

    features: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray
    symbols: np.ndarray
    actuals: np.ndarray  # NaN where the label is unknown


def _scored_market(seed: int, undrifted: int, drifted: int) -> tuple[ReferenceStats, list[ScoredDay]]:
    """A pipeline's bundle reference and its scored days after training: undrifted, then drifted."""
    from pipeline_core.pipeline import InferenceConfig
    from pipeline_core.training import TrainOptions, train_pipeline

    drift_day = TRAIN_DAYS + undrifted
    spec = MarketSpec(
        start=START, days=drift_day + drifted, seed=seed, drift_start=START + timedelta(days=drift_day)
    )
    bars = generate_market(spec)
    day_of = pl.col("timestamp").dt.date()
    pipeline = train_pipeline(
        bars.filter(day_of < START + timedelta(days=TRAIN_DAYS)),
        InferenceConfig(model_names=["xgboost"], horizons=[HORIZON]),
        TrainOptions(model_params={"xgboost": {"n_estimators": 60, "n_jobs": 1}}),
    )
    labels = triple_barrier_labels(bars, HORIZON)
    days = [
        _score_day(pipeline, bars, labels, START + timedelta(days=k), spec.bars_per_day)
        for k in range(TRAIN_DAYS, spec.days)
    ]
    return pipeline.reference_stats[HORIZON], days


def _score_day(pipeline, bars: pl.DataFrame, labels: pl.DataFrame, day: date, bars_per_day: int) -> ScoredDay:
    """Score `day` from its bars and the `required_lookback` bars before them; keep the day's rows."""
    history = bars.filter(pl.col("timestamp").dt.date() <= day)
    window = history.group_by("symbol", maintain_order=True).tail(bars_per_day + pipeline.required_lookback)
    result = pipeline.predict(window, HORIZON)
    keys = pl.DataFrame({"timestamp": result.timestamps, "symbol": result.symbols}).with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC")
    )
    actuals = keys.join(labels, on=["timestamp", "symbol"], how="left", maintain_order="left")["label"]
    today = (keys["timestamp"].dt.date() == day).to_numpy()
    return ScoredDay(
        features=result.features[today],
        predictions=result.predictions[today],
        probabilities=result.probabilities[today],
        symbols=result.symbols[today],
        actuals=actuals.cast(pl.Float64).fill_null(np.nan).to_numpy()[today],
    )


def _check_scored_days(reference: ReferenceStats, days: list[ScoredDay], config: DriftConfig) -> list[DriftReport]:
    """`check` on each scored day in order, with the monitor a sensor builds from the bundle."""
    bundle = SimpleNamespace(reference_stats={HORIZON: reference})
    monitor = OnlineDriftMonitor.from_bundle(bundle, HORIZON, config)
    reports = []
    for day in days:
        monitor.check(
            day.features,
            predictions=day.predictions,
            actuals=day.actuals,
            probabilities=day.probabilities,
            groups=day.symbols,
        )
        reports.append(monitor.last_report)
    return reports


def _model_severity(report: DriftReport) -> AlertSeverity | None:
    """The highest severity of the prediction and performance tests."""
    return max((row.severity for row in report.metrics if row.severity is not None), default=None)


@pytest.fixture(scope="module", params=SEEDS, ids=lambda seed: f"seed{seed}")
def scored_market(request) -> tuple[ReferenceStats, list[ScoredDay]]:
    """The trained pipeline's reference and scored days, once per seed for the module."""
    return _scored_market(request.param, SCORED_UNDRIFTED_DAYS, SCORED_DRIFTED_DAYS)


def test_market_scored_days_alarm_on_model_outputs_only_when_drifted(scored_market):
    reference, days = scored_market
    reports = _check_scored_days(reference, days, DriftConfig())
    undrifted, drifted = reports[:SCORED_UNDRIFTED_DAYS], reports[SCORED_UNDRIFTED_DAYS:]
    assert [r.batch_size for r in undrifted] == [3120] * SCORED_UNDRIFTED_DAYS
    assert all({row.metric for row in r.metrics} == MODEL_METRICS for r in reports)
    levels = [_model_severity(r) for r in undrifted]
    assert AlertSeverity.CRITICAL not in levels and not any(r.severity == AlertSeverity.CRITICAL for r in undrifted)
    assert levels.count(AlertSeverity.WARNING) <= 0.05 * SCORED_UNDRIFTED_DAYS
    assert all(r.severity == AlertSeverity.CRITICAL for r in drifted)
    # one day of persistent predictions is worth far fewer rows than it has
    balance = next(row for r in undrifted[:1] for row in r.metrics if row.metric == "class_balance")
    accuracy = next(row for r in undrifted[:1] for row in r.metrics if row.metric == "accuracy")
    assert balance.effective_size < 0.05 * balance.n and accuracy.effective_size < 0.3 * accuracy.n


def test_market_scored_days_counted_as_independent_rows_alarm_on_model_outputs(scored_market):
    reference, days = scored_market
    reports = _check_scored_days(reference, days[:SCORED_UNDRIFTED_DAYS], DriftConfig(serial_correlation=False))
    levels = [_model_severity(r) for r in reports]
    assert np.mean([level is not None for level in levels]) >= 0.5
    assert levels.count(AlertSeverity.WARNING) >= 0.1 * SCORED_UNDRIFTED_DAYS


def _summary(reports: list[DriftReport], undrifted: int, config: DriftConfig) -> dict[str, float]:
    calm, drifted = reports[:undrifted], reports[undrifted:]
    severe = [sum(row.drifted and row.psi >= config.severe_psi for row in r.features) for r in drifted]
    return {
        "any_alert": np.mean([bool(r.alerts) for r in calm]),
        "warning": np.mean([r.severity is not None and r.severity >= AlertSeverity.WARNING for r in calm]),
        "critical": np.mean([r.severity == AlertSeverity.CRITICAL for r in calm]),
        "drifted_critical": np.mean([_critical_by_features(r) for r in drifted]) if drifted else np.nan,
        "drifted_share_min": min((r.drifted_share for r in drifted), default=np.nan),
        "severe_min": min(severe, default=np.nan),
    }


def _model_summary(reports: list[DriftReport], undrifted: int) -> dict[str, float]:
    """Shares of days by the highest severity of the prediction and performance tests."""
    levels = [_model_severity(r) for r in reports]
    calm, drifted = levels[:undrifted], levels[undrifted:]
    return {
        "any_alert": np.mean([level is not None for level in calm]),
        "warning": np.mean([level is not None and level >= AlertSeverity.WARNING for level in calm]),
        "critical": np.mean([level == AlertSeverity.CRITICAL for level in calm]),
        "drifted_warning": np.mean([level is not None and level >= AlertSeverity.WARNING for level in drifted]),
        "drifted_critical": np.mean([r.severity == AlertSeverity.CRITICAL for r in reports[undrifted:]]),
    }


def _print_model_summaries(seeds: list[int], undrifted: int, drifted: int) -> None:
    header = f"{'seed':>4} {'config':<22} {'any alert':>9} {'WARNING+':>8} {'CRITICAL':>8}"
    print(header + f" {'drifted WARNING+':>16} {'drifted CRITICAL (any check)':>28}")
    for seed in seeds:
        reference, days = _scored_market(seed, undrifted, drifted)
        configs = {"serial_correlation": DriftConfig(), "independent rows": DriftConfig(serial_correlation=False)}
        for label, config in configs.items():
            row = _model_summary(_check_scored_days(reference, days, config), undrifted)
            print(
                f"{seed:>4} {label:<22} {row['any_alert']:>9.1%} {row['warning']:>8.1%} {row['critical']:>8.1%} "
                f"{row['drifted_warning']:>16.0%} {row['drifted_critical']:>28.0%}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description="False alarms and detection on synthetic market days.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--days", type=int, default=40, help="undrifted days checked after the reference")
    parser.add_argument("--drifted-days", type=int, default=10)
    parser.add_argument("--model", action="store_true", help="prediction and performance tests of a trained pipeline")
    args = parser.parse_args()
    if args.model:
        _print_model_summaries(args.seeds, args.days, args.drifted_days)
        return
    header = f"{'seed':>4} {'config':<22} {'any alert':>9} {'WARNING+':>8} {'CRITICAL':>8}"
    print(header + f" {'drifted CRITICAL':>16} {'min drifted share':>17} {'min severe':>10}")
    for seed in args.seeds:
        days = _market_days(seed, args.days, args.drifted_days)
        configs = {"serial_correlation": DriftConfig(), "independent rows": DriftConfig(serial_correlation=False)}
        for label, config in configs.items():
            row = _summary(_check_days(days, config), args.days, config)
            print(
                f"{seed:>4} {label:<22} {row['any_alert']:>9.1%} {row['warning']:>8.1%} {row['critical']:>8.1%} "
                f"{row['drifted_critical']:>16.0%} {row['drifted_share_min']:>17.2f} {row['severe_min']:>10.0f}"
            )


if __name__ == "__main__":
    main()
