"""The final combination chosen out of sample: stacking, voting or the best single model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline_core.calibration import softmax
from pipeline_core.ensemble import SingleModelEnsemble, ensemble_from_dict
from pipeline_core.ensemble_selection import select_ensemble
from pipeline_core.errors import ConfigError

N = 4000
FOLDS = 4


@pytest.fixture(scope="module")
def signal():
    rng = np.random.default_rng(8)
    logits = rng.normal(scale=1.2, size=(N, 3))
    y = np.minimum((rng.random(N)[:, None] > softmax(logits).cumsum(axis=1)).sum(axis=1), 2)
    fold_of_row = np.repeat(np.arange(FOLDS), N // FOLDS)
    times = np.arange(N).astype("datetime64[m]")
    return logits, y, fold_of_row, times


def test_one_good_model_among_noise_is_picked_by_auto_and_flagged_against_the_default(signal):
    logits, y, fold_of_row, times = signal
    rng = np.random.default_rng(1)
    oof = {
        "good": softmax(logits),
        "noise_a": softmax(rng.normal(scale=1.2, size=(N, 3))),
        "noise_b": softmax(rng.normal(scale=1.2, size=(N, 3))),
    }
    default = select_ensemble(oof, y, fold_of_row, times, "voting", horizon=5)
    assert default.method == "voting"  # the configured method stays the default ...
    assert default.selection_["clearly_better"] and default.selection_["best"] in ("single", "stacking")
    assert default.selection_["best_minus_default_ci"][1] < 0  # ... and the evidence says it loses
    auto = select_ensemble(oof, y, fold_of_row, times, "voting", horizon=5, auto=True)
    assert auto.method == auto.selection_["best"] and auto.selection_["chosen"] == auto.method
    if auto.method == "single":
        assert auto.model_name_ == "good"


def test_identical_models_are_never_called_clearly_better(signal):
    logits, y, fold_of_row, times = signal
    oof = {"a": softmax(logits), "b": softmax(logits)}
    chosen = select_ensemble(oof, y, fold_of_row, times, "voting", horizon=5)
    assert chosen.method == "voting" and not chosen.selection_["clearly_better"]
    assert chosen.selection_["n_rows"] == N - N // FOLDS  # every fold after the first is scored


def test_single_model_ensemble_passes_its_model_through_and_round_trips(signal):
    logits, y, _, _ = signal
    probs = {"a": softmax(0.2 * logits), "b": softmax(logits)}
    single = SingleModelEnsemble().fit(probs, y)
    assert single.model_name_ == "b"
    np.testing.assert_array_equal(single.predict_proba(probs), probs["b"])
    restored = ensemble_from_dict(json.loads(json.dumps(single.to_dict())))
    np.testing.assert_array_equal(restored.predict_proba([probs["a"], probs["b"]]), probs["b"])
    with pytest.raises(ConfigError, match="needs y to pick a model"):
        SingleModelEnsemble().fit(probs)
    with pytest.raises(ConfigError, match="'c' is not one of the base models"):
        SingleModelEnsemble(model_name="c").fit(probs)


def test_without_folds_the_default_is_fit_and_nothing_is_compared(signal):
    logits, y, _, times = signal
    oof = {"a": softmax(logits), "b": softmax(0.5 * logits)}
    chosen = select_ensemble(oof, y, np.zeros(N, dtype=np.int64), times, "stacking", horizon=5, auto=True)
    assert chosen.method == "stacking" and chosen.selection_["cv_log_loss"] == {}
