"""The drift loop: scored partitions -> prediction_drift -> CRITICAL -> retraining_job -> gate.

Sensors are evaluated with `dg.build_sensor_context` against the lab's instance and their
run requests executed in process (`demo.ticks`, which skips used run keys as
the daemon does). The live bundle is the session lab's, copied into each scenario's own
deployment root; the raw bars are the tiny market plus dates drifted from DRIFT_START.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster_lab import (
    FAST_TRAINING,
    LEAKY,
    SCORED_DAYS,
    SCORED_HORIZONS,
    Lab,
    copy_live_bundle,
    failures,
    lab_definitions,
    lab_resources,
    score,
    write_drifted_market,
)

from pipeline_core.bundle import BundleStore
from pipeline_core.cli import main as cli_main
from pipeline_core.features import register_feature_set

from inference_assets.defs.partitions import ScoringPartition, partition_boxes, scoring_partitions
from inference_assets.defs.resources import (
    BUNDLE_VERSION_TAG,
    BundleStoreResource,
    RetrainingResource,
    TrainingResource,
)
from inference_assets.dagster_internals import MAX_RETRIES_TAG
from inference_assets.defs.sensors import (
    DRIFTED_BUNDLE_TAG,
    RETRAIN_REASON_TAG,
    DriftEvent,
    drift_retraining_sensor,
    retraining_request,
)
from demo.ticks import RUN_KEY_TAG, SENSOR_NAME_TAG, Tick, tick

pytestmark = pytest.mark.xdist_group("dagster")

DRIFT_SENSOR = "prediction_drift_sensor"
RETRAINING_SENSOR = "drift_retraining_sensor"
STATIONARY_DAYS = SCORED_DAYS  # 2024-03-07, 2024-03-08: before the drift
# The gate here judges the audits only (no log-loss tolerance): 15-round models trained on
# six days of three symbols are too noisy to rank against each other, and the comparison
# itself (a worse candidate stays out) is tested in tests/test_retraining.py.
GATE = RetrainingResource(window_days=6, holdout_days=2, audit_samples=5, tolerance=float("inf"))


def drift_lab(lab: Lab, root: Path, drifted_days: int, **resources) -> tuple[Lab, list[date]]:
    """A scenario's own raw bars, deployment (the session lab's live bundle) and instance."""
    drifted = write_drifted_market(root, drifted_days)
    copy_live_bundle(lab.deployment_root, root / "deployment")
    bound = lab_resources(root, retraining=GATE, **resources)
    definitions = lab_definitions(lab.definitions, bound)
    return Lab(root, dg.DagsterInstance.ephemeral(), bound, definitions, bundle_result=None), drifted


def run_tick(lab: Lab, sensor: str, cursor: str | None) -> Tick:
    outcome = tick(lab.definitions, sensor, lab.instance, cursor)
    for result in outcome.results:
        assert result.success, failures(result)
    return outcome


def materialized(outcome: Tick, asset: str) -> dict[str, dict]:
    """Partition (or "" when unpartitioned) -> metadata of `asset` in the runs of a tick."""
    return {
        event.materialization.partition or "": event.materialization.metadata
        for result in outcome.results
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == asset
    }


def box(first: ScoringPartition, last: ScoringPartition) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": str(first.key), "dagster/asset_partition_range_end": str(last.key)}


@dataclass
class Loop:
    lab: Lab
    drifted_days: list[date]
    stationary_drift: Tick
    stationary_retraining: Tick
    drifted_drift: Tick
    retraining: Tick
    retraining_next: Tick  # the next tick, from the advanced cursor
    retraining_replayed: Tick  # the retraining tick evaluated again from its old cursor, after the promotion


@pytest.fixture(scope="module")
def loop(lab, tmp_path_factory) -> Loop:
    """Stationary dates scored and judged, then drifted dates: the sensors ticked after each."""
    drifting, drifted_days = drift_lab(lab, tmp_path_factory.mktemp("drift_loop"), drifted_days=2)
    score(drifting, STATIONARY_DAYS, SCORED_HORIZONS)
    stationary_drift = run_tick(drifting, DRIFT_SENSOR, None)
    stationary_retraining = run_tick(drifting, RETRAINING_SENSOR, None)
    score(drifting, drifted_days, SCORED_HORIZONS)
    drifted_drift = run_tick(drifting, DRIFT_SENSOR, stationary_drift.cursor)
    retraining = run_tick(drifting, RETRAINING_SENSOR, stationary_retraining.cursor)
    return Loop(
        drifting, drifted_days, stationary_drift, stationary_retraining, drifted_drift, retraining,
        retraining_next=run_tick(drifting, RETRAINING_SENSOR, retraining.cursor),
        retraining_replayed=run_tick(drifting, RETRAINING_SENSOR, stationary_retraining.cursor),
    )


def test_drift_sensor_asks_one_range_run_for_the_newly_scored_partitions(loop):
    first, last = SCORED_HORIZONS[0], SCORED_HORIZONS[-1]
    (stationary,) = loop.stationary_drift.requests
    assert box(ScoringPartition(STATIONARY_DAYS[0], first), ScoringPartition(STATIONARY_DAYS[-1], last)).items() <= stationary.tags.items()
    (drifted,) = loop.drifted_drift.requests  # from the advanced cursor: only the new dates
    assert box(ScoringPartition(loop.drifted_days[0], first), ScoringPartition(loop.drifted_days[-1], last)).items() <= drifted.tags.items()
    assert int(loop.drifted_drift.cursor) > int(loop.stationary_drift.cursor)
    judged = materialized(loop.drifted_drift, "prediction_drift")
    assert set(judged) == {f"{day}|{h}" for day in loop.drifted_days for h in SCORED_HORIZONS}


def test_stationary_partitions_are_not_critical_and_launch_no_retraining(loop):
    judged = materialized(loop.stationary_drift, "prediction_drift")
    assert set(judged) == {f"{day}|{h}" for day in STATIONARY_DAYS for h in SCORED_HORIZONS}
    assert all(metadata["severity"].value != "CRITICAL" for metadata in judged.values())
    quiet = [m for m in judged.values() if m["severity"].value in ("none", "INFO")]
    assert quiet and all("plot" not in m for m in quiet)  # no PNG in the event log for quiet days
    outcome = loop.stationary_retraining
    assert outcome.requests == [] and outcome.results == []
    assert "No CRITICAL drift among 4 new drift result(s)" in outcome.skip_reason
    assert outcome.cursor is not None  # the quiet results were consumed


def test_drift_results_record_severity_report_plot_and_json(loop):
    judged = materialized(loop.drifted_drift, "prediction_drift")
    for partition, metadata in judged.items():
        assert metadata["severity"].value == "CRITICAL", partition
        assert metadata["severity_level"].value == 3
        assert metadata["bundle_version"].value == "pipeline_v1"
        assert metadata["drifted_features"].value > 0 and metadata["rows"].value > 0
        assert "| feature | psi |" in metadata["report"].value
        assert "data:image/png;base64," in metadata["plot"].value
        saved = json.loads(Path(metadata["report_path"].value).read_text())
        assert saved["partition"] == partition and saved["bundle_version"] == "pipeline_v1"
        assert saved["report"]["severity"] == "CRITICAL"


def test_critical_drift_launches_exactly_one_retraining_however_many_ticks_see_it(loop):
    key = f"retrain pipeline_v1 {loop.drifted_days[-1]}"
    (request,) = loop.retraining.requests  # 4 CRITICAL partitions over 2 dates: one request
    assert request.run_key == key
    assert request.run_config["ops"]["retrained_bundle"]["config"]["drifted_date"] == str(loop.drifted_days[-1])
    assert loop.retraining_next.requests == [] and loop.retraining_next.cursor == loop.retraining.cursor
    # Seen again after the promotion, the drift belongs to a bundle that is no longer live.
    assert loop.retraining_replayed.requests == []
    assert "not of the live bundle (pipeline_v2)" in loop.retraining_replayed.skip_reason
    (run,) = loop.lab.instance.get_runs(filters=dg.RunsFilter(job_name="retraining_job"))
    assert run.tags[RUN_KEY_TAG] == key and run.tags[SENSOR_NAME_TAG] == RETRAINING_SENSOR
    assert run.tags[DRIFTED_BUNDLE_TAG] == "pipeline_v1"


def test_rescored_history_found_critical_launches_no_retraining(loop):
    """As after demo-drift: an old date rescored from the UI by the new live bundle and found
    CRITICAL asks for nothing, since the live bundle's training data covers it."""
    live = BundleStore(loop.lab.deployment_root).manifest("pipeline_v2")
    old = STATIONARY_DAYS[0]
    assert old <= live.data_end
    loop.lab.instance.report_runless_asset_event(dg.AssetMaterialization(
        "prediction_drift", partition=f"{old}|{SCORED_HORIZONS[0]}",
        metadata={"severity": "CRITICAL", "bundle_version": "pipeline_v2"},
    ))
    outcome = run_tick(loop.lab, RETRAINING_SENSOR, loop.retraining_next.cursor)
    assert outcome.requests == [] and outcome.results == []
    assert f"only on dates its training data covers (up to {live.data_end})" in outcome.skip_reason


