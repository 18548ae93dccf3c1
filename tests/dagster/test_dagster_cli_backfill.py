"""The README's command-line backfill, as written but for its range: one run, with checks, at INFO
by the demo instance's default, with no warning that the command is superseded."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster_lab import Lab
from readme_blocks import bash_blocks

from pipeline_core.monitoring.partitions import predictions_file

from inference_assets.defs.resources import DataLakeResource

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dagster")]

PROJECT = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).with_name("dg")
INSTANCE_YAML = PROJECT / "demo" / "dagster.yaml"
DAYS = (date(2024, 3, 7), date(2024, 3, 8))


def readme_materialize_command() -> list[str]:
    """The README's `dg launch` command, on the lab's range, without its env prefix."""
    prefix = "DAGSTER_HOME=$PWD/.dagster_home .venv/bin/dg launch"
    [command] = [c for block in bash_blocks() for c in block if c.startswith(prefix)]
    argv = shlex.split(command.removeprefix("DAGSTER_HOME=$PWD/.dagster_home "))
    at = argv.index("--partition-range") + 1
    argv[at] = f"{DAYS[0]}|15...{DAYS[1]}|20"
    return [str(DG), *argv[1:]]


def test_backfill_command_scores_the_range_with_checks(lab: Lab, tmp_path):
    (tmp_path / "dagster.yaml").write_text(INSTANCE_YAML.read_text())
    # A copy of the lab's data: what the command scores stays out of the session's lab, whose
    # other tests (the monthly report) count the horizons scored there.
    data = DataLakeResource(root=str(shutil.copytree(lab.resources["data_lake"].root, tmp_path / "data")))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "INFERENCE_DATA_ROOT": data.root,
        "INFERENCE_DEPLOYMENT_ROOT": str(lab.deployment_root),
        "INFERENCE_THROUGHPUT_FLOOR": "1",
    }
    command = readme_materialize_command()
    completed = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    console = [line for line in (completed.stdout + completed.stderr).splitlines() if " - dagster - " in line]
    assert [line for line in console if " - DEBUG - " in line] == []  # INFO: one line per scored partition
    assert len(console) == len(DAYS) * 2, console
    assert "Warning" not in completed.stderr, completed.stderr[-3000:]

    partitions = {f"{day}|{horizon}" for day in DAYS for horizon in (15, 20)}
    for day in DAYS:
        for horizon in (15, 20):
            assert predictions_file(data.predictions_dir, day, horizon).is_file()
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        (run,) = instance.get_runs()
        assert run.tags["dagster/asset_partition_range_start"] == f"{DAYS[0]}|15"
        evaluations = [
            record.event_log_entry.dagster_event.event_specific_data
            for record in instance.get_records_for_run(run.run_id).records
            if record.event_log_entry.dagster_event
            and record.event_log_entry.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
    assert {(e.check_name, e.partition) for e in evaluations if e.passed} == {
        (name, partition) for name in ("no_lookahead", "parity", "throughput") for partition in partitions
    }
