"""Import time: `import pipeline_core.pipeline` and `inference-pipeline --help`, each in a
fresh process (what a scoring worker or a CLI user waits for before any work)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.timing import load_average, timed

COMMANDS = {
    "import pipeline_core.pipeline": [sys.executable, "-c", "import pipeline_core.pipeline"],
    "inference-pipeline --help": [str(Path(sys.executable).parent / "inference-pipeline"), "--help"],
}


def import_times(repeats: int = 5) -> dict[str, Any]:
    """Median and max wall seconds of each command over `repeats` fresh processes."""
    out: dict[str, Any] = {"load_1min": load_average()[0]}
    for name, command in COMMANDS.items():
        seconds = [timed(lambda: subprocess.run(command, check=True, capture_output=True))[0] for _ in range(repeats)]
        out[name] = {"median_s": round(float(np.median(seconds)), 3), "max_s": round(max(seconds), 3), "n": repeats}
    return out
