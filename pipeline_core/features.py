"""Causal features per symbol, each feature set with its declared lookback.

A feature set turns validated OHLCV bars (all symbols, sorted by symbol then time) into
feature columns, evaluating every window and shift per symbol (`.over("symbol")`).
`compute_features` then nulls the first `lookback` rows of each symbol, so the feature at
bar t reads bars t-lookback..t of its own symbol and nothing after t.

Output dtype: every feature column is `pl.Float64`. Rolling windows are computed
incrementally, so scoring with exactly the declared lookback matches scoring with all
history to ~1e-12 relative (only the last bits can differ); removing later bars changes
nothing at all. Cast to float32 at the model boundary if memory matters.

Feature sets live in a registry so that a bundle can store the name of the set it was
trained with, and tests can register a deliberately leaking set to prove the lookahead
auditor catches it:

    register_feature_set(FeatureSet.from_expressions(
        "leaky", [(pl.col("close").shift(-1) / pl.col("close")).log().alias("next_ret")], lookback=0))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import polars as pl

from pipeline_core.errors import ConfigError, DataValidationError

DEFAULT_FEATURE_SET = "ohlcv_v1"
KEY_COLUMNS = ("timestamp", "symbol")
OHLCV_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class FeatureSet:
    """A named, causal feature set.

    `compute(bars)` receives the validated bars of every symbol (a LazyFrame sorted by
    symbol then timestamp) and returns a LazyFrame with the same rows in the same order
    that holds every name in `columns`; it must evaluate windows and shifts per symbol
    (`.over("symbol")`). `lookback` is the number of bars BEFORE bar t that the feature at
    t reads. For a plain list of per-symbol expressions use `FeatureSet.from_expressions`.
    """

    name: str
    columns: tuple[str, ...]
    lookback: int
    compute: Callable[[pl.LazyFrame], pl.LazyFrame]

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("FeatureSet.name is empty; give the feature set a name.")
        if not self.columns or len(set(self.columns)) != len(self.columns):
            raise ConfigError(
                f"FeatureSet {self.name!r} columns must be non-empty and unique, got {list(self.columns)}."
            )
        clashes = sorted(set(self.columns) & set(KEY_COLUMNS + OHLCV_VALUE_COLUMNS))
        if clashes:
            raise ConfigError(
                f"FeatureSet {self.name!r} columns {clashes} clash with OHLCV columns; rename them."
            )
        if isinstance(self.lookback, bool) or not isinstance(self.lookback, int) or self.lookback < 0:
            raise ConfigError(
                f"FeatureSet {self.name!r} lookback must be an int >= 0, got {self.lookback!r}."
            )

    @classmethod
    def from_expressions(cls, name: str, expressions: Sequence[pl.Expr], lookback: int) -> FeatureSet:
        """A set of aliased expressions, each written for one symbol's bars in time order."""
        exprs = tuple(expressions)
        columns = tuple(expr.meta.output_name() for expr in exprs)

        def compute(bars: pl.LazyFrame) -> pl.LazyFrame:
            return bars.with_columns(expr.over("symbol") for expr in exprs)

        return cls(name=name, columns=columns, lookback=lookback, compute=compute)


_REGISTRY: dict[str, FeatureSet] = {}


def register_feature_set(feature_set: FeatureSet, *, replace: bool = False) -> FeatureSet:
    """Add `feature_set` to the registry under its name and return it.

    Registering a different set under a taken name raises ConfigError unless `replace`.
    """
    existing = _REGISTRY.get(feature_set.name)
    if existing is not None and existing != feature_set and not replace:
        raise ConfigError(
            f"A feature set named {feature_set.name!r} is already registered; "
            "choose another name or pass replace=True."
        )
    _REGISTRY[feature_set.name] = feature_set
    return feature_set


