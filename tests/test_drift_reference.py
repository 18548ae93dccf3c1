"""ReferenceStats: what it keeps from the reference, and its JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from pipeline_core.errors import ConfigError, DriftInputError
from pipeline_core.monitoring import DistributionSketch, OnlineDriftMonitor, ReferenceStats

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
