"""Triple-barrier direction labels per horizon, computed from the raw OHLCV frame only.

For bar t of a symbol, with sigma_t the sample std (ddof=1) of the last `vol_window`
1-bar log returns of the close (bars t-vol_window+1..t, so causal):

    half_width = barrier_k * sigma_t * sqrt(horizon)
    upper      = close_t * (1 + half_width)
    lower      = close_t * (1 - half_width)

Scaling by sqrt(horizon) keeps the class balance roughly the same for every horizon.
Walking the next `horizon` bars t+1..t+h of the same symbol:

- +1 if some bar's high >= upper before any bar's low <= lower;
- -1 if some bar's low <= lower before any bar's high >= upper;
- 0 if neither barrier is touched by bar t+h, AND ALSO when the first touch of both
  barriers happens in the same bar (the order inside the bar is unknown, so no direction
  is invented);
- null where the symbol has fewer than `horizon` bars after t, or sigma_t is not yet
  defined (the first `vol_window` bars of each symbol).

With sigma_t = 0 (a flat history) both barriers sit at close_t, so bar t+1 alone decides:
+1 if its low is above close_t, -1 if its high is below, else 0.

The default barrier_k = 1.0 keeps the classes reasonably balanced on minute bars. Shares of
-1 / 0 / 1: a driftless random walk (high/low from 10 ticks per bar) gives 29/41/30% at
h=5 and 30/39/31% at h=20; the synthetic market (`pipeline_core.data.generate_market`,
whose bar ranges are a little wider) gives 35/29/36%. k=0.9 balances the pure random
walk exactly but leaves the synthetic market with 22% zeros.

Class conventions (`pipeline_core.constants`): `CLASSES = (-1, 0, 1)`; models
take y as class indices 0/1/2 (`labels_to_index`); probability columns are ordered as
CLASSES.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from pipeline_core.constants import CLASSES, HORIZONS
from pipeline_core.errors import ConfigError, DataValidationError

DEFAULT_BARRIER_K = 1.0
DEFAULT_VOL_WINDOW = 20
_REQUIRED_COLUMNS = ("timestamp", "symbol", "high", "low", "close")

IntColumn = pl.Series | np.ndarray | Sequence[int]


def triple_barrier_labels(
    ohlcv: pl.DataFrame,
    horizon: int,
    barrier_k: float = DEFAULT_BARRIER_K,
    vol_window: int = DEFAULT_VOL_WINDOW,
) -> pl.DataFrame:
    """Triple-barrier labels (pl.Int8: -1/0/1, null at the tail) for a validated OHLCV frame.

    Returns `timestamp`, `symbol`, `label`, row-aligned 1:1 with `ohlcv`. See the module
    docstring for the barrier rule.
    """
    _check_params(ohlcv, horizon, barrier_k, vol_window)
    bars = ohlcv.select(
        pl.col("high").cast(pl.Float64),
        pl.col("low").cast(pl.Float64),
        pl.col("close").cast(pl.Float64),
        sigma=pl.col("close").log().diff().rolling_std(vol_window).over("symbol"),
        bars_after=(pl.len() - 1 - pl.int_range(pl.len(), dtype=pl.Int64)).over("symbol"),
    )
    sigma = bars["sigma"].to_numpy()  # NaN where undefined
    close = bars["close"].to_numpy()
    half_width = barrier_k * sigma * math.sqrt(horizon)
    first_up = _first_touch(bars["high"].to_numpy(), close * (1.0 + half_width), horizon, above=True)
    first_down = _first_touch(bars["low"].to_numpy(), close * (1.0 - half_width), horizon, above=False)
    # earlier touch wins; equal means same-bar double touch or no touch at all -> 0
    label = np.sign(first_down - first_up).astype(np.int8)
    valid = (bars["bars_after"].to_numpy() >= horizon) & np.isfinite(sigma)
    return ohlcv.select("timestamp", "symbol").with_columns(
        label=pl.when(pl.lit(pl.Series(valid))).then(pl.lit(pl.Series(label, dtype=pl.Int8)))
    )


def label_params(label_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The `triple_barrier_labels` arguments a bundle's `label_spec` records; the defaults
    where it records none (bundles saved before they were recorded, all trained with them
    unless a Python caller set `TrainOptions.label_params`)."""
    return {
        "barrier_k": float(label_spec.get("barrier_k", DEFAULT_BARRIER_K)),
        "vol_window": int(label_spec.get("vol_window", DEFAULT_VOL_WINDOW)),
    }


