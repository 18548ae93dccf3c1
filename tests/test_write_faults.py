"""A full disk and a read-only output folder, for real: each command runs in its own process
under a file-size limit (RLIMIT_FSIZE: a write past it fails as on a full disk) or without
write permission (for root, whose permission checks are skipped, the process runs without
CAP_DAC_OVERRIDE). Each fails with one line naming the file it could not write, and leaves
the earlier output as it was, with no temporary behind."""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fault_worker import command, visible_files

from pipeline_core.bundle import DECISIONS_DIR

pytestmark = pytest.mark.slow
CLI = [str(Path(sys.executable).with_name("inference-pipeline"))]
FILE_SIZE_LIMIT = 20_000  # bytes: below a day's predictions and the bundle's model files
_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 24, 1, 2


def _disk_full() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def _without_permission_override() -> None:
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
            if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture(scope="module")
def can_drop_permission_override():
    probe = subprocess.run(["true"], preexec_fn=_without_permission_override, capture_output=True)
    if probe.returncode != 0:
        pytest.skip("this root process may not drop CAP_DAC_OVERRIDE (no CAP_SETPCAP): run as a normal user")


@pytest.fixture
def deployment(deployment_before_fault, tmp_path) -> Path:
    root = Path(shutil.copytree(deployment_before_fault, tmp_path / "deployment"))
    done = subprocess.run([*CLI, "predict", "--bundle", str(root / "bundles" / "pipeline_v1"), "--input",
                           str(root / "ohlcv"), "--output", str(root / "out" / "predictions.parquet")], capture_output=True)
    assert done.returncode == 0, done.stderr
    yield root
    for folder in (root / "out", root / "bundles", *(root / "predictions").rglob("date=*")):
        folder.chmod(0o755)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root, hidden ones included, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read_only(*folders: Path) -> None:
    for folder in folders:
        folder.chmod(0o555)


def _predict(root: Path, preexec_fn) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, "predict", "--bundle", str(root / "bundles" / "pipeline_v1"), "--input", str(root / "ohlcv"),
         "--output", str(root / "out" / "predictions.parquet")],
        preexec_fn=preexec_fn, capture_output=True, text=True, timeout=300,
    )


def _error_line(done: subprocess.CompletedProcess) -> str:
    return done.stderr.strip().splitlines()[-1]


def _assert_cli_refused(done: subprocess.CompletedProcess, path: Path, reason: str) -> None:
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert done.returncode == 4, done.stderr
    assert errors == [f"error: cannot write or read {path}: {reason}. Nothing was changed."], done.stderr
    assert "Traceback" not in done.stderr


def test_predict_on_a_full_disk_names_its_output_and_keeps_the_earlier_one(deployment):
    before = _snapshot(deployment)
    done = _predict(deployment, _disk_full)
    _assert_cli_refused(done, deployment / "out" / "predictions.parquet", "File too large")
    assert _snapshot(deployment) == before


def test_scoring_a_date_on_a_full_disk_names_the_partition_and_keeps_the_earlier_files(deployment):
    before = _snapshot(deployment)
    done = subprocess.run(command("score", deployment), preexec_fn=_disk_full, capture_output=True, text=True)
    partition = deployment / "predictions" / "horizon=10" / "date=2024-05-08" / "part-0.parquet"
    assert done.returncode == 1 and _error_line(done) == f"OSError: [Errno 27] File too large: '{partition}'"
    assert _snapshot(deployment) == before


def test_saving_a_bundle_on_a_full_disk_names_it_and_adds_or_changes_no_bundle(deployment):
    before = _snapshot(deployment)
    done = subprocess.run(command("save", deployment), preexec_fn=_disk_full, capture_output=True, text=True)
    assert done.returncode == 1
    assert _error_line(done) == f"OSError: [Errno 27] File too large: '{deployment / 'bundles' / 'pipeline_v3'}'"
    assert _snapshot(deployment) == before


def test_predict_into_a_read_only_folder_names_its_output_and_keeps_the_earlier_one(deployment, can_drop_permission_override):
    _read_only(deployment / "out")
    before = _snapshot(deployment)
    done = _predict(deployment, _without_permission_override)
    _assert_cli_refused(done, deployment / "out" / "predictions.parquet", "Permission denied")
    assert _snapshot(deployment) == before


def test_scoring_into_read_only_partitions_names_the_partition_and_keeps_the_earlier_files(deployment, can_drop_permission_override):
    _read_only(*(deployment / "predictions").rglob("date=*"))
    before = visible_files(deployment / "predictions")
    done = subprocess.run(command("score", deployment), preexec_fn=_without_permission_override, capture_output=True, text=True)
    partition = deployment / "predictions" / "horizon=10" / "date=2024-05-08" / "part-0.parquet"
    assert done.returncode == 1 and _error_line(done) == f"PermissionError: [Errno 13] Permission denied: '{partition}'"
    assert visible_files(deployment / "predictions") == before
    assert not [p for p in (deployment / "predictions").rglob(".*")]


def test_promoting_in_a_read_only_deployment_is_one_error_line_and_live_is_unchanged(deployment, can_drop_permission_override):
    _read_only(deployment / "bundles")
    before = _snapshot(deployment)
    done = subprocess.run([*CLI, "bundles", "--root", str(deployment / "bundles"), "promote", "v2", "--force", "--reason", "test"],
                          preexec_fn=_without_permission_override, capture_output=True, text=True)
    _assert_cli_refused(done, deployment / "bundles" / DECISIONS_DIR, "Permission denied")  # recorded before LIVE moves
    assert _snapshot(deployment) == before
