"""The UI of `make ui`, tested in a real browser against a live `dg dev`.

The module starts `scripts/serve_ui.py` (what `make ui` runs: `dg dev` with its daemon)
on a free localhost port, against a temporary DAGSTER_HOME holding the demo instance's
`demo/dagster.yaml`, and stops it at the end. Runs go through the instance's run queue and
the daemon, in subprocesses that find the lab's data and bundles through the INFERENCE_*
environment variables, as in a deployment.

Chromium (Debian's `/usr/bin/chromium`, driven by playwright) then does what a newcomer
does: the asset graph, `scored_predictions`' partitions and checks, one partition
materialized through the Materialize dialog, its run, its check results. Screenshots of
each step go to $INFERENCE_TEST_ARTIFACTS/browser (CI keeps .ci/artifacts), else to the
test's tmp folder; the folder is printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from datetime import date
from pathlib import Path

import pytest
import requests
from dagster_lab import Lab

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dagster")]

PROJECT = Path(__file__).resolve().parents[2]
DATE, HORIZON = "2024-03-08", "15"  # the lab market's last date
PARTITION = f"{DATE}|{HORIZON}"
GROUPS = ("bundle", "monitoring", "raw", "retraining", "scoring")
CHECKS = ("no_lookahead", "parity", "throughput")
PARTITION_COUNT = 8 * 4  # 2024-03-01..2024-03-08 x horizons 5, 10, 15, 20
START_TIMEOUT_S = 150
RUN_TIMEOUT_MS = 240_000
UI_TIMEOUT_MS = 30_000
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterDev:
    """`python scripts/serve_ui.py -p PORT` in its own process group, and its GraphQL endpoint."""

    def __init__(self, home: Path, env: dict[str, str], log: Path) -> None:
        self.port, self.env = _free_port(), env
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "scripts/serve_ui.py", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=PROJECT, env={**env, "DAGSTER_HOME": str(home)},
            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def query(self, query: str, **variables) -> dict:
        response = requests.post(f"{self.base_url}/graphql", json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        payload = response.json()
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def wait_until_loaded(self) -> str:
        """The code location's name, once the server answers and the location has loaded."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dg dev exited:\n{self.log.read_text()[-3000:]}"
            try:
                entries = self.query(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
            except requests.RequestException:
                entries = []
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                (entry,) = entries
                assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
                return entry["name"]
            time.sleep(1)
        raise TimeoutError(f"dg dev not ready in {START_TIMEOUT_S}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM to the supervisor, which stops its group; SIGKILL to the group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def dagster_dev(lab: Lab, tmp_path_factory):
    """`make ui`'s `dg dev` on a copy of the lab's data (what it scores stays out of the
    session's lab), with the demo instance's settings."""
    tmp = tmp_path_factory.mktemp("dagster_dev")
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "demo" / "dagster.yaml", home / "dagster.yaml")
    data = shutil.copytree(lab.resources["data_lake"].root, tmp / "data")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "INFERENCE_DATA_ROOT": str(data),
        "INFERENCE_DEPLOYMENT_ROOT": str(lab.deployment_root),
        "INFERENCE_THROUGHPUT_FLOOR": "1",
        # As `make ui` sets them from the data: the partitions are the data's dates.
        "INFERENCE_PARTITIONS_START": "2024-03-01",
        "INFERENCE_PARTITIONS_END": DATE,
    }
    server = DagsterDev(home, env, tmp / "dagster_dev.log")
    try:
        server.location = server.wait_until_loaded()
        yield server
    finally:
        server.stop()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    root = os.environ.get("INFERENCE_TEST_ARTIFACTS")
    folder = Path(root) / "browser" if root else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"browser test screenshots: {folder}")
    return folder


def test_the_code_location_lists_its_assets_checks_schedules_and_sensors(dagster_dev: DagsterDev):
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    assert dagster_dev.location == pyproject["tool"]["dagster"]["code_location_name"]

    nodes = {tuple(n["assetKey"]["path"]): n for n in dagster_dev.query(ASSETS_QUERY)["assetNodes"]}
    assert {("scored_predictions",), ("deployment_bundle",), ("live_bundle",), ("ohlcv_bars",)} <= set(nodes)
    checks = nodes[("scored_predictions",)]["assetChecksOrError"]["checks"]
    assert {(c["name"], c["blocking"]) for c in checks} == {
        ("no_lookahead", True), ("parity", True), ("throughput", False)
    }
    repository = {"repositoryLocationName": dagster_dev.location, "repositoryName": "__repository__"}
    listed = dagster_dev.query(SCHEDULES_AND_SENSORS_QUERY, repository=repository)
    assert [s["name"] for s in listed["schedulesOrError"]["results"]] == ["daily_scoring_schedule"]
    sensors = {s["name"]: s["sensorState"]["status"] for s in listed["sensorsOrError"]["results"]}
    assert sensors == dict.fromkeys(  # on by default
        ("prediction_drift_sensor", "realized_performance_sensor", "drift_retraining_sensor", "dead_run_sensor"),
        "RUNNING",
    )


def test_a_newcomer_materializes_a_partition_in_the_browser(dagster_dev: DagsterDev, lab: Lab, screenshots: Path):
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `apt-get install chromium` to run the browser test (CI does)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            ui = _Ui(page, dagster_dev.base_url, screenshots, expect)
            try:
                ui.sees_every_group_in_the_asset_graph()
                ui.sees_the_partitions_and_the_checks_per_partition()
                run_url = ui.materializes_the_partition_through_the_dialog()
                ui.waits_for_the_run_to_succeed(run_url)
                ui.sees_the_check_results_of_the_partition()
                ui.sees_the_partition_numbers_plotted()
            except Exception:
                ui.shot("failed")  # what the page showed when a step broke
                raise
        finally:
            browser.close()
    written = lab.prediction_file(date.fromisoformat(DATE), int(HORIZON)).relative_to(lab.resources["data_lake"].root)
    assert (Path(dagster_dev.env["INFERENCE_DATA_ROOT"]) / written).is_file()


