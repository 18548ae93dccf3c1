"""A run whose worker was killed with kill -9 is failed by dead_run_sensor, so its slots come back."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.events import EngineEventData  # how Dagster's run worker records its pid

from inference_assets.defs.run_health import dead_run_sensor, worker_pid

pytestmark = pytest.mark.xdist_group("dagster")


def _started_run(instance: dg.DagsterInstance, pid: int) -> dg.DagsterRun:
    run = instance.add_run(dg.DagsterRun(job_name="scoring_job", status=dg.DagsterRunStatus.STARTED))
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    return run


def test_a_run_whose_worker_was_killed_is_failed_and_a_live_one_is_left_alone(tmp_path):
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker.kill()  # SIGKILL: nothing of the run gets to clean up
    worker.wait()
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        dead = _started_run(instance, worker.pid)
        alive = _started_run(instance, os.getpid())
        assert worker_pid(instance, dead.run_id) == worker.pid
        result = dead_run_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert "2 started run(s) checked, 1 with a dead worker marked failed" in result.skip_message
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED


def test_other_launchers_workers_are_not_judged_from_this_host():
    instance = dg.DagsterInstance.ephemeral()  # its launcher runs in process, not DefaultRunLauncher
    result = dead_run_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert "nothing checked" in result.skip_message
