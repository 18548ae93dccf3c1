"""The drift loop (`python -m demo.drift`): drifted dates -> scoring ->
drift CRITICAL -> retraining -> promotion, through the local Dagster instance.

It continues `make demo` (and runs it first when there is no live bundle yet):

1. Appends DRIFT_DAYS dates to the synthetic market, generated with a `drift_start`
   (volatility x2.5, momentum reversed from then on). Generation is seeded per day, so
   the longer market has the same bars on the dates already written: only the new dates
   are written.
2. Scores them with `scoring_job` (one range run, with its checks) and the live bundle.
3. Ticks `prediction_drift_sensor`: `drift_job` judges every partition scored since the
   sensor's cursor (on a first run also the dates `make demo` scored, which stay quiet).
4. Ticks `drift_retraining_sensor`: CRITICAL drift of the live bundle launches
   `retraining_job`, which trains a candidate and promotes it only through the gate.
5. Ticks both sensors again: nothing new is launched.
6. Prints the decision and `inference-pipeline bundles list`.

The sensors are ticked in this process (`demo.ticks`), where the daemon of
`make ui` / `dg dev` would tick them on its own; their cursors are kept in
$DAGSTER_HOME/drift_demo_cursors.json, so a second run judges only its own new dates.
The retraining uses `make demo`'s fast training profile and a window of DEMO_WINDOW_DAYS
dates instead of the default 20, so that most of the candidate's training data is in the
new regime; with 20 dates it sees few drifted ones and can lose to the live bundle on the
drifted holdout, in which case the gate keeps LIVE and records why.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from pipeline_core.bundle import BundleStore
from pipeline_core.cli import main as cli_main
from pipeline_core.data import MarketSpec, generate_market, list_partition_dates, write_daily_partitions

from demo import run as demo
from inference_assets.definitions import defs
from inference_assets.defs.partitions import ScoringPartition, date_range_tags
from demo.ticks import Tick, tick

DRIFT_DAYS = 6
DEMO_WINDOW_DAYS = 6
CURSORS_FILE = "drift_demo_cursors.json"
DRIFT_SENSOR = "prediction_drift_sensor"
RETRAINING_SENSOR = "drift_retraining_sensor"
RETRAINING_PROFILE = {"resources": {
    "training": {"config": {"max_boosting_rounds": demo.DEMO_BOOSTING_ROUNDS}},
    "retraining": {"config": {"window_days": DEMO_WINDOW_DAYS}},
}}


def main() -> None:
    started = time.perf_counter()
    home = demo.prepare_instance()
    data_root = Path(os.environ.get("INFERENCE_DATA_ROOT") or "data").resolve()
    deployment = Path(os.environ.get("INFERENCE_DEPLOYMENT_ROOT") or "deployment/bundles").resolve()
    if BundleStore(deployment).live_version() is None:
        print("No live bundle yet: running the main demo (`make demo`) first.\n", flush=True)
        demo.main()
        print()
    drifted = _append_drifted_dates(data_root / "ohlcv")
    definitions = defs()
    cursors = Cursors(home / CURSORS_FILE)
    with dg.DagsterInstance.get() as instance:
        print(f"[1/4] scoring_job: {drifted[0]}..{drifted[-1]} x horizons 5, 10, 15, 20 ...", flush=True)
        demo.execute(demo.scoring_job_def, instance, tags=date_range_tags(drifted[0], drifted[-1]))
        print(f"[2/4] {DRIFT_SENSOR} tick ...", flush=True)
        _print_drift(cursors.tick(definitions, DRIFT_SENSOR, instance))
        print(f"[3/4] {RETRAINING_SENSOR} tick ...", flush=True)
        _print_decision(cursors.tick(definitions, RETRAINING_SENSOR, instance, RETRAINING_PROFILE))
        print("[4/4] both sensors tick again ...", flush=True)
        for name, profile in ((DRIFT_SENSOR, None), (RETRAINING_SENSOR, RETRAINING_PROFILE)):
            again = cursors.tick(definitions, name, instance, profile)
            print(f"  {name}: {len(again.results)} run(s); {again.skip_reason or ''}")
    print(f"\n$ inference-pipeline bundles --root {deployment} list")
    cli_main(["bundles", "--root", str(deployment), "list"])
    print(f"\ndone in {time.perf_counter() - started:.0f}s; the runs are in DAGSTER_HOME={home} (`make ui`).")


class Cursors:
    """The demo's sensor cursors, kept in a JSON file (the daemon keeps them in the instance)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values = json.loads(path.read_text()) if path.is_file() else {}

    def tick(self, definitions: dg.Definitions, sensor: str, instance: dg.DagsterInstance, run_config=None) -> Tick:
        quiet = {**demo.QUIET_CONSOLE, **(run_config or {})}  # INFO on the console; the UI keeps every event
        outcome = tick(definitions, sensor, instance, self.values.get(sensor), quiet)
        failed = [result for result in outcome.results if not result.success]
        if failed:
            messages = [event.message or "" for result in failed for event in result.all_events if event.is_failure]
            raise SystemExit(f"{sensor}: run {failed[0].run_id} failed:\n" + "\n".join(messages[:5]))
        self.values[sensor] = outcome.cursor
        self.path.write_text(json.dumps(self.values, indent=1))
        return outcome


