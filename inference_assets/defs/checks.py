"""Checks on every scored partition: no lookahead, parity with the native models, throughput.

`no_lookahead` and `parity` are blocking: an ERROR on any partition of the run fails the
check step, so assets downstream of `scored_predictions` do not run. `throughput` only
warns. Each check records one evaluation per partition of the run (a backfill run covers
many), with the observed value and the threshold in its metadata.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache

import dagster as dg
import polars as pl

from pipeline_core.batch import partition_bars
from pipeline_core.validation.lookahead_audit import audit_pipeline_lookahead_by_horizon
from pipeline_core.monitoring.partitions import predictions_file
from pipeline_core.validation.parity import check_native_parity, check_stored_predictions

from inference_assets import markdown
from inference_assets.dagster_internals import AssetCheckEvaluationTargetMaterializationData
from inference_assets.defs.partitions import ScoringPartition, scoring_partitions
from inference_assets.defs.resources import BundleStoreResource, DataLakeResource, ScoringChecksResource
from inference_assets.defs.scoring_assets import scored_predictions

MAX_SHOWN = 5


@dataclass(frozen=True)
class Outcome:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR


@dg.asset_check(
    asset=scored_predictions,
    blocking=True,
    partitions_def=scoring_partitions,
    description="Predictions at sampled bars do not change when every later bar is removed.",
)
def no_lookahead(
    context: dg.AssetCheckExecutionContext,
    data_lake: DataLakeResource,
    bundles: BundleStoreResource,
    scoring_checks: ScoringChecksResource,
) -> Iterator:
    pipeline = bundles.pipeline_for_run(context)
    bars = _bars_reader(pipeline, data_lake)
    horizons_of = _horizons_by_day(context.partition_keys)

    @lru_cache(maxsize=None)  # a few small results per date, whatever the order of the keys
    def audits(day: date) -> dict:
        # One set of cut runs per date checks every horizon of that date in the run; the
        # cut points are drawn among the rows the run stored, so the date is not scored again.
        stored = {h: pl.read_parquet(path) for h in horizons_of[day]
                  if (path := predictions_file(data_lake.predictions_dir, day, h)).is_file()}
        if not stored:
            return {}
        frame = bars(day)
        return audit_pipeline_lookahead_by_horizon(
            pipeline, frame, list(stored), n_samples=_cut_points(frame, day, scoring_checks),
            seed=scoring_checks.seed, scored=stored,
        )

    def evaluate(partition: ScoringPartition, record) -> Outcome:
        audit = audits(partition.day).get(partition.horizon)
        if audit is None:
            path = predictions_file(data_lake.predictions_dir, partition.day, partition.horizon)
            return Outcome(False, f"{partition.key} has no predictions file at {path}.")
        metadata = {"bars_checked": audit.n_checked, "cut_points": audit.n_cuts, "violations": len(audit.violations)}
        if not audit.passed:
            shown = audit.to_frame().head(MAX_SHOWN).to_dicts()
            metadata["first_violations"] = dg.MetadataValue.md(markdown.table(shown))
        return Outcome(audit.passed, audit.summary(), metadata)

    yield from _per_partition(context, evaluate)


@dg.asset_check(
    asset=scored_predictions,
    blocking=True,
    partitions_def=scoring_partitions,
    description="Each base model's probabilities through the pipeline equal its native library's, and the stored "
    "file holds what the run's pinned bundle gives its sampled bars.",
)
def parity(
    context: dg.AssetCheckExecutionContext,
    data_lake: DataLakeResource,
    bundles: BundleStoreResource,
    scoring_checks: ScoringChecksResource,
) -> Iterator:
    pipeline = bundles.pipeline_for_run(context)
    bars = _bars_reader(pipeline, data_lake)
    tolerance = scoring_checks.parity_tolerance

    @lru_cache(maxsize=2)
    def sample_inputs(day: date):
        # The same sampled rows for every horizon of a date: validated and featurized once.
        return pipeline.model_inputs(_sample(bars(day), pipeline.required_lookback, scoring_checks.parity_samples))

    def evaluate(partition: ScoringPartition, record) -> Outcome:
        inputs = sample_inputs(partition.day)
        path = predictions_file(data_lake.predictions_dir, partition.day, partition.horizon)
        if not path.is_file():
            return Outcome(False, f"{partition.key} has no predictions file at {path}.")
        native = check_native_parity(pipeline, None, partition.horizon, inputs=inputs)
        stored = check_stored_predictions(pipeline, partition.horizon, inputs, partition.day, pl.read_parquet(path))
        result = replace(native, checks=(*native.checks, stored))
        diffs = result.max_abs_diff
        passed = bool(diffs) and max(diffs.values()) <= tolerance
        metadata = {
            "rows_compared": result.n_rows,
            "max_abs_diff": max(diffs.values(), default=float("nan")),
            "tolerance": tolerance,
            **{f"max_abs_diff {name}": value for name, value in diffs.items()},
        }
        return Outcome(passed, result.summary(), metadata)

    yield from _per_partition(context, evaluate)


@dg.asset_check(
    asset=scored_predictions,
    partitions_def=scoring_partitions,
    description="Scoring ran at or above the configured rows/s floor (WARN below it).",
)
def throughput(context: dg.AssetCheckExecutionContext, scoring_checks: ScoringChecksResource) -> Iterator:
    floor = scoring_checks.throughput_floor

    def evaluate(partition: ScoringPartition, record) -> Outcome:
        observed = record.asset_materialization.metadata["rows_per_s"].value if record else None
        if observed is None:
            return Outcome(False, f"{partition.key} has no materialization with rows_per_s to check.",
                           {"floor_rows_per_s": floor}, dg.AssetCheckSeverity.WARN)
        passed = observed >= floor
        verdict = "at or above" if passed else "below"
        return Outcome(passed, f"{observed:,.0f} rows/s is {verdict} the floor of {floor:,} rows/s.",
                       {"rows_per_s": observed, "floor_rows_per_s": floor}, dg.AssetCheckSeverity.WARN)

    yield from _per_partition(context, evaluate)


def _per_partition(context: dg.AssetCheckExecutionContext, evaluate: Callable[..., Outcome]) -> Iterator:
    """One evaluation per partition of the run, then the check step's (empty) output.
    `evaluate(partition, record)` gets the partition's latest materialization record (or None)."""
    spec = context.check_specs[0]
    latest = _latest_materializations(context)
    for key in context.partition_keys:
        partition = ScoringPartition.from_key(key)
        record = latest.get(str(partition.key))
        outcome = evaluate(partition, record)
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=outcome.passed,
            metadata=outcome.metadata,
            severity=outcome.severity,
            description=outcome.description,
            blocking=spec.blocking,
            partition=str(partition.key),
            target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            ) if record else None,
        )
    yield dg.Output(None)


