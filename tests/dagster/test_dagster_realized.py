"""realized_performance: scored partitions against their outcomes, launched once a later date exists."""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl
import pytest
from dagster_lab import SCORED_DAYS, SCORED_HORIZONS, failures

from inference_assets.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from inference_assets.defs.partitions import ScoringPartition, range_tags
from inference_assets.defs.sensors import realizable_partitions, realized_performance_sensor

pytestmark = pytest.mark.xdist_group("dagster")

REALIZED = dg.AssetSelection.assets("realized_performance")
FIRST, LAST = SCORED_DAYS  # the lab's raw bars end on LAST: FIRST has outcomes, LAST not yet


def _box(day) -> dict[str, str]:
    return range_tags(ScoringPartition(day, SCORED_HORIZONS[0]), ScoringPartition(day, SCORED_HORIZONS[-1]))


@pytest.fixture(scope="module")
def realized(lab, scored_range) -> dg.ExecuteInProcessResult:
    result = lab.materialize(REALIZED, tags=_box(FIRST))
    assert result.success, failures(result)
    return result


def test_a_partition_records_its_realized_figures_and_writes_its_outcomes(lab, realized):
    events = {e.materialization.partition: e.materialization.metadata for e in realized.get_asset_materialization_events()}
    assert set(events) == {str(ScoringPartition(FIRST, h).key) for h in SCORED_HORIZONS}
    for metadata in events.values():
        outcomes = pl.read_parquet(metadata["path"].value)
        known = outcomes.filter(pl.col("actual").is_not_null())
        assert metadata["realized"].value == known.height > 0
        assert metadata["accuracy"].value == pytest.approx((known["prediction"] == known["actual"]).mean(), abs=1e-6)
        assert metadata["total_return"].value == pytest.approx(known["trade_return"].sum(), abs=1e-6)
        assert metadata["pending"].value == outcomes.height - known.height
        assert metadata["prior_log_loss"].value > 0
        assert metadata["performance_severity"].value in ("none", "INFO")  # undrifted dates: no alert
        assert "| symbol | rows | realized | pending | open_trades | accuracy |" in metadata["by_symbol"].value
        assert "| decile | rows |" in metadata["hit_rate_by_confidence"].value
        assert "| accuracy |" in metadata["performance"].value or "not checked" in metadata["performance"].value


def test_a_date_without_later_bars_is_not_materialized(lab, scored_range):
    result = lab.materialize(REALIZED, tags=_box(LAST))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.cause
    assert failure.cls_name == "OutcomesNotAvailable" and f"outcomes of {LAST} are not available yet" in failure.message
    assert not (lab.data_lake.realized_dir / f"horizon={SCORED_HORIZONS[0]}" / f"date={LAST}").exists()


def test_the_sensor_asks_only_for_partitions_whose_outcomes_have_arrived(lab, scored_range):
    context = dg.build_sensor_context(instance=lab.instance, resources={"data_lake": lab.data_lake})
    outcome = realized_performance_sensor.evaluate_tick(context)
    boxes = [(r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG]) for r in outcome.run_requests]
    assert tuple(_box(FIRST).values()) in boxes
    assert not any(str(LAST) in start or str(LAST) in end for start, end in boxes)  # its outcomes need later bars
    assert outcome.cursor is not None


@pytest.mark.parametrize(("scored_now", "expected"), [
    ({"2024-03-07|5"}, {"2024-03-06|5", "2024-03-07|5"}),  # the day before reads this date's bars
    ({"2024-03-08|5"}, {"2024-03-07|5"}),  # 03-08 itself waits for a later date
    ({"2024-03-07|10"}, {"2024-03-07|10"}),  # 03-06|10 was never scored
])
def test_newly_scored_partitions_make_themselves_and_the_day_before_realizable(scored_now, expected):
    scored = {"2024-03-06|5", "2024-03-07|5", "2024-03-08|5", "2024-03-07|10"}
    realizable = {date(2024, 3, 6), date(2024, 3, 7)}  # raw bars end on 03-08
    found = realizable_partitions(
        {ScoringPartition.from_key(k) for k in scored_now}, realizable, lambda p: f"{p.day}|{p.horizon}" in scored
    )
    assert {f"{p.day}|{p.horizon}" for p in found} == expected


def test_the_monthly_backtest_report_covers_each_scored_horizon_and_writes_its_files(lab, realized):
    result = lab.materialize(dg.AssetSelection.assets("backtest_report"), partition_key="2024-03-01")
    assert result.success, failures(result)
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    for horizon in SCORED_HORIZONS:
        folder = lab.data_lake.backtests_dir / "2024-03" / f"h{horizon}"
        assert {p.name for p in folder.iterdir()} >= {"report.md", "metrics.json", "trades.parquet", "equity.png"}
        assert metadata[f"path_h{horizon}"].value == str(folder)
        assert 0 < metadata[f"accuracy_h{horizon}"].value < 1 and metadata[f"prior_log_loss_h{horizon}"].value > 0
        assert metadata[f"plots_h{horizon}"].value.count("data:image/png;base64,") == 3  # equity, rolling, reliability
    assert "accuracy_h15" not in metadata  # no horizon 15 was scored in March
