"""One sensor tick in this process, the way the daemon runs it: for the drift demo and the tests.

In a deployment the daemon ticks each sensor, keeps its cursor in the instance, skips a
run request whose run key an earlier run of the same sensor already used, and launches
the others through the run queue. `tick` does the same here: it evaluates the sensor with
`dg.build_sensor_context` against the instance, skips used run keys (found through the
same run tags the daemon reads, `dagster/run_key` and `dagster/sensor_name`), executes the
other requests in this process one after the other, and returns the new cursor for the
caller to keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from inference_assets.dagster_internals import RUN_KEY_TAG, SENSOR_NAME_TAG


@dataclass(frozen=True)
class Tick:
    """What one evaluation asked for and what ran."""

    cursor: str | None
    requests: list[dg.RunRequest]
    results: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    skipped_run_keys: list[str] = field(default_factory=list)  # already used by an earlier run
    skip_reason: str | None = None


def tick(
    definitions: dg.Definitions,
    sensor_name: str,
    instance: dg.DagsterInstance,
    cursor: str | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> Tick:
    """Evaluate `sensor_name` from `cursor` and execute the runs it asks for (merged with `run_config`)."""
    sensor = definitions.resolve_sensor_def(sensor_name)
    # As the code server does: the sensor's resources from the definitions' top-level ones.
    resources = definitions.get_repository_def().get_top_level_resources()
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=definitions, sensor_name=sensor_name,
        resources={key: resources[key] for key in sensor.required_resource_keys},
    )
    data = sensor.evaluate_tick(context)
    requests = list(data.run_requests or [])
    results, skipped = [], []
    for request in requests:
        if request.run_key and _run_key_used(instance, sensor_name, request.run_key):
            skipped.append(request.run_key)
            continue
        job = definitions.resolve_job_def(request.job_name or sensor.job_name)
        tags = {**request.tags, SENSOR_NAME_TAG: sensor_name}
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        results.append(job.execute_in_process(
            run_config=_merged(request.run_config, run_config or {}), instance=instance, tags=tags,
            raise_on_error=False,
        ))
    return Tick(data.cursor, requests, results, skipped, data.skip_message)


def _run_key_used(instance: dg.DagsterInstance, sensor_name: str, run_key: str) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key, SENSOR_NAME_TAG: sensor_name}), limit=1)
    return bool(runs)


def _merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` laid over it, merging nested mappings."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged
