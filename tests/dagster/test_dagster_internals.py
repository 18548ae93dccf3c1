"""The private Dagster names the code location relies on still exist and mean the same."""

import dagster._core.storage.tags as dagster_tags

from inference_assets import dagster_internals as internals


def test_system_tags_match_dagsters_own():
    assert internals.PARTITION_RANGE_START_TAG == dagster_tags.ASSET_PARTITION_RANGE_START_TAG
    assert internals.PARTITION_RANGE_END_TAG == dagster_tags.ASSET_PARTITION_RANGE_END_TAG
    assert internals.PARTITION_TAG == dagster_tags.PARTITION_NAME_TAG
    assert internals.RUN_KEY_TAG == dagster_tags.RUN_KEY_TAG
    assert internals.SENSOR_NAME_TAG == dagster_tags.SENSOR_NAME_TAG
    assert internals.MAX_RETRIES_TAG == dagster_tags.MAX_RETRIES_TAG


def test_the_check_target_pointer_still_takes_a_materialization():
    fields = internals.AssetCheckEvaluationTargetMaterializationData.__annotations__
    assert {"storage_id", "run_id", "timestamp"} <= set(fields)
