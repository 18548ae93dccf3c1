"""Runs whose worker died: failed, so their concurrency-pool slots come back.

A run killed with kill -9 stays STARTED for ever under the default run launcher (it cannot
check a run worker's health, so run monitoring never notices), and keeps the pool slot of
the step it was in: every later run of the pool waits. `dead_run_sensor` finds STARTED
runs whose worker process (the pid its "Started process for run" event records) no longer
exists and reports them failed; run monitoring then frees their slots after
`free_slots_after_run_end_seconds` (demo/dagster.yaml). It only acts under the default
run launcher, whose workers run on this host: other launchers' pids mean nothing here.
"""

from __future__ import annotations

import os

import dagster as dg

CHECK_INTERVAL_S = 60
MAX_RUNS_PER_TICK = 100


@dg.sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=CHECK_INTERVAL_S,
    description="Fails STARTED runs whose worker process is gone (kill -9), so their pool slots are freed.",
)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    instance = context.instance
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        return dg.SkipReason(f"{type(instance.run_launcher).__name__} workers are not on this host: nothing checked.")
    started = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=MAX_RUNS_PER_TICK)
    dead = [(run, pid) for run in started if (pid := worker_pid(instance, run.run_id)) and not _alive(pid)]
    for run, pid in dead:
        message = f"The run worker (pid {pid}) is gone: it was killed or crashed. Marked failed by dead_run_sensor."
        context.log.warning(f"run {run.run_id}: {message}")
        instance.report_run_failed(run, message=message)
    return dg.SkipReason(f"{len(started)} started run(s) checked, {len(dead)} with a dead worker marked failed.")


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the run's worker process, from the engine event that started it."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        pid = event.engine_event_data.metadata.get("pid") if event and event.engine_event_data else None
        if pid is not None and str(pid.value).isdigit():
            return int(pid.value)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
