"""`make ui`'s supervisor: `dg dev` starts, with no warning that it is superseded, and SIGTERM
stops all of it, promptly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dagster")]

PROJECT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 150


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (parents from each process's stat line)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    """Whether `pid` is a live process: not ended, and not a zombie waiting for init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_stops_dg_dev_and_everything_it_started(tmp_path):
    port = _free_port()
    supervisor = subprocess.Popen(
        [sys.executable, "scripts/serve_ui.py", "-p", str(port)], cwd=PROJECT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path), "INFERENCE_DATA_ROOT": str(tmp_path / "data")},
        stdout=(tmp_path / "ui.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(1)
        else:
            pytest.fail(f"the UI did not answer in {START_TIMEOUT_S}s:\n{(tmp_path / 'ui.log').read_text()[-2000:]}")
        started = _descendants(supervisor.pid)
        assert len(started) >= 3  # dg dev, its webserver, daemon and code server
        stopped_at = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=40)
        assert time.monotonic() - stopped_at < 30
        time.sleep(1)
        assert [pid for pid in started if _running(pid)] == []  # nothing left running
        with pytest.raises(requests.RequestException):
            requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2)
        log = (tmp_path / "ui.log").read_text()
        assert "SupersessionWarning" not in log
        assert "Daemon threads shut down" in log  # interrupted, not killed mid-tick
    finally:
        if _group_alive(supervisor.pid):
            os.killpg(supervisor.pid, signal.SIGKILL)
