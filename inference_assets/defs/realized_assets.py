"""Realized performance: each scored (date, horizon) partition against what happened.

`realized_performance` is partitioned like `scored_predictions`. A partition's outcomes
need the bars after it, so it depends on the scored partition of the same date and of the
next date (a partition mapping), and it is launched by `realized_performance_sensor` once a
later date has raw bars. It records accuracy, log-loss and Brier beside the realized class
prior, the hit rate by confidence decile and the strategy's return (`strategy` resource),
per symbol and pooled, and tests accuracy and log-loss against the scoring bundle's
validation figures (`performance_severity`, which `drift_retraining_sensor` reads).
"""

import dagster as dg

from pipeline_core.monitoring.partitions import require_predictions
from pipeline_core.realized_partitions import (
    OutcomesNotAvailable,
    PartitionOutcomes,
    describe,
    performance_table,
    realizable,
    realize_date,
)

from inference_assets import markdown
from inference_assets.defs.partitions import ScoringPartition, partitions_by_date, scoring_partitions
from inference_assets.defs.resources import BundleStoreResource, DataLakeResource, DriftResource, StrategyResource
from inference_assets.defs.scoring_assets import scored_predictions

# A date's outcomes read the next date's bars: (date, horizon) depends on (date, horizon)
# and (date + 1, horizon) of the scored predictions.
THROUGH_NEXT_DATE = dg.MultiPartitionMapping({
    "date": dg.DimensionPartitionMapping(
        "date", dg.TimeWindowPartitionMapping(start_offset=0, end_offset=1, allow_nonexistent_upstream_partitions=True)
    ),
    "horizon": dg.DimensionPartitionMapping("horizon", dg.IdentityPartitionMapping()),
})


@dg.asset(
    partitions_def=scoring_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[dg.AssetDep(scored_predictions, partition_mapping=THROUGH_NEXT_DATE)],
    code_version="1",
    group_name="monitoring",
    kinds={"polars", "scipy"},
)
def realized_performance(
    context: dg.AssetExecutionContext,
    data_lake: DataLakeResource,
    bundles: BundleStoreResource,
    drift: DriftResource,
    strategy: StrategyResource,
) -> dg.MaterializeResult:
    """Accuracy, log-loss, Brier vs the realized prior, hit rate by confidence and the strategy's return."""
    by_date = partitions_by_date(context.partition_keys)
    require_predictions(data_lake.predictions_dir, [(d, p.horizon) for d, ps in by_date.items() for p in ps])
    early = sorted(set(by_date) - set(realizable(data_lake.ohlcv_dir, list(by_date))))
    if early:
        raise OutcomesNotAvailable(
            f"The outcomes of {', '.join(map(str, early[:5]))} are not available yet: no raw bars after them. "
            "realized_performance_sensor launches them once a later date arrives. Nothing was written."
        )
    for day, partitions in by_date.items():
        realized = realize_date(
            bundles.load, data_lake.ohlcv_dir, data_lake.predictions_dir, data_lake.realized_dir, day,
            [p.horizon for p in partitions], threshold=strategy.threshold, cost_bps=strategy.cost_bps,
            config=drift.drift_config(),
        )
        for horizon, outcome in realized:
            context.log.info(describe(day, horizon, outcome))
            context.add_asset_metadata(_metadata(outcome), partition_key=ScoringPartition(day, horizon).key)
    return dg.MaterializeResult()


def _metadata(outcome: PartitionOutcomes) -> dict:
    return {
        **outcome.figures(),
        "by_symbol": dg.MetadataValue.md(markdown.table(outcome.by_symbol)),
        "hit_rate_by_confidence": dg.MetadataValue.md(markdown.table(outcome.deciles)),
        "performance": dg.MetadataValue.md(
            markdown.table(performance_table(outcome)) + "".join(f"\n\n{note}" for note in outcome.notes)
        ),
        "path": dg.MetadataValue.path(str(outcome.path)),
    }
