"""Drift monitoring: each scored (date, horizon) partition against its bundle's reference.

`prediction_drift` is partitioned like `scored_predictions` and reads its files. It judges
a partition with the bundle that scored it (the predictions' `bundle_version`), records
the report (alerts, feature and metric tables, a histogram plot) and its severity as
partition metadata, and writes it as JSON under `<data root>/drift/`. It only reads and
judges: nothing is retrained here. `prediction_drift_sensor` launches it for newly scored
partitions, and `drift_retraining_sensor` reads the `severity` it records.
"""

import dagster as dg

from pipeline_core.monitoring import AlertSeverity
from pipeline_core.monitoring.partitions import PartitionDrift, judge_date, require_predictions

from inference_assets import markdown
from inference_assets.defs.partitions import ScoringPartition, partitions_by_date, scoring_partitions
from inference_assets.defs.resources import BundleStoreResource, DataLakeResource, DriftResource
from inference_assets.defs.scoring_assets import scored_predictions

MAX_FEATURES_SHOWN = 12


@dg.asset(
    partitions_def=scoring_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[scored_predictions],
    code_version="1",
    group_name="monitoring",
    kinds={"scipy", "json"},
)
def prediction_drift(
    context: dg.AssetExecutionContext,
    data_lake: DataLakeResource,
    bundles: BundleStoreResource,
    drift: DriftResource,
) -> dg.MaterializeResult:
    """Feature and prediction drift of each scored partition, with the bundle that scored it."""
    by_date = partitions_by_date(context.partition_keys)
    requested = [(day, p.horizon) for day, partitions in by_date.items() for p in partitions]
    require_predictions(data_lake.predictions_dir, requested)
    config = drift.drift_config()
    for day, partitions in by_date.items():
        judged = judge_date(
            bundles.load, data_lake.ohlcv_dir, data_lake.predictions_dir, data_lake.drift_dir, day,
            [p.horizon for p in partitions], config,
        )
        for horizon, result in judged:
            partition = ScoringPartition(day, horizon)
            context.log.info(
                f"{partition.key}: {result.severity}, {len(result.report.drifted_features)}/"
                f"{len(result.report.features)} features drifted ({result.bundle_version})"
            )
            context.add_asset_metadata(_metadata(partition, result, drift.plot_top_k), partition_key=partition.key)
    return dg.MaterializeResult()


def _metadata(partition: ScoringPartition, result: PartitionDrift, plot_top_k: int) -> dict:
    """The figures (plain values the sensor reads), the report as markdown, its file, and a
    plot when there is something to look at (WARNING or worse: each PNG is ~100 KB of event log)."""
    report = result.report
    metadata = {
        **result.figures(),
        "report": dg.MetadataValue.md(report.to_markdown(max_features=MAX_FEATURES_SHOWN)),
        "report_path": dg.MetadataValue.path(str(result.path)),
    }
    if report.features and report.severity is not None and report.severity >= AlertSeverity.WARNING:
        metadata["plot"] = dg.MetadataValue.md(
            markdown.png_image(report.plot_png(top_k=plot_top_k), f"drift {partition.key}")
        )
    if report.skipped_reason:
        metadata["skipped_reason"] = report.skipped_reason
    return metadata
