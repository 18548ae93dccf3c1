"""A bundle whose features read the next bar: `no_lookahead` fails with ERROR and blocks downstream."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest
from dagster_lab import LEAKY, TINY_MARKET, TRAIN_END, Lab, check_evaluations, lab_resources, write_market

from pipeline_core.bundle import BundleStore
from pipeline_core.data import generate_market
from pipeline_core.features import register_feature_set
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.training import TrainOptions, train_pipeline

from inference_assets.definitions import defs
from inference_assets.defs.partitions import scoring_partitions
from inference_assets.defs.resources import ScoringChecksResource

pytestmark = pytest.mark.xdist_group("dagster")

PARTITION = "2024-03-08|20"


@dg.asset(partitions_def=scoring_partitions, deps=["scored_predictions"],
          backfill_policy=dg.BackfillPolicy.single_run())
def downstream_of_scores() -> dg.MaterializeResult:
    """Stands in for anything that consumes the scores (drift monitoring, reports)."""
    return dg.MaterializeResult()


@pytest.fixture(scope="module")
def leaky_lab(tmp_path_factory) -> Lab:
    """Raw bars, and a LIVE bundle trained on the leaking feature set."""
    register_feature_set(LEAKY, replace=True)
    root = tmp_path_factory.mktemp("leaky_lab")
    write_market(root)
    history = generate_market(TINY_MARKET).filter(pl.col("timestamp").dt.date() <= TRAIN_END)
    config = InferenceConfig(model_names=["xgboost"], horizons=[20], feature_set="leaky", use_ensemble=False)
    options = TrainOptions(model_params={"xgboost": {"n_estimators": 10, "n_jobs": 1}})
    store = BundleStore(root / "deployment")
    train_pipeline(history, config, options).save(store.path("v1"))
    store.promote("v1")
    return Lab(root, dg.DagsterInstance.ephemeral(), lab_resources(root), defs(), bundle_result=None)


def test_planted_lookahead_fails_no_lookahead_with_error_and_blocks_downstream(leaky_lab):
    result = leaky_lab.materialize(
        dg.AssetSelection.assets("scored_predictions", downstream_of_scores),
        partition_key=PARTITION,
        extra_assets=[downstream_of_scores],
    )
    assert not result.success
    (lookahead,) = [e for e in check_evaluations(result) if e.check_name == "no_lookahead"]
    assert not lookahead.passed
    assert lookahead.severity == dg.AssetCheckSeverity.ERROR
    assert lookahead.partition == PARTITION
    assert lookahead.metadata["violations"].value > 0
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"scored_predictions"}  # downstream_of_scores never ran
    failed_steps = {e.step_key for e in result.get_step_failure_events()}
    assert "scored_predictions_checks" in failed_steps
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "scored_predictions" in started and "downstream_of_scores" not in started


def test_a_date_audited_on_a_sample_of_its_symbols_still_fails_the_leak(leaky_lab):
    checks = ScoringChecksResource(throughput_floor=1, lookahead_samples=6, parity_samples=120, lookahead_symbols=1)
    result = leaky_lab.materialize(
        dg.AssetSelection.assets("scored_predictions"), partition_key=PARTITION, resources={"scoring_checks": checks}
    )
    (lookahead,) = [e for e in check_evaluations(result) if e.check_name == "no_lookahead"]
    assert not lookahead.passed and lookahead.metadata["violations"].value > 0
    assert lookahead.metadata["symbols_audited"].value == 1 < TINY_MARKET.symbols
