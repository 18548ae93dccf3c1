"""Calibration chosen out of sample: the identity unless a method wins on later rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import log_loss

from pipeline_core.calibration import SigmoidCalibrator, TemperatureCalibrator, calibrator_from_dict, softmax
from pipeline_core.calibration_selection import SANE_BIAS, SANE_TEMPERATURE, select_calibrator
from pipeline_core.errors import ConfigError
from pipeline_core.splits import walk_forward_folds

N = 6000


@pytest.fixture(scope="module")
def logits_labels_folds():
    rng = np.random.default_rng(5)
    logits = rng.normal(scale=1.0, size=(N, 3))
    y = np.minimum((rng.random(N)[:, None] > softmax(logits).cumsum(axis=1)).sum(axis=1), 2)
    times = np.arange(N).astype("datetime64[m]")
    return logits, y, walk_forward_folds(times, n_folds=4, horizon=5)


def test_calibrated_probabilities_keep_the_identity(logits_labels_folds):
    logits, y, folds = logits_labels_folds
    calibrator = select_calibrator(softmax(logits), y, folds)
    assert calibrator.choice == "identity"
    assert np.array_equal(calibrator.transform(softmax(logits)), softmax(logits))
    evidence = calibrator.selection_
    assert evidence["folds"] == 4
    assert set(evidence["cv_log_loss"]) == {"identity", "temperature", "temperature+bias", "sigmoid"}


def test_an_overconfident_model_gets_a_temperature_within_sane_bounds(logits_labels_folds):
    logits, y, folds = logits_labels_folds
    overconfident = softmax(2.5 * logits)
    calibrator = select_calibrator(overconfident, y, folds)
    assert calibrator.choice in ("temperature", "temperature+bias")
    assert SANE_TEMPERATURE[0] <= calibrator.temperature_ <= SANE_TEMPERATURE[1]
    assert np.abs(calibrator.bias_).max() <= SANE_BIAS
    assert calibrator.selection_["cv_log_loss"][calibrator.choice] < calibrator.selection_["cv_log_loss"]["identity"]


def test_a_prior_shift_that_does_not_carry_over_is_not_learned(logits_labels_folds):
    """The class mix of the calibration window changes over time: a bias fitted on early rows
    hurts later rows, so cross-validation keeps the identity (the failure seen on real data)."""
    logits, y, folds = logits_labels_folds
    drifting = softmax(logits + np.where(np.arange(N)[:, None] < N // 2, [0.6, 0.0, -0.6], [-0.6, 0.0, 0.6]))
    calibrator = select_calibrator(drifting, y, folds)
    assert calibrator.choice != "temperature+bias"
    in_sample = TemperatureCalibrator().fit(drifting, y)  # the old way: one fit on the whole window
    assert np.abs(in_sample.bias_).max() > 0.05


def test_no_folds_falls_back_to_the_identity_and_says_why(logits_labels_folds):
    logits, y, _ = logits_labels_folds
    calibrator = select_calibrator(softmax(3 * logits), y, [], fallback_reason="window holds 3.0 periods")
    assert calibrator.choice == "identity"
    assert calibrator.selection_["reason"] == "window holds 3.0 periods"


def test_choice_and_evidence_survive_json(logits_labels_folds):
    logits, y, folds = logits_labels_folds
    calibrator = select_calibrator(softmax(2.5 * logits), y, folds)
    restored = TemperatureCalibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    assert restored.choice == calibrator.choice and restored.selection_ == calibrator.selection_
    assert np.array_equal(restored.transform(softmax(logits)), calibrator.transform(softmax(logits)))


def test_a_format_1_calibrator_migrates_explicitly():
    v1 = {"method": "temperature", "bounds": [0.05, 20.0], "eps": 1e-12, "temperature": 2.0,
          "class_bias": True, "bias": [0.1, 0.0, -0.1], "n_samples": 10}
    restored = TemperatureCalibrator.from_dict(v1)
    assert restored.choice == "temperature+bias" and restored.bias_bound == 5.0
    probs = softmax(np.random.default_rng(0).normal(size=(5, 3)))
    np.testing.assert_array_equal(restored.transform(probs), softmax(np.log(probs) / 2.0 + np.array([0.1, 0.0, -0.1])))
    with pytest.raises(ConfigError, match="newer than this code reads"):
        TemperatureCalibrator.from_dict({**v1, "format_version": 99})
    with pytest.raises(ConfigError, match="choice 'platt' is unknown"):
        TemperatureCalibrator.for_choice("platt")


def test_selection_never_makes_held_out_log_loss_much_worse(logits_labels_folds):
    """Whatever it picks on the first part, the later rows are not hurt beyond noise."""
    logits, y, _ = logits_labels_folds
    cut = N * 2 // 3
    times = np.arange(cut).astype("datetime64[m]")
    for scale in (0.5, 1.0, 2.0):
        probs = softmax(scale * logits)
        calibrator = select_calibrator(probs[:cut], y[:cut], walk_forward_folds(times, n_folds=4, horizon=5))
        after = log_loss(y[cut:], calibrator.transform(probs[cut:]))
        assert after <= log_loss(y[cut:], probs[cut:]) + 0.003


def test_sigmoid_scaling_fixes_per_class_miscalibration_and_round_trips(logits_labels_folds):
    logits, y, folds = logits_labels_folds
    calibrated = softmax(logits)
    odds = np.log(calibrated) - np.log1p(-calibrated)
    distorted = 1 / (1 + np.exp(-(odds * np.array([2.0, 0.5, 1.0]) + np.array([0.0, 0.8, -0.5]))))
    distorted /= distorted.sum(axis=1, keepdims=True)
    sigmoid = SigmoidCalibrator().fit(distorted[: N // 2], y[: N // 2])
    held_out = y[N // 2 :]
    assert log_loss(held_out, sigmoid.transform(distorted[N // 2 :])) < log_loss(held_out, distorted[N // 2 :]) - 0.01
    restored = calibrator_from_dict(json.loads(json.dumps(sigmoid.to_dict())), "sigmoid")
    assert np.array_equal(restored.transform(distorted), sigmoid.transform(distorted))
    with pytest.raises(ConfigError, match="Unknown calibrator 'isotonic'"):
        calibrator_from_dict(sigmoid.to_dict(), "isotonic")
    assert select_calibrator(distorted, y, folds).choice != "identity"
