"""The lookahead audit: a prediction at bar t must not change when the bars after t are removed.

`LookaheadAuditor(predict_func).audit(df)` scores the whole frame once (or is given those
predictions, e.g. a stored predictions file, as `full`), picks cut points
among the scored rows (the first scorable row, the last row, and random ones drawn with a
seed), and for each point t calls `predict_func` on the data cut just after t: every row
whose timestamp is <= t's, so t is the LAST bar of every symbol in the cut. The
prediction and confidence of every symbol at t must then equal the full run's exactly
(bit for bit). Because t is the last bar, a feature reading even one bar ahead
(`shift(-1)`) sees nothing in the cut run but a real bar in the full run, so a one-bar
leak changes the result (or leaves t unscored) and is reported.

`predict_func(frame)` receives rows of the audited frame, in its original order and type
(pandas or polars), and returns either
- a frame with `timestamp` (and `symbol`, needed for several symbols), `prediction` and
  `confidence` columns (such as `InferenceResult.to_frame()`): rows are matched by key; or
- a frame with only `prediction` and `confidence` (the spec's example), for single-symbol
  input sorted by time: its rows are the LAST rows of the input, rows without enough
  history being missing at the start.
Rows with a null prediction or confidence count as not scored.

Speed: by default each cut run gets the whole prefix up to t. With `max_history=h`
(e.g. `pipeline.required_lookback`) the cut run starts h bars before t instead. Scoring
from a different first bar could move the last bits of rolling features, so the cut run
is first compared with the full run: equal bit for bit, the bars after t changed nothing.
A bar that differs gets a reference run from the cut's first bar that extends h bars past
t (at least one), and the cut run is compared with that instead, bit for bit: only the
bars after t differ between the two. That finds any leak reaching up to h bars ahead (and
any whole-series leak such as a scaler fit on all rows); the default whole-prefix mode
also finds leaks reaching further.
Dependence on history beyond the declared lookback is the warm-up audit's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from pipeline_core.errors import ConfigError, DataValidationError, PipelineError
from pipeline_core.validation._frames import KEYS, input_keys, keyed_output, take_rows

COMPARED = ("prediction", "confidence")
MAX_SHOWN = 5

PredictFunc = Callable[[Any], Any]


@dataclass(frozen=True)
class LookaheadViolation:
    """One bar whose prediction depends on data after it.

    `cut_*` is None when the cut run did not score the bar (or raised: see `reason`).
    """

    timestamp: datetime
    symbol: str
    full_prediction: int | None
    cut_prediction: int | None
    full_confidence: float | None
    cut_confidence: float | None
    reason: str


@dataclass(frozen=True)
class LookaheadAuditResult:
    passed: bool
    violations: tuple[LookaheadViolation, ...]
    n_checked: int  # bars compared (all symbols at every cut point)
    n_cuts: int  # distinct cut timestamps, i.e. predict_func calls on cut data
    max_history: int | None = None

    def to_frame(self) -> pl.DataFrame:
        """The violations as a table (empty when the audit passed)."""
        schema = {
            "timestamp": pl.Datetime("us", "UTC"), "symbol": pl.String,
            "full_prediction": pl.Int64, "cut_prediction": pl.Int64,
            "full_confidence": pl.Float64, "cut_confidence": pl.Float64, "reason": pl.String,
        }
        rows = [astuple(v) for v in self.violations]
        return pl.DataFrame(rows, schema=schema, orient="row")

    def summary(self) -> str:
        if self.passed:
            return f"no lookahead: {self.n_checked} bars at {self.n_cuts} cut points unchanged"
        first = self.violations[0]
        return (
            f"{len(self.violations)} of {self.n_checked} bars change when later data is removed; "
            f"first {first.symbol} {first.timestamp}: {first.reason}"
        )


class LookaheadAuditor:
    """Checks that `predict_func`'s output at bar t never depends on bars after t.

    Parameters: `predict_func(frame) -> frame` (see the module docstring for the two
    accepted output shapes); `max_history`: bars of history each cut run needs, or None
    to give every cut run the whole prefix; `predict_at(frame, t)`: optionally, the same
    predictions for the bars at time t only (µs since the epoch), used for the cut and
    reference runs, which compare nothing else: it saves scoring the bars around t.
    """

    def __init__(
        self, predict_func: PredictFunc, *, max_history: int | None = None,
        predict_at: Callable[[Any, int], Any] | None = None,
    ) -> None:
        self.predict_func = predict_func
        self.max_history = max_history
        self.predict_at = predict_at

    def audit(self, df: Any, n_samples: int = 50, seed: int = 0, *, full: Any = None) -> LookaheadAuditResult:
        """Compare predictions on data cut just after `n_samples` points with the full run.

        `full`: `predict_func`'s own predictions on the whole of `df` (keyed, as it returns
        them), used instead of running it again: the cut points are drawn among them and the
        cut runs compared with them. With `max_history`, a bar that differs gets a reference
        run, whose verdict is the one that counts (so a `full` that is not `predict_func`'s
        own costs reference runs, not false violations).
        """
        self._check_params(n_samples)
        keys = input_keys(df)
        stamps = _epoch_us(keys["timestamp"])
        full = self._predict(df, keys) if full is None else _typed(keyed_output(full, keys, COMPARED))
        if full.height == 0:
            raise DataValidationError(
                f"predict_func scored none of the {keys.height} rows, so nothing can be "
                "audited: give it a frame with enough history."
            )
        timeline = _Timeline(keys)
        cut_times = np.unique(_epoch_us(cut_points(full, n_samples, seed)["timestamp"]))
        violations: list[LookaheadViolation] = []
        n_checked = 0
        full_stamps = _epoch_us(full["timestamp"])
        for t in cut_times:
            expected = full.filter(pl.Series(full_stamps == t))
            violations += self._check_cut(df, keys, stamps, timeline, int(t), expected)
            n_checked += expected.height
        return LookaheadAuditResult(
            passed=not violations, violations=tuple(violations), n_checked=n_checked,
            n_cuts=len(cut_times), max_history=self.max_history,
        )

    def _check_params(self, n_samples: int) -> None:
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
            raise ConfigError(
                f"n_samples={n_samples!r}: expected an int >= 2 (the first scorable row and "
                "the last row are always checked)."
            )
        if self.max_history is not None and (not isinstance(self.max_history, int) or self.max_history < 0):
            raise ConfigError(f"max_history={self.max_history!r}: expected None or an int >= 0.")

    def _predict(self, df: Any, keys: pl.DataFrame) -> pl.DataFrame:
        return _typed(keyed_output(self.predict_func(df), keys, COMPARED))

    def _check_cut(
        self, df: Any, keys: pl.DataFrame, stamps: np.ndarray, timeline: _Timeline,
        t: int, expected: pl.DataFrame,
    ) -> list[LookaheadViolation]:
        """Violations at time t (all symbols scored there in the full run)."""
        if self.max_history is None:
            rows = np.flatnonzero(stamps <= t)
            cut, error = self._run(take_rows(df, rows), keys[rows], t)
            if error is not None:
                return _errored(expected, f"predict_func raised on data cut after t: {error}")
            return compare_rows(expected, cut)
        start, end = timeline.window(t, self.max_history)
        rows = np.flatnonzero((stamps >= start) & (stamps <= t))
        cut, error = self._run(take_rows(df, rows), keys[rows], t)
        if error is None and not compare_rows(expected, cut):
            return []  # what every later bar gave is what none gives, from less history
        # The reference run, from the same first bar to bars past t, settles it bit for bit.
        reference, reference_error = cut, error
        if end > t:
            rows = np.flatnonzero((stamps >= start) & (stamps <= end))
            reference, reference_error = self._run(take_rows(df, rows), keys[rows], t)
        if reference_error is not None:
            return _errored(expected, f"the max_history window run raised: {reference_error}")
        problems = _unscored(expected, reference, "not scored from max_history bars of history")
        if error is not None:
            return problems + _errored(reference, f"predict_func raised on data cut after t: {error}")
        return problems + compare_rows(reference, cut)

    def _run(self, data: Any, keys: pl.DataFrame, t: int) -> tuple[pl.DataFrame, str | None]:
        """predict_func's rows at time t, or the message of the PipelineError it raised."""
        try:
            output = self.predict_func(data) if self.predict_at is None else self.predict_at(data, t)
        except PipelineError as err:
            return _empty_output(keys), f"{type(err).__name__}: {err}"
        out = _typed(keyed_output(output, keys, COMPARED))
        return out.filter(pl.Series(_epoch_us(out["timestamp"]) == t)), None


