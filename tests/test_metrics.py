"""Metrics, no-skill baselines and block-bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss

from pipeline_core.calibration import softmax
from pipeline_core.metrics import (
    block_bootstrap_intervals,
    classification_metrics,
    persistence_probabilities,
    prior_probabilities,
    time_blocks,
)


@pytest.fixture(scope="module")
def probs_and_labels():
    rng = np.random.default_rng(4)
    probs = softmax(rng.normal(size=(3000, 3)))
    return probs, rng.integers(0, 3, 3000)


def test_metrics_match_sklearn(probs_and_labels):
    probs, y = probs_and_labels
    metrics = classification_metrics(probs, y)
    assert metrics["log_loss"] == pytest.approx(log_loss(y, probs, labels=[0, 1, 2]))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, probs.argmax(axis=1)))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y, probs.argmax(axis=1), average="macro"))
    assert metrics["brier"] == pytest.approx(np.mean(((probs - np.eye(3)[y]) ** 2).sum(axis=1)))


def test_bootstrap_intervals_bracket_the_estimate_and_widen_with_dependence(probs_and_labels):
    probs, y = probs_and_labels
    point = classification_metrics(probs, y)
    narrow = block_bootstrap_intervals(probs, y, np.arange(len(y)))
    for metric, (low, high) in narrow.items():
        assert low <= point[metric] <= high
    # Repeat every row 20 times in a row: blocks of 20 keep the honest width, blocks of 1 understate it.
    repeated_p, repeated_y = np.repeat(probs[:300], 20, axis=0), np.repeat(y[:300], 20)
    naive = block_bootstrap_intervals(repeated_p, repeated_y, np.arange(6000))
    blocked = block_bootstrap_intervals(repeated_p, repeated_y, np.arange(6000) // 20)
    width = lambda ci: ci["log_loss"][1] - ci["log_loss"][0]  # noqa: E731
    assert width(blocked) > 3 * width(naive)


def test_time_blocks_group_every_symbol_at_the_same_times():
    times = np.tile(np.arange(10), 2)  # two symbols sharing ten timestamps
    assert time_blocks(times, 5).tolist() == [0] * 5 + [1] * 5 + [0] * 5 + [1] * 5


def test_persistence_follows_the_transition_frequencies():
    previous = np.array([0, 0, 2, -1])
    probs = persistence_probabilities(previous, np.array([0, 0, 0, 2]), np.array([0, 0, 1, 2]))
    np.testing.assert_allclose(probs[0], [3 / 6, 2 / 6, 1 / 6])  # two 0->0, one 0->1, add-one smoothed
    np.testing.assert_allclose(probs[2], [1 / 4, 1 / 4, 2 / 4])
    np.testing.assert_allclose(probs[3], np.array([3, 2, 2]) / 7)  # unknown: the smoothed prior
    np.testing.assert_allclose(prior_probabilities(np.array([0, 0, 1, 2]), 2), [[0.5, 0.25, 0.25]] * 2)
