"""Jobs: build (and promote) a bundle; score date x horizon partitions."""

import dagster as dg

bundle_job = dg.define_asset_job(
    "bundle_job",
    selection=dg.AssetSelection.groups("bundle"),
    description="Train every stage from the raw history, write deployment/pipeline_vN/ and promote it.",
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.assets("scored_predictions"),
    description="Score (date, horizon) partitions with the live bundle, with their checks.",
)