def get_feature_set(name: str) -> FeatureSet:
    """The registered feature set called `name`; ConfigError listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"Unknown feature set {name!r}; known feature sets: {sorted(_REGISTRY)}. "
            "Register it with register_feature_set(...) before use."
        ) from None


def available_feature_sets() -> tuple[str, ...]:
    """Names of all registered feature sets, sorted."""
    return tuple(sorted(_REGISTRY))


def compute_features(
    ohlcv: pl.DataFrame, feature_set: str | FeatureSet = DEFAULT_FEATURE_SET
) -> pl.DataFrame:
    """Features for a validated OHLCV frame, row-aligned 1:1 with it.

    Returns `timestamp`, `symbol` and the feature set's columns as Float64. The first
    `lookback` rows of each symbol are null; every other value of the default set is finite.
    """
    fs = feature_set if isinstance(feature_set, FeatureSet) else get_feature_set(feature_set)
    features = feature_query(ohlcv, fs).collect()
    check_row_count(fs, features.height, ohlcv.height)
    return features


def feature_query(ohlcv: pl.DataFrame, fs: FeatureSet) -> pl.LazyFrame:
    """`compute_features` as a lazy query, for callers that add to it before one collect."""
    _check_columns(ohlcv, fs)
    return fs.compute(ohlcv.lazy()).select(*KEY_COLUMNS, *_masked_columns(fs))


def check_row_count(fs: FeatureSet, featured: int, given: int) -> None:
    """Raise ConfigError when a feature set's compute dropped or added rows."""
    if featured != given:
        raise ConfigError(
            f"FeatureSet {fs.name!r} returned {featured} rows for {given} input rows; "
            "its compute must keep every row in order."
        )


@lru_cache(maxsize=64)
def _masked_columns(fs: FeatureSet) -> tuple[pl.Expr, ...]:
    """The feature columns as Float64, null on each symbol's first `lookback` rows (built once per set)."""
    warm = pl.int_range(pl.len(), dtype=pl.Int64).over("symbol") < fs.lookback
    return tuple(
        pl.when(warm).then(None).otherwise(pl.col(name).cast(pl.Float64)).alias(name) for name in fs.columns
    )


def _check_columns(ohlcv: pl.DataFrame, fs: FeatureSet) -> None:
    """Raise DataValidationError when the frame lacks an OHLCV column."""
    missing = sorted(set(KEY_COLUMNS + OHLCV_VALUE_COLUMNS) - set(ohlcv.columns))
    if missing:
        raise DataValidationError(
            f"compute_features({fs.name!r}) needs a validated OHLCV frame; missing columns "
            f"{missing[:5]} (got {sorted(ohlcv.columns)[:5]}). Run pipeline_core.data.validate_ohlcv first."
        )


# ---------------------------------------------------------------------------------------
# The default set "ohlcv_v1", computed in three stages so shared pieces are computed once:
# per-bar inputs, per-symbol rolling aggregates, then element-wise features. Temporary
# columns start with "_". Every division is guarded by an exact test (an integer count of
# non-zero values, or a max/min comparison), so a flat window (zero range, zero volume,
# constant price) yields a neutral value instead of NaN/inf, identically for any history.

_RETURN_WINDOWS = (1, 5, 15, 30, 60)
_VOL_WINDOWS = (5, 15, 30, 60)
_VOLUME_WINDOWS = (5, 20, 60)
_MA_WINDOWS = (10, 30, 60)
_STOCH_WINDOWS = (14, 60)
_RSI_WINDOW = 14
_ZSCORE_WINDOW = 30
_PARKINSON_WINDOW = 30
_RANGE_WINDOW = 15
_MA_VOL_WINDOW = 60
_MICROS_PER_DAY = 86_400_000_000
_MICROS_PER_MINUTE = 60_000_000
_MINUTES_PER_DAY = 1440

# ret_60 reads close[t-60]; rvol_60 reads the returns t-59..t, i.e. the closes t-60..t.
_OHLCV_V1_LOOKBACK = max(max(_RETURN_WINDOWS), max(_VOL_WINDOWS), _MA_VOL_WINDOW)


