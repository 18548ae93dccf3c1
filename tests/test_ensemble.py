"""Stacking and soft-voting ensembles over calibrated base-model probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from pipeline_core.ensemble import (
    StackingEnsemble,
    VotingEnsemble,
    create_ensemble,
    ensemble_from_dict,
)
from pipeline_core.errors import ConfigError, DataValidationError, NotFittedError

N = 6000
FIT, TEST = slice(0, 3000), slice(3000, None)


@pytest.fixture(scope="module")
def complementary() -> tuple[list[np.ndarray], np.ndarray]:
    """Two base models, each seeing one of two independent drivers of the label."""
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(N), rng.standard_normal(N)
    y = np.digitize(a + b + 0.4 * rng.standard_normal(N), [-0.7, 0.7])
    probs = []
    for driver in (a, b):
        single = LogisticRegression().fit(driver[FIT, None], y[FIT])
        probs.append(single.predict_proba(driver[:, None]))
    return probs, y


def _json_round_trip(ensemble):
    return ensemble_from_dict(json.loads(json.dumps(ensemble.to_dict())))


def test_stacking_beats_the_best_single_model(complementary):
    probs, y = complementary
    stacking = StackingEnsemble(model_names=["a", "b"]).fit([p[FIT] for p in probs], y[FIT])
    combined = stacking.predict_proba([p[TEST] for p in probs])
    assert combined.shape == (len(y[TEST]), 3)
    np.testing.assert_allclose(combined.sum(axis=1), 1.0, atol=1e-12)
    best_single = min(log_loss(y[TEST], p[TEST]) for p in probs)
    assert log_loss(y[TEST], combined) < best_single - 0.05
    best_accuracy = max((p[TEST].argmax(axis=1) == y[TEST]).mean() for p in probs)
    assert (combined.argmax(axis=1) == y[TEST]).mean() > best_accuracy


def test_stacking_json_round_trip_is_bit_identical(complementary):
    probs, y = complementary
    stacking = StackingEnsemble(C=0.5).fit([p[FIT] for p in probs], y[FIT])
    restored = _json_round_trip(stacking)
    assert isinstance(restored, StackingEnsemble)
    assert restored.model_names_ == ["model_0", "model_1"]
    assert restored.C == 0.5
    test = [p[TEST] for p in probs]
    assert np.array_equal(restored.predict_proba(test), stacking.predict_proba(test))


@pytest.mark.parametrize("ensemble", [StackingEnsemble(), VotingEnsemble(weights=[0.7, 0.2])])
def test_ensemble_row_does_not_depend_on_other_rows(complementary, ensemble):
    """A row scored alone equals the same row scored in a batch (lookahead audit)."""
    probs, y = complementary
    ensemble.fit([p[FIT] for p in probs], y[FIT])
    batch = ensemble.predict_proba([p[TEST] for p in probs])
    for row in range(0, len(y[TEST]), 97):
        alone = ensemble.predict_proba([p[TEST][row : row + 1] for p in probs])
        assert np.array_equal(alone[0], batch[row])
    stacking = ensemble if isinstance(ensemble, StackingEnsemble) else None
    if stacking is not None:
        features = np.log(np.clip(np.hstack([p[TEST] for p in probs]), stacking.eps, 1.0))
        logits = features @ stacking.coef_.T + stacking.intercept_
        expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(batch, expected, rtol=1e-12)


def test_stacking_orders_mapping_inputs_by_fitted_names(complementary):
    probs, y = complementary
    stacking = StackingEnsemble().fit({"a": probs[0][FIT], "b": probs[1][FIT]}, y[FIT])
    from_list = stacking.predict_proba([probs[0][TEST], probs[1][TEST]])
    from_mapping = stacking.predict_proba({"b": probs[1][TEST], "a": probs[0][TEST]})
    assert np.array_equal(from_list, from_mapping)
    with pytest.raises(DataValidationError, match=r"missing models \['b'\].*\['c'\]"):
        stacking.predict_proba({"a": probs[0][TEST], "c": probs[1][TEST]})


def test_voting_with_equal_weights_is_the_mean(complementary):
    probs, _ = complementary
    expected = np.mean(np.stack(probs), axis=0)
    for weights in (None, [2.0, 2.0]):
        voting = VotingEnsemble(weights=weights).fit(probs)
        assert np.array_equal(voting.predict_proba(probs), expected)


def test_voting_normalises_weights(complementary):
    probs, _ = complementary
    voting = VotingEnsemble(weights=[3.0, 1.0]).fit(probs)
    np.testing.assert_allclose(voting.weights_, [0.75, 0.25])
    np.testing.assert_allclose(voting.predict_proba(probs), 0.75 * probs[0] + 0.25 * probs[1],
                               rtol=0, atol=1e-15)


def test_voting_json_round_trip_is_bit_identical(complementary):
    probs, _ = complementary
    voting = VotingEnsemble(weights=[0.3, 0.9], model_names=["x", "y"]).fit(probs)
    restored = _json_round_trip(voting)
    assert isinstance(restored, VotingEnsemble)
    assert np.array_equal(restored.predict_proba(probs), voting.predict_proba(probs))


def test_create_ensemble_dispatches_on_method():
    assert isinstance(create_ensemble("stacking", C=0.1), StackingEnsemble)
    assert isinstance(create_ensemble("voting"), VotingEnsemble)
    with pytest.raises(ConfigError, match=r"Unknown ensemble method 'bagging'.*'stacking'"):
        create_ensemble("bagging")
    with pytest.raises(ConfigError, match=r"Unknown ensemble method None"):
        ensemble_from_dict({"coef": []})


def test_ensemble_errors_say_what_is_wrong(complementary):
    probs, y = complementary
    with pytest.raises(NotFittedError, match="not fitted yet"):
        StackingEnsemble().predict_proba(probs)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        VotingEnsemble().to_dict()
    stacking = StackingEnsemble().fit(probs, y)
    with pytest.raises(DataValidationError, match="prob_list has 1 arrays, but the ensemble "
                       "was fitted on 2 models"):
        stacking.predict_proba(probs[:1])
    with pytest.raises(DataValidationError, match=r"row counts \[6000, 10\]"):
        stacking.predict_proba([probs[0], probs[1][:10]])
    with pytest.raises(DataValidationError, match=r"y lacks the class indices \[2\]"):
        StackingEnsemble().fit(probs, np.minimum(y, 1))
    with pytest.raises(ConfigError, match="expected 2 non-negative finite numbers"):
        VotingEnsemble(weights=[1.0, -1.0]).fit(probs)
    broken = stacking.to_dict() | {"coef": [[0.0] * 6] * 2}
    with pytest.raises(ConfigError, match=r"coef \(2, 6\)"):
        ensemble_from_dict(broken)
    with pytest.raises(ConfigError, match="format version 99"):
        ensemble_from_dict(stacking.to_dict() | {"format_version": 99})