def audit_pipeline_lookahead(
    pipeline, df: Any, horizon: int, *, n_samples: int = 50, seed: int = 0, full_prefix: bool = False
) -> LookaheadAuditResult:
    """The lookahead audit of `pipeline.predict(df, horizon)`.

    Cut runs start `pipeline.required_lookback` bars before each point unless
    `full_prefix` (slower: every cut run gets the whole prefix).
    """
    history = None if full_prefix else pipeline.required_lookback
    auditor = LookaheadAuditor(pipeline_predict_func(pipeline, horizon), max_history=history,
                               predict_at=_predict_at(pipeline, [horizon]))
    return auditor.audit(df, n_samples=n_samples, seed=seed)


def pipeline_predict_func(pipeline, horizon: int) -> PredictFunc:
    """A keyed predict function for the auditors: `pipeline.predict(...).to_frame()`."""

    def predict(data: Any) -> pl.DataFrame:
        return pipeline.predict(data, horizon=horizon).to_frame()

    return predict


def cut_points(full: pl.DataFrame, n_samples: int, seed: int) -> pl.DataFrame:
    """Keys of the first and last scored rows plus random scored rows, `n_samples` in all."""
    ordered = full.select(KEYS).sort("timestamp", "symbol")
    n = ordered.height
    anchors = np.unique([0, n - 1])
    others = np.setdiff1d(np.arange(n), anchors)
    size = min(max(n_samples - len(anchors), 0), len(others))
    chosen = np.random.default_rng(seed).choice(others, size=size, replace=False)
    return ordered[np.sort(np.concatenate([anchors, chosen]))]