def _latest_materializations(context: dg.AssetCheckExecutionContext) -> dict[str, object]:
    """Partition key -> its latest materialization record, for the run's partitions, read
    newest first a page at a time (one query per partition cost seconds in long ranges)."""
    wanted = {str(ScoringPartition.from_key(key).key) for key in context.partition_keys}
    records_filter = dg.AssetRecordsFilter(asset_key=scored_predictions.key, asset_partitions=sorted(wanted))
    latest: dict[str, object] = {}
    cursor = None
    while len(latest) < len(wanted):
        page = context.instance.fetch_materializations(records_filter, limit=len(wanted), cursor=cursor)
        for record in page.records:
            latest.setdefault(record.partition_key, record)
        if not page.has_more:
            break
        cursor = page.cursor
    return latest


def _cut_points(bars: pl.DataFrame, day: date, checks: ScoringChecksResource) -> int:
    """Cut points for a date: one per `lookahead_bars_per_cut` of its bars, 2 to `lookahead_samples`."""
    rows = bars.filter(pl.col("timestamp").dt.date() == day).height
    wanted = -(-rows // max(checks.lookahead_bars_per_cut, 1))
    return max(2, min(wanted, checks.lookahead_samples))


def _horizons_by_day(partition_keys) -> dict[date, list[int]]:
    """The horizons of each date among the run's partitions, in key order."""
    by_day: dict[date, list[int]] = {}
    for key in partition_keys:
        partition = ScoringPartition.from_key(key)
        by_day.setdefault(partition.day, []).append(partition.horizon)
    return by_day


def _bars_reader(pipeline, data_lake: DataLakeResource) -> Callable[[date], pl.DataFrame]:
    """The bars of a date with the bundle's lookback, read once per date within the step."""
    return lru_cache(maxsize=2)(lambda day: partition_bars(pipeline, data_lake.ohlcv_dir, day))


def _sample(bars: pl.DataFrame, lookback: int, rows: int) -> pl.DataFrame:
    """The last bars of each symbol: about `rows` scored rows in all, with their lookback."""
    per_symbol = -(-rows // max(bars["symbol"].n_unique(), 1))
    return bars.group_by("symbol", maintain_order=True).tail(lookback + per_symbol)