def _first_touch(path: np.ndarray, barrier: np.ndarray, horizon: int, *, above: bool) -> np.ndarray:
    """Offset (1..horizon) of the first bar after t whose `path` crosses `barrier[t]`; horizon+1 if none.

    Loops over the `horizon` offsets, never over rows. Rows whose window runs past the end of
    their symbol read the next symbol's bars; the caller nulls those rows.
    """
    n = path.shape[0]
    first = np.full(n, horizon + 1, dtype=np.int32)
    for offset in range(horizon, 0, -1):
        ahead, level = path[offset:], barrier[: n - offset]
        touched = ahead >= level if above else ahead <= level
        first[: n - offset] = np.where(touched, offset, first[: n - offset])
    return first


def _check_params(ohlcv: pl.DataFrame, horizon: int, barrier_k: float, vol_window: int) -> None:
    """Raise ConfigError / DataValidationError for unusable arguments."""
    if isinstance(horizon, bool) or horizon not in HORIZONS:
        raise ConfigError(
            f"horizon={horizon!r} is not supported; expected one of {list(HORIZONS)} bars."
        )
    if not (isinstance(barrier_k, (int, float)) and math.isfinite(barrier_k) and barrier_k > 0):
        raise ConfigError(
            f"barrier_k={barrier_k!r} must be a finite number > 0 (default {DEFAULT_BARRIER_K})."
        )
    if isinstance(vol_window, bool) or not isinstance(vol_window, int) or vol_window < 2:
        raise ConfigError(
            f"vol_window={vol_window!r} must be an int >= 2 (bars of returns for the volatility)."
        )
    missing = sorted(set(_REQUIRED_COLUMNS) - set(ohlcv.columns))
    if missing:
        raise DataValidationError(
            f"triple_barrier_labels needs a validated OHLCV frame; missing columns {missing[:5]}. "
            "Run pipeline_core.data.validate_ohlcv first."
        )


def labels_to_index(y: IntColumn) -> np.ndarray:
    """Map labels -1/0/1 to class indices 0/1/2 (int64), as models expect."""
    labels = _as_int_array(y, allowed=CLASSES, what="labels")
    return (labels + 1).astype(np.int64)


def index_to_labels(idx: IntColumn) -> np.ndarray:
    """Map class indices 0/1/2 back to labels -1/0/1 (int8)."""
    indices = _as_int_array(idx, allowed=tuple(range(len(CLASSES))), what="class indices")
    return (indices - 1).astype(np.int8)


def _as_int_array(values: IntColumn, *, allowed: tuple[int, ...], what: str) -> np.ndarray:
    """`values` as an int64 array, DataValidationError on nulls or values outside `allowed`."""
    array = values.to_numpy() if isinstance(values, pl.Series) else np.asarray(values)
    if array.dtype.kind == "f":
        if np.isnan(array).any():
            n_missing = int(np.isnan(array).sum())
            raise DataValidationError(
                f"{what} contain {n_missing} null/NaN values; drop rows with null labels first."
            )
        if not np.array_equal(array, np.round(array)):
            raise DataValidationError(f"{what} must be integers {list(allowed)}; got non-integer values.")
    elif array.dtype.kind not in "iu":
        raise DataValidationError(f"{what} must be integers {list(allowed)}; got dtype {array.dtype}.")
    array = array.astype(np.int64)
    unexpected = np.setdiff1d(np.unique(array), np.asarray(allowed))
    if unexpected.size:
        raise DataValidationError(
            f"{what} must be in {list(allowed)}; got unexpected values {unexpected[:5].tolist()}."
        )
    return array
