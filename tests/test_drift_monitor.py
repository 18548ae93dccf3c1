"""OnlineDriftMonitor: spec usage, alerts and severities, escalation, state, bad input, report."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy.stats import norm

from pipeline_core.errors import ConfigError, DriftInputError
from pipeline_core.monitoring import (
    AlertSeverity,
    DriftAlert,
    DriftConfig,
    DriftReport,
    OnlineDriftMonitor,
    ReferenceStats,
)

NAMES = ["ret_1", "ret_5", "vol_20", "rsi_14", "volume_z"]
N_REF = 20_000
CLASS_SHARES = [0.3, 0.4, 0.3]


def _features(rng: np.random.Generator, n: int, shift: dict[int, float] | None = None) -> np.ndarray:
    matrix = rng.normal(size=(n, len(NAMES)))
    for column, sigmas in (shift or {}).items():
        matrix[:, column] += sigmas
    return matrix


def _outputs(rng: np.random.Generator, n: int, accuracy: float = 0.55) -> dict[str, np.ndarray]:
    """Predictions, calibrated-looking probabilities and actuals right `accuracy` of the time."""
    predictions = rng.choice([-1, 0, 1], size=n, p=CLASS_SHARES)
    top = rng.uniform(0.4, 0.7, size=n)
    probabilities = np.empty((n, 3))
    probabilities[:] = ((1 - top) / 2)[:, None]
    probabilities[np.arange(n), predictions + 1] = top
    wrong = (predictions + rng.integers(1, 3, size=n) + 1) % 3 - 1
    actuals = np.where(rng.random(n) < accuracy, predictions, wrong)
    return {"predictions": predictions, "probabilities": probabilities, "actuals": actuals}


@pytest.fixture(scope="module")
def stats() -> ReferenceStats:
    rng = np.random.default_rng(0)
    outputs = _outputs(rng, N_REF)
    losses = -np.log(outputs["probabilities"][np.arange(N_REF), outputs["actuals"] + 1])
    return ReferenceStats.from_data(
        _features(rng, N_REF),
        NAMES,
        predictions=outputs["predictions"],
        confidences=outputs["probabilities"].max(axis=1),
        accuracy=0.55,
        log_loss=float(losses.mean()),
    )


@pytest.fixture
def monitor(stats) -> OnlineDriftMonitor:
    return OnlineDriftMonitor.from_reference(stats)


def test_monitor_follows_the_spec_usage():
    rng = np.random.default_rng(1)
    reference = pd.DataFrame(_features(rng, 5000), columns=NAMES)
    monitor = OnlineDriftMonitor(reference_data=reference, config=DriftConfig(), feature_names=NAMES)
    batch = pd.DataFrame(_features(rng, 400, shift={0: 1.0}), columns=NAMES)
    batch["label"] = rng.choice([-1, 0, 1], size=400)
    alerts = monitor.check(
        features=batch[NAMES].values,
        predictions=rng.choice([-1, 0, 1], size=400),
        actuals=batch["label"] if "label" in batch else None,
    )
    assert [(a.severity, a.metric, a.feature) for a in alerts] == [
        (AlertSeverity.WARNING, "feature_drift", "ret_1")
    ]
    assert not any(a.severity == AlertSeverity.CRITICAL for a in alerts)
    assert "class balance not checked: the reference has no predictions" in monitor.last_report.notes


def test_alert_names_metric_feature_statistic_threshold_and_batch_size(monitor):
    alerts = monitor.check(_features(np.random.default_rng(2), 300, shift={1: 0.8}))
    (alert,) = alerts
    row = next(r for r in monitor.last_report.features if r.feature == "ret_5")
    assert alert == DriftAlert(
        severity=AlertSeverity.WARNING,
        metric="feature_drift",
        feature="ret_5",
        statistic=row.psi,
        threshold=row.psi_threshold,
        batch_size=300,
        message=alert.message,
    )
    assert "'ret_5' drifted" in alert.message and "KS D" in alert.message and "300 rows" in alert.message


def test_severity_is_ordered_so_max_works():
    assert AlertSeverity.INFO < AlertSeverity.WARNING < AlertSeverity.CRITICAL
    assert max([AlertSeverity.WARNING, AlertSeverity.CRITICAL, AlertSeverity.INFO]) is AlertSeverity.CRITICAL


def test_small_but_significant_shift_in_a_large_batch_is_only_info(monitor):
    alerts = monitor.check(_features(np.random.default_rng(3), 20_000, shift={2: 0.1}))
    assert [(a.severity, a.feature) for a in alerts] == [(AlertSeverity.INFO, "vol_20")]
    row = next(r for r in monitor.last_report.features if r.feature == "vol_20")
    assert row.significant and not row.drifted and row.psi < row.psi_threshold


def test_drift_in_a_large_share_of_features_is_critical(monitor):
    alerts = monitor.check(_features(np.random.default_rng(4), 250, shift={0: 0.6, 3: 0.6}))
    critical = [a for a in alerts if a.severity == AlertSeverity.CRITICAL]
    assert [(a.metric, a.statistic, a.threshold) for a in critical] == [("feature_share", 0.4, 0.3)]
    assert monitor.last_report.drifted_share == 0.4


def test_correction_bh_flags_at_least_what_bonferroni_flags(stats):
    monitors = {c: OnlineDriftMonitor.from_reference(stats, DriftConfig(correction=c)) for c in ("bonferroni", "bh")}
    totals = dict.fromkeys(monitors, 0)
    for seed in range(50):
        batch = _features(np.random.default_rng(seed), 200, shift={0: 0.25, 1: 0.25, 2: 0.25, 3: 0.25})
        flagged = {c: {r.feature for r in m.evaluate(batch).features if r.significant} for c, m in monitors.items()}
        assert flagged["bonferroni"] <= flagged["bh"]
        totals = {c: totals[c] + len(flagged[c]) for c in totals}
    assert totals["bh"] > 1.1 * totals["bonferroni"]


def test_prediction_class_balance_shift_warns(monitor):
    rng = np.random.default_rng(6)
    predictions = rng.choice([-1, 0, 1], size=500, p=[0.15, 0.35, 0.5])
    alerts = monitor.check(_features(rng, 500), predictions=predictions)
    assert [(a.severity, a.metric) for a in alerts] == [(AlertSeverity.WARNING, "class_balance")]
    (row,) = monitor.last_report.metrics
    assert row.test == "chi-square" and row.p_value < row.alpha


def test_confidence_shift_warns(monitor):
    rng = np.random.default_rng(7)
    outputs = _outputs(rng, 500)
    alerts = monitor.check(_features(rng, 500), confidences=rng.uniform(0.34, 0.45, size=500))
    assert [(a.severity, a.metric) for a in alerts] == [(AlertSeverity.WARNING, "confidence")]
    assert monitor.check(_features(rng, 500), probabilities=outputs["probabilities"]) == []


def test_performance_drop_is_critical_and_matched_performance_is_quiet(monitor):
    rng = np.random.default_rng(8)
    good = _outputs(rng, 600, accuracy=0.55)
    assert monitor.check(_features(rng, 600), **good) == []
    assert {m.metric for m in monitor.last_report.metrics} == {"class_balance", "confidence", "accuracy", "log_loss"}
    bad = _outputs(rng, 600, accuracy=0.35)
    alerts = monitor.check(_features(rng, 600), **bad)
    assert {(a.severity, a.metric) for a in alerts} == {
        (AlertSeverity.CRITICAL, "accuracy"),
        (AlertSeverity.CRITICAL, "log_loss"),
    }
    accuracy = next(a for a in alerts if a.metric == "accuracy")
    assert accuracy.statistic < accuracy.threshold < 0.55 - 0.05


def test_small_performance_drop_warns_without_critical(stats):
    rng = np.random.default_rng(9)
    monitor = OnlineDriftMonitor.from_reference(stats)
    outputs = _outputs(rng, 5000, accuracy=0.52)
    alerts = monitor.check(_features(rng, 5000), predictions=outputs["predictions"], actuals=outputs["actuals"])
    assert [(a.severity, a.metric) for a in alerts] == [(AlertSeverity.WARNING, "accuracy")]


def test_unknown_actuals_are_left_out_of_performance(monitor):
    rng = np.random.default_rng(10)
    outputs = _outputs(rng, 300, accuracy=0.2)
    actuals = outputs["actuals"].astype(float)
    actuals[40:] = np.nan
    assert monitor.check(_features(rng, 300), predictions=outputs["predictions"], actuals=actuals) == []
    assert "performance not checked: 40 rows with known actuals" in " ".join(monitor.last_report.notes)
    actuals[:] = outputs["actuals"]
    actuals[200:] = np.nan
    alerts = monitor.check(_features(rng, 300), predictions=outputs["predictions"], actuals=pd.Series(actuals))
    assert [(a.metric, a.batch_size) for a in alerts] == [("accuracy", 200)]


def test_consecutive_warnings_escalate_and_a_clean_batch_resets(stats):
    rng = np.random.default_rng(11)
    monitor = OnlineDriftMonitor.from_reference(stats, DriftConfig(escalate_after=3))
    levels = []
    for shift in (1.0, 1.0, 1.0, 1.0, 0.0, 1.0):
        alerts = monitor.check(_features(rng, 300, shift={0: shift}))
        levels.append(max((a.severity for a in alerts), default=None))
    W, C = AlertSeverity.WARNING, AlertSeverity.CRITICAL
    assert levels == [W, W, C, C, None, W]
    escalation = [a for a in monitor.check(_features(rng, 300, shift={0: 1.0})) if a.metric == "escalation"]
    assert escalation == []  # streak restarted after the clean batch: 2 warnings so far
    assert monitor.warning_streak == 2


def test_skipped_batches_neither_extend_nor_break_the_streak(stats):
    rng = np.random.default_rng(12)
    monitor = OnlineDriftMonitor.from_reference(stats, DriftConfig(escalate_after=2))
    monitor.check(_features(rng, 300, shift={0: 1.0}))
    assert monitor.check(_features(rng, 10)) == []
    alerts = monitor.check(_features(rng, 300, shift={0: 1.0}))
    assert [a.metric for a in alerts if a.severity == AlertSeverity.CRITICAL] == ["escalation"]


def test_escalation_can_be_disabled(stats):
    rng = np.random.default_rng(13)
    monitor = OnlineDriftMonitor.from_reference(stats, DriftConfig(escalate_after=None))
    for _ in range(5):
        alerts = monitor.check(_features(rng, 300, shift={0: 1.0}))
    assert max(a.severity for a in alerts) == AlertSeverity.WARNING
    assert monitor.warning_streak == 5


def test_saved_monitor_resumes_its_streak_and_gives_the_same_reports(stats):
    rng = np.random.default_rng(14)
    monitor = OnlineDriftMonitor.from_reference(stats, DriftConfig(escalate_after=3, correction="bh"))
    monitor.check(_features(rng, 300, shift={0: 1.0}))
    monitor.check(_features(rng, 300, shift={0: 1.0}))
    restored = OnlineDriftMonitor.from_json(monitor.to_json())
    assert restored.config == monitor.config
    assert (restored.warning_streak, restored.n_checks) == (2, 2)
    batch = _features(rng, 300, shift={0: 1.0})
    outputs = _outputs(rng, 300)
    assert restored.check(batch, **outputs) == monitor.check(batch, **outputs)
    assert any(a.metric == "escalation" for a in restored.last_report.alerts)


def test_from_json_rejects_broken_state(monitor):
    with pytest.raises(ConfigError, match="not valid JSON"):
        OnlineDriftMonitor.from_json("{not json")
    state = json.loads(monitor.to_json())
    with pytest.raises(ConfigError, match="format_version 7"):
        OnlineDriftMonitor.from_json(json.dumps({**state, "format_version": 7}))
    with pytest.raises(ConfigError, match=r"incomplete or malformed \(KeyError\('state'\)\)"):
        OnlineDriftMonitor.from_json(json.dumps({k: v for k, v in state.items() if k != "state"}))
    with pytest.raises(ConfigError, match="unknown fields"):
        OnlineDriftMonitor.from_json(json.dumps({**state, "config": {**state["config"], "bogus": 1}}))


def test_from_bundle_reads_reference_stats_of_the_horizon(stats):
    pipeline = SimpleNamespace(reference_stats={5: stats, 20: stats.to_dict()})
    assert OnlineDriftMonitor.from_bundle(pipeline, 20).feature_names == tuple(NAMES)
    assert OnlineDriftMonitor.from_bundle(SimpleNamespace(reference_stats={"20": stats}), 20).reference_stats is stats
    with pytest.raises(ConfigError, match=r"no drift reference statistics for horizon 60; available: \['20', '5'\]"):
        OnlineDriftMonitor.from_bundle(pipeline, 60)
    with pytest.raises(ConfigError, match="has no reference_stats"):
        OnlineDriftMonitor.from_bundle(SimpleNamespace(), 20)


def test_monitor_takes_pandas_and_polars_batches_by_column_name(monitor):
    batch = _features(np.random.default_rng(15), 300, shift={4: 0.7})
    expected = monitor.evaluate(batch).to_frame()
    shuffled = pd.DataFrame(batch, columns=NAMES)[NAMES[::-1]].assign(extra="x")
    pd.testing.assert_frame_equal(monitor.evaluate(shuffled).to_frame(), expected)
    pd.testing.assert_frame_equal(monitor.evaluate(pl.from_pandas(shuffled)).to_frame(), expected)


def test_monitor_rejects_a_batch_with_the_wrong_number_of_features(monitor):
    with pytest.raises(DriftInputError, match="batch features has 4 features, but 5 are expected"):
        monitor.check(np.zeros((100, 4)))
    with pytest.raises(DriftInputError, match=r"missing feature columns \['rsi_14'\]"):
        monitor.check(pd.DataFrame(np.zeros((100, 4)), columns=["ret_1", "ret_5", "vol_20", "volume_z"]))
    with pytest.raises(DriftInputError, match=r"shape \(100,\), expected a 2-D array"):
        monitor.check(np.zeros(100))


def test_monitor_rejects_nan_and_non_numeric_features(monitor):
    batch = _features(np.random.default_rng(16), 100)
    batch[[3, 7], 2] = np.nan
    batch[9, 4] = np.inf
    with pytest.raises(DriftInputError, match=r"NaN or infinite values in 3 rows, in features \['vol_20', 'volume_z'\]"):
        monitor.check(batch)
    frame = pd.DataFrame(np.zeros((100, 5)), columns=NAMES).astype({"rsi_14": object})
    frame.loc[0, "rsi_14"] = "high"
    with pytest.raises(DriftInputError, match="non-numeric"):
        monitor.check(frame)


def test_monitor_rejects_bad_predictions_actuals_and_probabilities(monitor):
    batch = _features(np.random.default_rng(17), 100)
    with pytest.raises(DriftInputError, match=r"predictions has shape \(99,\), expected \(100,\)"):
        monitor.check(batch, predictions=np.zeros(99))
    with pytest.raises(DriftInputError, match=r"predictions has values \['2'\] outside the classes"):
        monitor.check(batch, predictions=np.full(100, 2))
    with pytest.raises(DriftInputError, match=r"actuals has values \['5'\]"):
        monitor.check(batch, actuals=np.full(100, 5.0))
    with pytest.raises(DriftInputError, match=r"probabilities has shape \(100, 2\)"):
        monitor.check(batch, probabilities=np.full((100, 2), 0.5))
    with pytest.raises(DriftInputError, match="summing to 1"):
        monitor.check(batch, probabilities=np.full((100, 3), 0.5))
    with pytest.raises(DriftInputError, match="outside \\[0, 1\\]"):
        monitor.check(batch, confidences=np.full(100, 1.2))


def test_empty_and_small_batches_are_skipped_with_a_reason(monitor):
    for rows in (0, 49):
        assert monitor.check(np.zeros((rows, 5)), predictions=np.zeros(rows)) == []
        report = monitor.last_report
        assert report.skipped_reason == f"batch has {rows} rows, fewer than min_batch_size=50; not judged"
        assert report.severity is None and report.features == ()
    assert monitor.n_checks == 0
    assert monitor.check(pd.DataFrame(columns=NAMES, dtype=float)) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_bins", 1, "n_bins is 1"),
        ("ks_alpha", 0.0, "ks_alpha is 0.0"),
        ("prediction_alpha", 1.0, "prediction_alpha is 1.0"),
        ("performance_alpha", float("nan"), "performance_alpha is nan"),
        ("psi_floor", -0.1, "psi_floor is -0.1"),
        ("psi_quantile", 1.5, "psi_quantile is 1.5"),
        ("psi_epsilon", 0.0, "psi_epsilon is 0.0"),
        ("correction", "holm", "correction is 'holm'"),
        ("min_batch_size", 1, "min_batch_size is 1"),
        ("critical_feature_share", 0.0, "critical_feature_share is 0.0"),
        ("escalate_after", 0, "escalate_after is 0"),
        ("critical_severe_features", 0, "critical_severe_features is 0"),
        ("severe_psi", -1.0, "severe_psi is -1.0"),
        ("serial_correlation", 1, "serial_correlation is 1, expected True or False"),
        ("label_horizon", 0, "label_horizon is 0"),
        ("accuracy_critical_drop", -0.01, "accuracy_critical_drop is -0.01"),
        ("log_loss_critical_rise", "0.1", "log_loss_critical_rise is '0.1'"),
    ],
)
def test_drift_config_rejects_bad_values(field, value, message):
    with pytest.raises(ConfigError, match=message):
        DriftConfig(**{field: value})


def test_config_with_other_bins_than_the_reference_is_rejected(stats):
    with pytest.raises(ConfigError, match="config.n_bins is 20 but the reference stats were built with 10"):
        OnlineDriftMonitor.from_reference(stats, DriftConfig(n_bins=20))


def test_config_bins_and_floor_are_used(stats):
    rng = np.random.default_rng(18)
    reference = _features(rng, 5000)
    monitor = OnlineDriftMonitor(reference, DriftConfig(n_bins=5, psi_floor=0.5), feature_names=NAMES)
    assert monitor.reference_stats.features[0].edges.size == 4
    report = monitor.evaluate(_features(rng, 2000, shift={0: 1.0}))
    assert [r.psi_threshold for r in report.features] == [0.5] * 5


def test_report_tables_markdown_and_dict(monitor):
    rng = np.random.default_rng(19)
    monitor.check(_features(rng, 300, shift={3: 1.0}), **_outputs(rng, 300))
    report = monitor.last_report
    frame = report.to_frame()
    assert list(frame.columns) == [
        "feature", "psi", "psi_threshold", "ks_stat", "ks_pvalue",
        "ks_pvalue_adjusted", "mean_shift_sigma", "significant", "drifted", "effective_size",
    ]
    assert frame["feature"].iloc[0] == "rsi_14" and frame["drifted"].tolist() == [True, False, False, False, False]
    assert frame["mean_shift_sigma"].iloc[0] == pytest.approx(1.0, abs=0.15)
    assert list(report.metrics_frame()["metric"]) == ["class_balance", "confidence", "accuracy", "log_loss"]
    markdown = report.to_markdown()
    assert "| rsi_14 |" in markdown and "| WARNING | feature_drift | rsi_14 |" in markdown
    summary = json.loads(json.dumps(report.to_dict()))
    assert summary["severity"] == "WARNING" and summary["drifted_features"] == ["rsi_14"]


def test_report_plot_is_a_png(monitor):
    monitor.check(_features(np.random.default_rng(20), 300, shift={3: 1.0}))
    png = monitor.last_report.plot_png(top_k=4)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    skipped = DriftReport(batch_size=3, skipped_reason="batch has 3 rows")
    assert skipped.plot_png().startswith(b"\x89PNG")
    with pytest.raises(ConfigError, match="top_k is 0"):
        monitor.last_report.plot_png(top_k=0)


def _wide_monitor(config: DriftConfig | None = None) -> OnlineDriftMonitor:
    rng = np.random.default_rng(21)
    return OnlineDriftMonitor(rng.normal(size=(20_000, 20)), config, feature_names=[f"x{j}" for j in range(20)])


def test_severe_drift_in_a_few_features_is_critical_below_the_critical_share():
    monitor = _wide_monitor()
    rng = np.random.default_rng(22)
    batch = rng.normal(size=(500, 20))
    batch[:, :3] += 2.0  # 15% of the features, each far outside the reference (PSI ~ 3)
    alerts = monitor.check(batch)
    critical = [a for a in alerts if a.severity == AlertSeverity.CRITICAL]
    assert [(a.metric, a.statistic, a.threshold) for a in critical] == [("severe_features", 3.0, 3.0)]
    assert "3 features drifted severely (PSI >= 1; critical from 3)" in critical[0].message
    assert monitor.last_report.drifted_share == 0.15


def test_severe_drift_in_two_features_or_with_the_rule_off_only_warns():
    rng = np.random.default_rng(23)
    two = rng.normal(size=(500, 20))
    two[:, :2] += 2.0
    three = rng.normal(size=(500, 20))
    three[:, :3] += 2.0
    assert max(a.severity for a in _wide_monitor().check(two)) == AlertSeverity.WARNING
    off = _wide_monitor(DriftConfig(critical_severe_features=None))
    assert max(a.severity for a in off.check(three)) == AlertSeverity.WARNING


def _symbol_rows(rng: np.random.Generator, symbols: int, length: int, rho: float) -> np.ndarray:
    """Rows sorted by symbol then time; feature 0 is AR(1) with lag-1 autocorrelation rho, 1-4 are noise."""
    shocks = rng.normal(size=(symbols, length)) * np.sqrt(1 - rho**2)
    level = np.empty((symbols, length))
    level[:, 0] = rng.normal(size=symbols)
    for t in range(1, length):
        level[:, t] = rho * level[:, t - 1] + shocks[:, t]
    return np.column_stack([level.ravel(), rng.normal(size=(symbols * length, len(NAMES) - 1))])


def test_groups_measure_dependence_per_symbol_whatever_the_row_order(stats):
    rng = np.random.default_rng(24)
    monitor = OnlineDriftMonitor.from_reference(stats)
    rows = _symbol_rows(rng, 4, 250, rho=0.95)
    symbols = np.repeat(["AAA", "BBB", "CCC", "DDD"], 250)
    by_time = np.arange(1000).reshape(4, 250).T.ravel()
    sorted_report = monitor.evaluate(rows, groups=symbols).to_frame()
    interleaved_report = monitor.evaluate(rows[by_time], groups=pd.Series(symbols[by_time])).to_frame()
    pd.testing.assert_frame_equal(sorted_report, interleaved_report)
    effective = dict(zip(sorted_report["feature"], sorted_report["effective_size"]))
    assert effective["ret_1"] < 60 and effective["ret_5"] > 700  # AR(1) 0.95: 1000 rows worth ~26
    # without groups, interleaved rows look independent
    assert monitor.evaluate(rows[by_time]).features[0].effective_size > 500


def test_serially_correlated_batch_is_not_mistaken_for_drift(stats):
    rng = np.random.default_rng(25)
    rows = _symbol_rows(rng, 4, 250, rho=0.98)
    symbols = np.repeat(np.arange(4), 250)
    report = OnlineDriftMonitor.from_reference(stats).evaluate(rows, groups=symbols)
    assert report.alerts == ()
    independent = OnlineDriftMonitor.from_reference(stats, DriftConfig(serial_correlation=False))
    naive = independent.evaluate(rows, groups=symbols)
    assert naive.features[0].significant and naive.features[0].effective_size == 1000


def test_alert_says_what_dependent_rows_are_worth(stats):
    rng = np.random.default_rng(26)
    rows = _symbol_rows(rng, 4, 250, rho=0.9)
    rows[:, 0] += 3.0
    alerts = OnlineDriftMonitor.from_reference(stats).check(rows, groups=np.repeat(np.arange(4), 250))
    (alert,) = [a for a in alerts if a.feature == "ret_1"]
    row = OnlineDriftMonitor.from_reference(stats).evaluate(rows, groups=np.repeat(np.arange(4), 250)).features[0]
    assert f"batch of 1000 rows, worth {row.effective_size:.0f} independent" in alert.message


def test_monitor_rejects_groups_that_do_not_match_the_batch(monitor):
    batch = _features(np.random.default_rng(27), 100)
    with pytest.raises(DriftInputError, match=r"groups has shape \(99,\), expected \(100,\): one group label"):
        monitor.check(batch, groups=np.zeros(99))
    with pytest.raises(DriftInputError, match="groups has 2 missing labels"):
        monitor.check(batch, groups=pd.Series(["A"] * 98 + [None, None]))
    with pytest.raises(DriftInputError, match="mixes label types that cannot be sorted"):
        monitor.check(batch, groups=np.array(["A"] * 99 + [1], dtype=object))
    assert monitor.n_checks == 0


def test_confidence_test_uses_the_effective_size(stats):
    rng = np.random.default_rng(28)
    symbols = np.repeat(np.arange(4), 250)
    persistent = 0.55 + 0.08 * _symbol_rows(rng, 4, 250, rho=0.98)[:, 0]
    monitor = OnlineDriftMonitor.from_reference(stats)
    report = monitor.evaluate(_features(rng, 1000), confidences=np.clip(persistent, 0.34, 1.0), groups=symbols)
    (row,) = report.metrics
    assert row.metric == "confidence" and row.effective_size < 100 and row.n == 1000


DEPENDENT_SYMBOLS, SESSION, HORIZON = 8, 390, 20


def _dependent_outputs(rng: np.random.Generator, sessions: int, accuracy: float = 0.55) -> dict[str, np.ndarray]:
    """Model outputs of 8 symbols x `sessions` x 390 bars, sorted by symbol then time.

    The predicted class persists (each bar keeps the last one with probability 0.95, else
    draws from CLASS_SHARES) and a prediction is right when the mean of the next HORIZON
    shocks clears a threshold, so rows closer than HORIZON bars share their outcome's bars.
    """
    length = sessions * SESSION
    draws = rng.choice([-1, 0, 1], size=(DEPENDENT_SYMBOLS, length), p=CLASS_SHARES)
    keep = rng.random((DEPENDENT_SYMBOLS, length)) < 0.95
    classes = draws.copy()
    for t in range(1, length):
        classes[:, t] = np.where(keep[:, t], classes[:, t - 1], draws[:, t])
    shocks = rng.normal(size=(DEPENDENT_SYMBOLS, length + HORIZON - 1))
    window_sums = np.stack([np.convolve(row, np.ones(HORIZON), mode="valid") for row in shocks])
    hits = (window_sums / np.sqrt(HORIZON) > norm.ppf(1 - accuracy)).ravel()
    predictions = classes.ravel()
    probabilities = np.full((predictions.size, 3), 0.225)
    probabilities[np.arange(predictions.size), predictions + 1] = 0.55
    wrong = (predictions + rng.integers(1, 3, size=predictions.size) + 1) % 3 - 1
    return {"predictions": predictions, "probabilities": probabilities, "actuals": np.where(hits, predictions, wrong)}


@pytest.fixture(scope="module")
def dependent_stats() -> ReferenceStats:
    """A reference of 8 symbols x 4 sessions of persistent predictions, with its true figures."""
    rng = np.random.default_rng(30)
    outputs = _dependent_outputs(rng, 4)
    n = outputs["predictions"].size
    return ReferenceStats.from_data(
        _features(rng, n),
        NAMES,
        predictions=outputs["predictions"],
        confidences=outputs["probabilities"].max(axis=1),
        accuracy=0.55,
        log_loss=float(0.55 * -np.log(0.55) + 0.45 * -np.log(0.225)),
        groups=np.repeat(np.arange(DEPENDENT_SYMBOLS), 4 * SESSION),
    )


def test_persistent_predictions_and_overlapping_errors_are_not_mistaken_for_drift(dependent_stats):
    rng = np.random.default_rng(31)
    symbols = np.repeat(np.arange(DEPENDENT_SYMBOLS), SESSION)
    config = DriftConfig(label_horizon=HORIZON, escalate_after=None)
    monitors = {
        serial: OnlineDriftMonitor.from_reference(dependent_stats, replace(config, serial_correlation=serial))
        for serial in (True, False)
    }
    alarms = {True: [], False: []}
    for _ in range(30):
        outputs = _dependent_outputs(rng, 1)
        for serial, monitor in monitors.items():
            report = monitor.evaluate(_features(rng, symbols.size), groups=symbols, **outputs)
            alarms[serial].append({row.metric for row in report.metrics if row.severity is not None})
    assert sum(bool(metrics) for metrics in alarms[True]) <= 1
    naive = [metric for metrics in alarms[False] for metric in metrics]
    assert naive.count("class_balance") >= 10 and naive.count("accuracy") + naive.count("log_loss") >= 10


def test_performance_tests_count_overlapping_errors_by_their_effective_size(dependent_stats):
    rng = np.random.default_rng(32)
    symbols = np.repeat(np.arange(DEPENDENT_SYMBOLS), SESSION)
    outputs = _dependent_outputs(rng, 1, accuracy=0.35)
    monitor = OnlineDriftMonitor.from_reference(dependent_stats, DriftConfig(label_horizon=HORIZON))
    alerts = monitor.check(_features(rng, symbols.size), groups=symbols, **outputs)
    accuracy = next(row for row in monitor.last_report.metrics if row.metric == "accuracy")
    # hits of overlapping 20-bar windows: tau about 12 (a thresholded sum is less persistent than the sum)
    assert 3120 / 30 < accuracy.effective_size < 3120 / 8
    assert (AlertSeverity.CRITICAL, "accuracy") in {(a.severity, a.metric) for a in alerts}
    (alert,) = [a for a in alerts if a.metric == "accuracy"]
    assert f"batch of 3120 rows, worth {accuracy.effective_size:.0f} independent" in alert.message
    assert accuracy.value < accuracy.threshold < 0.55 - 0.05


def test_from_bundle_takes_the_label_horizon_from_the_horizon(stats):
    bundle = SimpleNamespace(reference_stats={20: stats})
    assert OnlineDriftMonitor.from_bundle(bundle, 20).config.label_horizon == 20
    assert OnlineDriftMonitor.from_bundle(bundle, 20, DriftConfig(label_horizon=5)).config.label_horizon == 5
    restored = OnlineDriftMonitor.from_json(OnlineDriftMonitor.from_bundle(bundle, 20).to_json())
    assert restored.config.label_horizon == 20
