
import numpy as np
import polars as pl
import pytest

from pipeline_core import inputs as inputs_module
from pipeline_core.data import validate_ohlcv
from pipeline_core.errors import ConfigError, InsufficientHistoryError
from pipeline_core.pipeline import InferenceConfig, InferencePipeline
from pipeline_core.profiles import PROFILES, profile_config
from pipeline_core.training import TrainOptions, train_pipeline


def test_config_rejects_unknown_model_empty_list_bad_horizon_and_method():
    with pytest.raises(ConfigError, match=r"Unknown model names \['randomforest'\]"):
        InferenceConfig(model_names=["xgboost", "randomforest"], horizons=[20])
    with pytest.raises(ConfigError, match="model_names is empty"):
        InferenceConfig(model_names=[], horizons=[20])
    with pytest.raises(ConfigError, match=r"Horizons \[7\] must be a non-empty subset"):
        InferenceConfig(model_names=["xgboost"], horizons=[7])
    with pytest.raises(ConfigError, match="ensemble_method 'bagging'"):
        InferenceConfig(model_names=["xgboost"], horizons=[20], ensemble_method="bagging")
    with pytest.raises(ConfigError, match="feature_columns do not match"):
        InferenceConfig(model_names=["xgboost"], horizons=[20], feature_columns=["rsi_14"])


def test_profiles_are_available_by_name_as_configs():
    assert sorted(PROFILES) == ["low-latency", "max-accuracy", "multi-horizon"]
    assert profile_config("max-accuracy").model_names == ["xgboost", "lightgbm", "lstm", "gru"]
    assert profile_config("multi-horizon").horizons == [5, 10, 15, 20]
    assert profile_config("low-latency").ensemble_method == "voting"
    with pytest.raises(ConfigError, match="Unknown profile 'fastest'"):
        profile_config("fastest")