def _append_drifted_dates(ohlcv_dir: Path) -> list[date]:
    """DRIFT_DAYS more dates of `make demo`'s market, drifted from the first date after it."""
    base = MarketSpec()
    existing = list_partition_dates(ohlcv_dir)
    consecutive = [base.start + timedelta(days=offset) for offset in range(len(existing))]
    if existing != consecutive or len(existing) < base.days:
        raise SystemExit(
            f"{ohlcv_dir} does not hold the synthetic market of `make demo` ({base.days} or more consecutive "
            f"dates from {base.start}); the drift demo only extends that market."
        )
    spec = replace(base, days=len(existing) + DRIFT_DAYS, drift_start=base.start + timedelta(days=base.days))
    bars = generate_market(spec).filter(pl.col("timestamp").dt.date() > existing[-1])
    write_daily_partitions(bars, ohlcv_dir)
    added = list_partition_dates(ohlcv_dir)[len(existing):]
    print(f"appended {len(added)} dates {added[0]}..{added[-1]} ({bars.height:,} bars) to {ohlcv_dir}/; "
          f"the market drifts from {spec.drift_start} on", flush=True)
    return added


def _print_drift(outcome: Tick) -> None:
    """Severity per date and horizon of the partitions the tick judged."""
    severity: dict[date, dict[int, str]] = {}
    for result in outcome.results:
        for event in result.get_asset_materialization_events():
            partition = ScoringPartition.from_key(event.materialization.partition)
            severity.setdefault(partition.day, {})[partition.horizon] = event.materialization.metadata["severity"].value
    print(f"  {sum(map(len, severity.values()))} partitions judged in {len(outcome.results)} drift_job run(s)"
          + (f"; {outcome.skip_reason}" if outcome.skip_reason else ""))
    for day, by_horizon in sorted(severity.items()):
        print(f"  {day}  " + "  ".join(f"h{h}: {level:<8}" for h, level in sorted(by_horizon.items())))


def _print_decision(outcome: Tick) -> None:
    if not outcome.results:
        print(f"  no retraining: {outcome.skip_reason}")
        return
    (result,) = outcome.results
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "retrained_bundle"]
    meta = {key: value.value for key, value in event.materialization.metadata.items()}
    print(f"  retraining_job run {result.run_id[:8]} (run key {outcome.requests[0].run_key!r}):")
    print(f"  decision     {meta['decision'].upper()}: {meta['candidate_version']} trained on {meta['train_window']}, "
          f"judged on {meta['holdout']} (h{meta['horizon']})")
    live = f"{meta['live_log_loss']:.4f}" if "live_log_loss" in meta else "n/a"
    print(f"  log-loss     candidate {meta['candidate_log_loss']:.4f} vs live {live}")
    print(f"  LIVE         {meta['live_before']} -> {meta['live_version']}")
    print("  reasons      " + meta["reasons"].replace("\n", "\n               "))
    print(f"  rollback     {meta['rollback']}")


if __name__ == "__main__":
    main()