def test_a_passing_candidate_is_promoted_and_its_decision_recorded(loop):
    store = BundleStore(loop.lab.deployment_root)
    assert store.versions() == ["pipeline_v1", "pipeline_v2"]
    assert store.live_version() == "pipeline_v2"
    metadata = materialized(loop.retraining, "retrained_bundle")[""]
    assert metadata["decision"].value == "promoted" and metadata["live_before"].value == "pipeline_v1"
    assert metadata["train_window"].value == "2024-03-03..2024-03-08"
    assert metadata["holdout"].value == f"{loop.drifted_days[0]}..{loop.drifted_days[-1]}"
    assert "| lookahead | True |" in metadata["audits"].value
    assert metadata["candidate_log_loss"].value > 0 and metadata["live_log_loss"].value > 0
    assert metadata["rollback"].value.endswith("promote pipeline_v1")
    decision = json.loads(Path(metadata["decision_path"].value).read_text())
    assert decision["promoted"] is True and decision["candidate"] == "pipeline_v2"
    (check,) = [e for r in loop.retraining.results for e in r.get_asset_check_evaluations()]
    assert check.check_name == "candidate_audits" and check.passed
    (moved,) = [e.asset_observation_data.asset_observation for r in loop.retraining.results
                for e in r.get_asset_observation_events()]
    assert moved.asset_key == dg.AssetKey("live_bundle") and moved.metadata["live_version"].value == "pipeline_v2"
    listing = io.StringIO()
    with redirect_stdout(listing):  # the rollback tooling reads what the retraining wrote
        assert cli_main(["bundles", "--root", str(store.root), "list"]) == 0
    lines = listing.getvalue().splitlines()
    assert any(line.startswith("* pipeline_v2") for line in lines)
    assert any(line.startswith("  pipeline_v1") for line in lines)
    # Each row's metrics name their own test window; the decision compares both on one holdout.
    assert lines[0].rstrip().endswith("test window")
    assert any(
        line.startswith("  pipeline_v2: promoted; on the same holdout") and "vs live pipeline_v1" in line
        for line in lines
    ), lines


