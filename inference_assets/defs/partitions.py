"""Scoring partitions: one per calendar date (UTC) and horizon."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg

from pipeline_core.constants import HORIZONS

from inference_assets.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG

# The first date that can be scored; the synthetic market starts here. Set it to the first
# date of real history (YYYY-MM-DD) before the first deployment: changing it later changes
# the partition set the UI shows, not any data. INFERENCE_PARTITIONS_END (YYYY-MM-DD, the
# last date) stops the partitions at the data's end: `make ui` sets both from data/ohlcv, so
# the demo shows only its own dates. Unset, partitions run to today.
PARTITIONS_START = os.environ.get("INFERENCE_PARTITIONS_START") or "2024-01-01"
PARTITIONS_END = os.environ.get("INFERENCE_PARTITIONS_END") or None

date_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START,
    end_date=(date.fromisoformat(PARTITIONS_END) + timedelta(days=1)).isoformat() if PARTITIONS_END else None,
    timezone="UTC",
    end_offset=0 if PARTITIONS_END else 1,  # today's date exists, so the evening schedule can score today
)
month_partitions = dg.MonthlyPartitionsDefinition(  # the backtest reports: one per calendar month of scored dates
    start_date=PARTITIONS_START[:8] + "01",
    end_date=(date.fromisoformat(PARTITIONS_END).replace(day=1) + timedelta(days=32)).replace(day=1).isoformat()
    if PARTITIONS_END else None,
    timezone="UTC",
    end_offset=0 if PARTITIONS_END else 1,
)
# How a backfill of scored dates is cut into runs (Dagster's backfill policy). Unset: one run
# per range Dagster finds in the selection (a box of dates for each horizon), each loading
# the bundle once, which is right on one machine. Set to N (INFERENCE_MAX_PARTITIONS_PER_RUN)
# under a distributed run launcher: each range is cut into runs of at most N consecutive
# dates, so a long backfill spreads over many run workers (one Kubernetes job each under
# deployment/helm/values.yaml). Read by the code server when it loads the definitions.
MAX_PARTITIONS_PER_RUN = int(os.environ.get("INFERENCE_MAX_PARTITIONS_PER_RUN") or 0)


def backfill_policy(max_partitions_per_run: int = MAX_PARTITIONS_PER_RUN) -> dg.BackfillPolicy:
    """single_run() when `max_partitions_per_run` is 0, else multi_run of that many partitions."""
    if max_partitions_per_run < 0:
        raise ValueError(
            f"INFERENCE_MAX_PARTITIONS_PER_RUN is {max_partitions_per_run}, expected 0 (one run per range) or a "
            "positive number of partitions per run."
        )
    if max_partitions_per_run == 0:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run)


horizon_partitions = dg.StaticPartitionsDefinition([str(h) for h in HORIZONS])
scoring_partitions = dg.MultiPartitionsDefinition({"date": date_partitions, "horizon": horizon_partitions})


@dataclass(frozen=True, order=True)
class ScoringPartition:
    """One (date, horizon) partition of the scored predictions."""

    day: date
    horizon: int

    @property
    def key(self) -> dg.MultiPartitionKey:
        return dg.MultiPartitionKey({"date": self.day.isoformat(), "horizon": str(self.horizon)})

    @classmethod
    def from_key(cls, key: str) -> ScoringPartition:
        dims = scoring_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
        return cls(day=date.fromisoformat(dims["date"]), horizon=int(dims["horizon"]))


def partitions_by_date(keys: list[str]) -> dict[date, list[ScoringPartition]]:
    """The run's partitions grouped by date (sorted), so each date's bars are read once."""
    grouped: dict[date, list[ScoringPartition]] = defaultdict(list)
    for partition in sorted(ScoringPartition.from_key(key) for key in keys):
        grouped[partition.day].append(partition)
    return dict(grouped)


def range_tags(first: ScoringPartition, last: ScoringPartition) -> dict[str, str]:
    """Run tags that select the box `first..last` (dates x horizons) as one range run."""
    return {PARTITION_RANGE_START_TAG: str(first.key), PARTITION_RANGE_END_TAG: str(last.key)}


def date_range_tags(day_from: date, day_to: date) -> dict[str, str]:
    """Run tags that select every horizon of the dates `day_from..day_to` as one range run."""
    return range_tags(ScoringPartition(day_from, HORIZONS[0]), ScoringPartition(day_to, HORIZONS[-1]))


def partition_boxes(partitions: Iterable[ScoringPartition]) -> list[tuple[ScoringPartition, ScoringPartition]]:
    """Boxes (consecutive dates x neighbouring horizons) that cover exactly `partitions`.

    A range run covers a box, so a sensor asks for one run per box instead of one per
    partition: each date's horizons are cut into runs of neighbours in HORIZONS, and a run
    extends the same run of the previous calendar date.
    """
    horizons_by_day: dict[date, set[int]] = defaultdict(set)
    for partition in partitions:
        horizons_by_day[partition.day].add(partition.horizon)
    boxes: list[list] = []  # [first day, last day, lowest horizon, highest horizon]
    open_boxes: dict[tuple[int, int], list] = {}
    for day in sorted(horizons_by_day):
        extended = {}
        for span in _neighbour_spans(horizons_by_day[day]):
            box = open_boxes.get(span)
            if box is not None and box[1] == day - timedelta(days=1):
                box[1] = day
            else:
                box = [day, day, *span]
                boxes.append(box)
            extended[span] = box
        open_boxes = extended
    return [(ScoringPartition(first, low), ScoringPartition(last, high)) for first, last, low, high in boxes]


def _neighbour_spans(horizons: set[int]) -> list[tuple[int, int]]:
    """(lowest, highest) of each run of horizons that are neighbours in HORIZONS."""
    spans: list[list[int]] = []
    for index, horizon in enumerate(HORIZONS):
        if horizon not in horizons:
            continue
        if spans and spans[-1][1] == HORIZONS[index - 1]:
            spans[-1][1] = horizon
        else:
            spans.append([horizon, horizon])
    return [(low, high) for low, high in spans]
