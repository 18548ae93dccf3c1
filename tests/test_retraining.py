import json
import threading
from datetime import date

import polars as pl
import pytest

from pipeline_core.bundle import BundleStore
from pipeline_core.data import MarketSpec, generate_market, write_daily_partitions
from pipeline_core.features import FeatureSet, register_feature_set
from pipeline_core.pipeline import InferenceConfig, InferencePipeline
from pipeline_core.retraining import RetrainPolicy, retrain_and_gate
from pipeline_core.training import TrainOptions

FAST = TrainOptions(model_params={"xgboost": {"n_estimators": 20, "max_depth": 3}})
POLICY = RetrainPolicy(window_days=5, holdout_days=2, audit_samples=5)
END = date(2024, 5, 8)


def _returns(window: int) -> pl.Expr:
    return (pl.col("close").log() - pl.col("close").log().shift(window)).alias(f"r{window}")


# A planted defect: the next bar's return, which the lookahead audit must catch.
register_feature_set(
    FeatureSet.from_expressions(
        "retrain_leaky", [_returns(1), _returns(5), (pl.col("close").shift(-1) / pl.col("close")).log().alias("next")], lookback=5
    ),
    replace=True,
)


@pytest.fixture
def raw_root(tmp_path):
    # Three symbols of full sessions: enough for a 5-day candidate to beat the class prior (the skill gate).
    bars = generate_market(MarketSpec(start=date(2024, 5, 1), days=8, symbols=3, bars_per_day=390, seed=5))
    write_daily_partitions(bars, tmp_path / "ohlcv")
    return tmp_path / "ohlcv"


def _config(feature_set: str) -> InferenceConfig:
    return InferenceConfig(model_names=["xgboost"], horizons=[10], feature_set=feature_set)


def test_a_passing_candidate_is_promoted_and_the_decision_recorded(raw_root, tmp_path):
    store = BundleStore(tmp_path / "deployment")
    decision = retrain_and_gate(raw_root, store, END, _config("ohlcv_v1"), POLICY, FAST)
    assert decision.promoted, decision.reasons
    assert all(decision.audits.values()) and set(decision.audits) >= {"lookahead", "warm-up"}
    assert store.live_version() == decision.candidate == "pipeline_v1"
    assert decision.train_dates[0] == "2024-05-02" and decision.holdout_dates == ["2024-05-07", "2024-05-08"]
    recorded = json.loads((store.root / "decisions" / "pipeline_v1.json").read_text())
    assert recorded["promoted"] is True and recorded["candidate_metrics"]["log_loss"] > 0


def test_a_candidate_with_a_planted_leak_is_not_promoted(raw_root, tmp_path):
    store = BundleStore(tmp_path / "deployment")
    first = retrain_and_gate(raw_root, store, END, _config("ohlcv_v1"), POLICY, FAST)
    decision = retrain_and_gate(raw_root, store, END, _config("retrain_leaky"), POLICY, FAST)
    assert not decision.promoted
    assert "audit failed: lookahead" in decision.reasons
    assert store.live_version() == first.candidate  # the live pointer did not move
    assert store.versions() == ["pipeline_v1", "pipeline_v2"]  # the candidate stays for inspection


def test_a_candidate_worse_than_live_is_not_promoted(raw_root, tmp_path):
    store = BundleStore(tmp_path / "deployment")
    retrain_and_gate(raw_root, store, END, _config("ohlcv_v1"), POLICY, FAST)
    strict = RetrainPolicy(window_days=5, holdout_days=2, audit_samples=5, tolerance=-1.0)
    decision = retrain_and_gate(raw_root, store, END, _config("ohlcv_v1"), strict, FAST)
    assert not decision.promoted and "worse than live" in decision.reasons[0]
    assert decision.live_metrics["log_loss"] > 0
    assert store.live_version() == "pipeline_v1"


def test_concurrent_readers_never_see_a_half_written_bundle_or_pointer(skilled_pipeline, tmp_path):
    store = BundleStore(tmp_path)
    skilled_pipeline.save(store.path("v1"))
    store.promote("v1")
    errors, loads = [], []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                loads.append(InferencePipeline.load(store.live_path()).version)
            except Exception as err:  # any failure to read is what this test hunts for
                errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for version in ("v2", "v3"):
        skilled_pipeline.save(store.path(version))  # written while readers load
        store.promote(version)
        store.promote("v1")
        store.promote(version)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert len(loads) > 0 and set(loads) <= {"pipeline_v1", "pipeline_v2", "pipeline_v3"}


def test_a_candidate_trained_on_older_data_than_live_is_refused(raw_root, tmp_path):
    store = BundleStore(tmp_path / "deployment")
    live = retrain_and_gate(raw_root, store, END, _config("ohlcv_v1"), POLICY, FAST)
    assert store.manifest(live.candidate).data_end == date(2024, 5, 6)  # the holdout is not trained on
    lenient = RetrainPolicy(window_days=5, holdout_days=2, audit_samples=5, tolerance=float("inf"))
    decision = retrain_and_gate(raw_root, store, date(2024, 5, 7), _config("ohlcv_v1"), lenient, FAST)
    assert not decision.promoted
    assert "trained on data ending 2024-05-05, before the live bundle's 2024-05-06" in " ".join(decision.reasons)
    assert store.live_version() == live.candidate
