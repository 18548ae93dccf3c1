"""The spec's latency benchmark: score 100 new bars of one symbol, given the history
they need (`required_lookback` bars before them), with `predict`; and one bar with
`predict_single`, in a frame of those bars and in a 5,000-row frame. Inputs are polars
frames already in memory; windows are taken at different places in the symbol's history
and cycled, so no call sees the same bars twice in a row.
"""

from __future__ import annotations

from itertools import cycle
from typing import Any

import numpy as np
import polars as pl

from benchmarks.timing import load_average, repeat_ms, summary_ms
from pipeline_core.pipeline import InferencePipeline

N_WINDOWS = 16
LONG_FRAME_ROWS = 5_000


def latency(
    pipeline: InferencePipeline, bars: pl.DataFrame, new_bars: int, repeats: int, horizon: int = 20
) -> dict[str, Any]:
    """Median / p95 of `predict` on lookback + `new_bars` bars and of `predict_single` (ms)."""
    lookback = pipeline.required_lookback
    length = lookback + new_bars
    if bars.height < length:
        raise ValueError(f"Latency needs {length} bars of one symbol, the input has {bars.height}.")
    starts = np.linspace(0, bars.height - length, N_WINDOWS).astype(int)
    windows = [bars.slice(int(start), length) for start in starts]
    scored = pipeline.predict(windows[0], horizon=horizon).n_samples
    if scored != new_bars:
        raise RuntimeError(f"predict scored {scored} rows of {length}, expected exactly {new_bars}.")
    predict_windows, single_windows = cycle(windows), cycle(windows)
    predict = repeat_ms(lambda: pipeline.predict(next(predict_windows), horizon=horizon), repeats)
    single = repeat_ms(
        lambda: pipeline.predict_single(next(single_windows), length - 1, horizon=horizon), repeats
    )
    long = bars.head(LONG_FRAME_ROWS)  # predict_single's row in a long frame: only its history is read
    rows = cycle(np.linspace(lookback, long.height - 1, N_WINDOWS).astype(int).tolist())
    single_long = repeat_ms(lambda: pipeline.predict_single(long, next(rows), horizon=horizon), repeats)
    return {
        "horizon": horizon,
        "predict_single_long_frame": {"rows": long.height, **summary_ms(*single_long)},
        "input_bars": length,
        "scored_bars": new_bars,
        "predict": summary_ms(*predict),
        "predict_single": summary_ms(*single),
        "load_1min": load_average()[0],
    }
