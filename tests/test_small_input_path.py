"""The small-input path (predict on a few new bars with their history, predict_single: the
numpy feature kernel) agrees with the batch path (the polars feature query), and both pass
the lookahead and warm-up audits."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from real_data import real_bars

from pipeline_core import inputs
from pipeline_core.batch import BatchInference
from pipeline_core.constants import CLASSES
from pipeline_core.data import validate_ohlcv
from pipeline_core.validation import LookaheadAuditor, audit_pipeline_lookahead, warmup_audit
from pipeline_core.validation.warmup import DEFAULT_TOLERANCE

HORIZON = 20
NEW_BARS = 30


@pytest.fixture(scope="module", params=["synthetic", "eurusd_1h"])
def bars(request, tiny_market) -> pl.DataFrame:
    """One symbol's last 400 bars: the tiny market's, or real hourly EURUSD (skipped if not cached)."""
    frame = tiny_market if request.param == "synthetic" else real_bars("eurusd")
    frame = validate_ohlcv(frame)
    return frame.filter(pl.col("symbol") == frame["symbol"][0]).tail(400)


def _batch_frame(pipeline, bars, tmp_path, monkeypatch) -> pl.DataFrame:
    """The batch path's predictions, its features from the polars query whatever the chunk size."""
    source = tmp_path / "bars.parquet"
    bars.write_parquet(source)
    with monkeypatch.context() as patched:
        patched.setattr(inputs, "SMALL_INPUT_ROWS", 0)
        result = BatchInference(pipeline, chunk_rows=150).process_file(source, HORIZON, tmp_path / "out.parquet")
    return pl.read_parquet(result.output_paths[0])


def test_small_input_predict_and_predict_single_equal_the_batch_path(tiny_pipeline, bars, tmp_path, monkeypatch):
    batch = _batch_frame(tiny_pipeline, bars, tmp_path, monkeypatch)
    kernel_calls = []
    kernel = inputs.ohlcv_v1_matrix
    monkeypatch.setattr(inputs, "ohlcv_v1_matrix", lambda *args: kernel_calls.append(1) or kernel(*args))
    probabilities = batch.select("prob_down", "prob_flat", "prob_up").to_numpy()
    lookback = tiny_pipeline.required_lookback
    small = tiny_pipeline.predict(bars.tail(lookback + NEW_BARS), horizon=HORIZON)
    assert small.n_samples == NEW_BARS
    np.testing.assert_allclose(small.probabilities, probabilities[-NEW_BARS:], atol=DEFAULT_TOLERANCE)
    for idx in (lookback, bars.height // 2, bars.height - 1):
        single = tiny_pipeline.predict_single(bars, idx, horizon=HORIZON)
        np.testing.assert_allclose(single, probabilities[idx - lookback], atol=DEFAULT_TOLERANCE)
    assert len(kernel_calls) == 4  # predict and the three predict_single calls used the numpy kernel


def test_small_input_path_passes_the_warmup_audit(tiny_pipeline, bars):
    # Each audited bar is scored from a window of exactly required_lookback bars: the small path.
    assert warmup_audit(tiny_pipeline, bars, HORIZON, n_samples=8).passed


def test_batch_and_small_input_paths_pass_the_lookahead_audit(tiny_pipeline, bars):
    lookback = tiny_pipeline.required_lookback
    assert audit_pipeline_lookahead(tiny_pipeline, bars, HORIZON, n_samples=4).passed

    def single_bars(data: pl.DataFrame) -> pl.DataFrame:
        """predict_single on every bar with enough history (rows are the input's last rows)."""
        probabilities = [tiny_pipeline.predict_single(data, idx, HORIZON) for idx in range(lookback, data.height)]
        return pl.DataFrame({
            "prediction": [int(CLASSES[p.argmax()]) for p in probabilities],
            "confidence": [float(p.max()) for p in probabilities],
        }, schema={"prediction": pl.Int64, "confidence": pl.Float64})

    recent = bars.tail(lookback + 12)
    assert LookaheadAuditor(single_bars, max_history=lookback).audit(recent, n_samples=4).passed


def test_predict_single_validates_the_rows_it_reads_and_only_those(tiny_pipeline, bars):
    idx = bars.height - 1
    broken_far = bars.with_columns(close=pl.when(pl.int_range(pl.len()) == 0).then(float("nan")).otherwise("close"))
    np.testing.assert_array_equal(tiny_pipeline.predict_single(broken_far, idx, HORIZON),
                                  tiny_pipeline.predict_single(bars, idx, HORIZON))
    broken_near = bars.with_columns(close=pl.when(pl.int_range(pl.len()) == idx - 3).then(-1.0).otherwise("close"))
    with pytest.raises(Exception, match=rf"'close' has non-positive prices: 1 rows .* row {idx - 3} "):
        tiny_pipeline.predict_single(broken_near, idx, HORIZON)
