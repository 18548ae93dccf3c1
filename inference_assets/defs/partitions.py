"""Scoring partitions: one per calendar date (UTC) and horizon."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

import dagster as dg

HORIZONS = (5, 10, 15, 20)
# The first date that can be scored; the synthetic market starts here. Set it to the first
# date of real history (YYYY-MM-DD) before the first deployment: changing it later changes
# the partition set the UI shows, not any data.
PARTITIONS_START = os.environ.get("INFERENCE_PARTITIONS_START", "2024-01-01")

date_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START,
    timezone="UTC",
    end_offset=1,  # today's date exists, so the evening schedule can score today's session
)
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


def date_range_tags(day_from: date, day_to: date) -> dict[str, str]:
    """Run tags that select every horizon of the dates `day_from..day_to` as one range run."""
    first = ScoringPartition(day_from, HORIZONS[0]).key
    last = ScoringPartition(day_to, HORIZONS[-1]).key
    return {"dagster/asset_partition_range_start": str(first), "dagster/asset_partition_range_end": str(last)}
