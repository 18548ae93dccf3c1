"""Scoring: raw bars of a date (plus the declared lookback) -> predictions of that date.

One partition is one (date, horizon); a run may cover a range of them (backfills, the
daily schedule), so the asset reads each date once and scores all its horizons. Outputs
are written by `pipeline_core` as `<data root>/predictions/horizon=H/date=D/part-0.parquet`,
atomically, replacing any earlier file: re-running a partition is idempotent.
"""

import dagster as dg

from pipeline_core.batch import score_date
from pipeline_core.data import require_dates

from inference_assets.defs.partitions import ScoringPartition, backfill_policy, partitions_by_date, scoring_partitions
from inference_assets.defs.resources import BundleStoreResource, DataLakeResource

ohlcv_bars = dg.AssetSpec(
    "ohlcv_bars",
    group_name="raw",
    description=(
        "Validated one-minute OHLCV bars, one parquet partition per UTC date under "
        "<data root>/ohlcv/date=YYYY-MM-DD/. Written outside Dagster (the data feed, or "
        "`make demo` for the synthetic market)."
    ),
    kinds={"parquet"},
)


@dg.asset(
    partitions_def=scoring_partitions,
    # A run scores a whole range (dates x horizons): the bundle is loaded once and each date
    # read once. UI backfills split the selection along its smaller dimension (e.g. one run
    # per horizon over all dates), or into runs of INFERENCE_MAX_PARTITIONS_PER_RUN dates
    # (partitions.backfill_policy); `dagster asset materialize --partition-range` is one run.
    backfill_policy=backfill_policy(),
    deps=[ohlcv_bars, "live_bundle"],
    pool="scoring",
    code_version="1",
    group_name="scoring",
    kinds={"polars", "parquet"},
)
def scored_predictions(context: dg.AssetExecutionContext, data_lake: DataLakeResource, bundles: BundleStoreResource):
    """Class -1/0/1, the three class probabilities and a confidence per bar and symbol."""
    by_date = partitions_by_date(context.partition_keys)
    require_dates(data_lake.ohlcv_dir, list(by_date))  # before anything is written
    pipeline = bundles.pipeline_for_run(context)
    written: dict[str, dict] = {}
    try:
        for day, partitions in by_date.items():
            horizons = [p.horizon for p in partitions]
            for horizon, scored in score_date(pipeline, data_lake.ohlcv_dir, data_lake.predictions_dir, day, horizons):
                partition = ScoringPartition(day, horizon)
                done = f"partition {len(written) + 1} of {len(context.partition_keys)}"
                context.log.info(f"{partition.key} ({done}): {scored.rows} rows at {scored.rows_per_s:,.0f} rows/s -> {scored.path}")
                written[partition.key] = {**scored.figures(), "path": dg.MetadataValue.path(str(scored.path))}
                context.add_asset_metadata(written[partition.key], partition_key=partition.key)
    except BaseException:
        # A run that fails part-way records what it did write, so the event log matches the
        # files; the partitions not written are reported as failed to materialize.
        for key, metadata in written.items():
            yield dg.AssetMaterialization(context.asset_key, partition=key, metadata=metadata)
        raise
    yield dg.MaterializeResult()
