"""The README's CLI walkthrough runs as written, in order, in an empty folder.

Sizes shrink through the commands' own documented flags (fewer symbols and bars per day,
the fast profile, fewer folds), nothing else: every command of the block must exit 0.
About 80 s on two cores.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"
CLI = Path(sys.executable).with_name("inference-pipeline")
SMALLER = {  # documented flags only
    "--symbols 8": "--symbols 2 --bars-per-day 100",
    "--profile max-accuracy": "--profile low-latency",
    "--folds 4": "--folds 2",
}


def cli_walkthrough() -> list[str]:
    """The commands of the README's bash block that starts with `inference-pipeline generate`."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    [block] = [b for b in blocks if b.startswith("inference-pipeline generate")]
    lines = block.replace("\\\n", " ").splitlines()
    return [line.split("  #")[0].strip() for line in lines if line.strip()]


def test_the_readme_cli_walkthrough_runs_as_written(tmp_path):
    commands = cli_walkthrough()
    assert [c.split()[1] for c in commands][:2] == ["generate", "train"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for command in commands:
        for written, smaller in SMALLER.items():
            command = command.replace(written, smaller)
        argv = [str(CLI), *shlex.split(command)[1:]]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert (tmp_path / "predictions.parquet").is_file() and (tmp_path / "drift.png").is_file()
    assert (tmp_path / "backtest" / "report.md").is_file()