def test_runs_keep_their_bundle_and_drift_judges_with_the_bundle_that_scored(loop):
    day = loop.drifted_days[-1]
    # A scoring run that started before the promotion has its bundle pinned in its tags.
    score(loop.lab, [day], (15,), tags={BUNDLE_VERSION_TAG: "pipeline_v1"})
    score(loop.lab, [day], (20,))  # started after it: the new live bundle
    versions = {h: pl.read_parquet(loop.lab.prediction_file(day, h))["bundle_version"].unique().to_list()
                for h in (15, 20)}
    assert versions == {15: ["pipeline_v1"], 20: ["pipeline_v2"]}
    outcome = run_tick(loop.lab, DRIFT_SENSOR, loop.drifted_drift.cursor)
    judged = materialized(outcome, "prediction_drift")
    assert {p: m["bundle_version"].value for p, m in judged.items()} == {
        f"{day}|15": "pipeline_v1", f"{day}|20": "pipeline_v2"
    }


@pytest.fixture(scope="module")
def leaky_retraining(lab, tmp_path_factory) -> tuple[Lab, Tick, Tick]:
    """Drifted dates scored and judged; the retraining trains on a feature set that reads ahead.

    The retraining sensor ticks twice from the same (empty) cursor, as after a daemon crash
    before it stored the cursor.
    """
    register_feature_set(LEAKY, replace=True)
    leaky = TrainingResource(**{**FAST_TRAINING.model_dump(), "feature_set": LEAKY.name})
    drifting, drifted_days = drift_lab(lab, tmp_path_factory.mktemp("leaky_retraining"), 2, training=leaky)
    score(drifting, drifted_days, (20,))
    run_tick(drifting, DRIFT_SENSOR, None)
    first = run_tick(drifting, RETRAINING_SENSOR, None)
    return drifting, first, run_tick(drifting, RETRAINING_SENSOR, None)


