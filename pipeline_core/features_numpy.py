"""The default feature set `ohlcv_v1` in numpy, for small inputs.

A polars query has a fixed cost of several milliseconds, whatever the size of the frame;
on a few hundred bars (one symbol's new bars plus their lookback) that cost is most of the
scoring time. This kernel computes the same columns for every symbol at once with numpy:
every rolling window from its own values (a convolution or `sliding_window_view`), so a
value depends only on its window, wherever the frame starts, and the lookahead and warm-up
audits hold as they do for the polars set. It agrees with
`features.compute_features` to ~1e-12 relative (polars updates rolling sums incrementally,
so the last bits can differ); the models read float32.

`featurize` uses it below SMALL_INPUT_ROWS rows, for the default set only: other sets,
including ones registered by users or tests, always run their polars expressions. It costs
about 1.5 ms plus 1 us per bar on one core (2.6 ms for 20 symbols x 121 bars, where polars
takes 7 ms; 9.4 vs 11.4 ms at 7,800 bars); polars, on every core, wins on larger frames.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from pipeline_core.features import (
    _MA_VOL_WINDOW,
    _MA_WINDOWS,
    _MICROS_PER_DAY,
    _MICROS_PER_MINUTE,
    _MINUTES_PER_DAY,
    _PARKINSON_WINDOW,
    _RANGE_WINDOW,
    _RETURN_WINDOWS,
    _RSI_WINDOW,
    _STOCH_WINDOWS,
    _VOL_WINDOWS,
    _VOLUME_WINDOWS,
    _ZSCORE_WINDOW,
    DEFAULT_FEATURE_SET,
    FEATURE_COLUMNS,
    REQUIRED_LOOKBACK,
    FeatureSet,
    _compute_ohlcv_v1,
)

SMALL_INPUT_ROWS = 8192


def has_numpy_kernel(feature_set: FeatureSet) -> bool:
    """Whether `feature_set` is the built-in `ohlcv_v1` (not another set under its name)."""
    return feature_set.name == DEFAULT_FEATURE_SET and feature_set.compute is _compute_ohlcv_v1


def ohlcv_v1_matrix(bars: pl.DataFrame, blocks: list[tuple[int, int]]) -> np.ndarray:
    """`ohlcv_v1` of validated bars as an (n, len(FEATURE_COLUMNS)) float64 array, NaN on
    each symbol's first REQUIRED_LOOKBACK rows; `blocks` are the [start, end) row ranges
    of the symbols in the (symbol, time)-sorted frame.

    Every symbol is computed in one pass over the whole frame: a row past its symbol's
    first REQUIRED_LOOKBACK reads windows that lie inside its own symbol, and each window's
    value is computed from that window alone, so it is the value a pass over the symbol by
    itself gives, bit for bit. Windows reaching into the previous symbol land only on the
    warm-up rows, which are NaN'd."""
    columns = {name: bars[name].cast(pl.Float64).to_numpy() for name in ("open", "high", "low", "close", "volume")}
    micros = bars["timestamp"].to_numpy().astype("datetime64[us]").view(np.int64)
    starts = np.array([start for start, _ in blocks], dtype=np.int64)
    out = _features(columns, micros, starts)
    position = np.arange(bars.height) - np.repeat(starts, [end - start for start, end in blocks])
    out[position < REQUIRED_LOOKBACK] = np.nan
    return out


