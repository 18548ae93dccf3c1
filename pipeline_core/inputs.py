"""From raw bars to what the models read: scaled feature rows and sequence windows.

Training and scoring both go through `featurize`, so they select and shape rows the same
way. Rows stay in (symbol, time) order. A row is scored when it has the feature lookback
behind it and, with sequence models, `sequence_length - 1` more featured rows of its own
symbol. Sequence windows are zero-copy views (`sliding_window_view`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from pipeline_core.features import FeatureSet, check_row_count, feature_query
from pipeline_core.features_numpy import SMALL_INPUT_ROWS, has_numpy_kernel, ohlcv_v1_matrix
from pipeline_core.scaling import scale

# Sequence windows gathered per model call: one copy of at most this many windows (60 MB
# at 60 bars x 31 features), a multiple of the networks' fixed chunk of rows.
SEQUENCE_GROUP_ROWS = 8192


@dataclass
class FeatureRows:
    """Unscaled features of every row with history, and which of them can be scored."""

    raw: np.ndarray  # (rows with features, n_features) float32, symbol blocks contiguous
    blocks: list[tuple[int, int]]  # per symbol: [start, end) of its rows in `raw`
    scored: np.ndarray  # indices into `raw` of the scored rows
    rows: np.ndarray  # positions of the scored rows in the validated bars
    sequence_length: int
    timestamps: np.ndarray  # of the scored rows, datetime64[us] (UTC)
    symbols: np.ndarray
    unscored: pl.DataFrame  # timestamp, symbol of rows without enough history

    @property
    def n_scored(self) -> int:
        return len(self.scored)

    @property
    def scores_every_row(self) -> bool:
        """Every featured row is scored (no sequence models): the scored rows are `raw` itself."""
        return len(self.scored) == len(self.raw)

    def scaled_by(self, scaler) -> ModelInputs:
        return ModelInputs(self, scale(scaler, self.raw))


@dataclass
class ModelInputs:
    """Feature rows with their scaled values: what the base models are run on."""

    rows: FeatureRows
    scaled: np.ndarray

    @property
    def n_scored(self) -> int:
        return self.rows.n_scored

    @property
    def timestamps(self) -> np.ndarray:
        return self.rows.timestamps

    @property
    def symbols(self) -> np.ndarray:
        return self.rows.symbols

    @property
    def unscored(self) -> pl.DataFrame:
        return self.rows.unscored

    @property
    def features(self) -> np.ndarray:
        """Unscaled features of the scored rows (what drift monitoring compares): a read-only
        view when every row is scored, else a copy."""
        return _read_only(self.rows.raw) if self.rows.scores_every_row else self.rows.raw[self.rows.scored]

    def tabular(self, positions: np.ndarray | None = None) -> np.ndarray:
        """(n, n_features) scaled rows of the scored rows (or a subset of them). Every row
        scored: a read-only view, not a copy per model and horizon (31 MB per 250k rows)."""
        if positions is None and self.rows.scores_every_row:
            return _read_only(self.scaled)
        scored = self.rows.scored if positions is None else self.rows.scored[positions]
        return self.scaled[scored]

    def _windows(self) -> np.ndarray:
        """(rows, sequence_length, n_features): a view of the window ending at every row."""
        return sliding_window_view(self.scaled, self.rows.sequence_length, axis=0).transpose(0, 2, 1)

    def sequences(self, positions: np.ndarray | None = None) -> list[np.ndarray]:
        """(n, sequence_length, n_features) windows ending at the scored rows, as views
        per symbol, or one gathered array for a subset of positions."""
        length, windows = self.rows.sequence_length, self._windows()
        if positions is not None:
            return [windows[self.rows.scored[positions] - length + 1]]
        return [windows[start : end - length + 1] for start, end in self.rows.blocks if end - start >= length]

    def gather(self, model, positions: np.ndarray) -> np.ndarray:
        """A model's input array for a subset of the scored rows (a copy)."""
        return self.sequences(positions)[0] if model.is_sequence else self.tabular(positions)

    def run(self, model, batch_size: int, positions: np.ndarray | None = None) -> np.ndarray:
        """A model's probabilities on the scored rows (or a subset of them). Sequence windows
        of every symbol are scored together, SEQUENCE_GROUP_ROWS at a time: the network pads
        each call to whole chunks, so a call per symbol would pad every symbol."""
        count = self.n_scored if positions is None else len(positions)
        if count == 0:
            return np.empty((0, 3))
        if not model.is_sequence:
            return model.predict_proba(self.tabular(positions))
        windows = self._windows()
        starts = (self.rows.scored if positions is None else self.rows.scored[positions]) - self.rows.sequence_length + 1
        return np.concatenate([
            model.predict_proba(windows[starts[i : i + SEQUENCE_GROUP_ROWS]])
            for i in range(0, len(starts), SEQUENCE_GROUP_ROWS)
        ])


def featurize(bars: pl.DataFrame, feature_set: FeatureSet, sequence_length: int, uses_sequences: bool) -> FeatureRows:
    """Features of validated `bars` (`validate_ohlcv`'s output) and which rows can be scored.

    The default set on fewer than SMALL_INPUT_ROWS bars is computed by the numpy kernel
    (`features_numpy`): polars' fixed cost per query would dominate. Otherwise one lazy
    query, collected once. The rows are then picked with numpy."""
    extra = sequence_length - 1 if uses_sequences else 0
    symbols = bars["symbol"].to_numpy()
    all_blocks = symbol_blocks(symbols)
    position = np.concatenate([np.arange(end - start) for start, end in all_blocks] or [np.empty(0, np.int64)])
    if has_numpy_kernel(feature_set) and bars.height < SMALL_INPUT_ROWS:
        matrix = ohlcv_v1_matrix(bars, all_blocks)
    else:
        # float32 and C order straight from polars: numpy then gathers rows, not values.
        featured = feature_query(bars, feature_set).select(pl.col(feature_set.columns).cast(pl.Float32)).collect()
        check_row_count(feature_set, featured.height, bars.height)
        matrix = featured.to_numpy(order="c")
    has_features = np.flatnonzero(position >= feature_set.lookback)
    blocks = symbol_blocks(symbols[has_features])
    scored = np.concatenate([np.arange(start + extra, end) for start, end in blocks] or [np.empty(0, np.int64)])
    rows = has_features[scored].astype(np.int64)
    timestamps = bars["timestamp"].to_numpy()  # naive UTC datetime64[us]
    return FeatureRows(
        raw=matrix[has_features].astype(np.float32, copy=False),
        blocks=blocks,
        scored=scored,
        rows=rows,
        sequence_length=sequence_length,
        timestamps=timestamps[rows],
        symbols=symbols[rows],
        unscored=_leading_rows(bars[["timestamp", "symbol"]], all_blocks, feature_set.lookback + extra),
    )


def _read_only(values: np.ndarray) -> np.ndarray:
    view = values.view()
    view.flags.writeable = False
    return view


def _leading_rows(frame: pl.DataFrame, blocks: list[tuple[int, int]], count: int) -> pl.DataFrame:
    """The first `count` rows of each symbol block, as slices (a gather costs a millisecond
    on a frame of any size)."""
    return pl.concat([frame.slice(start, min(count, end - start)) for start, end in blocks] or [frame.clear()])


def symbol_blocks(values: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each symbol's run in a symbol-sorted array."""
    if len(values) == 0:
        return []
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    ends = np.append(starts[1:], len(values))
    return list(zip(starts.tolist(), ends.tolist()))