def _per_symbol(expr: pl.Expr) -> pl.Expr:
    return expr.over("symbol")


def _roll_name(column: str, how: str, window: int) -> str:
    return f"_{column.lstrip('_')}_{how}{window}"


def _roll(column: str, how: str, window: int) -> pl.Expr:
    """Per-symbol rolling `how` (mean, sum, std, max, min) of `column`, as a temporary column."""
    rolled = getattr(pl.col(column), f"rolling_{how}")(window)
    return _per_symbol(rolled).alias(_roll_name(column, how, window))


def _rolled(column: str, how: str, window: int) -> pl.Expr:
    """The temporary column written by `_roll(column, how, window)`."""
    return pl.col(_roll_name(column, how, window))


def _ma_deviation(window: int) -> pl.Expr:
    """log close_t minus the mean log close of bars t-window+1..t, as column `_ma_dev{window}`.

    Written as a weighted sum of the last window-1 returns (weights 1..window-1, over
    window) rather than log close minus a rolling mean: no cancellation between two
    numbers near log(price), exactly 0 on a flat window, and the same bits for any amount
    of earlier history (polars computes weighted windows from scratch). Returns before a
    symbol's first bar count as 0; compute_features nulls those warm-up rows.
    """
    weights = [k / window for k in range(1, window)]
    deviation = pl.col("_r1z").rolling_sum(window - 1, weights=weights)
    return _per_symbol(deviation).alias(f"_ma_dev{window}")


def _guarded_div(num: pl.Expr, den: pl.Expr, *, valid: pl.Expr, neutral: float) -> pl.Expr:
    """num / den where `valid`, `neutral` where not, null where `valid` is null."""
    return pl.when(valid).then(num / den).when(valid.not_()).then(pl.lit(neutral)).otherwise(None)


def _input_steps() -> tuple[tuple[pl.Expr, ...], ...]:
    """Per-bar inputs in dependent steps: log close and bar range; the 1-bar return; its
    pieces (zero-filled, squared, gain, loss), relative range and non-zero flags."""
    ret = pl.col("_r1")
    return (
        (pl.col("close").log().alias("_lc"), (pl.col("high") - pl.col("low")).alias("_hl")),
        (_per_symbol(pl.col("_lc").diff()).alias("_r1"),),
        (
            ret.fill_null(0.0).alias("_r1z"),
            ret.pow(2).alias("_r1sq"),
            ret.clip(lower_bound=0.0).alias("_gain"),
            (-ret).clip(lower_bound=0.0).alias("_loss"),
            (ret != 0).cast(pl.Int32).alias("_r1nz"),
            (pl.col("_hl") / pl.col("close")).alias("_hlr"),
            (pl.col("_hl") != 0).cast(pl.Int32).alias("_hlnz"),
            (pl.col("volume") != 0).cast(pl.Int32).alias("_volnz"),
            (pl.col("high") / pl.col("low")).log().pow(2).alias("_lhl2"),
        ),
    )


def _rolling_expressions() -> tuple[pl.Expr, ...]:
    """Per-symbol rolling aggregates and shifts read by the features."""
    aggregates = [_per_symbol(pl.col("_lc").shift(w)).alias(f"_lc_lag{w}") for w in _RETURN_WINDOWS]
    for w in _VOL_WINDOWS:
        aggregates += [_roll("_r1sq", "mean", w), _roll("_r1nz", "sum", w)]
    # exact flatness tests: the RSI reads 14 returns; 30 closes are constant iff their 29 returns are 0
    aggregates += [_roll("_r1nz", "sum", w) for w in (_RSI_WINDOW, _ZSCORE_WINDOW - 1)]
    aggregates += [_ma_deviation(w) for w in sorted({*_MA_WINDOWS, _ZSCORE_WINDOW})]
    aggregates += [_roll("_gain", "mean", _RSI_WINDOW), _roll("_loss", "mean", _RSI_WINDOW)]
    aggregates += [_roll("_lhl2", "mean", _PARKINSON_WINDOW)]
    aggregates += [_roll("_hlr", "mean", _RANGE_WINDOW)]
    aggregates += [_roll("_hlnz", "sum", w) for w in sorted({_RANGE_WINDOW, _PARKINSON_WINDOW})]
    for w in _VOLUME_WINDOWS:
        aggregates += [_roll("volume", "mean", w), _roll("_volnz", "sum", w)]
    for w in _STOCH_WINDOWS:
        aggregates += [_roll("high", "max", w), _roll("low", "min", w)]
    aggregates += [_roll("_lc", "std", _ZSCORE_WINDOW)]
    return tuple(aggregates)