def test_a_replayed_tick_reuses_its_run_key_and_launches_nothing(leaky_retraining):
    drifting, first, replayed = leaky_retraining
    key = "retrain pipeline_v1 2024-03-10"
    assert [r.run_key for r in first.requests] == [key] and len(first.results) == 1
    assert [r.run_key for r in replayed.requests] == [key]  # LIVE did not move: the same request
    assert replayed.skipped_run_keys == [key] and replayed.results == []
    assert len(drifting.instance.get_runs(filters=dg.RunsFilter(job_name="retraining_job"))) == 1


def test_a_candidate_failing_its_audit_is_not_promoted(leaky_retraining):
    drifting, outcome, _ = leaky_retraining
    store = BundleStore(drifting.deployment_root)
    assert store.live_version() == "pipeline_v1"  # the pointer did not move
    assert store.versions() == ["pipeline_v1", "pipeline_v2"]  # the candidate stays for inspection
    metadata = materialized(outcome, "retrained_bundle")[""]
    assert metadata["decision"].value == "rejected" and metadata["live_version"].value == "pipeline_v1"
    assert "audit failed: lookahead" in metadata["reasons"].value
    assert metadata["rollback"].value == "nothing to roll back: LIVE did not move"
    (check,) = [e for r in outcome.results for e in r.get_asset_check_evaluations()]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    decision = json.loads((store.root / "decisions" / "pipeline_v2.json").read_text())
    assert decision["promoted"] is False


def test_drift_of_an_unscored_partition_fails_naming_it(loop):
    result = loop.lab.materialize(dg.AssetSelection.assets("prediction_drift"), partition_key="2024-03-07|20")
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.cause
    assert failure.cls_name == "DataValidationError"
    assert "No predictions for 1 partition(s): 2024-03-07|20" in failure.message


def test_retraining_sensor_reads_severity_from_metadata_and_moves_its_cursor(tmp_path):
    (tmp_path / "LIVE").write_text("pipeline_v3\n")
    instance = dg.DagsterInstance.ephemeral()
    sensor = drift_retraining_sensor
    resources = {"bundles": BundleStoreResource(deployment_root=str(tmp_path))}

    def report(partition: str, **metadata) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization("prediction_drift", partition=partition, metadata=metadata))

    report("2024-03-09|5", severity="WARNING", bundle_version="pipeline_v3")
    report("2024-03-09|10")  # no metadata (reported by hand): not an alert, and not an error
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources))
    assert not first.run_requests and "No CRITICAL drift among 2" in first.skip_message
    report("2024-03-10|5", severity="CRITICAL", bundle_version="pipeline_v3")
    second = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources))
    assert [r.run_key for r in second.run_requests] == ["retrain pipeline_v3 2024-03-10"]
    assert int(second.cursor) > int(first.cursor)


