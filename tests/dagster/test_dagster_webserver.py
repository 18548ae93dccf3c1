"""The code location served by dagster-webserver: listed through GraphQL, and a partition launched.

The test starts its own webserver on a free localhost port against a temporary
DAGSTER_HOME and stops it (its whole process group) at the end. The run it launches goes
through the default run launcher, in a subprocess that finds the lab's data and bundles
through the INFERENCE_* environment variables, as a deployment would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import requests
from dagster_lab import Lab

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dagster")]

PROJECT = Path(__file__).resolve().parents[2]
WEBSERVER = Path(sys.executable).with_name("dagster-webserver")
PARTITION = {"date": "2024-03-08", "horizon": "15"}
PARTITION_DAY = date.fromisoformat(PARTITION["date"])
START_TIMEOUT_S = 150
RUN_TIMEOUT_S = 240
# Runs are launched straight away: no daemon runs in the test to drain a queue.
INSTANCE_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
nux:
  enabled: false
"""
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: `apt-get install chromium` (.ci/run does)

WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
ASSETS_QUERY = """
{ assetNodes { assetKey { path } assetChecksOrError { __typename
    ... on AssetChecks { checks { name blocking } } } } }
"""
SCHEDULES_AND_SENSORS_QUERY = """
query ($repository: RepositorySelector!) {
  schedulesOrError(repositorySelector: $repository) { __typename ... on Schedules { results { name } } }
  sensorsOrError(repositorySelector: $repository) { __typename
    ... on Sensors { results { name sensorState { status } } } }
}
"""
LAUNCH_MUTATION = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN_QUERY = "query ($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
# What the asset page's Plots tab asks for (dagster-ui 1.13, AssetPartitionMetadataPlots):
# the asset's last 120 partition keys, then the latest materialization of each.
PLOT_KEYS_QUERY = """
query ($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  partitionKeyConnection(limit: 120, ascending: false) { results } } } }
"""
PLOT_EVENTS_QUERY = """
query ($key: AssetKeyInput!, $partitions: [String!]!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  latestMaterializationByPartition(partitions: $partitions) { partition metadataEntries { label __typename } } } } }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Webserver:
    def __init__(self, home: Path, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self.log = log
        self.process = subprocess.Popen(
            [str(WEBSERVER), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=PROJECT, env={**env, "DAGSTER_HOME": str(home)},
            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def query(self, query: str, **variables) -> dict:
        response = requests.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        payload = response.json()
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def wait_until_loaded(self) -> str:
        """The code location's name, once the server answers and the location has loaded."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"webserver exited:\n{self.log.read_text()[-3000:]}"
            try:
                entries = self.query(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
            except requests.RequestException:
                entries = []
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                (entry,) = entries
                assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
                return entry["name"]
            time.sleep(1)
        raise TimeoutError(f"webserver not ready in {START_TIMEOUT_S}s:\n{self.log.read_text()[-3000:]}")

    def wait_for_run(self, run_id: str) -> str:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            status = self.query(RUN_QUERY, id=run_id)["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(1)
        raise TimeoutError(f"run {run_id} did not finish in {RUN_TIMEOUT_S}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture
def webserver(lab: Lab, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    env = {
        **os.environ,
        "INFERENCE_DATA_ROOT": lab.resources["data_lake"].root,
        "INFERENCE_DEPLOYMENT_ROOT": str(lab.deployment_root),
        "INFERENCE_THROUGHPUT_FLOOR": "1",
        # As `make ui` sets them from the data: the partitions end at the data's last date.
        "INFERENCE_PARTITIONS_START": "2024-03-01",
        "INFERENCE_PARTITIONS_END": PARTITION["date"],
    }
    server = Webserver(home, env, tmp_path / "webserver.log")
    try:
        yield server, home
    finally:
        server.stop()


def test_webserver_lists_the_code_location_and_runs_a_partition(webserver, lab: Lab):
    server, home = webserver
    location = server.wait_until_loaded()

    nodes = {tuple(n["assetKey"]["path"]): n for n in server.query(ASSETS_QUERY)["assetNodes"]}
    assert {("scored_predictions",), ("deployment_bundle",), ("live_bundle",), ("ohlcv_bars",)} <= set(nodes)
    checks = nodes[("scored_predictions",)]["assetChecksOrError"]["checks"]
    assert {(c["name"], c["blocking"]) for c in checks} == {
        ("no_lookahead", True), ("parity", True), ("throughput", False)
    }
    repository = {"repositoryLocationName": location, "repositoryName": "__repository__"}
    listed = server.query(SCHEDULES_AND_SENSORS_QUERY, repository=repository)
    assert [s["name"] for s in listed["schedulesOrError"]["results"]] == ["daily_scoring_schedule"]
    sensors = {s["name"]: s["sensorState"]["status"] for s in listed["sensorsOrError"]["results"]}
    assert sensors == dict.fromkeys(  # on by default
        ("prediction_drift_sensor", "realized_performance_sensor", "drift_retraining_sensor", "dead_run_sensor"),
        "RUNNING",
    )

    partition = f"{PARTITION['date']}|{PARTITION['horizon']}"
    tags = {"dagster/partition": partition, **{f"dagster/partition/{k}": v for k, v in PARTITION.items()}}
    params = {
        "selector": {**repository, "jobName": "scoring_job"},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    launched = server.query(LAUNCH_MUTATION, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    assert server.wait_for_run(run_id) == "SUCCESS", server.log.read_text()[-3000:]

    assert lab.prediction_file(PARTITION_DAY, int(PARTITION["horizon"])).is_file()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_records_for_run(run_id).records
        evaluations = [
            r.event_log_entry.dagster_event.event_specific_data
            for r in records
            if r.event_log_entry.dagster_event
            and r.event_log_entry.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
    assert {(e.check_name, e.partition, e.passed) for e in evaluations} == {
        (name, partition, True) for name in ("no_lookahead", "parity", "throughput")
    }

    # The Plots tab of the multi-partitioned asset has the partition's numbers to draw.
    key = {"path": ["scored_predictions"]}
    keys = server.query(PLOT_KEYS_QUERY, key=key)["assetNodeOrError"]["partitionKeyConnection"]["results"]
    assert partition in keys  # only because the partitions end at the data's last date
    events = server.query(PLOT_EVENTS_QUERY, key=key, partitions=keys)["assetNodeOrError"]
    [materialization] = [m for m in events["latestMaterializationByPartition"] if m and m["partition"] == partition]
    numeric = {e["label"] for e in materialization["metadataEntries"] if e["__typename"] in ("FloatMetadataEntry", "IntMetadataEntry")}
    assert {"rows", "rows_per_s"} <= numeric
    _the_asset_page_plots_in_a_browser(server, "scored_predictions")


def _the_asset_page_plots_in_a_browser(server: Webserver, asset: str) -> None:
    """In Chromium: no welcome dialog over the page, and the Plots view draws charts."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `apt-get install chromium` to run the browser test (CI does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(server.url.removesuffix("/graphql") + f"/assets/{asset}", wait_until="networkidle", timeout=60_000)
            assert "Join the Dagster community" not in page.content()
            page.get_by_role("button", name="Plots").click()
            page.get_by_text("rows_per_s").first.wait_for(timeout=30_000)
            page.wait_for_function("document.querySelectorAll('canvas').length > 0", timeout=30_000)
        finally:
            browser.close()

