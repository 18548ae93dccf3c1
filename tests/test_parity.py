"""Parity: pipeline probabilities equal the native models', a bundle after load equals the
pipeline before save, and the `audit` command runs all audits on a bundle."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest
import xgboost as xgb

from pipeline_core.bundle import rehash_bundle
from pipeline_core.cli import main
from pipeline_core.data import MarketSpec, generate_market
from pipeline_core.errors import ConfigError
from pipeline_core.features import FeatureSet, register_feature_set
from pipeline_core.pipeline import InferenceConfig, InferencePipeline
from pipeline_core.training import TrainOptions, train_pipeline
from pipeline_core.validation import (
    check_native_parity,
    check_roundtrip,
    compare_pipelines,
    native_probabilities,
    run_audits,
)
from pipeline_core.validation.parity import max_abs_diff

from planted import AUDIT_WINDOWS, HORIZON, LOOKBACK, mini_features

# Few trees, tiny networks, one thread each (the machine is shared).
TINY = TrainOptions(
    model_params={
        "xgboost": {"n_estimators": 8, "max_depth": 3, "early_stopping_rounds": 8, "n_jobs": 1},
        "lightgbm": {"n_estimators": 8, "num_leaves": 7, "early_stopping_rounds": 8, "n_jobs": 1},
        "catboost": {"n_estimators": 8, "depth": 3, "early_stopping_rounds": 8, "n_jobs": 1},
        "lstm": {"hidden_size": 8, "max_epochs": 1, "num_threads": 1, "chunk_size": 64},
        "tcn": {"channels": 8, "max_epochs": 1, "num_threads": 1, "chunk_size": 64},
    },
    min_label_periods=AUDIT_WINDOWS,
)


NEXT_BAR = (pl.col("close").shift(-1).log() - pl.col("close").log()).alias("next_ret")


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return generate_market(MarketSpec(start=date(2024, 8, 5), days=3, symbols=2, bars_per_day=200, seed=9))


@pytest.fixture(scope="module")
def feature_sets() -> None:
    register_feature_set(FeatureSet.from_expressions("parity_clean", mini_features(), LOOKBACK), replace=True)
    register_feature_set(
        FeatureSet.from_expressions("parity_next_bar", [*mini_features(), NEXT_BAR], LOOKBACK), replace=True
    )


def _train(market, feature_set: str, model_names: list[str], **config) -> InferencePipeline:
    config = InferenceConfig(model_names=model_names, horizons=[HORIZON], feature_set=feature_set, **config)
    return train_pipeline(market, config, TINY)


@pytest.fixture(scope="module")
def every_family(market, feature_sets) -> InferencePipeline:
    """Three tree libraries and two torch networks, soft voting."""
    names = ["xgboost", "lightgbm", "catboost", "lstm", "tcn"]
    return _train(market, "parity_clean", names, sequence_length=8, ensemble_method="voting")


@pytest.fixture(scope="module")
def xgboost_only(market, feature_sets) -> InferencePipeline:
    return _train(market, "parity_clean", ["xgboost"])


@pytest.fixture()
def saved(xgboost_only, tmp_path):
    """(pipeline before save, bundle path)."""
    path = tmp_path / "pipeline_v1"
    xgboost_only.save(path)
    return xgboost_only, path


def test_loaded_bundle_matches_native_models_exactly(every_family, market, tmp_path):
    every_family.save(tmp_path / "pipeline_v1")
    loaded = InferencePipeline.load(tmp_path / "pipeline_v1")
    result = check_native_parity(loaded, market, HORIZON)
    assert result.passed, result.summary()
    assert [c.name for c in result.checks] == [f"{n}_h{HORIZON}" for n in loaded.config.model_names]
    assert all(c.n_rows == result.n_rows > 0 for c in result.checks)
    assert set(result.max_abs_diff.values()) == {0.0}


def test_bundle_after_load_equals_pipeline_before_save(every_family, market, tmp_path):
    every_family.save(tmp_path / "pipeline_v1")
    result = compare_pipelines(every_family, InferencePipeline.load(tmp_path / "pipeline_v1"), market, HORIZON)
    assert result.passed, result.summary()
    assert [(c.name, c.stage) for c in result.checks] == [
        ("scaled features", "input"),
        *[(f"{name}_h{HORIZON}", "calibrated") for name in every_family.config.model_names],
        ("final", "final"),
    ]


def test_roundtrip_check_leaves_pipeline_unchanged(xgboost_only, market):
    version = xgboost_only.version
    result = check_roundtrip(xgboost_only, market, HORIZON)
    assert result.passed, result.summary()
    assert xgboost_only.version == version


def _perturb_xgboost_file(bundle, key: str) -> None:
    """Shift every leaf of the first tree of one saved booster, then re-hash the bundle."""
    model_file = bundle / "models" / key / "model.ubj"
    booster = xgb.Booster(model_file=str(model_file))
    model = json.loads(booster.save_raw(raw_format="json"))
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    for node, left in enumerate(tree["left_children"]):
        if left == -1:
            tree["split_conditions"][node] += 0.5
            tree["base_weights"][node] += 0.5
    xgb.Booster(model_file=bytearray(json.dumps(model).encode())).save_model(str(model_file))
    rehash_bundle(bundle)


def test_perturbed_model_file_is_caught_by_parity(saved, market):
    before, path = saved
    _perturb_xgboost_file(path, f"xgboost_h{HORIZON}")
    loaded = InferencePipeline.load(path)  # re-hashed, so it loads
    result = compare_pipelines(before, loaded, market, HORIZON)
    assert not result.passed
    diffs = result.max_abs_diff
    assert diffs[f"xgboost_h{HORIZON} raw"] > 1e-3  # the model changed, not only its calibrator
    assert diffs[f"xgboost_h{HORIZON} calibrated"] > 1e-3
    assert diffs["scaled features input"] == 0.0
    assert "differ" in result.summary()
    # Native parity compares the loaded model with itself, so it cannot see a changed file.
    assert check_native_parity(loaded, market, HORIZON).passed


def test_changed_calibrator_is_told_apart_from_a_changed_model(saved, market):
    before, path = saved
    calibrator_file = path / "calibrators" / f"xgboost_h{HORIZON}.json"
    calibrator = json.loads(calibrator_file.read_text())
    calibrator.update(choice="temperature", temperature=calibrator["temperature"] * 1.5)
    calibrator_file.write_text(json.dumps(calibrator))
    rehash_bundle(path)
    result = compare_pipelines(before, InferencePipeline.load(path), market, HORIZON)
    assert not result.passed
    assert result.max_abs_diff[f"xgboost_h{HORIZON} calibrated"] > 0
    assert result.max_abs_diff[f"xgboost_h{HORIZON} raw"] == 0.0


def test_native_parity_catches_a_model_wrapper_that_diverges(xgboost_only, market, tmp_path):
    xgboost_only.save(tmp_path / "pipeline_v1")
    loaded = InferencePipeline.load(tmp_path / "pipeline_v1")
    model = loaded.models[f"xgboost_h{HORIZON}"]
    # The wrapper feeds the booster its columns in the wrong order.
    predict = model._predict_native
    model._predict_native = lambda X: predict(np.ascontiguousarray(X[:, ::-1]))
    result = check_native_parity(loaded, market, HORIZON)
    assert not result.passed
    assert result.max_abs_diff[f"xgboost_h{HORIZON} native"] > 0


def test_pipelines_scoring_different_rows_are_reported(xgboost_only, every_family, market):
    result = compare_pipelines(xgboost_only, every_family, market, HORIZON)
    assert not result.passed
    assert "different models" in result.summary()


def test_max_abs_diff_treats_matching_nan_as_equal_and_shape_mismatch_as_infinite():
    a = np.array([[0.2, np.nan], [0.5, 0.3]])
    assert max_abs_diff(a, a.copy()) == 0.0
    assert max_abs_diff(a, np.array([[0.2, 0.1], [0.5, 0.3]])) == np.inf
    assert max_abs_diff(a, a[:1]) == np.inf
    assert max_abs_diff(a, a + 0.25) == pytest.approx(0.25)


def test_native_probabilities_refuse_unknown_library():
    class Stub:
        family, library_name = "sklearn-mlp", "sklearn"

    with pytest.raises(ConfigError, match="No native call for the sklearn-mlp model"):
        native_probabilities(Stub(), np.zeros((1, 3)))


def test_clean_bundle_passes_all_audits(saved, market):
    _, path = saved
    report = run_audits(InferencePipeline.load(path), market, HORIZON, n_samples=8)
    assert report.passed, report.table()
    assert [line.name for line in report.lines] == [
        "lookahead", "warm-up", "parity: native models", "parity: save -> load"
    ]


def test_audit_command_passes_clean_bundle(saved, market, tmp_path, capsys):
    _, path = saved
    data = tmp_path / "bars.parquet"
    market.write_parquet(data)
    code = main(["audit", "--bundle", str(path), "--data", str(data), "--horizon", str(HORIZON), "--samples", "6"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "all audits passed" in out
    assert out.count("PASS") == 4


def test_audit_command_fails_leaky_bundle(market, feature_sets, tmp_path, capsys):
    leaky = _train(market, "parity_next_bar", ["xgboost"])
    leaky.save(tmp_path / "pipeline_v2")
    data = tmp_path / "bars.parquet"
    market.write_parquet(data)
    code = main(["audit", "--bundle", str(tmp_path / "pipeline_v2"), "--data", str(data), "--samples", "6"])
    out = capsys.readouterr().out
    assert code == 1
    assert "AUDIT FAILED" in out
    failed = [line.split()[0] for line in out.splitlines() if "FAIL " in line]
    # Scored from its declared history window, which ends at t, the leaky bar differs too.
    assert failed == ["lookahead", "warm-up"]


def test_audit_command_rejects_too_few_samples(capsys):
    with pytest.raises(SystemExit):
        main(["audit", "--bundle", "b", "--data", "d", "--samples", "1"])
    assert "expected an integer >= 2" in capsys.readouterr().err
