"""The main job (`make demo`): synthetic market -> bundle -> a scored backfill, in Dagster.

1. Generates the synthetic market under <data root>/ohlcv/ if it is absent.
2. Runs `bundle_job` (features and labels, scaler, base models, calibrators, ensembles,
   deployment/bundles/pipeline_vN/, promoted to LIVE) on the history before the scored dates.
3. Runs `scoring_job` over the last SCORED_DAYS dates x all four horizons as one range
   run, with the no_lookahead / parity / throughput checks on every partition.

Both runs go through the local Dagster instance in $DAGSTER_HOME (default .dagster_home/,
SQLite, configured from demo/dagster.yaml), so `make ui` shows them afterwards.
For speed on two cores the demo bundle is trained with a fast profile: xgboost and
lightgbm, at most DEMO_BOOSTING_ROUNDS boosting rounds, on the TRAIN_DAYS dates before the
scored ones. `dagster job execute -j bundle_job` with default resources trains the full one.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg

from pipeline_core.data import MarketSpec, generate_market, list_partition_dates, write_daily_partitions

from inference_assets.defs.partitions import date_range_tags

SCORED_DAYS = 5
TRAIN_DAYS = 20
DEMO_BOOSTING_ROUNDS = 100
INSTANCE_TEMPLATE = Path(__file__).with_name("dagster.yaml")


def bundle_job_def() -> dg.JobDefinition:
    from inference_assets.definitions import defs

    return defs().resolve_job_def("bundle_job")


def scoring_job_def() -> dg.JobDefinition:
    from inference_assets.definitions import defs

    return defs().resolve_job_def("scoring_job")


def main() -> None:
    started = time.perf_counter()
    home = prepare_instance()
    data_root = Path(os.environ.get("INFERENCE_DATA_ROOT") or "data").resolve()
    days = _ensure_market(data_root / "ohlcv")
    scored, history = days[-SCORED_DAYS:], days[-SCORED_DAYS - TRAIN_DAYS : -SCORED_DAYS]
    training = {
        "max_boosting_rounds": DEMO_BOOSTING_ROUNDS,
        "train_start": history[0].isoformat(),
        "train_end": history[-1].isoformat(),
    }
    with dg.DagsterInstance.get() as instance:
        print(f"[1/2] bundle_job: training on {history[0]}..{history[-1]} (fast profile) ...", flush=True)
        bundle = execute(bundle_job_def, instance, run_config={"resources": {"training": {"config": training}}})
        print(f"[2/2] scoring_job: {scored[0]}..{scored[-1]} x horizons 5, 10, 15, 20 ...", flush=True)
        scoring = execute(scoring_job_def, instance, tags=date_range_tags(scored[0], scored[-1]))
        _report(bundle, scoring, data_root, home, time.perf_counter() - started)


def prepare_instance() -> Path:
    """DAGSTER_HOME (default .dagster_home/) with the project's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_TEMPLATE, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _ensure_market(ohlcv_dir: Path) -> list:
    if list_partition_dates(ohlcv_dir):
        print(f"synthetic market already present under {ohlcv_dir}/")
    else:
        bars = generate_market(MarketSpec())
        write_daily_partitions(bars, ohlcv_dir)
        print(f"wrote {bars.height:,} bars to {ohlcv_dir}/date=YYYY-MM-DD/")
    days = list_partition_dates(ohlcv_dir)
    if len(days) < SCORED_DAYS + 2:
        raise SystemExit(f"{ohlcv_dir} holds {len(days)} dates; the demo needs at least {SCORED_DAYS + 2}.")
    return days


QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # the UI keeps every event


def execute(job_fn, instance: dg.DagsterInstance, run_config: dict | None = None, **kwargs) -> dg.ExecuteJobResult:
    run_config = {**QUIET_CONSOLE, **(run_config or {})}
    result = dg.execute_job(
        dg.reconstructable(job_fn), instance=instance, raise_on_error=False, run_config=run_config, **kwargs
    )
    if not result.success:
        failures = [event.message for event in result.all_events if event.is_failure]
        raise SystemExit(f"run {result.run_id} failed:\n" + "\n".join(failures[:5]))
    return result


def _report(bundle, scoring, data_root: Path, home: Path, seconds: float) -> None:
    live = next(
        event.materialization.metadata
        for event in bundle.get_asset_materialization_events()
        if event.asset_key.to_user_string() == "deployment_bundle"
    )
    checks: dict[str, list[bool]] = {}
    for event in scoring.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            checks.setdefault(evaluation.check_name, []).append(evaluation.passed)
    partitions = len(scoring.get_asset_materialization_events())
    print(f"\ndone in {seconds:.0f}s")
    print(f"  bundle       {live['bundle_path'].value}  (LIVE, {live['bundle_version'].value})")
    print(f"  predictions  {data_root / 'predictions'}/horizon=H/date=D/part-0.parquet  ({partitions} partitions)")
    for name, passed in sorted(checks.items()):
        print(f"  check {name:<13} {sum(passed)}/{len(passed)} partitions passed")
    print(f"  runs         bundle {bundle.run_id[:8]}, scoring {scoring.run_id[:8]} in DAGSTER_HOME={home}")
    print("\nOpen the UI with `make ui`, then http://127.0.0.1:3000 (Assets, Runs, Jobs > scoring_job).")


if __name__ == "__main__":
    main()
