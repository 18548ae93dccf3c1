"""The daily schedule: score the latest date of raw bars, all horizons, in one run."""

from datetime import date

import dagster as dg

from pipeline_core.data import list_partition_dates

from inference_assets.defs.jobs import scoring_job
from inference_assets.defs.partitions import PARTITIONS_START, date_range_tags
from inference_assets.defs.resources import DataLakeResource


@dg.schedule(
    job=scoring_job,
    cron_schedule="0 22 * * *",  # an hour after the 21:00 UTC close
    execution_timezone="UTC",
    description="Scores the latest date with raw bars (at or before the tick) for every horizon.",
)
def daily_scoring_schedule(
    context: dg.ScheduleEvaluationContext, data_lake: DataLakeResource
) -> dg.RunRequest | dg.SkipReason:
    tick_day = context.scheduled_execution_time.date()
    first = date.fromisoformat(PARTITIONS_START)
    days = [d for d in list_partition_dates(data_lake.ohlcv_dir) if first <= d <= tick_day]
    if not days:
        return dg.SkipReason(f"No raw bars dated {first}..{tick_day} under {data_lake.ohlcv_dir}.")
    latest = days[-1]
    # The run key makes a date score once per schedule, however many ticks see it.
    return dg.RunRequest(run_key=f"scoring-{latest}", tags=date_range_tags(latest, latest))
