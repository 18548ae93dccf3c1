"""Small timing helpers: repeated measurements, medians and percentiles, load average."""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (the machine is shared: read timings with these)."""
    return [round(value, 2) for value in os.getloadavg()]


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def repeat_ms(func: Callable[[], Any], repeats: int, warmup: int = 2) -> np.ndarray:
    """Milliseconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        func()
    return np.array([timed(func)[0] * 1000.0 for _ in range(repeats)])


def summary_ms(values: np.ndarray) -> dict[str, float]:
    """Median, p95, min and max of timings in milliseconds, with the count."""
    return {
        "median_ms": round(float(np.median(values)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
        "min_ms": round(float(np.min(values)), 3),
        "max_ms": round(float(np.max(values)), 3),
        "n": int(len(values)),
    }
