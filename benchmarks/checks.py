"""The scoring checks against scoring, in a Dagster range run.

A generated market is written as daily partitions, the bundle is saved into a fresh
deployment folder, and `scored_predictions` is materialized with its three checks for
every date and every horizon of the bundle, as one range run per contiguous block of
horizons (a bundle of 10 and 20 needs two), in process on an ephemeral instance with the
code location's own executor, resources and default check settings. Each step's time is
read from the run's event log (STEP_START to STEP_SUCCESS), so the figures are what a
backfill pays: scoring, `no_lookahead`, `parity` and `throughput`.
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
    load_before = load_average()
    with dg.instance_for_test() as instance:
        for horizons in _contiguous(pipeline.config.horizons):
            tags = range_tags(ScoringPartition(first, horizons[0]), ScoringPartition(last, horizons[-1]))
            result = dg.materialize(everything, selection=dg.AssetSelection.assets(SCORING_STEP), instance=instance,
                                    resources=resources, tags=tags, run_config=QUIET, raise_on_error=True)
            for step, seconds in _step_seconds(instance, result.run_id).items():
                steps[step] = steps.get(step, 0.0) + seconds
    shutil.rmtree(root, ignore_errors=True)
    scoring = steps.pop(SCORING_STEP)
    checks = {name: round(steps[f"{SCORING_STEP}_{name}"], 3) for name in CHECKS}
    return {
        "dates": days,
        "horizons": list(pipeline.config.horizons),
        "partitions": days * len(pipeline.config.horizons),
        "bars_per_date": symbols * BARS_PER_DAY,
        "scoring_seconds": round(scoring, 3),
        "check_seconds": checks,
        "checks_over_scoring": round(sum(checks.values()) / scoring, 3),
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


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            seconds[event.step_key] = entry.timestamp - started[event.step_key]
    return seconds
