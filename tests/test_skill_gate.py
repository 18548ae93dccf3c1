"""The skill gate: a planted no-skill model (trained on shuffled labels) is refused everywhere."""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import numpy as np
import polars as pl
import pytest

from pipeline_core import training
from pipeline_core.bundle import BundleStore
from pipeline_core.cli import main
from pipeline_core.data import MarketSpec, generate_market, write_daily_partitions
from pipeline_core.errors import NotDeployableError
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.retraining import RetrainPolicy, retrain_and_gate
from pipeline_core.skill import EXIT_NO_SKILL, assess_skill
from pipeline_core.training import TrainOptions, train_pipeline

from inference_assets.defs.bundle_assets import PromotionConfig, live_bundle
from inference_assets.defs.resources import BundleStoreResource

BOOSTING = {"n_estimators": 30, "n_jobs": 1}
FAST = TrainOptions(model_params={"xgboost": BOOSTING, "lightgbm": BOOSTING})
CONFIG = InferenceConfig(model_names=["xgboost", "lightgbm"], horizons=[20], ensemble_method="voting")


def _shuffled_labels(original):
    """triple_barrier_labels shuffled across every row and symbol: features say nothing about them."""
    def shuffled(bars, horizon, **kwargs):
        labels = original(bars, horizon, **kwargs)
        values = labels["label"].to_numpy().astype(np.float64)
        known = np.flatnonzero(~np.isnan(values))
        values[known] = np.random.default_rng(horizon).permutation(values[known])
        return labels.with_columns(label=pl.Series(values).fill_nan(None).cast(pl.Int8))
    return shuffled


@pytest.fixture
def no_skill(monkeypatch):
    monkeypatch.setattr(training, "triple_barrier_labels", _shuffled_labels(training.triple_barrier_labels))


@pytest.fixture
def no_skill_store(no_skill, tiny_market, tmp_path) -> BundleStore:
    store = BundleStore(tmp_path / "deployment")
    pipeline = train_pipeline(tiny_market, CONFIG, FAST)
    assert not pipeline.evaluation["skill"]["deployable"]
    pipeline.save(store.path("v1"))
    return store


def test_the_verdict_compares_every_horizon_with_the_train_prior():
    summary = {"h10": {"log_loss": 1.05, "train_prior_log_loss": 1.07, "class_prior_log_loss": 1.06},
               "h20": {"log_loss": 1.09, "train_prior_log_loss": 1.08, "class_prior_log_loss": 1.07}}
    verdict = assess_skill(summary)
    assert not verdict["deployable"] and verdict["horizons"]["h10"]["has_skill"]
    assert "h20 final 1.0900 >= prior 1.0800" in verdict["reason"]


def test_train_exits_non_zero_and_marks_the_bundle_unless_allowed(no_skill, tiny_market, tmp_path, capsys):
    data = tmp_path / "bars.parquet"
    tiny_market.write_parquet(data)
    out = tmp_path / "deployment" / "pipeline_v1"
    code = main(["train", "--data", str(data), "--profile", "low-latency", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == EXIT_NO_SKILL and "NOT DEPLOYABLE" in printed.out and "--allow-no-skill" in printed.err
    assert json.loads((out / "manifest.json").read_text())["deployable"] is False  # written, for inspection
    again = tmp_path / "deployment" / "pipeline_v2"
    assert main(["train", "--data", str(data), "--profile", "low-latency", "--out", str(again), "--allow-no-skill"]) == 0


def test_promotion_refuses_a_no_skill_bundle_unless_forced_and_records_the_override(no_skill_store):
    with pytest.raises(NotDeployableError, match="marked not deployable"):
        no_skill_store.promote("v1")
    assert no_skill_store.live_version() is None
    assert main(["bundles", "--root", str(no_skill_store.root), "promote", "v1"]) == 2
    assert main(["bundles", "--root", str(no_skill_store.root), "promote", "v1", "--force", "--reason", "a test"]) == 0
    assert no_skill_store.live_version() == "pipeline_v1"
    [record] = (no_skill_store.root / "decisions").glob("pipeline_v1-forced-*.json")
    decision = json.loads(record.read_text())
    assert decision["forced"] is True and "a test" in decision["reasons"][0]


def test_live_bundle_asset_refuses_a_no_skill_bundle_unless_forced(no_skill_store):
    manifest = no_skill_store.manifest("v1")
    bundles = BundleStoreResource(deployment_root=str(no_skill_store.root))
    with pytest.raises(dg.Failure, match="marked not deployable"):
        live_bundle(config=PromotionConfig(), bundles=bundles, deployment_bundle=manifest)
    assert no_skill_store.live_version() is None
    result = live_bundle(config=PromotionConfig(force=True, reason="a test"), bundles=bundles, deployment_bundle=manifest)
    assert result.metadata["forced"] is True and no_skill_store.live_version() == "pipeline_v1"


def test_the_retraining_gate_refuses_a_no_skill_candidate(no_skill, tmp_path):
    bars = generate_market(MarketSpec(start=date(2024, 5, 1), days=8, symbols=3, bars_per_day=390, seed=5))
    write_daily_partitions(bars, tmp_path / "ohlcv")
    store = BundleStore(tmp_path / "deployment")
    policy = RetrainPolicy(window_days=5, holdout_days=2, audit_samples=3)
    decision = retrain_and_gate(tmp_path / "ohlcv", store, date(2024, 5, 8), CONFIG, policy, FAST)
    assert not decision.promoted and any(r.startswith("no skill:") for r in decision.reasons)
    assert store.live_version() is None
    assert json.loads((store.root / "decisions" / f"{decision.candidate}.json").read_text())["promoted"] is False