def _realized_vol(window: int) -> pl.Expr:
    """Root mean square of the last `window` 1-bar log returns; exactly 0 on a flat window.

    The RMS form (no mean subtraction) is the usual realized-volatility estimator; it is
    well conditioned because it is 0 only when every return in the window is 0.
    """
    moved = _rolled("_r1nz", "sum", window) > 0
    return pl.when(moved).then(_rolled("_r1sq", "mean", window).sqrt()).when(moved.not_()).then(0.0)


def _parkinson_vol(window: int) -> pl.Expr:
    """Parkinson high-low volatility over `window` bars; exactly 0 when every bar is flat."""
    moved = _rolled("_hlnz", "sum", window) > 0
    variance = _rolled("_lhl2", "mean", window) / (4.0 * math.log(2.0))
    return pl.when(moved).then(variance.clip(lower_bound=0.0).sqrt()).when(moved.not_()).then(0.0)


def _return_features() -> list[pl.Expr]:
    """Log returns, realized and Parkinson volatility, gap of the open to the previous close."""
    exprs = [(pl.col("_lc") - pl.col(f"_lc_lag{w}")).alias(f"ret_{w}") for w in _RETURN_WINDOWS]
    exprs += [_realized_vol(w).alias(f"rvol_{w}") for w in _VOL_WINDOWS]
    vol_long = _realized_vol(max(_VOL_WINDOWS))
    exprs += [
        _guarded_div(_realized_vol(min(_VOL_WINDOWS)), vol_long, valid=vol_long > 0, neutral=1.0).alias(
            f"rvol_ratio_{min(_VOL_WINDOWS)}_{max(_VOL_WINDOWS)}"
        ),
        _parkinson_vol(_PARKINSON_WINDOW).alias(f"parkinson_{_PARKINSON_WINDOW}"),
        (pl.col("open").log() - pl.col("_lc_lag1")).alias("gap"),
    ]
    return exprs


def _candle_features() -> list[pl.Expr]:
    """Bar range relative to close and candle shape as fractions of the range."""
    hl, close, open_ = pl.col("_hl"), pl.col("close"), pl.col("open")
    def shape(num: pl.Expr, neutral: float) -> pl.Expr:
        return _guarded_div(num, hl, valid=hl > 0, neutral=neutral)

    return [
        pl.col("_hlr").alias("hl_range"),
        _guarded_div(
            pl.col("_hlr"), _rolled("_hlr", "mean", _RANGE_WINDOW),
            valid=_rolled("_hlnz", "sum", _RANGE_WINDOW) > 0, neutral=1.0,
        ).alias(f"hl_range_ratio_{_RANGE_WINDOW}"),
        shape(close - open_, 0.0).alias("body"),
        shape(pl.col("high") - pl.max_horizontal(open_, close), 0.0).alias("upper_wick"),
        shape(pl.min_horizontal(open_, close) - pl.col("low"), 0.0).alias("lower_wick"),
        shape(close - pl.col("low"), 0.5).alias("close_location"),
    ]


