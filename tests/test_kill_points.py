"""kill -9 at any moment of scoring, bundle save, promotion or retraining.

Each operation runs in its own process (`fault_worker.py`), which SIGKILLs itself just before
a chosen filesystem change: the first, one in the middle, and just before and just after each
rename or folder exchange (the moments where what a reader sees changes). The test also kills
it from outside at a third and two thirds of the operation's duration, which lands inside
writes no audit event sees (parquet and model files are written by native code). After every kill:
- LIVE names a bundle that loads (every file hash-checked), and every visible bundle verifies;
- every visible predictions file is the earlier one or the finished one, byte for byte, and the
  dataset reads with polars and pyarrow hive partitioning as the README does, leftovers and all;
- every leftover is a temporary that the sweeper recognizes;
- a rerun of the scoring writes byte-identical files, and a restarted retraining finishes
  a promotion that was recorded but not carried out.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pyarrow.dataset as ds
import pytest
from fault_worker import command, hidden, visible_files

from pipeline_core.atomic import sweep_stale_temporaries
from pipeline_core.bundle import DECISIONS_DIR, BundleStore, verify_bundle
from pipeline_core.pipeline import InferencePipeline

pytestmark = pytest.mark.slow
RENAMES = {"os.rename", "atomic.exchange"}


def _run(operation: str, root: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run(command(operation, root, kill_at), capture_output=True, text=True, timeout=300)


def _kill_after(operation: str, root: Path, seconds: float) -> int:
    """Run `operation` and SIGKILL it `seconds` after it starts (it may finish first); its exit code."""
    worker = subprocess.Popen(command(operation, root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in worker.stderr:
        if line.strip() == "armed":
            break
    time.sleep(seconds)
    worker.kill()
    worker.stderr.close()
    return worker.wait(timeout=60)


def _kill_points(changes: list[str]) -> list[int]:
    """1-based indices of the changes to die before: the first, the middle one, and around each rename."""
    points = {1, len(changes) // 2 + 1}
    for index, change in enumerate(changes):
        if change in RENAMES:
            points |= {index + 1, index + 2}
    return sorted(p for p in points if p <= len(changes))


def _assert_consistent(root: Path, earlier: dict[str, bytes], finished: dict[str, bytes]) -> None:
    store = BundleStore(root / "bundles")
    InferencePipeline.load(store.live_path())
    for version in store.versions():
        verify_bundle(store.path(version))
    for decision in (store.root / DECISIONS_DIR).glob("*.json"):
        recorded = json.loads(decision.read_text())
        if recorded["promoted"]:
            verify_bundle(store.path(recorded["candidate"]))
    predictions = root / "predictions"
    current = visible_files(predictions)
    assert earlier.keys() <= current.keys(), f"earlier predictions lost: {sorted(earlier.keys() - current.keys())}"
    for name, content in current.items():
        assert content in (earlier[name], finished[name]), f"{name} is neither the earlier file nor the finished one"
    assert pl.scan_parquet(predictions / "**/*.parquet", hive_partitioning=True).collect().height > 0  # as the README reads it
    assert ds.dataset(predictions, partitioning="hive").to_table().num_rows > 0
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and not hidden(p, root))]:
        sweep_stale_temporaries(folder, older_than_s=0)
    leftovers = [p for p in root.rglob("*") if hidden(p, root)]
    assert not leftovers, f"not temporaries the sweeper recognizes: {leftovers}"


@pytest.mark.parametrize("operation", ["score", "save", "promote", "retrain"])
def test_a_kill_at_any_moment_leaves_a_consistent_deployment(deployment_before_fault, tmp_path, operation):
    clean = Path(shutil.copytree(deployment_before_fault, tmp_path / "clean"))
    done = _run(operation, clean)
    assert done.returncode == 0, done.stderr
    changes = done.stdout.split()
    duration = float(done.stderr.split("done in ")[-1].split()[0])
    earlier, finished = visible_files(deployment_before_fault / "predictions"), visible_files(clean / "predictions")
    if operation == "score":
        assert earlier.keys() == finished.keys() and earlier != finished  # the fault test replaces real files
    if operation == "retrain":
        assert BundleStore(clean / "bundles").live_version() == "pipeline_v3"  # the candidate is promoted
    points = _kill_points(changes)
    assert len(points) >= 3, changes
    for kill_at in [*points, duration / 3, duration * 2 / 3]:
        root = Path(shutil.copytree(deployment_before_fault, tmp_path / f"killed-{kill_at}"))
        if isinstance(kill_at, int):
            killed = _run(operation, root, kill_at)
            assert killed.returncode == -signal.SIGKILL, f"change {kill_at} of {changes}: {killed.stderr[-2000:]}"
        else:
            assert _kill_after(operation, root, kill_at) in (0, -signal.SIGKILL)
        _assert_consistent(root, earlier, finished)
        if operation == "score":
            assert _run("score", root).returncode == 0
            assert visible_files(root / "predictions") == finished, f"a rerun after a kill before change {kill_at} differs"
        if operation == "retrain":
            store = BundleStore(root / "bundles")
            if store.live_version() != "pipeline_v1":
                assert (store.root / DECISIONS_DIR / f"{store.live_version()}.json").is_file(), "LIVE moved unrecorded"
            store.reconcile_live()  # what the next retraining does first
            _assert_consistent(root, earlier, finished)
            if (store.root / DECISIONS_DIR / "pipeline_v3.json").is_file():
                assert store.live_version() == "pipeline_v3", f"a recorded promotion was lost (kill before change {kill_at})"
