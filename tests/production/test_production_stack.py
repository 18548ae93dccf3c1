"""Dagster in production on PostgreSQL: a gRPC code server, the webserver and the daemon as
separate processes with deployment/dagster.yaml, driven through GraphQL only.

One test runs the steps in order on one stack: a bundle is built, a
10-date x 4-horizon backfill of scored_predictions runs at scoring concurrency 1 and 2,
its files are compared byte for byte with an in-process run, the daemon is killed with
SIGKILL in the middle of a backfill, the drift sensor ticks with its cursor in PostgreSQL,
and the code server is reloaded with a new code version under a running webserver.
Partitions per minute of each backfill go to benchmarks/results/production_backfill.json
(and the test summary).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from graphql_queries import (
    ASSET_CODE_VERSION,
    BACKFILL,
    LAUNCH_BACKFILL,
    LAUNCH_RUN,
    RELOAD_LOCATION,
    REPOSITORY,
    RUN,
    RUN_EVENTS,
    RUNS,
    SENSOR_TICKS,
    SENSORS,
    SET_POOL_LIMIT,
    START_SENSOR,
    STOP_SENSOR,
)
from production_stack import PROJECT, Stack, copy_app, days, free_port, write_configuration

from pipeline_core.bundle import LIVE_POINTER
from pipeline_core.data import MarketSpec, generate_market, write_daily_partitions

pytestmark = [pytest.mark.slow, pytest.mark.production, pytest.mark.xdist_group("production")]

# 3 symbols x 16 days x 240 bars: the bundle trains on the first 6 days, the backfills score the last 10.
MARKET = MarketSpec(start=date(2024, 3, 1), days=16, symbols=3, bars_per_day=240, seed=11)
TRAIN_END = date(2024, 3, 6)
SCORED_DAYS = days(date(2024, 3, 7), 10)
HORIZONS = (5, 10, 15, 20)
PARTITIONS = sorted(f"{day.isoformat()}|{horizon}" for day in SCORED_DAYS for horizon in HORIZONS)
PARTITIONS_PER_RUN = 10  # INFERENCE_MAX_PARTITIONS_PER_RUN: each horizon's 10 dates in one run -> 4 runs
MAX_CONCURRENT_RUNS = 2  # deployment/dagster.yaml, concurrency.runs.max_concurrent_runs
FAST_TRAINING = {"max_boosting_rounds": 15, "stacking_folds": 2, "threads": 1, "train_end": TRAIN_END.isoformat()}
# The run config replaces the resource's config as a whole: INFERENCE_THROUGHPUT_FLOOR does not apply under it.
FAST_CHECKS = {"lookahead_samples": 6, "parity_samples": 120, "throughput_floor": 1}
RUN_TIMEOUT_S = 300
BACKFILL_TIMEOUT_S = 600
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
DRIFT_SENSOR = {**REPOSITORY, "sensorName": "prediction_drift_sensor"}
SENSOR_BEFORE_RESTART: dict = {}  # what the sensor had done when the daemon was killed
FIGURES = PROJECT / "benchmarks" / "results" / "production_backfill.json"  # conftest prints it in the summary


@pytest.fixture(scope="module")
def stack(pg_database, tmp_path_factory) -> Stack:
    root = tmp_path_factory.mktemp("production")
    env = {
        **os.environ,
        **pg_database,
        "PYTHONPATH": str(root / "app"),
        "OMP_NUM_THREADS": "1",
        "INFERENCE_DATA_ROOT": str(root / "data"),
        "INFERENCE_DEPLOYMENT_ROOT": str(root / "bundles"),
        "INFERENCE_THROUGHPUT_FLOOR": "1",
        "INFERENCE_PARTITIONS_START": MARKET.start.isoformat(),
        "INFERENCE_PARTITIONS_END": SCORED_DAYS[-1].isoformat(),
        "INFERENCE_MAX_PARTITIONS_PER_RUN": str(PARTITIONS_PER_RUN),
    }
    env["DAGSTER_HOME"] = str(root / "dagster_home")
    stack = Stack(root=root, env=env, grpc_port=free_port(), web_port=free_port())
    FIGURES.unlink(missing_ok=True)
    try:
        write_daily_partitions(generate_market(MARKET), stack.data_root / "ohlcv")
        copy_app(stack.app)
        write_configuration(stack)
        stack.start_code_server()
        stack.start_webserver()
        _stop_sensors(stack)  # before the daemon first ticks them: test_sensors starts the one it tests
        stack.start_daemon()
        yield stack
    finally:
        stack.stop()


def test_production_stack_end_to_end(stack: Stack, tmp_path):
    """The steps in order, in one test: they share one stack and each needs the one before, and
    one test cannot be split across xdist workers (the suite's xdist_group marks are not
    honoured by pytest-xdist here: see the README)."""
    step_bundle_job_builds_and_promotes_a_bundle(stack)
    for concurrency in (1, 2):
        step_backfill_queues_within_the_limits_and_every_check_passes(stack, concurrency)
    step_outputs_equal_an_in_process_run_byte_for_byte(stack, tmp_path)
    step_backfill_survives_a_killed_daemon_with_every_partition_exactly_once(stack)
    step_sensor_launches_each_scored_partition_once(stack)
    step_code_server_reload_serves_a_new_code_version_under_a_running_webserver(stack)  # within the sensor's 60 s
    step_sensor_resumes_from_its_stored_cursor_after_a_daemon_crash(stack)


def step_bundle_job_builds_and_promotes_a_bundle(stack: Stack):
    params = {
        "selector": {**REPOSITORY, "jobName": "bundle_job"},
        "runConfigData": {"resources": {"training": {"config": FAST_TRAINING}}},
    }
    launched = stack.graphql(LAUNCH_RUN, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    assert _wait_for_run(stack, launched["run"]["runId"]) == "SUCCESS", stack.logs()
    assert (stack.bundle_root / LIVE_POINTER).read_text().strip() == "pipeline_v1"


def step_backfill_queues_within_the_limits_and_every_check_passes(stack: Stack, concurrency: int):
    live_before = _bundle_state(stack)
    assert stack.graphql(SET_POOL_LIMIT, key="scoring", limit=concurrency)["setConcurrencyLimit"]
    started = time.monotonic()
    backfill_id = _launch_backfill(stack)
    snapshots = _wait_for_backfill(stack, backfill_id)
    seconds = time.monotonic() - started

    runs = _backfill_runs(stack, backfill_id)
    assert len(runs) == len(PARTITIONS) // PARTITIONS_PER_RUN
    assert {run["status"] for run in runs} == {"SUCCESS"}, stack.logs()
    limit = min(concurrency, MAX_CONCURRENT_RUNS)
    assert max(_overlaps(runs)) <= limit  # never more runs at once than the pool allows
    assert max(s.get("STARTED", 0) + s.get("STARTING", 0) for s in snapshots) <= limit
    assert any(s.get("QUEUED", 0) for s in snapshots), "no run ever waited in the queue"

    materialized, checks = _events(stack, runs)
    assert sorted(materialized) == PARTITIONS  # each partition exactly once
    assert checks == {(name, partition, True) for name in ("no_lookahead", "parity", "throughput") for partition in PARTITIONS}
    assert sorted(stack.prediction_files()) == _expected_files()
    assert _bundle_state(stack) == live_before  # concurrent runs of different dates leave LIVE and the bundle alone
    _record_figures(f"concurrency_{concurrency}", seconds, runs)


def step_outputs_equal_an_in_process_run_byte_for_byte(stack: Stack, tmp_path: Path):
    from inference_assets.definitions import defs
    from inference_assets.defs.partitions import ScoringPartition, range_tags
    from inference_assets.defs.resources import BundleStoreResource, DataLakeResource

    data_root = tmp_path / "data"
    data_root.mkdir()
    (data_root / "ohlcv").symlink_to(stack.data_root / "ohlcv")
    definitions = defs()
    box = range_tags(ScoringPartition(SCORED_DAYS[0], HORIZONS[0]), ScoringPartition(SCORED_DAYS[-1], HORIZONS[-1]))
    result = dg.materialize(
        [*definitions.assets, *definitions.asset_checks],
        selection=dg.AssetSelection.assets("scored_predictions").without_checks(),
        resources={
            **definitions.resources,
            "data_lake": DataLakeResource(root=str(data_root)),
            "bundles": BundleStoreResource(deployment_root=str(stack.bundle_root)),  # the same bundle, read only
        },
        instance=dg.DagsterInstance.ephemeral(), tags=box,
    )
    assert result.success
    served, in_process = stack.prediction_files(), stack.prediction_files(data_root)
    assert sorted(served) == sorted(in_process) == _expected_files()
    different = [name for name in served if served[name].read_bytes() != in_process[name].read_bytes()]
    assert not different, f"{len(different)} files differ, e.g. {different[:3]}"


def step_backfill_survives_a_killed_daemon_with_every_partition_exactly_once(stack: Stack):
    before = {name: path.read_bytes() for name, path in stack.prediction_files().items()}
    assert stack.graphql(SET_POOL_LIMIT, key="scoring", limit=2)["setConcurrencyLimit"]
    backfill_id = _launch_backfill(stack)
    # First while the backfill daemon submits the runs, then while they queue and execute.
    _wait_until(lambda: _backfill_runs(stack, backfill_id), stack)
    stack.services["daemon"].kill9()
    stack.start_daemon()
    _wait_until(lambda: any(r["status"] == "SUCCESS" for r in _backfill_runs(stack, backfill_id)), stack)
    runs_at_kill = _backfill_runs(stack, backfill_id)
    assert len(runs_at_kill) < len(PARTITIONS) // PARTITIONS_PER_RUN or any(
        r["status"] not in FINISHED for r in runs_at_kill
    ), "the backfill finished before the daemon could be killed"
    stack.services["daemon"].kill9()
    time.sleep(3)
    stack.start_daemon()
    _wait_for_backfill(stack, backfill_id)

    runs = _backfill_runs(stack, backfill_id)
    # A run the killed daemon left STARTING is failed by run monitoring and retried once
    # (deployment/dagster.yaml, run_retries): the retry is each range's last attempt.
    retried = {_tag(run, "dagster/parent_run_id") for run in runs} - {None}
    last_attempts = [run for run in runs if run["runId"] not in retried]
    assert {run["status"] for run in last_attempts} == {"SUCCESS"}, stack.logs()
    assert {run["runId"] for run in runs if run["status"] != "SUCCESS"} <= retried, stack.logs()
    ranges = Counter((_tag(r, "dagster/asset_partition_range_start"), _tag(r, "dagster/asset_partition_range_end")) for r in last_attempts)
    assert set(ranges.values()) == {1}, f"a range was launched twice: {ranges}"
    materialized, checks = _events(stack, runs)
    assert sorted(materialized) == PARTITIONS  # no duplicate, no missing partition
    assert all(passed for _, _, passed in checks) and len(checks) == 3 * len(PARTITIONS)
    after = stack.prediction_files()
    assert sorted(after) == _expected_files()  # no partial or temporary file left
    assert {name: path.read_bytes() for name, path in after.items()} == before  # rescoring is idempotent


def step_sensor_launches_each_scored_partition_once(stack: Stack):
    """The drift sensor's first tick asks for every scored partition once, by run key; then the
    daemon is killed and restarted (the last test checks what the next tick does)."""
    started = stack.graphql(START_SENSOR, selector=DRIFT_SENSOR)["startSensor"]
    assert started["__typename"] == "Sensor", started
    first = _wait_until(lambda: _ticks_with_runs(stack, DRIFT_SENSOR), stack)
    run_ids = sorted(run_id for tick in first for run_id in tick["runIds"])
    for run_id in run_ids:
        assert _wait_for_run(stack, run_id) == "SUCCESS", stack.logs()
    drift_runs = _drift_runs(stack)
    assert sorted(run["runId"] for run in drift_runs) == run_ids
    run_keys = [_tag(run, "dagster/run_key") for run in drift_runs]
    assert None not in run_keys and len(set(run_keys)) == len(run_keys)
    materialized, _ = _events(stack, drift_runs, asset="prediction_drift")
    assert sorted(materialized) == PARTITIONS  # every scored partition judged once, though scored three times
    state = _sensor_state(stack, DRIFT_SENSOR)
    assert state["typeSpecificData"]["lastCursor"]  # stored in PostgreSQL by the daemon

    stack.services["daemon"].kill9()
    stack.start_daemon()
    SENSOR_BEFORE_RESTART.update(
        run_ids=run_ids, cursor=state["typeSpecificData"]["lastCursor"],
        last_tick=max(tick["timestamp"] for tick in state["ticks"]),
    )


def step_code_server_reload_serves_a_new_code_version_under_a_running_webserver(stack: Stack):
    key = {"path": ["scored_predictions"]}
    assert stack.graphql(ASSET_CODE_VERSION, key=key)["assetNodeOrError"]["opVersion"] == "1"
    webserver_pid = stack.services["webserver"].pid
    scoring = stack.app / "inference_assets" / "defs" / "scoring_assets.py"
    scoring.write_text(scoring.read_text().replace('code_version="1"', 'code_version="2"'))  # the new image

    reloaded = stack.graphql(RELOAD_LOCATION, name=REPOSITORY["repositoryLocationName"])["reloadRepositoryLocation"]
    assert reloaded["__typename"] == "WorkspaceLocationEntry", reloaded
    stack.wait_until_loaded()
    assert stack.graphql(ASSET_CODE_VERSION, key=key)["assetNodeOrError"]["opVersion"] == "2"
    assert stack.services["webserver"].alive() and stack.services["webserver"].pid == webserver_pid
    assert stack.services["daemon"].alive()


def step_sensor_resumes_from_its_stored_cursor_after_a_daemon_crash(stack: Stack):
    """The first tick after the restart (the sensor's interval is 60 s) reads the cursor from
    PostgreSQL: nothing new was scored, so it launches nothing."""
    after = SENSOR_BEFORE_RESTART["last_tick"]
    _wait_until(lambda: [t for t in _sensor_state(stack, DRIFT_SENSOR)["ticks"] if t["timestamp"] > after], stack)
    state = _sensor_state(stack, DRIFT_SENSOR)
    assert state["typeSpecificData"]["lastCursor"] == SENSOR_BEFORE_RESTART["cursor"]
    assert sorted(run_id for tick in state["ticks"] for run_id in tick["runIds"]) == SENSOR_BEFORE_RESTART["run_ids"]
    assert sorted(run["runId"] for run in _drift_runs(stack)) == SENSOR_BEFORE_RESTART["run_ids"]


# -- helpers -----------------------------------------------------------------------------------


def _drift_runs(stack: Stack) -> list[dict]:
    return stack.graphql(RUNS, filter={"pipelineName": "drift_job"})["runsOrError"]["results"]


def _stop_sensors(stack: Stack) -> None:
    sensors = stack.graphql(SENSORS, repository=REPOSITORY)["sensorsOrError"]["results"]
    for sensor in sensors:
        stopped = stack.graphql(STOP_SENSOR, id=sensor["sensorState"]["id"])["stopSensor"]
        assert stopped["__typename"] == "StopSensorMutationResult", stopped


def _launch_backfill(stack: Stack) -> str:
    params = {
        "partitionNames": PARTITIONS,
        "assetSelection": [{"path": ["scored_predictions"]}],
        "runConfigData": {"resources": {"scoring_checks": {"config": FAST_CHECKS}}},
        "title": "production test",
    }
    launched = stack.graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _backfill_runs(stack: Stack, backfill_id: str) -> list[dict]:
    runs_filter = {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}
    return stack.graphql(RUNS, filter=runs_filter)["runsOrError"]["results"]


def _wait_for_backfill(stack: Stack, backfill_id: str) -> list[Counter]:
    """Polls until the backfill completed and its runs finished; the run statuses seen at each poll."""
    snapshots = []
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    while time.monotonic() < deadline:
        _assert_running(stack)
        runs = _backfill_runs(stack, backfill_id)
        snapshots.append(Counter(run["status"] for run in runs))
        status = stack.graphql(BACKFILL, id=backfill_id)["partitionBackfillOrError"]["status"]
        if status != "REQUESTED" and runs and all(run["status"] in FINISHED for run in runs):
            assert status in ("COMPLETED", "COMPLETED_SUCCESS"), status
            return snapshots
        time.sleep(1)
    raise TimeoutError(f"backfill {backfill_id} not done in {BACKFILL_TIMEOUT_S}s\n{stack.logs()}")


def _wait_for_run(stack: Stack, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        _assert_running(stack)
        status = stack.graphql(RUN, id=run_id)["runOrError"]["status"]
        if status in FINISHED:
            return status
        time.sleep(1)
    raise TimeoutError(f"run {run_id} not done in {RUN_TIMEOUT_S}s\n{stack.logs()}")


def _wait_until(condition, stack: Stack, timeout_s: float = BACKFILL_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _assert_running(stack)
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise TimeoutError(f"condition not met in {timeout_s}s\n{stack.logs()}")


def _assert_running(stack: Stack) -> None:
    for service in stack.services.values():
        assert service.alive(), stack.logs()


def _events(stack: Stack, runs: list[dict], asset: str = "scored_predictions") -> tuple[list[str], set]:
    """The partitions of `asset` materialized by `runs` (one entry per event) and every check evaluation."""
    materialized, checks = [], set()
    for run in runs:
        after = None
        while True:
            page = stack.graphql(RUN_EVENTS, id=run["runId"], after=after)["logsForRun"]
            for event in page["events"]:
                if event["__typename"] == "MaterializationEvent" and event["assetKey"]["path"] == [asset]:
                    materialized.append(event["partition"])
                elif event["__typename"] == "AssetCheckEvaluationEvent":
                    evaluation = event["evaluation"]
                    checks.add((evaluation["checkName"], evaluation["partition"], evaluation["success"]))
            if not page["hasMore"]:
                break
            after = page["cursor"]
    return materialized, checks


def _overlaps(runs: list[dict]) -> list[int]:
    """How many runs were in progress at each run's start."""
    return [
        sum(1 for other in runs if other["startTime"] <= run["startTime"] < other["endTime"])
        for run in runs
    ]


def _ticks_with_runs(stack: Stack, selector: dict) -> list[dict]:
    return [tick for tick in _sensor_state(stack, selector)["ticks"] if tick["runIds"]]


def _sensor_state(stack: Stack, selector: dict) -> dict:
    return stack.graphql(SENSOR_TICKS, selector=selector)["sensorOrError"]["sensorState"]


def _tag(run: dict, key: str) -> str | None:
    return next((tag["value"] for tag in run["tags"] if tag["key"] == key), None)


def _expected_files() -> list[str]:
    return sorted(f"horizon={horizon}/date={day.isoformat()}/part-0.parquet" for day in SCORED_DAYS for horizon in HORIZONS)


def _bundle_state(stack: Stack) -> dict[str, bytes]:
    return {str(p.relative_to(stack.bundle_root)): p.read_bytes() for p in sorted(stack.bundle_root.rglob("*")) if p.is_file()}


def _record_figures(name: str, seconds: float, runs: list[dict]) -> None:
    """Partitions per minute of a backfill (launch to last run's end), and per run its fixed
    cost (process start, imports, bundle load: the run's time outside its scoring step) and
    the scoring step's time per partition (scoring and the three checks)."""
    run_seconds = [run["endTime"] - run["startTime"] for run in runs]
    step_seconds = [sum(s["endTime"] - s["startTime"] for s in run["stepStats"]) for run in runs]
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[name] = {
        "partitions": len(PARTITIONS),
        "rows_per_partition": MARKET.symbols * MARKET.bars_per_day,
        "runs": len(runs),
        "wall_seconds": round(seconds, 1),
        "partitions_per_minute": round(len(PARTITIONS) / seconds * 60, 1),
        "mean_run_seconds": round(sum(run_seconds) / len(runs), 1),
        "run_overhead_seconds": round((sum(run_seconds) - sum(step_seconds)) / len(runs), 1),
        "step_seconds_per_partition": round(sum(step_seconds) / len(PARTITIONS), 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
