"""PNG of reference vs batch histograms for the most drifted features (matplotlib Agg)."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline_core.errors import ConfigError

if TYPE_CHECKING:
    from pipeline_core.monitoring.reference import DistributionSketch

_PLOT_BINS = 40
_COLUMNS = 3


def drift_histograms_png(report, top_k: int) -> bytes:  # a DriftReport, whose plot_png calls this
    """Render the report's `top_k` most drifted features; a note when there is nothing to plot."""
    if top_k < 1:
        raise ConfigError(f"top_k is {top_k}, expected at least 1")
    rows = report.ranked_features()[:top_k]
    if not rows or report.current is None or report.reference is None:
        figure = Figure(figsize=(6, 1.5))
        reason = report.skipped_reason or "no feature statistics"
        figure.text(0.5, 0.5, f"Nothing to plot: {reason}", ha="center", va="center", wrap=True)
        return _png(figure)
    n_cols = min(len(rows), _COLUMNS)
    n_rows = math.ceil(len(rows) / n_cols)
    figure = Figure(figsize=(4.2 * n_cols, 3.0 * n_rows), layout="constrained")
    index = {name: j for j, name in enumerate(report.reference.feature_names)}
    for k, row in enumerate(rows):
        axes = figure.add_subplot(n_rows, n_cols, k + 1)
        j = index[row.feature]
        _histograms(axes, report.reference.features[j], report.current[:, j])
        flag = "DRIFTED" if row.drifted else ("significant" if row.significant else "stable")
        axes.set_title(
            f"{row.feature} [{flag}]\nPSI {row.psi:.3f} (thr {row.psi_threshold:.3f}), KS {row.ks_stat:.3f}",
            fontsize=9,
        )
        axes.tick_params(labelsize=7)
    figure.suptitle(f"Reference vs batch ({report.batch_size} rows)", fontsize=10)
    return _png(figure)


def _histograms(axes, sketch: DistributionSketch, values: np.ndarray) -> None:
    low = min(float(np.quantile(values, 0.005)), sketch.quantile(0.005))
    high = max(float(np.quantile(values, 0.995)), sketch.quantile(0.995))
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, _PLOT_BINS + 1)
    width = np.diff(edges)
    reference_mass = np.diff(sketch.cdf(edges))
    current_mass = np.histogram(values, bins=edges)[0] / values.size
    axes.stairs(reference_mass / width, edges, fill=True, alpha=0.4, label="reference")
    axes.stairs(current_mass / width, edges, linewidth=1.5, label="batch")
    axes.legend(fontsize=7)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()
