"""The code location loads (in Python and through the CLI); the schedule asks for the right runs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import yaml

from inference_assets.definitions import defs
from inference_assets.defs.partitions import ScoringPartition, date_range_tags, month_partitions, scoring_partitions
from inference_assets.defs.resources import DataLakeResource
from inference_assets.defs.schedules import daily_scoring_schedule

pytestmark = pytest.mark.xdist_group("dagster")

PROJECT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).with_name("dagster")
INSTANCE_YAML = PROJECT / "demo" / "dagster.yaml"


def test_definitions_list_every_asset_check_job_schedule_and_sensor():
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert assets == {
        "ohlcv_bars", "training_data", "feature_scaler", "base_models", "calibration_window_probabilities", "calibrators", "ensembles",
        "deployment_bundle", "live_bundle", "scored_predictions", "prediction_drift", "realized_performance",
        "backtest_report", "retrained_bundle",
    }
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == {
        *(("scored_predictions", name) for name in ("no_lookahead", "parity", "throughput")),
        ("retrained_bundle", "candidate_audits"),
    }
    jobs = ("bundle_job", "scoring_job", "drift_job", "realized_job", "retraining_job")
    assert {definitions.resolve_job_def(name).name for name in jobs} == set(jobs)
    assert definitions.resolve_schedule_def("daily_scoring_schedule").job_name == "scoring_job"
    for name in ("prediction_drift", "scored_predictions", "realized_performance"):
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def == scoring_partitions
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert graph.get(dg.AssetKey("retrained_bundle")).partitions_def is None
    assert graph.get(dg.AssetKey("backtest_report")).partitions_def == month_partitions
    march = graph.get_parent_partition_keys_for_child(
        "2024-03-01", dg.AssetKey("realized_performance"), dg.AssetKey("backtest_report")
    ).partitions_subset.get_partition_keys()
    assert len(march) == 31 * 4  # a month's report depends on every date x horizon of the month


def test_sensors_are_on_by_default_and_target_the_drift_realized_and_retraining_jobs():
    definitions = defs()
    sensors = {name: definitions.resolve_sensor_def(name)
               for name in ("prediction_drift_sensor", "realized_performance_sensor", "drift_retraining_sensor")}
    assert {name: sensor.job_name for name, sensor in sensors.items()} == {
        "prediction_drift_sensor": "drift_job", "realized_performance_sensor": "realized_job",
        "drift_retraining_sensor": "retraining_job",
    }
    assert all(sensor.default_status == dg.DefaultSensorStatus.RUNNING for sensor in sensors.values())
    assert sensors["drift_retraining_sensor"].required_resource_keys == {"bundles"}


def test_realized_performance_depends_on_the_scored_partition_and_the_next_date():
    graph = defs().resolve_asset_graph()
    downstream = ScoringPartition(date(2024, 3, 7), 10).key
    mapping = graph.get(dg.AssetKey("realized_performance")).partition_mappings[dg.AssetKey("scored_predictions")]
    parents = mapping.get_upstream_mapped_partitions_result_for_partitions(
        scoring_partitions.subset_with_partition_keys([str(downstream)]), scoring_partitions, scoring_partitions
    ).partitions_subset.get_partition_keys()
    assert sorted(map(str, parents)) == ["2024-03-07|10", "2024-03-08|10"]


def test_scoring_job_includes_the_checks():
    job = defs().resolve_job_def("scoring_job")
    names = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert names == {"no_lookahead", "parity", "throughput"}


def test_blocking_checks_are_lookahead_and_parity():
    specs = {spec.name: spec for checks in defs().asset_checks for spec in checks.check_specs}
    assert {name for name, spec in specs.items() if spec.blocking} == {"no_lookahead", "parity"}


@pytest.mark.slow
def test_definitions_validate_from_the_cli(tmp_path):
    (tmp_path / "dagster.yaml").write_text(INSTANCE_YAML.read_text())
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    completed = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "All code locations passed validation" in completed.stderr + completed.stdout


def test_daily_schedule_scores_the_latest_raw_date_for_every_horizon(tmp_path):
    for day in (date(2024, 3, 7), date(2024, 3, 8), date(2024, 3, 9)):
        (tmp_path / "ohlcv" / f"date={day}").mkdir(parents=True)
        (tmp_path / "ohlcv" / f"date={day}" / "part-0.parquet").write_bytes(b"")
    tick = datetime(2024, 3, 8, 22, tzinfo=timezone.utc)  # the 9th is in the future: not scored
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, resources={"data_lake": DataLakeResource(root=str(tmp_path))}
    )
    request = daily_scoring_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "scoring-2024-03-08"
    assert request.tags == date_range_tags(date(2024, 3, 8), date(2024, 3, 8))
    keys = scoring_partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(request.tags["dagster/asset_partition_range_start"],
                             request.tags["dagster/asset_partition_range_end"])
    )
    assert sorted(map(str, keys)) == sorted(f"2024-03-08|{h}" for h in (5, 10, 15, 20))


def test_daily_schedule_skips_without_raw_data(tmp_path):
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2024, 3, 8, 22, tzinfo=timezone.utc),
        resources={"data_lake": DataLakeResource(root=str(tmp_path))},
    )
    assert isinstance(daily_scoring_schedule(context), dg.SkipReason)


def test_partitions_can_span_exactly_the_datas_dates():
    import os
    import subprocess
    import sys

    code = ("from inference_assets.defs.partitions import date_partitions as d\n"
            "keys = d.get_partition_keys(); print(keys[0], keys[-1], len(keys))")
    env = {**os.environ, "INFERENCE_PARTITIONS_START": "2024-02-01", "INFERENCE_PARTITIONS_END": "2024-02-29"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2024-02-01", "2024-02-29", "29"]


def test_the_demo_sets_up_its_instance_from_the_shipped_template(tmp_path, monkeypatch):
    from demo.run import INSTANCE_TEMPLATE, prepare_instance

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = prepare_instance()
    assert (home / "dagster.yaml").read_text() == INSTANCE_TEMPLATE.read_text()
    config = yaml.safe_load(INSTANCE_TEMPLATE.read_text())
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0  # slots of ended runs come back
    assert config["run_retries"] == {"enabled": True, "max_retries": 0}  # only runs tagged max_retries retry


def test_backfill_policy_is_one_run_per_range_unless_a_run_size_is_set():
    from inference_assets.defs.partitions import backfill_policy

    assert backfill_policy(0) == dg.BackfillPolicy.single_run()
    assert backfill_policy(20) == dg.BackfillPolicy.multi_run(20)
    with pytest.raises(ValueError, match="INFERENCE_MAX_PARTITIONS_PER_RUN is -1"):
        backfill_policy(-1)
    scored = defs().resolve_assets_def("scored_predictions")
    assert scored.backfill_policy == dg.BackfillPolicy.single_run()  # INFERENCE_MAX_PARTITIONS_PER_RUN unset


def test_a_deployment_sets_the_run_size_of_scoring_backfills_by_environment():
    """What the Helm values do: the code server's INFERENCE_MAX_PARTITIONS_PER_RUN cuts backfills into runs."""
    probe = (
        "from inference_assets.definitions import defs; "
        "print(defs().resolve_assets_def('scored_predictions').backfill_policy.max_partitions_per_run)"
    )
    env = {**os.environ, "INFERENCE_MAX_PARTITIONS_PER_RUN": "20", "PYTHONPATH": str(PROJECT)}
    completed = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split()[-1] == "20"
