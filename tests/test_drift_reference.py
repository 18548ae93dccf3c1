"""ReferenceStats: what it keeps from the reference, and its JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from pipeline_core.errors import ConfigError, DriftInputError
from pipeline_core.monitoring import (
    ClassDependence,
    DistributionSketch,
    DriftConfig,
    OnlineDriftMonitor,
    ReferenceStats,
)

NAMES = ["ret", "vol", "hour"]


def _reference(rng: np.random.Generator, n: int = 5000) -> np.ndarray:
    return np.column_stack(
        [rng.normal(size=n), rng.lognormal(0.0, 0.5, size=n), rng.integers(0, 24, size=n).astype(float)]
    )


@pytest.fixture(scope="module")
def stats() -> ReferenceStats:
    rng = np.random.default_rng(0)
    return ReferenceStats.from_data(
        _reference(rng),
        NAMES,
        predictions=rng.choice([-1, 0, 1], size=5000, p=[0.3, 0.4, 0.3]),
        confidences=rng.uniform(0.34, 0.9, size=5000),
        accuracy=0.52,
        log_loss=1.01,
    )


def test_reference_stats_keep_quantile_bins_and_class_balance(stats):
    sketch = stats.features[0]
    assert sketch.edges.size == 9
    assert sketch.proportions == pytest.approx(np.full(10, 0.1), abs=1e-3)
    assert sketch.support.size == 1000
    assert stats.n_reference == 5000
    assert stats.class_proportions == pytest.approx((0.3, 0.4, 0.3), abs=0.02)
    assert stats.n_predictions == 5000
    assert stats.confidence is not None and stats.confidence.size == 5000


def test_reference_stats_of_a_discrete_feature_keep_every_value(stats):
    hour = stats.features[2]
    assert hour.support.tolist() == list(range(24))
    assert np.all(np.diff(hour.edges) > 0)
    assert hour.proportions.sum() == pytest.approx(1.0)


def test_reference_stats_survive_a_json_round_trip(stats):
    restored = ReferenceStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert restored.feature_names == stats.feature_names
    assert restored.to_dict() == stats.to_dict()
    batch = _reference(np.random.default_rng(1), 300) + np.array([0.4, 0.0, 0.0])
    before = OnlineDriftMonitor.from_reference(stats).evaluate(batch).to_frame()
    after = OnlineDriftMonitor.from_reference(restored).evaluate(batch).to_frame()
    pd.testing.assert_frame_equal(before, after)


def test_reference_stats_from_frames_take_column_names():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(_reference(rng, 500), columns=NAMES)
    from_pandas = ReferenceStats.from_data(frame)
    from_polars = ReferenceStats.from_data(pl.from_pandas(frame), feature_names=["hour", "ret"])
    assert from_pandas.feature_names == tuple(NAMES)
    assert from_polars.feature_names == ("hour", "ret")
    assert from_polars.features[1].mean == pytest.approx(frame["ret"].mean())


def test_reference_stats_of_a_constant_feature_do_not_alarm_on_the_same_constant():
    rng = np.random.default_rng(3)
    reference = np.column_stack([rng.normal(size=2000), np.zeros(2000)])
    monitor = OnlineDriftMonitor(reference, feature_names=["x", "flat"])
    batch = np.column_stack([rng.normal(size=200), np.zeros(200)])
    assert monitor.check(batch) == []
    batch[:, 1] = 1.0
    assert [a.feature for a in monitor.check(batch)] == ["flat"]


def test_reference_stats_reject_nan_naming_the_feature():
    reference = _reference(np.random.default_rng(4), 100)
    reference[5, 1] = np.nan
    with pytest.raises(DriftInputError, match=r"NaN or infinite values in 1 rows, in features \['vol'\]"):
        ReferenceStats.from_data(reference, NAMES)


def test_reference_stats_reject_bad_predictions_and_confidences():
    reference = _reference(np.random.default_rng(5), 100)
    with pytest.raises(DriftInputError, match=r"reference predictions has values \['2'\] outside"):
        ReferenceStats.from_data(reference, NAMES, predictions=np.full(100, 2))
    with pytest.raises(DriftInputError, match="confidences has 1 values"):
        ReferenceStats.from_data(reference, NAMES, confidences=np.r_[np.full(99, 0.5), 1.5])


def test_reference_stats_reject_a_tiny_reference_and_bad_sizes():
    with pytest.raises(DriftInputError, match="1 rows, expected at least 2"):
        ReferenceStats.from_data(np.zeros((1, 3)), NAMES)
    with pytest.raises(ConfigError, match="n_bins=1"):
        ReferenceStats.from_data(np.zeros((10, 3)), NAMES, n_bins=1)


def test_reference_stats_from_dict_rejects_other_versions_and_broken_data(stats):
    data = stats.to_dict()
    with pytest.raises(ConfigError, match="format_version 99"):
        ReferenceStats.from_dict({**data, "format_version": 99})
    with pytest.raises(ConfigError, match="incomplete or malformed"):
        ReferenceStats.from_dict({k: v for k, v in data.items() if k != "features"})
    broken = {**data["features"][0], "count_le": data["features"][0]["count_le"][:-1]}
    with pytest.raises(ConfigError, match="one entry per support value"):
        DistributionSketch.from_dict(broken)
    with pytest.raises(ConfigError, match="accuracy is 1.5"):
        ReferenceStats.from_dict({**data, "accuracy": 1.5})


def _persistent(rng: np.random.Generator, symbols: int, length: int, rho: float = 0.95) -> np.ndarray:
    """(symbols * length, 2) rows sorted by symbol then time: an AR(1) feature and a noise feature."""
    columns = []
    for _ in range(symbols):
        level = np.zeros(length)
        shocks = rng.normal(size=length) * np.sqrt(1 - rho**2)
        level[0] = rng.normal()
        for t in range(1, length):
            level[t] = rho * level[t - 1] + shocks[t]
        columns.append(np.column_stack([level, rng.normal(size=length)]))
    return np.vstack(columns)


def test_reference_stats_measure_serial_dependence_within_groups():
    rng = np.random.default_rng(6)
    symbols, length = 6, 1500
    rows = _persistent(rng, symbols, length)
    by_symbol = np.repeat([f"S{i}" for i in range(symbols)], length)
    stats = ReferenceStats.from_data(rows, ["level", "noise"], groups=by_symbol)
    level, noise = stats.features
    assert level.autocorrelation == pytest.approx(0.95, abs=0.02) and noise.autocorrelation < 0.05
    assert level.independent_size < 0.1 * level.size and noise.independent_size > 0.7 * noise.size
    # the same rows delivered time then symbol, with their groups, give the same statistics
    by_time = np.arange(rows.shape[0]).reshape(symbols, length).T.ravel()
    interleaved = ReferenceStats.from_data(rows[by_time], ["level", "noise"], groups=by_symbol[by_time])
    assert interleaved.to_dict() == stats.to_dict()
    # without groups, interleaved rows hide the dependence: pass groups
    hidden = ReferenceStats.from_data(rows[by_time], ["level", "noise"]).features[0]
    assert hidden.autocorrelation < 0.1


def test_reference_stats_keep_their_dependence_through_json(stats):
    data = json.loads(json.dumps(stats.to_dict()))
    assert {"inflation", "effective_size", "autocorrelation"} <= set(data["features"][0])
    restored = ReferenceStats.from_dict(data).features[0]
    assert restored.inflation.tolist() == stats.features[0].inflation.tolist()
    assert restored.independent_size == stats.features[0].independent_size


def test_reference_stats_stored_before_serial_dependence_load_as_independent_rows(stats):
    data = stats.to_dict()
    old = {**data, "format_version": 1, "features": [
        {k: v for k, v in sketch.items() if k not in ("inflation", "effective_size", "autocorrelation")}
        for sketch in data["features"]
    ]}
    restored = ReferenceStats.from_dict(old)
    sketch = restored.features[0]
    assert sketch.inflation.tolist() == [1.0] and sketch.autocorrelation == 0.0
    assert sketch.independent_size == sketch.size
    # batch rows then count by their own AR(1) factor only
    rng = np.random.default_rng(7)
    rows = np.column_stack([_persistent(rng, 1, 400)[:, 0], rng.lognormal(0.0, 0.5, 400), np.full(400, 12.0)])
    report = OnlineDriftMonitor.from_reference(restored).evaluate(rows)
    assert report.features[0].effective_size < 0.1 * 400
    assert report.features[1].effective_size > 0.7 * 400


def test_reference_stats_reject_bad_dependence_fields(stats):
    sketch = stats.features[0].to_dict()
    with pytest.raises(ConfigError, match="inflation must be one or more finite values >= 1"):
        DistributionSketch.from_dict({**sketch, "inflation": [1.0, 0.5]})
    with pytest.raises(ConfigError, match=r"effective_size must be in \(0, size\]"):
        DistributionSketch.from_dict({**sketch, "effective_size": sketch["size"] + 1})
    with pytest.raises(ConfigError, match=r"autocorrelation must be in \[0, 0.99\]"):
        DistributionSketch.from_dict({**sketch, "autocorrelation": 1.0})


def test_reference_stats_reject_groups_that_do_not_match_the_rows():
    reference = _reference(np.random.default_rng(8), 100)
    with pytest.raises(DriftInputError, match=r"reference groups has shape \(99,\), expected \(100,\)"):
        ReferenceStats.from_data(reference, NAMES, groups=np.zeros(99))
    with pytest.raises(DriftInputError, match="reference groups has 1 missing labels"):
        ReferenceStats.from_data(reference, NAMES, groups=["A"] * 99 + [None])
    with pytest.raises(DriftInputError, match=r"confidences has shape \(50,\), expected \(100,\)"):
        ReferenceStats.from_data(reference, NAMES, confidences=np.full(50, 0.5), groups=np.zeros(100))


def test_monitor_builds_grouped_reference_stats_and_refuses_groups_for_stored_ones(stats):
    rng = np.random.default_rng(9)
    rows = _persistent(rng, 2, 500)
    monitor = OnlineDriftMonitor(rows, feature_names=["level", "noise"], reference_groups=np.repeat([0, 1], 500))
    assert monitor.reference_stats.features[0].autocorrelation > 0.9
    with pytest.raises(ConfigError, match="cannot be added to existing ReferenceStats"):
        OnlineDriftMonitor(stats, reference_groups=np.zeros(5000))
    assert OnlineDriftMonitor(stats, DriftConfig(serial_correlation=False)).evaluate(
        _reference(rng, 300)
    ).features[0].effective_size == 300


def _persistent_classes(rng: np.random.Generator, symbols: int, length: int, stay: float) -> np.ndarray:
    """Classes -1/0/1 per symbol, sorted by symbol then time: each bar keeps the last class with
    probability `stay`, else draws anew from (0.3, 0.4, 0.3)."""
    draws = rng.choice([-1, 0, 1], size=(symbols, length), p=[0.3, 0.4, 0.3])
    keep = rng.random((symbols, length)) < stay
    classes = draws.copy()
    for t in range(1, length):
        classes[:, t] = np.where(keep[:, t], classes[:, t - 1], draws[:, t])
    return classes.ravel()


def test_reference_stats_measure_the_persistence_of_predicted_classes():
    rng = np.random.default_rng(10)
    symbols, length, stay = 6, 1500, 0.9
    predictions = _persistent_classes(rng, symbols, length, stay)
    by_symbol = np.repeat(np.arange(symbols), length)
    features = _reference(rng, symbols * length)
    stats = ReferenceStats.from_data(features, NAMES, predictions=predictions, groups=by_symbol)
    dependence = stats.class_dependence
    # a class indicator of this Markov chain has autocorrelation stay^k: tau -> (1 + stay) / (1 - stay) = 19
    assert dependence.autocorrelation == pytest.approx((stay, stay, stay), abs=0.03)
    assert 14 <= dependence.run_inflation(np.array([1500])).max() <= 24
    assert stats.independent_predictions == pytest.approx(dependence.effective_size)
    assert stats.independent_predictions < 0.1 * stats.n_predictions
    # the same rows delivered time then symbol give the same dependence
    by_time = np.arange(symbols * length).reshape(symbols, length).T.ravel()
    interleaved = ReferenceStats.from_data(
        _reference(rng, symbols * length), NAMES, predictions=predictions[by_time], groups=by_symbol[by_time]
    )
    assert interleaved.class_dependence.to_dict() == dependence.to_dict()


def test_reference_stats_of_independent_predictions_count_about_every_prediction(stats):
    dependence = stats.class_dependence
    assert max(dependence.autocorrelation) < 0.05
    assert stats.independent_predictions > 0.7 * stats.n_predictions


def test_reference_stats_keep_class_dependence_through_json(stats):
    data = json.loads(json.dumps(stats.to_dict()))
    assert set(data["class_dependence"]) == {"inflation", "autocorrelation", "effective_size"}
    restored = ReferenceStats.from_dict(data)
    assert restored.class_dependence.to_dict() == stats.class_dependence.to_dict()


def test_reference_stats_stored_before_class_dependence_count_predictions_as_independent(stats):
    old = {k: v for k, v in stats.to_dict().items() if k != "class_dependence"} | {"format_version": 1}
    restored = ReferenceStats.from_dict(old)
    assert restored.class_dependence is None and restored.independent_predictions == stats.n_predictions
    rng = np.random.default_rng(11)
    predictions = rng.choice([-1, 0, 1], size=400, p=[0.3, 0.4, 0.3])
    row = OnlineDriftMonitor.from_reference(restored).evaluate(_reference(rng, 400), predictions=predictions).metrics[0]
    assert row.metric == "class_balance" and row.effective_size > 0.7 * 400


def test_reference_stats_reject_bad_class_dependence(stats):
    data = stats.to_dict()
    dependence = data["class_dependence"]
    with pytest.raises(ConfigError, match="inflation must hold 3 lists of finite values >= 1"):
        ClassDependence.from_dict({**dependence, "inflation": dependence["inflation"][:2]})
    with pytest.raises(ConfigError, match=r"autocorrelation must hold 3 values in \[0, 0.99\]"):
        ClassDependence.from_dict({**dependence, "autocorrelation": [0.5, 1.2, 0.1]})
    with pytest.raises(ConfigError, match="effective_size must be a positive number"):
        ClassDependence.from_dict({**dependence, "effective_size": 0.0})
    with pytest.raises(ConfigError, match="effective_size <= n_predictions"):
        ReferenceStats.from_dict({**data, "class_dependence": {**dependence, "effective_size": 1e6}})


def test_reference_stats_reject_grouped_predictions_that_do_not_match_the_rows():
    reference = _reference(np.random.default_rng(12), 100)
    with pytest.raises(DriftInputError, match=r"reference predictions has shape \(50,\), expected \(100,\)"):
        ReferenceStats.from_data(reference, NAMES, predictions=np.zeros(50), groups=np.zeros(100))


def test_reference_stats_of_format_2_require_every_key(stats):
    data = stats.to_dict()
    with pytest.raises(ConfigError, match="incomplete or malformed.*class_dependence"):
        ReferenceStats.from_dict({k: v for k, v in data.items() if k != "class_dependence"})
    sketches = [{k: v for k, v in s.items() if k != "inflation"} for s in data["features"]]
    with pytest.raises(ConfigError, match="incomplete or malformed.*inflation"):
        ReferenceStats.from_dict({**data, "features": sketches})
