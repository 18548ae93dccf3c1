"""Checks on every scored partition: no lookahead, parity with the native models, throughput.

The three run in one step, `scored_predictions_checks`, which reads each date of the run
once (bars, stored predictions, bundle) for all of them; a job may select any subset.
`no_lookahead` and `parity` are blocking: an ERROR on any partition of the run fails the
step, so assets downstream of `scored_predictions` do not run. `throughput` only warns.
Each check records one evaluation per partition of the run (a backfill run covers many),
with the observed value and the threshold in its metadata.
"""

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from pathlib import Path

import dagster as dg
import numpy as np
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


def _spec(name: str, description: str, blocking: bool) -> dg.AssetCheckSpec:
    # A partitioned check spec warns "preview"; it is the partitioned check that
    # `@asset_check(partitions_def=...)` builds without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=scored_predictions, description=description, blocking=blocking,
                                 partitions_def=scoring_partitions)


CHECK_SPECS = (
    _spec("no_lookahead", "Predictions at sampled bars do not change when every later bar is removed.", True),
    _spec("parity", "Each base model's probabilities through the pipeline equal its native library's, and the "
          "stored file holds what the run's pinned bundle gives its sampled bars.", True),
    _spec("throughput", "Scoring ran at or above the configured rows/s floor (WARN below it).", False),
)


class _Date:
    """What the checks read of one date of the run, each at most once: its bars with the
    bundle's lookback, the stored predictions of its horizons in the run, the lookahead
    audit of all those horizons, and the parity sample's model inputs."""

    def __init__(self, day: date, horizons: list[int], pipeline, data_lake: DataLakeResource,
                 settings: ScoringChecksResource) -> None:
        self.day, self.horizons, self.pipeline = day, horizons, pipeline
        self.data_lake, self.settings = data_lake, settings

    def path(self, horizon: int) -> Path:
        return predictions_file(self.data_lake.predictions_dir, self.day, horizon)

    @cached_property
    def bars(self) -> pl.DataFrame:
        return partition_bars(self.pipeline, self.data_lake.ohlcv_dir, self.day)

    @cached_property
    def stored(self) -> dict[int, pl.DataFrame]:
        return {h: pl.read_parquet(self.path(h)) for h in self.horizons if self.path(h).is_file()}

    @cached_property
    def audited_symbols(self) -> list[str]:
        """All the date's symbols, or `lookahead_symbols` of them drawn with the seed and the date."""
        symbols = self.bars["symbol"].unique().sort().to_list()
        wanted = max(self.settings.lookahead_symbols, 1)
        if len(symbols) <= wanted:
            return symbols
        rng = np.random.default_rng([self.settings.seed, self.day.toordinal()])
        return sorted(rng.choice(symbols, size=wanted, replace=False).tolist())

    @cached_property
    def audits(self) -> dict:
        # One set of cut runs checks every horizon of the date; the cut points are drawn among
        # the rows the run stored, so the date is not scored again.
        if not self.stored:
            return {}
        audited = pl.col("symbol").is_in(self.audited_symbols)
        bars = self.bars.filter(audited)
        return audit_pipeline_lookahead_by_horizon(
            self.pipeline, bars, list(self.stored), n_samples=_cut_points(bars, self.day, self.settings),
            seed=self.settings.seed, scored={h: frame.filter(audited) for h, frame in self.stored.items()},
        )

    @cached_property
    def parity_inputs(self):
        # The same sampled rows for every horizon of the date: validated and featurized once.
        sample = _sample(self.bars, self.pipeline.required_lookback, self.settings.parity_samples)
        return self.pipeline.model_inputs(sample)


def _no_file(data: _Date, partition: ScoringPartition) -> Outcome:
    return Outcome(False, f"{partition.key} has no predictions file at {data.path(partition.horizon)}.")


def _no_lookahead(data: _Date, partition: ScoringPartition, record) -> Outcome:
    audit = data.audits.get(partition.horizon)
    if audit is None:
        return _no_file(data, partition)
    metadata = {"bars_checked": audit.n_checked, "cut_points": audit.n_cuts, "violations": len(audit.violations),
                "symbols_audited": len(data.audited_symbols)}
    if not audit.passed:
        shown = audit.to_frame().head(MAX_SHOWN).to_dicts()
        metadata["first_violations"] = dg.MetadataValue.md(markdown.table(shown))
    return Outcome(audit.passed, audit.summary(), metadata)


def _parity(data: _Date, partition: ScoringPartition, record) -> Outcome:
    stored_frame = data.stored.get(partition.horizon)
    if stored_frame is None:
        return _no_file(data, partition)
    pipeline, inputs, tolerance = data.pipeline, data.parity_inputs, data.settings.parity_tolerance
    raw = pipeline.base_model_probabilities(inputs, partition.horizon)  # one model run for both comparisons
    native = check_native_parity(pipeline, None, partition.horizon, inputs=inputs, raw=raw)
    stored = check_stored_predictions(pipeline, partition.horizon, inputs, partition.day, stored_frame, raw=raw)
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


def _throughput(data: _Date, partition: ScoringPartition, record) -> Outcome:
    floor = data.settings.throughput_floor
    observed = record.asset_materialization.metadata["rows_per_s"].value if record else None
    if observed is None:
        return Outcome(False, f"{partition.key} has no materialization with rows_per_s to check.",
                       {"floor_rows_per_s": floor}, dg.AssetCheckSeverity.WARN)
    passed = observed >= floor
    verdict = "at or above" if passed else "below"
    return Outcome(passed, f"{observed:,.0f} rows/s is {verdict} the floor of {floor:,} rows/s.",
                   {"rows_per_s": observed, "floor_rows_per_s": floor}, dg.AssetCheckSeverity.WARN)


EVALUATORS: dict[str, Callable[[_Date, ScoringPartition, object], Outcome]] = {
    "no_lookahead": _no_lookahead, "parity": _parity, "throughput": _throughput,
}


@dg.multi_asset_check(
    specs=CHECK_SPECS,
    can_subset=True,
    name="scored_predictions_checks",
    description="The checks of every scored partition of the run, in one step that reads each date once.",
)
def scored_predictions_checks(
    context: dg.AssetCheckExecutionContext,
    data_lake: DataLakeResource,
    bundles: BundleStoreResource,
    scoring_checks: ScoringChecksResource,
) -> Iterator:
    """One evaluation per selected check and partition of the run, date by date (a
    backfill run covers many), then the step's (empty) outputs."""
    specs = [spec for spec in CHECK_SPECS if spec.key in context.selected_asset_check_keys]
    reads_data = any(spec.name != "throughput" for spec in specs)
    pipeline = bundles.pipeline_for_run(context) if reads_data else None
    latest = _latest_materializations(context)
    for day, horizons in _horizons_by_day(context.partition_keys).items():
        data = _Date(day, horizons, pipeline, data_lake, scoring_checks)
        for horizon in horizons:
            partition = ScoringPartition(day, horizon)
            record = latest.get(str(partition.key))
            for spec in specs:
                outcome = EVALUATORS[spec.name](data, partition, record)
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
    for spec in specs:
        yield dg.Output(None, output_name=spec.get_python_identifier())


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


def _sample(bars: pl.DataFrame, lookback: int, rows: int) -> pl.DataFrame:
    """The last bars of each symbol: about `rows` scored rows in all, with their lookback."""
    per_symbol = -(-rows // max(bars["symbol"].n_unique(), 1))
    return bars.group_by("symbol", maintain_order=True).tail(lookback + per_symbol)
