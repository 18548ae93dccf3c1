"""Shared fixtures of the Dagster tests: a bundle built once, one scored range.

Every Dagster test module is in the xdist group "dagster", so with `-n 2 --dist loadgroup`
they share one worker and the bundle is trained once per session.
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster_lab import (
    SCORED_DAYS,
    SCORED_HORIZONS,
    Lab,
    failures,
    lab_resources,
    write_market,
)

from inference_assets.definitions import defs
from inference_assets.defs.partitions import ScoringPartition


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    """The bundle assets materialized once, on the tiny market, and promoted to LIVE."""
    root = tmp_path_factory.mktemp("dagster_lab")
    write_market(root)
    definitions = defs()
    instance = dg.DagsterInstance.ephemeral()
    lab = Lab(root, instance, lab_resources(root), definitions, bundle_result=None)
    lab.bundle_result = lab.materialize(dg.AssetSelection.groups("bundle"))
    assert lab.bundle_result.success, failures(lab.bundle_result)
    return lab


@pytest.fixture(scope="session")
def scored_range(lab: Lab) -> dg.ExecuteInProcessResult:
    """Two dates x two horizons scored as one range run, with the checks."""
    first = ScoringPartition(SCORED_DAYS[0], SCORED_HORIZONS[0]).key
    last = ScoringPartition(SCORED_DAYS[-1], SCORED_HORIZONS[-1]).key
    result = lab.materialize(
        dg.AssetSelection.assets("scored_predictions"),
        tags={"dagster/asset_partition_range_start": str(first), "dagster/asset_partition_range_end": str(last)},
    )
    assert result.success, failures(result)
    return result


