"""Drift monitoring of scored day-partitions of the synthetic market, as the sensor sees them.

The reference is the default feature set over the first 12 days (8 symbols x 390 minute
bars, warm-up rows dropped). Every later day is checked as one batch, in order, with its
symbols as groups and the escalation state of a real sensor. From DRIFT_DAY on the market
drifts (volatility x2.5, momentum reversed); the days before are the same bars as an
undrifted market's.

- Undrifted days raise no CRITICAL, escalation included, and at most one alert per seed.
- Every drifted day is CRITICAL by itself (feature share or severe features, not escalation).
- Counted as independent rows, most undrifted days alert: the failure this guards against.

For the larger measurement, run it as a script:
    .venv/bin/python tests/test_drift_market.py --seeds 1 2 3 4 5 --days 40 --drifted-days 10
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from pipeline_core.data import MarketSpec, generate_market
from pipeline_core.features import FEATURE_COLUMNS, compute_features
from pipeline_core.monitoring import AlertSeverity, DriftConfig, DriftReport, OnlineDriftMonitor

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


def main() -> None:
    parser = argparse.ArgumentParser(description="False alarms and detection on synthetic market days.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--days", type=int, default=40, help="undrifted days checked after the reference")
    parser.add_argument("--drifted-days", type=int, default=10)
    args = parser.parse_args()
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
