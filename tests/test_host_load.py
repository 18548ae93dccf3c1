"""Model thread counts leave out the CPUs other processes are using (Linux /proc)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_core.models.base import scoring_threads, usable_cpus
from pipeline_core.models.host_load import cpus_busy_elsewhere

pytestmark = pytest.mark.skipif(not Path("/proc/loadavg").exists(), reason="needs Linux /proc")


def test_a_busy_process_is_counted_and_its_cpu_left_to_it():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert cpus_busy_elsewhere() >= 1
        assert scoring_threads(1_000_000, None) <= max(usable_cpus() - 1, 1)
    finally:
        spinner.kill()
        spinner.wait()


def test_this_process_threads_are_not_counted_as_elsewhere(monkeypatch):
    monkeypatch.setattr(Path, "read_text", lambda self: "0.5 0.5 0.5 3/200 123\n" if self.name == "loadavg"
                        else "1 (python (x)) R 0\n")
    assert cpus_busy_elsewhere() == max(3 - len(list(Path("/proc/self/task").glob("*/stat"))), 0)
    monkeypatch.setattr(Path, "read_text", lambda self: "0.5 0.5 0.5 3/200 123\n" if self.name == "loadavg"
                        else "1 (python) S 0\n")
    assert cpus_busy_elsewhere() == 3  # none of this process's threads runs: all three are elsewhere
