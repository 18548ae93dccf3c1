"""The scoring checks against scoring, in a Dagster range run.

A generated market is written as daily partitions, the bundle is saved into a fresh
deployment folder, and `scored_predictions` is materialized with its three checks for
every date and every horizon of the bundle, as one range run per contiguous block of
horizons (a bundle of 10 and 20 needs two), in process on an ephemeral instance with the
code location's own executor, resources and default check settings. Each step's time is
read from the run's event log (STEP_START to STEP_SUCCESS), so the figures are what a
backfill pays: the scoring step and the checks' step. The checks' step is split among
`no_lookahead`, `parity` and `throughput` by the time before each of their evaluation events
(the step's start and end, and the date reads, fall to the evaluation they precede).
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from benchmarks.data import BARS_PER_DAY, SCORING_SEED, SCORING_START
from benchmarks.timing import load_average
from inference_assets.definitions import defs
from inference_assets.defs.partitions import HORIZONS, ScoringPartition, range_tags
from inference_assets.defs.resources import BundleStoreResource, DataLakeResource, ScoringChecksResource
from pipeline_core.bundle import BundleStore
from pipeline_core.data import MarketSpec, generate_market, write_daily_partitions
from pipeline_core.pipeline import InferencePipeline

SCORING_STEP = "scored_predictions"
CHECKS_STEP = "scored_predictions_checks"
CHECKS = ("no_lookahead", "parity", "throughput")
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the event log keeps every event


def checks_cost(pipeline: InferencePipeline, scratch: Path, days: int, symbols: int) -> dict[str, Any]:
    """Seconds of the scoring step and of each check step over `days` dates x the bundle's horizons."""
    root = Path(scratch) / "checks"
    shutil.rmtree(root, ignore_errors=True)
    spec = MarketSpec(start=SCORING_START - timedelta(days=1), days=days + 1, symbols=symbols, seed=SCORING_SEED)
    write_daily_partitions(generate_market(spec), root / "data" / "ohlcv")  # the first date: history only
    store = BundleStore(root / "deployment")
    version = store.next_version()
    pipeline.save(store.path(version))
    definitions = defs()
    resources = {
        **definitions.resources,
        "data_lake": DataLakeResource(root=str(root / "data")),
        "bundles": BundleStoreResource(deployment_root=str(root / "deployment"), bundle_version=version),
        "scoring_checks": ScoringChecksResource(),
    }
    everything = [*definitions.assets, *definitions.asset_checks]
    first, last = SCORING_START, SCORING_START + timedelta(days=days - 1)
    steps: dict[str, float] = {}
    checks = dict.fromkeys(CHECKS, 0.0)
    load_before = load_average()
    with dg.instance_for_test() as instance:
        for horizons in _contiguous(pipeline.config.horizons):
            tags = range_tags(ScoringPartition(first, horizons[0]), ScoringPartition(last, horizons[-1]))
            result = dg.materialize(everything, selection=dg.AssetSelection.assets(SCORING_STEP), instance=instance,
                                    resources=resources, tags=tags, run_config=QUIET, raise_on_error=True)
            logs = instance.all_logs(result.run_id)
            for step, seconds in _step_seconds(logs).items():
                steps[step] = steps.get(step, 0.0) + seconds
            for name, seconds in _seconds_by_check(logs).items():
                checks[name] += seconds
    shutil.rmtree(root, ignore_errors=True)
    scoring, checks_step = steps[SCORING_STEP], steps[CHECKS_STEP]
    return {
        "dates": days,
        "horizons": list(pipeline.config.horizons),
        "partitions": days * len(pipeline.config.horizons),
        "bars_per_date": symbols * BARS_PER_DAY,
        "scoring_seconds": round(scoring, 3),
        "checks_seconds": round(checks_step, 3),
        "check_seconds": {name: round(seconds, 3) for name, seconds in checks.items()},
        "checks_over_scoring": round(checks_step / scoring, 3),
        "load_1min_before": load_before[0],
        "load_1min_after": load_average()[0],
    }


def _contiguous(horizons) -> list[list[int]]:
    """The bundle's horizons as blocks without a gap in HORIZONS (each block is one range run)."""
    blocks: list[list[int]] = []
    for horizon in sorted(horizons):
        if blocks and HORIZONS.index(horizon) == HORIZONS.index(blocks[-1][-1]) + 1:
            blocks[-1].append(horizon)
        else:
            blocks.append([horizon])
    return blocks


def _step_seconds(logs) -> dict[str, float]:
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in logs:
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            seconds[event.step_key] = entry.timestamp - started[event.step_key]
    return seconds


def _seconds_by_check(logs) -> dict[str, float]:
    """The checks' step time before each evaluation event, summed by check (the time after the
    last evaluation, the step's outputs and success, goes to that last check)."""
    seconds = dict.fromkeys(CHECKS, 0.0)
    since, last = None, None
    for entry in logs:
        event = entry.dagster_event
        if event is None or event.step_key != CHECKS_STEP:
            continue
        if event.event_type_value == "STEP_START":
            since = entry.timestamp
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            last = event.event_specific_data.check_name
            seconds[last] += entry.timestamp - since
            since = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS" and last is not None:
            seconds[last] += entry.timestamp - since
    return seconds