def compare_rows(reference: pl.DataFrame, cut: pl.DataFrame) -> list[LookaheadViolation]:
    """Violations where the cut run's rows differ from (or miss, or add to) the reference."""
    joined = reference.join(cut, on=list(KEYS), how="full", coalesce=True, suffix="_cut")
    violations = []
    for row in joined.sort(KEYS).iter_rows(named=True):
        full_pred, cut_pred = row["prediction"], row["prediction_cut"]
        full_conf, cut_conf = row["confidence"], row["confidence_cut"]
        if full_pred is None:
            reason = "scored on the cut data but not on the full data"
        elif cut_pred is None:
            reason = "not scored on data cut just after it: scoring it needs later bars"
        elif full_pred != cut_pred or not _same(full_conf, cut_conf):
            reason = "prediction or confidence changes when later bars are removed"
        else:
            continue
        violations.append(
            LookaheadViolation(row["timestamp"], row["symbol"], full_pred, cut_pred, full_conf, cut_conf, reason)
        )
    return violations


class _Timeline:
    """Per symbol, the sorted bar times (µs since epoch) of the audited frame."""

    def __init__(self, keys: pl.DataFrame) -> None:
        stamps = _epoch_us(keys["timestamp"])
        symbols = keys["symbol"].to_numpy()
        self.by_symbol = [np.sort(stamps[symbols == s]) for s in np.unique(symbols)]

    def window(self, t: int, history: int) -> tuple[int, int]:
        """(first, last) time such that every symbol has `history` bars before its last bar
        at or before t, and max(history, 1) bars after it (where the data has them)."""
        starts, ends = [], []
        for times in self.by_symbol:
            last = int(np.searchsorted(times, t, side="right")) - 1
            if last < 0:
                continue
            starts.append(times[max(last - history, 0)])
            ends.append(times[min(last + max(history, 1), len(times) - 1)])
        return int(min(starts)), int(max(ends))


def _unscored(expected: pl.DataFrame, reference: pl.DataFrame, reason: str) -> list[LookaheadViolation]:
    missing = expected.join(reference, on=list(KEYS), how="anti")
    return _errored(missing, reason)


def _errored(rows: pl.DataFrame, reason: str) -> list[LookaheadViolation]:
    return [
        LookaheadViolation(r["timestamp"], r["symbol"], r["prediction"], None, r["confidence"], None, reason)
        for r in rows.sort(KEYS).iter_rows(named=True)
    ]


