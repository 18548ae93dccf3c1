"""The production stack of the tests: a gRPC code server, dagster-webserver and dagster-daemon
as separate processes on one PostgreSQL database, configured by deployment/.

Every process starts in its own session (process group) and is stopped with its group, so
the runs the code server launches go with it. The tests talk to the stack through GraphQL
only; `Stack.graphql` fails on any GraphQL error.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parents[2]
DEPLOYMENT = PROJECT / "deployment"
BIN = Path(sys.executable).parent
LOCATION = "inference_assets.definitions"
START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """One long-running process in its own process group, logging to a file."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> Service:
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdout=self.log.open("a"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} log ---\n" + (self.log.read_text()[-chars:] if self.log.exists() else "")

    def kill9(self) -> None:
        """SIGKILL to the whole process group, no chance to clean up (the crash case)."""
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.process.pid, signal.SIGKILL)  # whatever the group still holds (run workers)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class Stack:
    """Roots, configuration and the three services of one test session."""

    root: Path
    env: dict[str, str]
    grpc_port: int
    web_port: int
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def app(self) -> Path:
        """The code the code server serves: a copy of the project's packages (a 'deployed image')."""
        return self.root / "app"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def bundle_root(self) -> Path:
        return self.root / "bundles"

    @property
    def workspace(self) -> Path:
        return self.root / "workspace.yaml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/graphql"

    def prediction_files(self, data_root: Path | None = None) -> dict[str, Path]:
        """Every file under predictions/, keyed by its path relative to predictions/."""
        predictions = (data_root or self.data_root) / "predictions"
        return {str(p.relative_to(predictions)): p for p in sorted(predictions.rglob("*")) if p.is_file()}

    # -- processes -------------------------------------------------------------------------

    def start_code_server(self) -> Service:
        service = Service(
            "code-server",
            [str(BIN / "dagster"), "code-server", "start", "-m", LOCATION, "-h", "127.0.0.1",
             "-p", str(self.grpc_port), "--location-name", LOCATION],
            self.app, self.env, self.root / "code-server.log",
        ).start()
        self.services["code-server"] = service
        _wait_for_grpc(self.grpc_port, service)
        return service

    def start_webserver(self) -> Service:
        service = Service(
            "webserver",
            [str(BIN / "dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1", "-p", str(self.web_port)],
            self.app, self.env, self.root / "webserver.log",
        ).start()
        self.services["webserver"] = service
        self.wait_until_loaded()
        return service

    def start_daemon(self) -> Service:
        service = Service(
            "daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)],
            self.app, self.env, self.root / "daemon.log",
        ).start()
        self.services["daemon"] = service
        return service

    def stop(self) -> None:
        for name in ("daemon", "webserver", "code-server"):
            if name in self.services:
                self.services[name].stop()

    def logs(self) -> str:
        return "\n".join(service.tail() for service in self.services.values())

    # -- GraphQL ---------------------------------------------------------------------------

    def graphql(self, query: str, **variables) -> dict:
        response = requests.post(self.url, json={"query": query, "variables": variables}, timeout=120)
        response.raise_for_status()
        payload = response.json()
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def wait_until_loaded(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            webserver = self.services["webserver"]
            assert webserver.alive(), webserver.tail()
            try:
                entries = self.graphql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
            except requests.RequestException:
                entries = []
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                (entry,) = entries
                assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
                return
            time.sleep(1)
        raise TimeoutError(f"webserver not ready in {START_TIMEOUT_S}s\n{self.logs()}")


def _wait_for_grpc(port: int, service: Service) -> None:
    from dagster._core.errors import DagsterUserCodeUnreachableError
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert service.alive(), service.tail()
        try:
            client.ping("ready?")
            return
        except DagsterUserCodeUnreachableError:  # not listening yet
            time.sleep(1)
    raise TimeoutError(f"code server not serving in {START_TIMEOUT_S}s\n{service.tail()}")


def copy_app(target: Path) -> None:
    """The project's packages, as an image would hold them (sources only)."""
    for package in ("pipeline_core", "inference_assets"):
        shutil.copytree(PROJECT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))


def write_configuration(stack: Stack) -> None:
    """DAGSTER_HOME with deployment/dagster.yaml as it is; a workspace at the code server's port."""
    stack.home.mkdir(parents=True)
    shutil.copyfile(DEPLOYMENT / "dagster.yaml", stack.home / "dagster.yaml")
    stack.workspace.write_text(
        "load_from:\n  - grpc_server:\n"
        f"      host: 127.0.0.1\n      port: {stack.grpc_port}\n      location_name: {LOCATION}\n"
    )


def days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=offset) for offset in range(count)]


WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
