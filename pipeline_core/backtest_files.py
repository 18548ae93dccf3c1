"""A backtest report on disk: report.md, metrics.json, trades.parquet and three figures,
written into one folder atomically (all of them, or nothing)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from pipeline_core.atomic import atomic_folder
from pipeline_core.backtest import BacktestReport
from pipeline_core.errors import DataValidationError

SUMMARY_COLUMNS = ("realized", "pending", "accuracy", "log_loss", "prior_log_loss", "brier", "trades",
                   "open_trades", "hit_rate", "mean_return_bps", "total_return")


def write_backtest(report: BacktestReport, folder: str | Path) -> Path:
    """Write every file of the report into `folder`, which must not exist, be empty or hold
    an earlier backtest (then it is replaced as a whole)."""
    folder = Path(folder)
    check_output_folder(folder)
    with atomic_folder(folder) as staging:
        (staging / "report.md").write_text(report_markdown(report))
        (staging / "metrics.json").write_text(json.dumps(_finite(report.to_dict()), indent=2, default=str))
        report.trades.write_parquet(staging / "trades.parquet")
        (staging / "equity.png").write_bytes(equity_png(report))
        (staging / "rolling.png").write_bytes(rolling_png(report))
        (staging / "reliability.png").write_bytes(reliability_png(report))
    return folder


def check_output_folder(folder: Path) -> None:
    """DataValidationError unless `folder` can take a backtest report (see `write_backtest`)."""
    if folder.exists() and not folder.is_dir():
        raise DataValidationError(f"The output {folder} is a file: give a folder for the backtest report.")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "metrics.json").is_file():
        raise DataValidationError(
            f"The output folder {folder} is not empty and holds no earlier backtest (metrics.json): "
            "give a new or empty folder."
        )


def _finite(value: Any) -> Any:
    """JSON has no NaN: undefined figures become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


FIGURE_NOTES = """- `equity.png`: cumulative net return of the closed trades by exit time, pooled and per symbol.
- `rolling.png`: accuracy and log-loss over the last realized predictions (all symbols, in time order),
  beside the log-loss of the period's realized prior over the same rows.
- `reliability.png`: accuracy against mean confidence per confidence bin (the diagonal is calibrated)."""


def report_markdown(report: BacktestReport) -> str:
    """The report's tables as markdown, with the settings and what the figures mean."""
    sections = [
        f"# Backtest, horizon {report.horizon}: {report.period[0]} .. {report.period[1]}",
        _settings(report),
        *(f"Note: {note}" for note in report.notes),
        "## Per month", _markdown(report.by_month, "month"),
        "## Per symbol", _markdown(report.by_symbol, "symbol"),
        "## Per date", _markdown(report.by_date, "date"),
        "## Hit rate by confidence decile", _markdown(report.by_confidence),
        "## Figures", FIGURE_NOTES,
    ]
    return "\n\n".join(sections) + "\n"


def _settings(report: BacktestReport) -> str:
    summary, h = report.summary, report.horizon
    return (
        f"Bundle {', '.join(report.bundle_versions) or '?'}; {summary['rows']} predictions, {summary['realized']} "
        f"realized, {summary['pending']} pending (fewer than {h} bars after them yet). Strategy: long (short) on a "
        f"predicted +1 (-1) with confidence >= {report.threshold}, entry at the close of t, exit at the close of "
        f"t+{h}, {report.cost_bps} bps per trade for the round trip; every signal is one unit of notional, "
        f"overlapping trades are not netted; {summary['open_trades']} trades still open are not counted. The "
        "prior is the class frequencies of the realized labels (known only afterwards)."
    )


def _markdown(frame: pl.DataFrame, key: str | None = None) -> str:
    if frame.is_empty():
        return "(no realized predictions)"
    columns = [c for c in (key, *SUMMARY_COLUMNS) if c in frame.columns] if key else frame.columns
    with pl.Config(tbl_formatting="MARKDOWN", tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
                   tbl_rows=-1, tbl_cols=-1, float_precision=4, tbl_width_chars=1000):
        return str(frame.select(columns))


def equity_png(report: BacktestReport) -> bytes:
    """Cumulative net return by exit time: all trades, and each symbol's."""
    figure, axes = _figure()
    trades = report.trades
    for (symbol,), own in trades.group_by("symbol", maintain_order=True):
        axes.plot(own["exit_time"].to_numpy(), own["symbol_equity"].to_numpy(), linewidth=0.8, alpha=0.6, label=symbol)
    axes.plot(trades["exit_time"].to_numpy(), trades["equity"].to_numpy(), color="black", linewidth=1.6, label="all")
    axes.axhline(0.0, color="grey", linestyle="--", linewidth=0.8)
    _date_axis(axes)
    axes.set(xlabel="exit time", ylabel="cumulative net return (1 unit per trade)",
             title=f"Equity, h={report.horizon}, {len(trades)} trades, {report.cost_bps} bps per round trip")
    return _png(figure, axes, legend=trades.height > 0)


def rolling_png(report: BacktestReport) -> bytes:
    """Rolling accuracy and log-loss of the model beside the realized prior's log-loss."""
    figure, (accuracy, loss) = _figure(rows=2)
    rolling = report.rolling
    times = rolling["timestamp"].to_numpy()
    accuracy.plot(times, rolling["accuracy"].to_numpy(), label="model accuracy")
    accuracy.set(ylabel="accuracy",
                 title=f"Over the last {report.rolling_rows} realized predictions, h={report.horizon}")
    loss.plot(times, rolling["log_loss"].to_numpy(), label="model")
    loss.plot(times, rolling["prior_log_loss"].to_numpy(), label="prior (realized)", linestyle="--")
    loss.set(ylabel="log-loss", xlabel="time of the predicted bar")
    _date_axis(loss)
    accuracy.legend(loc="best", fontsize="small")
    return _png(figure, loss, legend=rolling.height > 0)


def reliability_png(report: BacktestReport) -> bytes:
    """Accuracy against mean confidence per confidence bin."""
    figure, axes = _figure(size=(5.5, 4.5))
    table = report.reliability
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    if table.height:
        axes.plot(table["mean_confidence"].to_numpy(), table["accuracy"].to_numpy(), marker="o", label="realized")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean top-label confidence", ylabel="accuracy",
             title=f"Reliability, h={report.horizon}, n={report.summary['realized']}")
    return _png(figure, axes, legend=True)


def _figure(rows: int = 1, size: tuple[float, float] = (8.0, 4.5)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0], size[1] * (1 if rows == 1 else 1.4)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=rows > 1)
    return figure, axes


def _date_axis(axes) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _png(figure, axes, legend: bool) -> bytes:
    if legend:
        axes.legend(loc="best", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