class _Ui:
    """The newcomer's steps in the UI, each ending with a screenshot."""

    def __init__(self, page, base_url: str, screenshots: Path, expect) -> None:
        self.page, self.base_url, self.screenshots, self.expect = page, base_url, screenshots, expect

    def open(self, path: str) -> None:
        self.page.goto(self.base_url + path, wait_until="networkidle")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=self.screenshots / f"{name}.png")

    def visible_text(self, text: str):
        """The visible elements showing exactly `text` (the UI keeps hidden copies for measuring)."""
        return self.page.get_by_text(text, exact=True).locator("visible=true")

    def sees_every_group_in_the_asset_graph(self) -> None:
        self.open("/asset-groups")
        groups = self.page.locator("[class*=CollapsedGroupNode_collapsedGroupNodeBox]")
        self.expect(groups).to_have_count(len(GROUPS))
        assert sorted(text.split()[0] for text in groups.all_inner_texts()) == list(GROUPS)
        self.expect(self.page.get_by_text("Join the Dagster community")).to_have_count(0)
        self.shot("1-asset-graph")

    def sees_the_partitions_and_the_checks_per_partition(self) -> None:
        self.open("/assets/scored_predictions?view=partitions")
        self.expect(self.page.get_by_text(f"{PARTITION_COUNT} Partitions Selected")).to_be_visible()
        for key in ("2024-03-01", DATE, "5", "10", "15", "20"):
            self.expect(self.visible_text(key).last).to_be_visible()
        self.shot("2-partitions")
        for check in CHECKS:
            self._open_check_partitions(check)
            self.expect(self.page.get_by_text(f"{PARTITION_COUNT} Partitions", exact=True)).to_be_visible()
            self.expect(self.page.get_by_text(f"Missing ({PARTITION_COUNT})")).to_be_visible()
            self.shot(f"2-check-{check}-partitions")

    def materializes_the_partition_through_the_dialog(self) -> str:
        """The launched run's page, from the toast the launch shows."""
        self.open("/assets/scored_predictions?view=partitions")
        self.page.get_by_role("button", name="Materialize…").click()
        # This instance never materialized the bundle (the lab built it in another instance).
        warning = self.page.get_by_role("dialog").filter(has_text="Are you sure?")
        self.expect(warning).to_contain_text("live_bundle")
        warning.get_by_role("button", name="Confirm").click()
        dialog = self.page.get_by_role("dialog").filter(has_text="Launch runs to materialize scored_predictions")
        self.expect(dialog).to_be_visible()
        date_input = dialog.get_by_placeholder("ex: ", exact=False)
        date_input.fill(DATE)
        date_input.press("Enter")
        dialog.get_by_text("Select a partition or create one").click()
        self.page.get_by_role("menuitem", name=HORIZON).first.click()  # its name repeats the label
        dialog.get_by_text("Launch runs to materialize").click()  # closes the horizon menu
        self.expect(dialog).to_contain_text("1 partition")
        self.shot("3-materialize-dialog")
        dialog.get_by_role("button", name="Launch 1 run").click()
        toast = self.page.get_by_text("Launched run")
        self.expect(toast).to_be_visible()
        self.shot("3-launched")
        return self.page.locator("a[href*='/runs/']", has_text="View").get_attribute("href")

    def waits_for_the_run_to_succeed(self, run_path: str) -> None:
        self.open(run_path)
        self.expect(self.page.get_by_text(f"partition: {PARTITION}")).to_be_visible()
        done = self.visible_text("Success").or_(self.visible_text("Failure")).or_(self.visible_text("Canceled"))
        self.expect(done.first).to_be_visible(timeout=RUN_TIMEOUT_MS)
        self.shot("4-run")
        self.expect(self.visible_text("Success").first).to_be_visible()

    def sees_the_check_results_of_the_partition(self) -> None:
        self.open(f"/assets/scored_predictions?view=partitions&partition={PARTITION.replace('|', '%7C')}")
        self.expect(self.page.get_by_text("Materialized (1)")).to_be_visible()
        self.expect(self.visible_text(PARTITION).first).to_be_visible()
        self.expect(self.page.get_by_text("rows_per_s", exact=True)).to_be_visible()
        self.shot("5-partition-materialized")
        for check in CHECKS:
            self._open_check_partitions(check)
            self.expect(self.page.get_by_text("Passed (1)")).to_be_visible()
            self.visible_text(DATE).last.click()
            self.visible_text(HORIZON).last.click()
            self.expect(self.visible_text(PARTITION).first).to_be_visible()
            self.expect(self.visible_text("Passed").first).to_be_visible()
            self.shot(f"5-check-{check}-{DATE}-h{HORIZON}")

    def sees_the_partition_numbers_plotted(self) -> None:
        self.open("/assets/scored_predictions")
        self.page.get_by_role("button", name="Plots").click()
        self.expect(self.page.get_by_text("rows_per_s").first).to_be_visible()
        self.page.wait_for_function("document.querySelectorAll('canvas').length > 0", timeout=UI_TIMEOUT_MS)
        self.shot("6-plots")

    def _open_check_partitions(self, check: str) -> None:
        self.open("/assets/scored_predictions?view=checks")
        self.visible_text(check).first.click()
        self.expect(self.page).to_have_url(f"{self.base_url}/assets/scored_predictions?view=checks&checkDetail={check}")
        self.page.locator("button[role=tab]", has_text="Partitions").click()
