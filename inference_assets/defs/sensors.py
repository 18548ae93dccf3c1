"""Sensors: newly scored partitions -> drift checks and, once outcomes exist, realized
performance; CRITICAL drift or a sustained realized degradation -> one retraining.

They read materializations from the event log after a storage-id cursor (the id of the
last event they handled) and return the new cursor with their run requests. The daemon
keeps each sensor's cursor in the instance, so it survives restarts, and stores it only
after the tick's runs were submitted; run keys make a tick that is evaluated again (the
daemon died before storing the cursor) launch nothing twice. A tick only queries the
event log (and reads the LIVE pointer): the runs it requests do the work.

All are on by default: they tick whenever a daemon runs for the instance (`make ui` /
`dg dev`, or `dagster-daemon run`), and can be stopped under *Automation* in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg

from pipeline_core.bundle import BundleStore
from pipeline_core.errors import BundleError
from pipeline_core.monitoring import AlertSeverity

from pipeline_core.monitoring.partitions import predictions_file
from pipeline_core.realized_partitions import realizable

from inference_assets.dagster_internals import MAX_RETRIES_TAG
from inference_assets.defs.drift_assets import prediction_drift
from inference_assets.defs.jobs import drift_job, realized_job, retraining_job
from inference_assets.defs.partitions import ScoringPartition, partition_boxes, range_tags
from inference_assets.defs.realized_assets import realized_performance
from inference_assets.defs.resources import BundleStoreResource, DataLakeResource
from inference_assets.defs.retraining_assets import RetrainingConfig
from inference_assets.defs.scoring_assets import scored_predictions

MAX_EVENTS_PER_TICK = 500  # the rest waits for the next tick
CHECK_INTERVAL_S = 60
DRIFTED_BUNDLE_TAG = "inference/drifted_bundle"
DRIFTED_DATE_TAG = "inference/drifted_date"
RETRAIN_REASON_TAG = "inference/retrain_reason"
FEATURE_DRIFT = "feature drift"
REALIZED_PERFORMANCE = "realized performance"
RETRAINING_RETRIES = 2  # a failed retraining run is re-executed by the daemon (instance run_retries)
SUSTAINED_LOOKBACK_DAYS = 7  # how far back the previous realized date of a horizon is looked for
CRITICAL = AlertSeverity.CRITICAL.name
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dataclass(frozen=True)
class DriftEvent:
    """One prediction_drift or realized_performance result, from its materialization's plain metadata."""

    partition: ScoringPartition
    severity: str
    bundle_version: str
    reason: str = FEATURE_DRIFT

    @classmethod
    def from_record(cls, record: dg.EventLogRecord) -> DriftEvent:
        """A materialization without the metadata (e.g. reported by hand) counts as no alert,
        so a tick never fails on it and the cursor moves past it."""
        metadata = record.asset_materialization.metadata
        performance = record.asset_key == realized_performance.key
        severity = metadata.get("performance_severity" if performance else "severity")
        version = metadata.get("bundle_version")
        return cls(
            ScoringPartition.from_key(record.partition_key),
            str(severity.value) if severity else "unknown",
            str(version.value) if version else "unknown",
            REALIZED_PERFORMANCE if performance else FEATURE_DRIFT,
        )


@dg.sensor(
    job=drift_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=CHECK_INTERVAL_S,
    description="Launches prediction_drift for the partitions scored since its cursor, one range run per box.",
)
def prediction_drift_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    records = _materializations_after_cursor(context, scored_predictions.key)
    if not records:
        return dg.SkipReason(f"No scored_predictions materialization after event {context.cursor or '(none)'}.")
    newest = records[-1].storage_id
    partitions = {ScoringPartition.from_key(record.partition_key) for record in records}
    requests = [
        # Keyed by the box and the newest event: the same tick evaluated again asks for the same runs.
        dg.RunRequest(run_key=f"drift {first.key}...{last.key} @{newest}", tags=range_tags(first, last))
        for first, last in partition_boxes(partitions)
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(newest))