def test_predict_returns_spec_fields_in_class_order(tiny_pipeline, tiny_market):
    result = tiny_pipeline.predict(tiny_market, horizon=20)
    n = result.n_samples
    assert result.probabilities.shape == (n, 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert set(np.unique(result.predictions)) <= {-1, 0, 1}
    np.testing.assert_array_equal(result.predictions, np.array([-1, 0, 1])[result.probabilities.argmax(axis=1)])
    np.testing.assert_array_equal(result.confidence, result.probabilities.max(axis=1))
    assert set(result.model_outputs) == {"xgboost", "lightgbm", "gru"}
    assert all(p.shape == (n, 3) for p in result.model_outputs.values())
    assert result.inference_time_ms > 0


def test_predict_reports_rows_without_enough_history(tiny_pipeline, tiny_market):
    result = tiny_pipeline.predict(tiny_market, horizon=20)
    lookback = tiny_pipeline.required_lookback
    assert lookback == tiny_pipeline.feature_set.lookback + 9  # sequence_length 10
    assert result.unscored.height == 3 * lookback
    assert result.n_samples + result.unscored.height == tiny_market.height
    first_scored = tiny_market.filter(pl.col("symbol") == "SYN01")["timestamp"][lookback]
    scored_syn01 = result.to_frame().filter(pl.col("symbol") == "SYN01")
    assert scored_syn01["timestamp"][0] == first_scored


def test_predict_scores_several_horizons_from_one_feature_pass(tiny_pipeline, tiny_market, monkeypatch):
    calls = []
    original = inputs_module.feature_query
    monkeypatch.setattr(inputs_module, "SMALL_INPUT_ROWS", 0)  # the polars query, whatever the size
    monkeypatch.setattr(inputs_module, "feature_query", lambda *a, **k: calls.append(1) or original(*a, **k))
    results = tiny_pipeline.predict(tiny_market)  # no horizon: every trained one
    assert sorted(results) == [10, 20] and len(calls) == 1
    single = tiny_pipeline.predict(tiny_market, horizon=10)
    np.testing.assert_array_equal(results[10].probabilities, single.probabilities)
    assert not np.array_equal(results[10].probabilities, results[20].probabilities)


def test_score_inputs_combines_given_raw_probabilities_without_running_the_models(tiny_pipeline, tiny_market):
    inputs = tiny_pipeline.model_inputs(tiny_market)
    raw = tiny_pipeline.base_model_probabilities(inputs, 20)
    scored = tiny_pipeline.score_inputs(inputs, 20)
    np.testing.assert_array_equal(tiny_pipeline.score_inputs(inputs, 20, raw=raw).probabilities, scored.probabilities)
    # Rows given in reverse come out in reverse: the result is built from `raw`, not from the models.
    reversed_raw = {name: probabilities[::-1] for name, probabilities in raw.items()}
    from_reversed = tiny_pipeline.score_inputs(inputs, 20, raw=reversed_raw)
    np.testing.assert_array_equal(from_reversed.probabilities, scored.probabilities[::-1])


def test_tabular_inputs_of_every_scored_row_are_shared_read_only_not_copied(tiny_pipeline, tiny_market):
    # Without sequence models every featured row is scored, and the models share one array.
    shape = tiny_pipeline.feature_set, tiny_pipeline.config.sequence_length
    inputs = inputs_module.featurize(validate_ohlcv(tiny_market), *shape, uses_sequences=False).scaled_by(tiny_pipeline.scaler)
    assert inputs.rows.scores_every_row
    for shared in (inputs.tabular(), inputs.features):
        assert not shared.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            shared[0, 0] = 0.0
    assert np.shares_memory(inputs.tabular(), inputs.scaled) and np.shares_memory(inputs.features, inputs.rows.raw)
    subset = inputs.tabular(np.array([0, 2]))  # a subset is gathered: a copy the caller may change
    np.testing.assert_array_equal(subset, inputs.scaled[[0, 2]])
    assert subset.flags.writeable and not np.shares_memory(subset, inputs.scaled)
    # With them, rows without a full window are not scored: their tabular rows are gathered.
    windowed = tiny_pipeline.model_inputs(tiny_market)
    assert tiny_pipeline.config.uses_sequences and not windowed.rows.scores_every_row
    np.testing.assert_array_equal(windowed.tabular(), windowed.scaled[windowed.rows.scored])
    assert windowed.tabular().flags.writeable


def test_predict_refuses_a_horizon_the_bundle_was_not_trained_for(tiny_pipeline, tiny_market):
    with pytest.raises(ConfigError, match=r"Horizon 5 is not in this pipeline: it was trained for \[10, 20\]"):
        tiny_pipeline.predict(tiny_market, horizon=5)


def test_without_ensemble_the_best_single_model_is_final_and_every_model_is_returned(tiny_market):
    config = InferenceConfig(model_names=["xgboost", "lightgbm"], horizons=[20], use_ensemble=False)
    boosting = {"n_estimators": 30, "n_jobs": 1}
    pipeline = train_pipeline(tiny_market, config, TrainOptions(model_params={"xgboost": boosting, "lightgbm": boosting}))
    chosen = pipeline.ensembles[20]
    assert chosen.method == "single" and pipeline.final_name(20) == chosen.model_name_
    assert chosen.selection_["chosen"] == "single"
    assert set(chosen.selection_["cv_log_loss"]) == {"stacking", "voting", "single"}
    result = pipeline.predict(tiny_market, horizon=20)
    assert set(result.model_outputs) == {"xgboost", "lightgbm"} and result.final_model == chosen.model_name_
    np.testing.assert_array_equal(result.probabilities, result.model_outputs[chosen.model_name_])


def test_predict_single_equals_predict_at_that_row(tiny_pipeline, tiny_market):
    full = tiny_pipeline.predict(tiny_market, horizon=20).to_frame()
    for idx in [tiny_pipeline.required_lookback, 1000, tiny_market.height - 1]:
        key = tiny_market.row(idx, named=True)
        expected = full.filter((pl.col("symbol") == key["symbol"]) & (pl.col("timestamp") == key["timestamp"]))
        probabilities = tiny_pipeline.predict_single(tiny_market, idx, horizon=20)
        np.testing.assert_allclose(probabilities, expected.select("prob_down", "prob_flat", "prob_up").row(0), atol=1e-9)


def test_one_horizon_defaults_to_the_longest_trained_and_refuses_an_untrained_one(tiny_pipeline, tiny_market):
    idx = tiny_market.height - 1
    np.testing.assert_array_equal(tiny_pipeline.predict_single(tiny_market, idx),
                                  tiny_pipeline.predict_single(tiny_market, idx, horizon=20))
    with pytest.raises(ConfigError, match=r"Horizon 15 is not trained: the bundle scores \[10, 20\]"):
        tiny_pipeline.predict_single(tiny_market, idx, horizon=15)


def test_predict_single_refuses_a_row_without_enough_history(tiny_pipeline, tiny_market):
    with pytest.raises(InsufficientHistoryError, match=r"Row 5 \(SYN01 .*\) has 5 earlier bars; scoring needs"):
        tiny_pipeline.predict_single(tiny_market, 5, horizon=20)


def test_predict_validates_raw_input(tiny_pipeline, tiny_market):
    broken = tiny_market.with_columns(close=pl.when(pl.int_range(pl.len()) == 7).then(float("nan")).otherwise(pl.col("close")))
    with pytest.raises(Exception, match=r"'close' has NaN"):
        tiny_pipeline.predict(broken, horizon=20)


def test_save_load_predict_is_bit_identical(tiny_pipeline, tiny_market, tmp_path):
    tiny_pipeline.save(tmp_path / "pipeline_v9")
    again = InferencePipeline.load(tmp_path / "pipeline_v9")
    before = tiny_pipeline.predict(tiny_market, horizon=None)
    after = again.predict(tiny_market, horizon=None)
    for horizon in (10, 20):
        np.testing.assert_array_equal(before[horizon].probabilities, after[horizon].probabilities)
        for name in before[horizon].model_outputs:
            np.testing.assert_array_equal(before[horizon].model_outputs[name], after[horizon].model_outputs[name])
    assert again.version == "pipeline_v9"


def test_save_returns_the_manifest_and_changes_nothing_and_state_is_read_only(tiny_pipeline, tmp_path):
    before = tiny_pipeline.version
    manifest = tiny_pipeline.save(tmp_path / "pipeline_v7")
    assert manifest.pipeline_version == "pipeline_v7" and tiny_pipeline.version == before
    with pytest.raises(TypeError):
        tiny_pipeline.models["xgboost_h20"] = None
    with pytest.raises(AttributeError):
        tiny_pipeline.components.scaler = None
    with pytest.raises(ConfigError, match="no fitted scaler and models"):
        InferencePipeline(tiny_pipeline.config).models
