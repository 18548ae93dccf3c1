"""Helpers of the Dagster tests: the tiny market, resources on tmp roots, the shared lab."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from pipeline_core.bundle import LIVE_POINTER
from pipeline_core.data import MarketSpec, generate_market, write_daily_partitions
from pipeline_core.features import FeatureSet

from inference_assets.defs.stage_io_manager import BuildStageIOManager
from inference_assets.defs.partitions import ScoringPartition, range_tags
from inference_assets.defs.resources import (
    BundleStoreResource,
    DataLakeResource,
    DriftResource,
    RetrainingResource,
    ScoringChecksResource,
    StrategyResource,
    TrainingResource,
)

# 3 symbols x 8 days x 240 bars: the bundle trains on the first 6 days, scoring uses 7 and 8.
TINY_MARKET = MarketSpec(start=date(2024, 3, 1), days=8, symbols=3, bars_per_day=240, seed=11)
TRAIN_END = date(2024, 3, 6)
SCORED_DAYS = (date(2024, 3, 7), date(2024, 3, 8))
SCORED_HORIZONS = (5, 10)
BARS_PER_PARTITION = TINY_MARKET.symbols * TINY_MARKET.bars_per_day
FAST_TRAINING = TrainingResource(
    max_boosting_rounds=15, stacking_folds=2, threads=1, train_end=TRAIN_END.isoformat()
)
# The drift tests extend the tiny market past its 8 days; from DRIFT_START on, volatility
# x2.5 and momentum reversed (the earlier days are the same bars as TINY_MARKET's).
DRIFT_START = date(2024, 3, 9)

_LOG_CLOSE = pl.col("close").log()
# ret_1 is causal; next_ret_1 reads the NEXT bar's close: a planted lookahead.
LEAKY = FeatureSet.from_expressions(
    "leaky", [_LOG_CLOSE.diff().alias("ret_1"), (_LOG_CLOSE.shift(-1) - _LOG_CLOSE).alias("next_ret_1")], lookback=1
)


class ForbiddenIOManager(dg.IOManager):
    """Fails if any asset outside the bundle build hands Dagster a value to store (the default
    IO manager would pickle it; those assets persist themselves)."""

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is not None:
            raise AssertionError(f"{context.asset_key} passed a {type(obj).__name__} to the IO manager")

    def load_input(self, context: dg.InputContext):
        raise AssertionError(f"{context.asset_key} was loaded through the IO manager")


@dataclass
class Lab:
    """Roots, resources and the instance the Dagster tests share."""

    root: Path
    instance: dg.DagsterInstance
    resources: dict
    definitions: dg.Definitions
    bundle_result: dg.ExecuteInProcessResult | None

    @property
    def data_lake(self) -> DataLakeResource:
        return self.resources["data_lake"]

    @property
    def deployment_root(self) -> Path:
        return Path(self.resources["bundles"].deployment_root)

    def prediction_file(self, day: date, horizon: int) -> Path:
        return self.data_lake.predictions_dir / f"horizon={horizon}" / f"date={day.isoformat()}" / "part-0.parquet"

    def materialize(self, selection, *, resources: dict | None = None, extra_assets=(), **kwargs):
        """Materialize from the code location's own assets and checks, in this lab."""
        everything = [*self.definitions.assets, *self.definitions.asset_checks, *extra_assets]
        return dg.materialize(
            everything, selection=selection, instance=self.instance,
            resources={**self.resources, **(resources or {})}, raise_on_error=False, **kwargs,
        )


def lab_resources(root: Path, **overrides) -> dict:
    data_lake = DataLakeResource(root=str(root / "data"))
    return {
        "data_lake": data_lake,
        "build_stages": BuildStageIOManager(data_lake=data_lake),
        "bundles": BundleStoreResource(deployment_root=str(root / "deployment")),
        "scoring_checks": ScoringChecksResource(throughput_floor=1, lookahead_samples=6, parity_samples=120),
        "training": FAST_TRAINING,
        "drift": DriftResource(),
        "strategy": StrategyResource(),
        "retraining": RetrainingResource(window_days=6, holdout_days=2, audit_samples=5),
        "io_manager": ForbiddenIOManager(),
        **overrides,
    }


def write_market(root: Path) -> None:
    write_daily_partitions(generate_market(TINY_MARKET), root / "data" / "ohlcv")


def write_drifted_market(root: Path, drifted_days: int) -> list[date]:
    """TINY_MARKET plus `drifted_days` dates drifted from DRIFT_START; returns the drifted dates."""
    spec = replace(TINY_MARKET, days=(DRIFT_START - TINY_MARKET.start).days + drifted_days, drift_start=DRIFT_START)
    write_daily_partitions(generate_market(spec), root / "data" / "ohlcv")
    return [DRIFT_START + timedelta(days=offset) for offset in range(drifted_days)]


def copy_live_bundle(source: Path, target: Path) -> None:
    """The LIVE bundle of deployment root `source` as the only (and live) bundle of `target`."""
    version = (source / LIVE_POINTER).read_text().strip()
    shutil.copytree(source / version, target / version)
    (target / LIVE_POINTER).write_text(version + "\n")


def lab_definitions(definitions: dg.Definitions, resources: dict) -> dg.Definitions:
    """The code location's assets, checks, jobs and sensors, bound to test resources."""
    return dg.Definitions(
        assets=definitions.assets, asset_checks=definitions.asset_checks, jobs=definitions.jobs,
        sensors=definitions.sensors, schedules=definitions.schedules, resources=resources,
    )


def score(lab: Lab, days, horizons, tags: dict | None = None) -> dg.ExecuteInProcessResult:
    """Score the box days x horizons as one range run, without the scoring checks (fast)."""
    box = range_tags(ScoringPartition(days[0], horizons[0]), ScoringPartition(days[-1], horizons[-1]))
    result = lab.materialize(
        dg.AssetSelection.assets("scored_predictions").without_checks(), tags={**box, **(tags or {})}
    )
    assert result.success, failures(result)
    return result


def check_evaluations(result) -> list:
    return [
        event.event_specific_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]


def failures(result) -> str:
    return "\n".join(event.message or "" for event in result.all_events if event.is_failure)
