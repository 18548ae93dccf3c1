"""Temperature calibration, its report and reliability plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import log_loss

from pipeline_core.calibration import (
    TemperatureCalibrator,
    calibration_report,
    expected_calibration_error,
    reliability_plot_png,
    softmax,
)
from pipeline_core.errors import ConfigError, DataValidationError, NotFittedError

N = 4000
HALF = N // 2


@pytest.fixture(scope="module")
def true_logits_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(true logits): softmax(true logits) is calibrated."""
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=1.2, size=(N, 3))
    probs = softmax(logits)
    y = np.minimum((rng.random(N)[:, None] > probs.cumsum(axis=1)).sum(axis=1), 2)
    return logits, y


def test_temperature_softens_an_overconfident_model(true_logits_and_labels):
    logits, y = true_logits_and_labels
    overconfident = softmax(3.0 * logits)
    calibrator = TemperatureCalibrator(class_bias=False).fit(overconfident[:HALF], y[:HALF])
    assert 2.0 < calibrator.temperature_ < 4.5
    after = calibrator.transform(overconfident[HALF:])
    assert log_loss(y[HALF:], after) < log_loss(y[HALF:], overconfident[HALF:]) - 0.1
    assert np.array_equal(after.argmax(axis=1), overconfident[HALF:].argmax(axis=1))
    np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-12)


def test_class_bias_corrects_a_shifted_class_prior(true_logits_and_labels):
    logits, y = true_logits_and_labels
    shifted = softmax(logits + np.array([0.8, 0.0, -0.8]))  # as class-weighted training leaves it
    temperature_only = TemperatureCalibrator(class_bias=False).fit(shifted[:HALF], y[:HALF])
    with_bias = TemperatureCalibrator().fit(shifted[:HALF], y[:HALF])
    np.testing.assert_allclose(with_bias.bias_, [-0.8, 0.0, 0.8], atol=0.2)
    held_out = y[HALF:]
    assert log_loss(held_out, with_bias.transform(shifted[HALF:])) < log_loss(held_out, temperature_only.transform(shifted[HALF:])) - 0.02
    restored = TemperatureCalibrator.from_dict(json.loads(json.dumps(with_bias.to_dict())))
    assert np.array_equal(restored.transform(shifted), with_bias.transform(shifted))


def test_temperature_sharpens_an_underconfident_model(true_logits_and_labels):
    logits, y = true_logits_and_labels
    underconfident = softmax(0.4 * logits)
    calibrator = TemperatureCalibrator().fit(underconfident[:HALF], y[:HALF])
    assert calibrator.temperature_ < 0.6
    after = calibrator.transform(underconfident[HALF:])
    assert log_loss(y[HALF:], after) < log_loss(y[HALF:], underconfident[HALF:])


def test_temperature_json_round_trip_is_identical(true_logits_and_labels):
    logits, y = true_logits_and_labels
    probs = softmax(2.0 * logits)
    calibrator = TemperatureCalibrator().fit(probs, y)
    restored = TemperatureCalibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    assert restored.temperature_ == calibrator.temperature_
    assert np.array_equal(restored.transform(probs), calibrator.transform(probs))


def test_calibration_report_improves_on_overconfident_model(true_logits_and_labels):
    logits, y = true_logits_and_labels
    before = softmax(3.0 * logits)
    after = TemperatureCalibrator().fit(before[:HALF], y[:HALF]).transform(before[HALF:])
    report = calibration_report(before[HALF:], after, y[HALF:])
    assert report["n_samples"] == HALF
    assert report["log_loss_before"] == pytest.approx(log_loss(y[HALF:], before[HALF:]))
    assert report["log_loss_after"] < report["log_loss_before"]
    assert report["ece_after"] < report["ece_before"] / 2


def test_ece_matches_a_hand_computed_case():
    # Half the rows at confidence 0.9 (all correct), half at 0.6 (half correct).
    probs = np.array([[0.9, 0.05, 0.05]] * 4 + [[0.6, 0.3, 0.1]] * 4)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    expected = 0.5 * abs(1.0 - 0.9) + 0.5 * abs(0.5 - 0.6)
    assert expected_calibration_error(probs, y) == pytest.approx(expected)


def test_ece_is_small_for_calibrated_probabilities(true_logits_and_labels):
    logits, y = true_logits_and_labels
    assert expected_calibration_error(softmax(logits), y) < 0.03


def test_reliability_plot_returns_png(true_logits_and_labels):
    logits, y = true_logits_and_labels
    png = reliability_plot_png({"raw": softmax(3 * logits), "calibrated": softmax(logits)}, y)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5000


def test_calibrator_errors_say_what_is_wrong(true_logits_and_labels):
    logits, y = true_logits_and_labels
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TemperatureCalibrator().transform(softmax(logits))
    with pytest.raises(DataValidationError, match=r"shape \(4000, 2\): expected \(n, 3\)"):
        TemperatureCalibrator().fit(softmax(logits[:, :2]), y)
    with pytest.raises(DataValidationError, match="negative or non-finite values"):
        TemperatureCalibrator().fit(logits, y)
    with pytest.raises(DataValidationError, match=r"row \d+ sums to .*not logits"):
        TemperatureCalibrator().fit(np.exp(logits), y)
    with pytest.raises(DataValidationError, match="have 4000 rows and y has 3999"):
        TemperatureCalibrator().fit(softmax(logits), y[:-1])
    with pytest.raises(ConfigError, match="expected 'temperature'"):
        TemperatureCalibrator.from_dict({"method": "isotonic"})
    with pytest.raises(ConfigError, match="incomplete or malformed"):
        TemperatureCalibrator.from_dict({"method": "temperature", "bounds": [0.1, 10]})


def test_temperature_row_does_not_depend_on_other_rows(true_logits_and_labels):
    """A row calibrated alone equals the same row calibrated in a batch (lookahead audit)."""
    logits, y = true_logits_and_labels
    probs = softmax(2.0 * logits)
    calibrator = TemperatureCalibrator().fit(probs, y)
    batch = calibrator.transform(probs)
    for row in range(0, N, 101):
        assert np.array_equal(calibrator.transform(probs[row : row + 1])[0], batch[row])
