"""Small timing helpers: wall and CPU time of repeated calls, medians, load average.

CPU time (`time.process_time`, all threads of this process) is recorded beside wall
time: on a shared, oversubscribed machine wall time mostly measures waiting for a core,
while CPU time still measures the work (on an idle 2-core machine, wall time would lie
between CPU time / 2, for perfectly parallel work, and CPU time, for serial work).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (the machine is shared: read timings with these)."""
    return [round(value, 2) for value in os.getloadavg()]


def timed(func: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def repeat_ms(func: Callable[[], Any], repeats: int, warmup: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Wall and CPU milliseconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        func()
    runs = np.array([timed(func)[:2] for _ in range(repeats)]) * 1000.0
    return runs[:, 0], runs[:, 1]


def summary_ms(wall: np.ndarray, cpu: np.ndarray) -> dict[str, float]:
    """Median, p95, min and max of wall milliseconds, the median CPU milliseconds, the count."""
    return {
        "median_ms": round(float(np.median(wall)), 3),
        "p95_ms": round(float(np.percentile(wall, 95)), 3),
        "min_ms": round(float(np.min(wall)), 3),
        "max_ms": round(float(np.max(wall)), 3),
        "cpu_median_ms": round(float(np.median(cpu)), 3),
        "n": int(len(wall)),
    }
