"""The GraphQL the production tests send to dagster-webserver (Dagster 1.13's schema)."""

REPOSITORY = {"repositoryLocationName": "inference_assets.definitions", "repositoryName": "__repository__"}

LAUNCH_RUN = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on Error { message } } }
"""
LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) { __typename
  ... on LaunchBackfillSuccess { backfillId }
  ... on PythonError { message stack }
  ... on Error { message } } }
"""
BACKFILL = """
query ($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status numPartitions } ... on Error { message } } }
"""
RUNS = """
query ($filter: RunsFilter!) { runsOrError(filter: $filter) { __typename ... on Runs {
  results { runId jobName status startTime endTime tags { key value } stepStats { stepKey startTime endTime } } } } }
"""
RUN = "query ($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
RUN_EVENTS = """
query ($id: ID!, $after: String) { logsForRun(runId: $id, afterCursor: $after) { __typename
  ... on EventConnection { cursor hasMore events { __typename
    ... on MaterializationEvent { partition assetKey { path } }
    ... on AssetCheckEvaluationEvent { evaluation { checkName partition success } } } } } }
"""
SET_POOL_LIMIT = "mutation ($key: String!, $limit: Int!) { setConcurrencyLimit(concurrencyKey: $key, limit: $limit) }"
SENSORS = """
query ($repository: RepositorySelector!) { sensorsOrError(repositorySelector: $repository) { __typename
  ... on Sensors { results { name sensorState { id status } } } } }
"""
STOP_SENSOR = """
mutation ($id: String!) { stopSensor(id: $id) { __typename
  ... on StopSensorMutationResult { instigationState { status } } ... on Error { message } } }
"""
START_SENSOR = """
mutation ($selector: SensorSelector!) { startSensor(sensorSelector: $selector) { __typename
  ... on Sensor { sensorState { status } } ... on Error { message } } }
"""
SENSOR_TICKS = """
query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) { __typename ... on Sensor {
  sensorState { status typeSpecificData { ... on SensorData { lastCursor } }
    ticks(limit: 50) { tickId status timestamp runIds cursor error { message } } } } } }
"""
RELOAD_LOCATION = """
mutation ($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename
  ... on WorkspaceLocationEntry { loadStatus } ... on Error { message } } }
"""
ASSET_CODE_VERSION = """
query ($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { __typename ... on AssetNode { opVersion } } }
"""
