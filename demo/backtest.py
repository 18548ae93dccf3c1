"""A backtest of the demo market (`make demo-backtest`), in Dagster.

1. Generates the synthetic market under <data root>/ohlcv/ if it is absent.
2. Builds a bundle on the TRAIN_DAYS dates before the backtest period (the bundle stages
   up to `deployment_bundle`; it is not promoted, LIVE does not move).
3. Scores the last BACKTEST_DAYS + 1 dates x all four horizons with that bundle (one range
   run of `scoring_job`, pinned to it by the `inference/bundle_version` tag, with checks).
4. Materializes `realized_performance` for every date with outcomes (all but the last).
5. Materializes `backtest_report` for each month of the period, and prints its figures.

Everything goes through the local instance in $DAGSTER_HOME, so `make ui` shows the runs,
the per-partition figures and the monthly reports afterwards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import polars as pl

from pipeline_core.constants import HORIZONS

from demo.run import DEMO_BOOSTING_ROUNDS, QUIET_CONSOLE, _ensure_market, prepare_instance
from inference_assets.defs.partitions import date_range_tags, month_partitions
from inference_assets.defs.resources import BUNDLE_VERSION_TAG

BACKTEST_DAYS = 20  # dates with outcomes; one more date is scored, whose bars realize the last
TRAIN_DAYS = 20


def main() -> None:
    started = time.perf_counter()
    home = prepare_instance()
    from inference_assets.definitions import defs

    definitions = defs()
    data_root = Path(os.environ.get("INFERENCE_DATA_ROOT") or "data").resolve()
    days = _ensure_market(data_root / "ohlcv")
    if len(days) < BACKTEST_DAYS + 1 + TRAIN_DAYS:
        raise SystemExit(f"The backtest needs {BACKTEST_DAYS + 1 + TRAIN_DAYS} dates of bars; found {len(days)}.")
    period = days[-BACKTEST_DAYS - 1:]
    history = days[-BACKTEST_DAYS - 1 - TRAIN_DAYS:-BACKTEST_DAYS - 1]
    training = {"max_boosting_rounds": DEMO_BOOSTING_ROUNDS, "train_start": str(history[0]), "train_end": str(history[-1])}
    with dg.DagsterInstance.get() as instance:
        print(f"[1/4] bundle on {history[0]}..{history[-1]} (not promoted) ...", flush=True)
        bundle = _materialize(
            definitions, instance, dg.AssetSelection.groups("bundle") - dg.AssetSelection.assets("live_bundle"),
            run_config={"resources": {"training": {"config": training}}},
        )
        version = _metadata(bundle, "deployment_bundle")["bundle_version"].value
        print(f"[2/4] scoring {period[0]}..{period[-1]} x horizons {', '.join(map(str, HORIZONS))} with {version} ...",
              flush=True)
        _materialize(definitions, instance, dg.AssetSelection.assets("scored_predictions"),
                     tags={**date_range_tags(period[0], period[-1]), BUNDLE_VERSION_TAG: version})
        print(f"[3/4] realized_performance {period[0]}..{period[-2]} ...", flush=True)
        _materialize(definitions, instance, dg.AssetSelection.assets("realized_performance"),
                     tags=date_range_tags(period[0], period[-2]))
        months = month_partitions.get_partition_keys_in_range(
            dg.PartitionKeyRange(str(period[0].replace(day=1)), str(period[-2].replace(day=1)))
        )
        print(f"[4/4] backtest_report {', '.join(m[:7] for m in months)} ...", flush=True)
        reports = [_materialize(definitions, instance, dg.AssetSelection.assets("backtest_report"), partition_key=m)
                   for m in months]
    _print(reports, months, data_root, home, time.perf_counter() - started)


def _materialize(definitions: dg.Definitions, instance, selection, **kwargs) -> dg.ExecuteInProcessResult:
    run_config = {**QUIET_CONSOLE, **kwargs.pop("run_config", {})}
    result = dg.materialize(
        [*definitions.assets, *definitions.asset_checks], selection=selection, instance=instance,
        resources=definitions.get_repository_def().get_top_level_resources(), run_config=run_config,
        raise_on_error=False, **kwargs,
    )
    if not result.success:
        failures = [event.message for event in result.all_events if event.is_failure]
        raise SystemExit(f"run {result.run_id} failed:\n" + "\n".join(failures[:5]))
    return result


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    return next(e.materialization.metadata for e in result.get_asset_materialization_events()
                if e.asset_key.to_user_string() == asset)


def _print(reports, months: list[str], data_root: Path, home: Path, seconds: float) -> None:
    rows = []
    for month, result in zip(months, reports, strict=True):
        metadata = _metadata(result, "backtest_report")
        for horizon in HORIZONS:
            if f"accuracy_h{horizon}" in metadata:
                rows.append({"month": month[:7], "horizon": horizon, **{
                    name: metadata[f"{name}_h{horizon}"].value
                    for name in ("accuracy", "log_loss", "prior_log_loss", "trades", "total_return")
                }})
    print(f"\ndone in {seconds:.0f}s\n")
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=4):
        print(pl.DataFrame(rows))
    print(f"\nreports  {data_root / 'backtests'}/<month>/h<H>/ (report.md, metrics.json, equity.png, trades.parquet)")
    print(f"runs     in DAGSTER_HOME={home}: `make ui`, then Catalog > backtest_report > Metadata > Plots")


if __name__ == "__main__":
    main()
