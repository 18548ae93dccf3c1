"""Jobs: build (and promote) a bundle; score date x horizon partitions; judge their drift; retrain."""

import dagster as dg

bundle_job = dg.define_asset_job(
    "bundle_job",
    selection=dg.AssetSelection.groups("bundle"),
    description="Train every stage from the raw history, write deployment/bundles/pipeline_vN/ and promote it.",
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.assets("scored_predictions"),
    description="Score (date, horizon) partitions with the live bundle, with their checks.",
)

drift_job = dg.define_asset_job(
    "drift_job",
    selection=dg.AssetSelection.assets("prediction_drift"),
    description="Judge scored (date, horizon) partitions for drift, each with the bundle that scored it.",
)

realized_job = dg.define_asset_job(
    "realized_job",
    selection=dg.AssetSelection.assets("realized_performance"),
    description="Judge scored (date, horizon) partitions against their realized outcomes (needs a later date's bars).",
)

retraining_job = dg.define_asset_job(
    "retraining_job",
    selection=dg.AssetSelection.assets("retrained_bundle"),
    description="Train a candidate bundle on the latest raw data and promote it only if it passes the gate.",
)