@dg.sensor(
    job=realized_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=CHECK_INTERVAL_S,
    description="Launches realized_performance for scored partitions whose outcomes have arrived (a later date's bars).",
)
def realized_performance_sensor(
    context: dg.SensorEvaluationContext, data_lake: DataLakeResource
) -> dg.SensorResult | dg.SkipReason:
    records = _materializations_after_cursor(context, scored_predictions.key)
    if not records:
        return dg.SkipReason(f"No scored_predictions materialization after event {context.cursor or '(none)'}.")
    newest = records[-1].storage_id
    partitions = realizable_partitions(
        {ScoringPartition.from_key(record.partition_key) for record in records},
        realizable_days=set(realizable(data_lake.ohlcv_dir, _days_around(records))),
        scored=lambda p: predictions_file(data_lake.predictions_dir, p.day, p.horizon).is_file(),
    )
    requests = [
        dg.RunRequest(run_key=f"realized {first.key}...{last.key} @{newest}", tags=range_tags(first, last))
        for first, last in partition_boxes(partitions)
    ]
    if not requests:
        return dg.SensorResult(skip_reason=f"No outcomes yet for the {len(records)} newly scored partition(s).",
                               cursor=str(newest))
    return dg.SensorResult(run_requests=requests, cursor=str(newest))


def realizable_partitions(scored_now: set[ScoringPartition], realizable_days: set[date], scored) -> set[ScoringPartition]:
    """What newly scored partitions make realizable: themselves, once a later date has bars,
    and the same horizon of the day before (whose outcomes read this date's bars)."""
    candidates = scored_now | {ScoringPartition(p.day - timedelta(days=1), p.horizon) for p in scored_now}
    return {p for p in candidates if p.day in realizable_days and scored(p)}


def _days_around(records: list) -> list[date]:
    days = {ScoringPartition.from_key(record.partition_key).day for record in records}
    return sorted(days | {day - timedelta(days=1) for day in days})


@dg.sensor(
    job=retraining_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=CHECK_INTERVAL_S,
    description="Launches retraining_job when the live bundle's drift is CRITICAL or its realized performance "
    "stays CRITICAL on two realized dates (one run per event; the reason is recorded).",
)
def drift_retraining_sensor(
    context: dg.SensorEvaluationContext, bundles: BundleStoreResource
) -> dg.SensorResult | dg.SkipReason:
    records = _materializations_after_cursor(context, prediction_drift.key, realized_performance.key)
    if not records:
        return dg.SkipReason(f"No drift or realized-performance result after event {context.cursor or '(none)'}.")
    events = [event for event in map(DriftEvent.from_record, records) if _counts(context.instance, event)]
    store = bundles.store()
    live = store.live_version()
    data_end = _data_end(context, store, live) if any(e.severity == CRITICAL for e in events) else None
    outcome = retraining_request(events, live, data_end, in_flight=_retraining_in_flight(context.instance, live))
    cursor = str(records[-1].storage_id)
    if isinstance(outcome, dg.SkipReason):
        return dg.SensorResult(skip_reason=outcome, cursor=cursor)
    return dg.SensorResult(run_requests=[outcome], cursor=cursor)