def _empty_output(keys: pl.DataFrame) -> pl.DataFrame:
    return _typed(keys.select(KEYS).clear().with_columns(prediction=None, confidence=None))


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    """prediction as Int64 and confidence as Float64, so runs compare like for like."""
    return frame.with_columns(pl.col("prediction").cast(pl.Int64), pl.col("confidence").cast(pl.Float64))


def _same(a: float | None, b: float | None) -> bool:
    """Exact equality, NaN equal to NaN."""
    if a is None or b is None:
        return a is b
    return a == b or (a != a and b != b)


def _epoch_us(series: pl.Series) -> np.ndarray:
    return series.dt.epoch("us").to_numpy()


_HORIZON_TAG = "@h"


def audit_pipeline_lookahead_by_horizon(
    pipeline, df: Any, horizons: list[int], *, n_samples: int = 50, seed: int = 0, full_prefix: bool = False,
    scored: dict[int, pl.DataFrame] | None = None,
) -> dict[int, LookaheadAuditResult]:
    """The lookahead audit of every horizon in `horizons` from one set of cut runs.

    Each cut run is one `pipeline.predict(cut, horizons)`: features once, every horizon
    scored, and each horizon's prediction and confidence compared at every cut point. The
    cut points are drawn as `audit_pipeline_lookahead` draws them (the first and last
    scored bar and random ones), so each horizon is checked at the same number of cut
    times as on its own, for about 1/len(horizons) of the cut runs. A bar is scored at
    every horizon or at none, so each result's `n_checked` is its horizon's share.

    `scored` (horizon -> predictions of bars of `df` already made, e.g. the stored
    partition files, with timestamp, symbol, prediction and confidence) replaces the full
    run, which otherwise costs as much as scoring `df` again: the cut points are drawn
    among its rows and the cut runs compared with them (see `LookaheadAuditor.audit`).
    """
    horizons = [int(h) for h in horizons]
    history = None if full_prefix else pipeline.required_lookback
    auditor = LookaheadAuditor(_horizons_predict_func(pipeline, horizons), max_history=history,
                               predict_at=_predict_at(pipeline, horizons, tagged=True))
    full = None if scored is None else _tagged([scored[h] for h in horizons], horizons)
    combined = auditor.audit(df, n_samples=n_samples, seed=seed, full=full)
    return {h: _horizon_share(combined, h, len(horizons)) for h in horizons}


def _horizons_predict_func(pipeline, horizons: list[int]) -> PredictFunc:
    """Every horizon's rows in one keyed frame: the symbol key carries the horizon ("BTC@h20")."""

    def predict(data: Any) -> pl.DataFrame:
        results = pipeline.predict(data, horizon=horizons)
        return _tagged([results[h].to_frame() for h in horizons], horizons)

    return predict


def _predict_at(pipeline, horizons: list[int], tagged: bool = False) -> Callable[[Any, int], pl.DataFrame]:
    """Keyed predictions of the bars at time t only: features of the whole frame (a bar's
    features read its history), the models run on the bars at t."""

    def predict(data: Any, t: int) -> pl.DataFrame:
        inputs = pipeline.model_inputs(data)
        at_t = np.flatnonzero(inputs.timestamps.astype("datetime64[us]").view(np.int64) == t)
        frames = [pipeline.score_inputs(inputs, h, at_t).to_frame() for h in horizons]
        return _tagged(frames, horizons) if tagged else frames[0]

    return predict


def _tagged(frames: list[pl.DataFrame], horizons: list[int]) -> pl.DataFrame:
    """Each horizon's keyed predictions in one frame, the horizon in the symbol key."""
    return pl.concat([
        frame.select("timestamp", pl.col("symbol") + f"{_HORIZON_TAG}{h}", "prediction", "confidence")
        for frame, h in zip(frames, horizons)
    ])


def _horizon_share(combined: LookaheadAuditResult, horizon: int, n_horizons: int) -> LookaheadAuditResult:
    """One horizon's violations (symbols without the horizon tag) out of a combined audit."""
    tag = f"{_HORIZON_TAG}{horizon}"
    violations = tuple(
        LookaheadViolation(v.timestamp, v.symbol[: -len(tag)], *astuple(v)[2:])
        for v in combined.violations
        if v.symbol.endswith(tag)
    )
    return LookaheadAuditResult(
        passed=not violations, violations=violations, n_checked=combined.n_checked // n_horizons,
        n_cuts=combined.n_cuts, max_history=combined.max_history,
    )