def _volume_features() -> list[pl.Expr]:
    """Volume relative to its rolling mean; 1 when the whole window traded nothing."""
    exprs = [
        _guarded_div(
            pl.col("volume"), _rolled("volume", "mean", w), valid=_rolled("_volnz", "sum", w) > 0, neutral=1.0
        ).alias(f"volume_ratio_{w}")
        for w in _VOLUME_WINDOWS
    ]
    short, long = min(_VOLUME_WINDOWS), max(_VOLUME_WINDOWS)
    exprs.append(
        _guarded_div(
            _rolled("volume", "mean", short), _rolled("volume", "mean", long),
            valid=_rolled("_volnz", "sum", long) > 0, neutral=1.0,
        ).alias(f"volume_trend_{short}_{long}")
    )
    return exprs


def _oscillator_features() -> list[pl.Expr]:
    """RSI (SMA form, 0..100), stochastic %K (0..1), MA distance in vol units, z-score."""
    gain, loss = _rolled("_gain", "mean", _RSI_WINDOW), _rolled("_loss", "mean", _RSI_WINDOW)
    exprs = [
        _guarded_div(100.0 * gain, gain + loss, valid=_rolled("_r1nz", "sum", _RSI_WINDOW) > 0, neutral=50.0)
        .alias(f"rsi_{_RSI_WINDOW}")
    ]
    for w in _STOCH_WINDOWS:
        high, low = _rolled("high", "max", w), _rolled("low", "min", w)
        stoch = _guarded_div(pl.col("close") - low, high - low, valid=high > low, neutral=0.5)
        exprs.append(stoch.alias(f"stoch_k_{w}"))
    vol = _realized_vol(_MA_VOL_WINDOW)
    exprs += [
        _guarded_div(pl.col(f"_ma_dev{w}"), vol, valid=vol > 0, neutral=0.0).alias(f"ma_dist_{w}")
        for w in _MA_WINDOWS
    ]
    std = _rolled("_lc", "std", _ZSCORE_WINDOW)
    moved = (_rolled("_r1nz", "sum", _ZSCORE_WINDOW - 1) > 0) & (std > 0)
    zscore = _guarded_div(pl.col(f"_ma_dev{_ZSCORE_WINDOW}"), std, valid=moved, neutral=0.0)
    exprs.append(zscore.alias(f"zscore_{_ZSCORE_WINDOW}"))
    return exprs


def _time_of_day_features() -> list[pl.Expr]:
    """sin/cos of the minute of the UTC day, from the timestamp alone (any bar interval)."""
    micros = pl.col("timestamp").dt.epoch("us") % _MICROS_PER_DAY
    angle = micros.cast(pl.Float64) * (2.0 * math.pi / (_MINUTES_PER_DAY * _MICROS_PER_MINUTE))
    return [angle.sin().alias("tod_sin"), angle.cos().alias("tod_cos")]


def _ohlcv_v1_features() -> list[pl.Expr]:
    return _return_features() + _candle_features() + _volume_features() + _oscillator_features() + (
        _time_of_day_features()
    )


# Built once: constructing the ~100 expressions costs more than evaluating them on 160 bars.
_OHLCV_V1_STEPS: tuple[tuple[pl.Expr, ...], ...] = (
    *_input_steps(), _rolling_expressions(), tuple(_ohlcv_v1_features())
)


def _compute_ohlcv_v1(bars: pl.LazyFrame) -> pl.LazyFrame:
    """The default feature set on all symbols' bars (see the section comment above)."""
    for step in _OHLCV_V1_STEPS:
        bars = bars.with_columns(step)
    return bars


_DEFAULT = register_feature_set(
    FeatureSet(
        name=DEFAULT_FEATURE_SET,
        columns=tuple(expr.meta.output_name() for expr in _ohlcv_v1_features()),
        lookback=_OHLCV_V1_LOOKBACK,
        compute=_compute_ohlcv_v1,
    )
)
FEATURE_COLUMNS: tuple[str, ...] = _DEFAULT.columns
REQUIRED_LOOKBACK: int = _DEFAULT.lookback
