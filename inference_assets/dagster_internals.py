"""What this code location takes from Dagster beyond its public API, in one place.

tests/dagster/test_dagster_internals.py fails loudly when a Dagster upgrade moves or
renames any of it: fix it here, nowhere else.
"""

# The pointer from a check evaluation to the materialization it checked. Dagster fills it
# in for AssetCheckResult, which cannot name a partition of a range run.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # noqa: F401
    AssetCheckEvaluationTargetMaterializationData,
)

# System run tags (dagster._core.storage.tags), as strings so reading them costs no import.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
MAX_RETRIES_TAG = "dagster/max_retries"  # read by the daemon when the instance enables run_retries