def retraining_request(
    events: list[DriftEvent], live: str | None, live_data_end: date | None, in_flight: bool
) -> dg.RunRequest | dg.SkipReason:
    """One retraining of the live bundle on the latest raw data, or why there is none.

    A drift event is the live bundle found CRITICAL on a date after the data it was
    trained on: however many partitions, horizons or ticks show it, it asks for one run,
    keyed by the bundle and the latest drifted date. Drift on dates the live bundle's
    data covers (history rescored) asks for nothing: retraining never goes back in time.
    Neither does drift of a bundle that is no longer live (it was replaced), nor any while
    a retraining of the live bundle is queued or running. A new drifted date after a
    rejected candidate asks again.
    """
    critical = [event for event in events if event.severity == CRITICAL]
    if not critical:
        return dg.SkipReason(f"No CRITICAL drift among {len(events)} new drift result(s).")
    drifted = [event for event in critical if event.bundle_version == live]
    if not drifted:
        versions = sorted({event.bundle_version for event in critical})
        return dg.SkipReason(f"CRITICAL drift of {versions}, not of the live bundle ({live}): nothing to replace.")
    if live_data_end is not None:
        drifted = [event for event in drifted if event.partition.day > live_data_end]
        if not drifted:
            return dg.SkipReason(f"CRITICAL drift of {live} only on dates its training data covers (up to "
                                 f"{live_data_end}): rescored history never retrains.")
    if in_flight:
        return dg.SkipReason(f"A retraining of {live} is already queued or running; it answers this drift too.")
    latest = max(event.partition.day for event in drifted)
    partitions = sorted(str(event.partition.key) for event in drifted)
    reasons = sorted({event.reason for event in drifted})
    return dg.RunRequest(
        run_key=f"retrain {live} {latest.isoformat()}",
        run_config=dg.RunConfig(ops={"retrained_bundle": RetrainingConfig(
            drifted_date=latest.isoformat(), drifted_partitions=partitions, reasons=reasons,
        )}),
        tags={DRIFTED_BUNDLE_TAG: live, DRIFTED_DATE_TAG: latest.isoformat(), RETRAIN_REASON_TAG: ", ".join(reasons),
              MAX_RETRIES_TAG: str(RETRAINING_RETRIES)},
    )


def _data_end(context: dg.SensorEvaluationContext, store: BundleStore, live: str | None) -> date | None:
    """The last date the live bundle was trained on; None (any drift counts) if it cannot be read."""
    if live is None:
        return None
    try:
        return store.manifest(live).data_end
    except BundleError as err:
        context.log.warning(f"The live bundle {live} cannot be read ({err}): every CRITICAL date counts as new.")
        return None


def _counts(instance: dg.DagsterInstance, event: DriftEvent) -> bool:
    """Feature drift counts as it comes; a realized degradation only when sustained: CRITICAL
    on this date and on the horizon's previous realized date, with the same bundle."""
    if event.reason == FEATURE_DRIFT or event.severity != CRITICAL:
        return True
    for back in range(1, SUSTAINED_LOOKBACK_DAYS + 1):
        earlier = ScoringPartition(event.partition.day - timedelta(days=back), event.partition.horizon)
        record = _latest(instance, earlier)
        if record is not None:
            previous = DriftEvent.from_record(record)
            return previous.severity == CRITICAL and previous.bundle_version == event.bundle_version
    return False


def _latest(instance: dg.DagsterInstance, partition: ScoringPartition):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=realized_performance.key, asset_partitions=[str(partition.key)]), limit=1
    ).records
    return records[0] if records else None


def _materializations_after_cursor(context: dg.SensorEvaluationContext, *asset_keys: dg.AssetKey) -> list:
    """The assets' materializations after the cursor's storage id (storage ids are global), oldest first.

    When an asset has more than a tick's worth, the others are cut at its last one, so the
    next tick's cursor skips nothing."""
    after = int(context.cursor) if context.cursor else None
    batches = [
        context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=MAX_EVENTS_PER_TICK, ascending=True,
        ).records
        for key in asset_keys
    ]
    full = [batch[-1].storage_id for batch in batches if len(batch) == MAX_EVENTS_PER_TICK]
    until = min(full, default=None)
    records = [r for batch in batches for r in batch if until is None or r.storage_id <= until]
    return sorted(records, key=lambda record: record.storage_id)


def _retraining_in_flight(instance: dg.DagsterInstance, live: str | None) -> bool:
    if live is None:
        return False
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=retraining_job.name, tags={DRIFTED_BUNDLE_TAG: live}, statuses=UNFINISHED),
        limit=1,
    )
    return bool(runs)