def _features(bar: dict[str, np.ndarray], micros: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Every feature of the bars, in FEATURE_COLUMNS order (each symbol's warm-up rows are junk);
    `starts`: the first row of each symbol, where the one-bar return does not exist."""
    o, h, l, c, v = bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]
    with np.errstate(divide="ignore", invalid="ignore"):
        lc, hl = np.log(c), h - l
        r1 = np.concatenate([[np.nan], np.diff(lc)])
        r1[starts] = np.nan
        r1z = np.nan_to_num(r1, nan=0.0)
        r1sq, r1nz = r1 * r1, (r1 != 0).astype(np.float64)
        hlr, hlnz = hl / c, (hl != 0).astype(np.float64)
        volnz, lhl2 = (v != 0).astype(np.float64), np.log(h / l) ** 2

        def rvol(w: int) -> np.ndarray:
            return np.where(_roll(r1nz, w, np.sum) > 0, np.sqrt(_roll(r1sq, w, np.mean)), 0.0)

        lag = {w: _shift(lc, w) for w in _RETURN_WINDOWS}
        vol = {w: rvol(w) for w in _VOL_WINDOWS}
        short, long = min(_VOL_WINDOWS), max(_VOL_WINDOWS)
        parkinson_var = _roll(lhl2, _PARKINSON_WINDOW, np.mean) / (4.0 * math.log(2.0))
        parkinson = np.where(
            _roll(hlnz, _PARKINSON_WINDOW, np.sum) > 0, np.sqrt(np.clip(parkinson_var, 0.0, None)), 0.0
        )
        features = [lc - lag[w] for w in _RETURN_WINDOWS]
        features += [vol[w] for w in _VOL_WINDOWS]
        features += [_guarded(vol[short], vol[long], vol[long] > 0, 1.0), parkinson, np.log(o) - lag[1]]

        def shape(num: np.ndarray, neutral: float) -> np.ndarray:
            return _guarded(num, hl, hl > 0, neutral)

        features += [
            hlr,
            _guarded(hlr, _roll(hlr, _RANGE_WINDOW, np.mean), _roll(hlnz, _RANGE_WINDOW, np.sum) > 0, 1.0),
            shape(c - o, 0.0),
            shape(h - np.maximum(o, c), 0.0),
            shape(np.minimum(o, c) - l, 0.0),
            shape(c - l, 0.5),
        ]

        volume_mean = {w: _roll(v, w, np.mean) for w in _VOLUME_WINDOWS}
        moved_volume = {w: _roll(volnz, w, np.sum) > 0 for w in _VOLUME_WINDOWS}
        features += [_guarded(v, volume_mean[w], moved_volume[w], 1.0) for w in _VOLUME_WINDOWS]
        v_short, v_long = min(_VOLUME_WINDOWS), max(_VOLUME_WINDOWS)
        features.append(_guarded(volume_mean[v_short], volume_mean[v_long], moved_volume[v_long], 1.0))

        gain = _roll(np.clip(r1, 0.0, None), _RSI_WINDOW, np.mean)
        loss = _roll(np.clip(-r1, 0.0, None), _RSI_WINDOW, np.mean)
        features.append(_guarded(100.0 * gain, gain + loss, _roll(r1nz, _RSI_WINDOW, np.sum) > 0, 50.0))
        for w in _STOCH_WINDOWS:
            high, low = _roll(h, w, np.max), _roll(l, w, np.min)
            features.append(_guarded(c - low, high - low, high > low, 0.5))
        ma_vol = vol[_MA_VOL_WINDOW]
        features += [_guarded(_ma_deviation(r1z, w), ma_vol, ma_vol > 0, 0.0) for w in _MA_WINDOWS]
        std = _roll(lc, _ZSCORE_WINDOW, lambda x, axis: np.std(x, axis=axis, ddof=1))
        moved = (_roll(r1nz, _ZSCORE_WINDOW - 1, np.sum) > 0) & (std > 0)
        features.append(_guarded(_ma_deviation(r1z, _ZSCORE_WINDOW), std, moved, 0.0))

        angle = (micros % _MICROS_PER_DAY).astype(np.float64) * (2.0 * math.pi / (_MINUTES_PER_DAY * _MICROS_PER_MINUTE))
        features += [np.sin(angle), np.cos(angle)]
    return np.column_stack(features)


def _roll(x: np.ndarray, window: int, how) -> np.ndarray:
    """`how` over each trailing window of `window` values (NaN before the first full one):
    np.sum or np.mean as one convolution, anything else over a sliding window view."""
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        if how is np.sum or how is np.mean:
            out[window - 1 :] = np.convolve(x, np.ones(window) / (window if how is np.mean else 1), "valid")
        else:
            out[window - 1 :] = how(sliding_window_view(x, window), axis=-1)
    return out


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    return np.concatenate([np.full(min(k, len(x)), np.nan), x[: max(len(x) - k, 0)]])


def _ma_deviation(r1z: np.ndarray, window: int) -> np.ndarray:
    """log close minus its mean over `window` bars, as the weighted sum of the last window-1
    returns (weights 1..window-1 over window, oldest first): features._ma_deviation."""
    out = np.full(len(r1z), np.nan)
    if len(r1z) >= window - 1:
        out[window - 2 :] = np.convolve(r1z, np.arange(window - 1, 0, -1) / window, "valid")  # kernel reversed
    return out


def _guarded(num: np.ndarray, den: np.ndarray, valid: np.ndarray, neutral: float) -> np.ndarray:
    """num / den where `valid`, `neutral` elsewhere (features._guarded_div)."""
    return np.where(valid, num / np.where(valid, den, 1.0), neutral)
