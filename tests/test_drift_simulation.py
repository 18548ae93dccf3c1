"""The monitor's targets, measured by simulation with fixed seeds.

- Stationary batches (20 features of mixed kinds, model outputs and actuals from the
  reference process) of 100, 250 and 1,000 rows: at most 5% of batches raise any alert
  and at most 1% raise CRITICAL.
- A 0.5-sigma mean shift in one feature is caught (WARNING or above) in a batch of 250
  rows at least 95% of the time; a shift in half the features raises CRITICAL.
- Serially dependent but stationary batches (8 symbols x 125 consecutive rows of AR(1),
  rolling-sum, volatility-regime and oscillator features) alert no more often than
  independent ones when checked with their symbols as groups; treated as independent rows
  they alert on every batch.

The reference is an actual 20,000-row sample (compressed to 1,000 quantiles per feature),
so the rates include the reference's own sampling noise.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from pipeline_core.monitoring import AlertSeverity, DriftConfig, OnlineDriftMonitor, ReferenceStats

N_FEATURES = 20
KINDS = ("normal", "heavy_tailed", "lognormal", "bounded", "hour", "flag")
NAMES = [f"{KINDS[j % len(KINDS)]}_{j}" for j in range(N_FEATURES)]
N_REFERENCE = 20_000
CLASS_WEIGHTS = np.array([-0.6, 0.0, 0.6])


def _draw_features(rng: np.random.Generator, n: int) -> np.ndarray:
    """Feature kinds found in OHLCV feature sets: returns, volumes, oscillators, clocks, flags."""
    columns = []
    for j in range(N_FEATURES):
        kind = KINDS[j % len(KINDS)]
        if kind == "normal":
            columns.append(rng.normal(size=n))
        elif kind == "heavy_tailed":
            columns.append(rng.standard_t(3, size=n))
        elif kind == "lognormal":
            columns.append(rng.lognormal(0.0, 0.8, size=n))
        elif kind == "bounded":
            columns.append(rng.uniform(0.0, 100.0, size=n))
        elif kind == "hour":
            columns.append(rng.integers(0, 24, size=n).astype(float))
        else:
            columns.append((rng.random(n) < 0.3).astype(float))
    return np.column_stack(columns)


def _model_outputs(rng: np.random.Generator, features: np.ndarray) -> dict[str, np.ndarray]:
    """A calibrated model: probabilities from the features, actuals drawn from them."""
    n = features.shape[0]
    logits = 0.8 * rng.normal(size=(n, 3)) + features[:, [0]] * CLASS_WEIGHTS
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    actuals = (rng.random(n)[:, None] > np.cumsum(probabilities, axis=1)).sum(axis=1) - 1
    return {"predictions": probabilities.argmax(axis=1) - 1, "probabilities": probabilities, "actuals": actuals}


def _batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    features = _draw_features(rng, n)
    return features, _model_outputs(rng, features)


@pytest.fixture(scope="module")
def stats() -> ReferenceStats:
    rng = np.random.default_rng(2024)
    features, outputs = _batch(rng, N_REFERENCE)
    _, validation = _batch(rng, 50_000)
    rows = np.arange(50_000)
    return ReferenceStats.from_data(
        features,
        NAMES,
        predictions=outputs["predictions"],
        confidences=outputs["probabilities"].max(axis=1),
        accuracy=float(np.mean(validation["predictions"] == validation["actuals"])),
        log_loss=float(-np.log(validation["probabilities"][rows, validation["actuals"] + 1]).mean()),
    )


@pytest.mark.parametrize(("batch_size", "n_batches"), [(100, 2000), (250, 2000), (1000, 1000)])
def test_stationary_batches_rarely_alert(stats, batch_size, n_batches):
    rng = np.random.default_rng(batch_size)
    monitor = OnlineDriftMonitor.from_reference(stats)
    any_alert = critical = 0
    for _ in range(n_batches):
        features, outputs = _batch(rng, batch_size)
        alerts = monitor.check(features, **outputs)
        any_alert += bool(alerts)
        critical += any(a.severity == AlertSeverity.CRITICAL for a in alerts)
    assert {m.metric for m in monitor.last_report.metrics} == {"class_balance", "confidence", "accuracy", "log_loss"}
    assert any_alert / n_batches <= 0.05
    assert critical / n_batches <= 0.01


@pytest.mark.parametrize("column", [0, 1, 2, 3], ids=lambda j: NAMES[j])
def test_half_sigma_shift_in_one_feature_is_caught_in_one_batch_of_250(stats, column):
    rng = np.random.default_rng(100 + column)
    monitor = OnlineDriftMonitor.from_reference(stats)
    shift = 0.5 * stats.features[column].std
    caught, repeats = 0, 300
    for _ in range(repeats):
        features = _draw_features(rng, 250)
        features[:, column] += shift
        report = monitor.evaluate(features)
        caught += any(
            a.feature == NAMES[column] and a.severity >= AlertSeverity.WARNING for a in report.alerts
        )
    assert caught / repeats >= 0.95


def test_half_sigma_shift_in_half_the_features_is_critical(stats):
    rng = np.random.default_rng(7)
    monitor = OnlineDriftMonitor.from_reference(stats)
    shifts = np.array([0.5 * sketch.std if j % 2 == 0 else 0.0 for j, sketch in enumerate(stats.features)])
    critical, repeats = 0, 200
    for _ in range(repeats):
        report = monitor.evaluate(_draw_features(rng, 250) + shifts)
        critical += report.severity == AlertSeverity.CRITICAL
    assert critical / repeats >= 0.99


DEPENDENT_NAMES = ["ar_95", "lognormal_ar_99", "regime_return", "rolling_sum_15", "t3", "oscillator"]
SYMBOLS, REFERENCE_RUN, BATCH_RUN = 8, 5000, 125


def _ar1(rng: np.random.Generator, rho: float, size: int) -> np.ndarray:
    shocks = rng.normal(size=size) * np.sqrt(1 - rho**2)
    shocks[0] = rng.normal()
    return signal.lfilter([1.0], [1.0, -rho], shocks)


def _symbol_series(rng: np.random.Generator, size: int) -> np.ndarray:
    """One symbol's consecutive rows: persistent levels, overlapping windows, volatility regimes."""
    durations = rng.geometric(1 / 400, size=size // 50 + 10)
    scale = np.repeat(rng.choice([0.6, 1.6], size=durations.size), durations)[:size]
    noise = rng.normal(size=size + 14)
    return np.column_stack(
        [
            _ar1(rng, 0.95, size),
            np.exp(0.5 * _ar1(rng, 0.99, size)),
            scale * rng.standard_t(5, size=size),  # uncorrelated, clustered in scale
            np.convolve(noise, np.ones(15), mode="valid"),
            rng.standard_t(3, size=size),
            100 / (1 + np.exp(-2 * _ar1(rng, 0.9, size))),
        ]
    )


@pytest.fixture(scope="module")
def dependent_market() -> tuple[ReferenceStats, list[np.ndarray]]:
    """Reference stats of 8 x 5,000 consecutive rows, then 100 batches of the next 8 x 125 rows."""
    rng = np.random.default_rng(31)
    n_batches = 100
    series = [_symbol_series(rng, REFERENCE_RUN + n_batches * BATCH_RUN) for _ in range(SYMBOLS)]
    reference = np.vstack([rows[:REFERENCE_RUN] for rows in series])
    stats = ReferenceStats.from_data(
        reference, DEPENDENT_NAMES, groups=np.repeat(np.arange(SYMBOLS), REFERENCE_RUN)
    )
    starts = REFERENCE_RUN + BATCH_RUN * np.arange(n_batches)
    return stats, [np.vstack([rows[start : start + BATCH_RUN] for rows in series]) for start in starts]


def test_stationary_dependent_batches_rarely_alert_when_checked_by_symbol(dependent_market):
    stats, batches = dependent_market
    symbols = np.repeat(np.arange(SYMBOLS), BATCH_RUN)
    rates = {}
    for serial in (True, False):
        monitor = OnlineDriftMonitor.from_reference(stats, DriftConfig(serial_correlation=serial))
        outcomes = [monitor.check(batch, groups=symbols) for batch in batches]
        rates[serial] = (
            np.mean([bool(alerts) for alerts in outcomes]),
            np.mean([any(a.severity == AlertSeverity.CRITICAL for a in alerts) for alerts in outcomes]),
        )
    any_alert, critical = rates[True]
    assert any_alert <= 0.05 and critical == 0.0
    assert rates[False][0] >= 0.9  # as independent rows, sampling noise looks like drift


def test_shift_in_a_dependent_feature_is_still_caught(dependent_market):
    stats, batches = dependent_market
    symbols = np.repeat(np.arange(SYMBOLS), BATCH_RUN)
    monitor = OnlineDriftMonitor.from_reference(stats)
    shift = np.zeros(len(DEPENDENT_NAMES))
    shift[0] = 2.0 * stats.features[0].std  # 1,000 rows of AR(1) 0.95 are worth ~30 independent ones
    caught = [
        any(a.feature == "ar_95" and a.severity >= AlertSeverity.WARNING for a in monitor.evaluate(
            batch + shift, groups=symbols).alerts)
        for batch in batches[:40]
    ]
    assert np.mean(caught) >= 0.9