def test_retraining_for_an_unknown_horizon_fails_before_training(loop):
    versions = BundleStore(loop.lab.deployment_root).versions()
    result = loop.lab.materialize(
        dg.AssetSelection.assets("retrained_bundle"), run_config={"ops": {"retrained_bundle": {"config": {"horizon": 7}}}}
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.cause
    assert failure.cls_name == "ConfigError" and "Horizon 7 is not trained" in failure.message
    assert BundleStore(loop.lab.deployment_root).versions() == versions


# ------------------------------------------------------------- without an instance


@pytest.mark.parametrize("keys", [
    ["2024-03-07|5", "2024-03-07|10", "2024-03-08|5", "2024-03-08|10"],
    ["2024-03-07|5", "2024-03-07|20", "2024-03-08|5"],  # horizons apart: separate boxes
    ["2024-03-07|10", "2024-03-09|10"],  # a date apart: separate boxes
    ["2024-03-07|5", "2024-03-07|10", "2024-03-07|15", "2024-03-07|20", "2024-03-08|15"],
])
def test_partition_boxes_cover_exactly_the_partitions(keys):
    partitions = [ScoringPartition.from_key(key) for key in keys]
    covered = []
    for first, last in partition_boxes(partitions):
        covered += scoring_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(str(first.key), str(last.key)))
    assert sorted(map(str, covered)) == sorted(keys)


def _event(key: str, severity: str = "CRITICAL", version: str = "pipeline_v1") -> DriftEvent:
    return DriftEvent(ScoringPartition.from_key(key), severity, version)


def test_retraining_request_is_keyed_by_the_latest_critical_date_and_trains_on_the_latest_data():
    events = [_event("2024-03-09|5"), _event("2024-03-11|20"), _event("2024-03-10|5", "WARNING"),
              _event("2024-03-12|5", version="pipeline_v0"), _event("2024-03-06|10")]
    request = retraining_request(events, "pipeline_v1", date(2024, 3, 8), in_flight=False)
    assert request.run_key == "retrain pipeline_v1 2024-03-11"
    config = request.run_config["ops"]["retrained_bundle"]["config"]
    assert config["drifted_date"] == "2024-03-11" and config["drifted_partitions"] == ["2024-03-09|5", "2024-03-11|20"]
    assert config["end_date"] == ""  # the candidate trains up to the latest raw date, not the drifted one
    assert request.tags[MAX_RETRIES_TAG] == "2"  # a failed retraining is retried by the daemon (run_retries)


@pytest.mark.parametrize(("events", "in_flight", "reason"), [
    ([_event("2024-03-09|5", "WARNING")], False, "No CRITICAL drift"),
    ([_event("2024-03-09|5", version="pipeline_v0")], False, "not of the live bundle (pipeline_v1)"),
    ([_event("2024-03-09|5")], True, "already queued or running"),
    ([_event("2024-03-02|5"), _event("2024-03-08|20")], False, "only on dates its training data covers (up to 2024-03-08)"),
])
def test_retraining_request_skips_with_a_reason(events, in_flight, reason):
    outcome = retraining_request(events, "pipeline_v1", date(2024, 3, 8), in_flight=in_flight)
    assert isinstance(outcome, dg.SkipReason) and reason in outcome.skip_message


def test_a_sustained_realized_degradation_launches_a_retraining_and_says_why(tmp_path):
    (tmp_path / "LIVE").write_text("pipeline_v3\n")
    instance = dg.DagsterInstance.ephemeral()
    resources = {"bundles": BundleStoreResource(deployment_root=str(tmp_path))}

    def realized(partition: str, severity: str) -> str | None:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "realized_performance", partition=partition,
            metadata={"performance_severity": severity, "bundle_version": "pipeline_v3"},
        ))
        outcome = drift_retraining_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources))
        return outcome.run_requests[0] if outcome.run_requests else outcome.skip_message

    assert "No CRITICAL drift" in realized("2024-03-09|5", "CRITICAL")  # one bad date is not sustained
    assert "No CRITICAL drift" in realized("2024-03-10|10", "CRITICAL")  # nor one per horizon
    request = realized("2024-03-10|5", "CRITICAL")  # the horizon's previous realized date was CRITICAL too
    assert request.run_key == "retrain pipeline_v3 2024-03-10"
    assert request.tags[RETRAIN_REASON_TAG] == "realized performance"
    assert request.run_config["ops"]["retrained_bundle"]["config"]["reasons"] == ["realized performance"]
