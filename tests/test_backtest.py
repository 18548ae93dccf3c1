"""Backtests over scored periods: realized labels, the strategy, the report and the CLI."""

from __future__ import annotations

import json
import math
import statistics
from datetime import date

import numpy as np
import polars as pl
import pytest

from pipeline_core.backtest import backtest_report, run_backtest
from pipeline_core.cli import main
from pipeline_core.constants import PROBABILITY_COLUMNS
from pipeline_core.data import (
    MarketSpec,
    generate_market,
    validate_ohlcv,
    write_daily_partitions,
)
from pipeline_core.labels import DEFAULT_VOL_WINDOW
from pipeline_core.realized import outcome_bars, partition_outcomes, realized_metrics, realized_outcomes

HORIZON = 10
COST_BPS = 1.5
THRESHOLD = 0.45
REPORT_FILES = {"report.md", "metrics.json", "trades.parquet", "equity.png", "rolling.png", "reliability.png"}


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    """Two symbols over a month end: 2024-03-30, 03-31 and 04-01, 150 bars a day."""
    return validate_ohlcv(generate_market(MarketSpec(start=date(2024, 3, 30), days=3, symbols=2, bars_per_day=150, seed=5)))


def _predictions(bars: pl.DataFrame, seed: int = 1) -> pl.DataFrame:
    """Random but valid predictions for every bar after the volatility window."""
    rows = bars.filter(pl.int_range(pl.len()).over("symbol") >= 30).select("timestamp", "symbol")
    probabilities = np.random.default_rng(seed).dirichlet([1.0, 1.0, 1.0], rows.height)
    return rows.with_columns(
        prediction=pl.Series(probabilities.argmax(axis=1) - 1, dtype=pl.Int8),
        **{name: probabilities[:, i] for i, name in enumerate(PROBABILITY_COLUMNS)},
        confidence=probabilities.max(axis=1),
        bundle_version=pl.lit("test"),
    )


def _slow_outcome(close: list, high: list, low: list, t: int) -> tuple[int, float] | None:
    """Label and long return of bar t, straight from the label's definition; None while pending."""
    if t + HORIZON >= len(close):
        return None
    returns = [math.log(close[i] / close[i - 1]) for i in range(t - DEFAULT_VOL_WINDOW + 1, t + 1)]
    width = statistics.stdev(returns) * math.sqrt(HORIZON)
    upper, lower = close[t] * (1 + width), close[t] * (1 - width)
    for k in range(t + 1, t + HORIZON + 1):
        up, down = high[k] >= upper, low[k] <= lower
        if up or down:
            return (0 if up and down else 1 if up else -1), close[t + HORIZON] / close[t] - 1
    return 0, close[t + HORIZON] / close[t] - 1


def _slow_per_date(bars: pl.DataFrame, predictions: pl.DataFrame) -> dict[date, dict[str, float]]:
    """Realized rows, hits, trades and net return per predicted date, one prediction at a time."""
    series = {s: {c: own[c].to_list() for c in ("timestamp", "close", "high", "low")}
              for (s,), own in bars.group_by("symbol")}
    totals: dict[date, dict[str, float]] = {}
    for row in predictions.iter_rows(named=True):
        own = series[row["symbol"]]
        outcome = _slow_outcome(own["close"], own["high"], own["low"], own["timestamp"].index(row["timestamp"]))
        day = totals.setdefault(row["timestamp"].date(), {"realized": 0, "hits": 0, "trades": 0, "total": 0.0})
        if outcome is None:
            continue
        label, move = outcome
        day["realized"] += 1
        day["hits"] += label == row["prediction"]
        if row["prediction"] != 0 and row["confidence"] >= THRESHOLD:
            day["trades"] += 1
            day["total"] += row["prediction"] * move - COST_BPS / 1e4
    return totals


def test_each_partitions_accuracy_and_strategy_return_match_a_slow_recomputation(bars):
    predictions = _predictions(bars)
    report = run_backtest(predictions, bars, HORIZON, threshold=THRESHOLD, cost_bps=COST_BPS)
    expected = _slow_per_date(bars, predictions)
    assert report.by_date["date"].to_list() == sorted(expected)
    for row in report.by_date.iter_rows(named=True):
        slow = expected[row["date"]]
        assert row["realized"] == slow["realized"] and row["trades"] == slow["trades"]
        assert row["accuracy"] == pytest.approx(slow["hits"] / slow["realized"])
        assert row["total_return"] == pytest.approx(slow["total"])
    assert report.by_month["month"].to_list() == ["2024-03", "2024-04"]
    march = [v for d, v in expected.items() if d.month == 3]
    assert report.by_month["total_return"][0] == pytest.approx(sum(v["total"] for v in march))
    trades = report.trades
    assert trades.height == sum(v["trades"] for v in expected.values())
    assert trades["exit_time"].is_sorted()
    assert trades["equity"][-1] == pytest.approx(sum(v["total"] for v in expected.values()))


def _shock(bars: pl.DataFrame, symbol: str, positions, columns, factor: float) -> pl.DataFrame:
    """`bars` with `columns` of the given positions (within `symbol`) multiplied by `factor`."""
    hit = (pl.col("symbol") == symbol) & pl.int_range(pl.len()).over("symbol").is_in(list(positions))
    return bars.with_columns(**{c: pl.when(hit).then(pl.col(c) * factor).otherwise(pl.col(c)) for c in columns})


def _outcome_at(bars: pl.DataFrame, predictions: pl.DataFrame, symbol: str, t: int) -> tuple:
    outcomes = realized_outcomes(predictions, bars, HORIZON, threshold=0.0)
    when = bars.filter(pl.col("symbol") == symbol)["timestamp"][t]
    row = outcomes.filter((pl.col("symbol") == symbol) & (pl.col("timestamp") == when)).row(0, named=True)
    return row["actual"], row["trade_return"]


@pytest.mark.parametrize("label", [-1, 0, 1])
def test_a_realized_label_reads_only_its_volatility_window_at_t_and_the_bars_up_to_t_plus_h(bars, label):
    predictions = _predictions(bars).with_columns(prediction=pl.lit(1, dtype=pl.Int8))  # every bar traded
    n = bars.filter(pl.col("symbol") == "SYN01").height
    labels = realized_outcomes(predictions, bars, HORIZON).filter(pl.col("symbol") == "SYN01")["actual"].to_list()
    first = n - len(labels)  # predictions start after the volatility window
    t = next(t for t in range(170, n) if labels[t - first] == label)  # its volatility window spans a day boundary
    before = _outcome_at(bars, predictions, "SYN01", t)
    # high/low at or before t, closes before the volatility window, anything after t+h: no effect
    unchanged = _shock(bars, "SYN01", range(t + 1), ["high"], 1.3)
    unchanged = _shock(unchanged, "SYN01", range(t + 1), ["low"], 0.7)
    unchanged = _shock(unchanged, "SYN01", range(t - DEFAULT_VOL_WINDOW), ["close", "open"], 1.1)
    unchanged = _shock(unchanged, "SYN01", range(t + HORIZON + 1, n), ["open", "high", "low", "close"], 0.5)
    assert _outcome_at(validate_ohlcv(unchanged.with_columns(high=pl.max_horizontal("open", "high", "close"),
                                                             low=pl.min_horizontal("open", "low", "close"))),
                       predictions, "SYN01", t) == before
    # a fall inside (t, t+h] decides the label; the close of t+h alone decides the return
    fallen = _shock(bars, "SYN01", range(t + 1, t + HORIZON + 1), ["open", "high", "low", "close"], 0.9)
    assert _outcome_at(fallen, predictions, "SYN01", t)[0] == -1
    exit_moved = _shock(bars, "SYN01", [t + HORIZON], ["close", "high"], 1.001)
    assert _outcome_at(exit_moved, predictions, "SYN01", t)[1] != pytest.approx(before[1], abs=1e-9)


def test_rows_without_h_later_bars_are_pending_and_counted_not_labelled(bars):
    predictions = _predictions(bars)
    report = run_backtest(predictions, bars, HORIZON, threshold=THRESHOLD, cost_bps=COST_BPS)
    last = bars.group_by("symbol").tail(HORIZON).select("timestamp", "symbol")
    pending = predictions.join(last, on=["timestamp", "symbol"])
    assert report.summary["pending"] == pending.height == 2 * HORIZON
    assert report.summary["realized"] == predictions.height - pending.height
    assert report.by_date["pending"].to_list() == [0, 0, 2 * HORIZON]
    traded = pending.filter((pl.col("prediction") != 0) & (pl.col("confidence") >= THRESHOLD)).height
    assert report.summary["open_trades"] == traded
    assert report.trades.join(pending, left_on=["entry_time", "symbol"], right_on=["timestamp", "symbol"]).is_empty()
    assert report.reliability["rows"].sum() == report.summary["realized"]


def test_the_report_from_partitions_on_disk_reads_the_bars_it_needs(bars, tmp_path):
    write_daily_partitions(bars, tmp_path / "ohlcv")
    predictions = _predictions(bars).filter(pl.col("timestamp").dt.date() == date(2024, 3, 31))
    read = outcome_bars(tmp_path / "ohlcv", date(2024, 3, 31), date(2024, 3, 31), HORIZON, DEFAULT_VOL_WINDOW)
    assert read.group_by("symbol").len()["len"].to_list() == [150 + DEFAULT_VOL_WINDOW + HORIZON] * 2
    from_disk = backtest_report(predictions, tmp_path / "ohlcv", HORIZON, threshold=THRESHOLD, cost_bps=COST_BPS)
    in_memory = run_backtest(predictions, bars, HORIZON, threshold=THRESHOLD, cost_bps=COST_BPS)
    assert from_disk.summary == in_memory.summary and from_disk.summary["pending"] == 0
    partition = partition_outcomes(predictions, tmp_path / "ohlcv", HORIZON, threshold=THRESHOLD, cost_bps=COST_BPS)
    assert realized_metrics(partition) == in_memory.summary


@pytest.fixture(scope="module")
def market_root(tmp_path_factory):
    """Raw partitions 2024-03-28..2024-04-02, two symbols of 120 bars a day."""
    root = tmp_path_factory.mktemp("market") / "ohlcv"
    write_daily_partitions(generate_market(MarketSpec(start=date(2024, 3, 28), days=6, symbols=2, bars_per_day=120, seed=4)), root)
    return root


def _backtest(bundle, root, out, *extra: str) -> int:
    return main(["backtest", "--bundle", str(bundle), "--data", str(root), "--start", "2024-03-30",
                 "--end", "2024-04-02", "--horizon", str(HORIZON), "--out", str(out), *extra])


def test_the_backtest_command_writes_the_report_files(tiny_bundle, market_root, tmp_path, capsys):
    out = tmp_path / "backtest"
    assert _backtest(tiny_bundle, market_root, out, "--cost-bps", "2", "--threshold", "0.4") == 0
    assert {p.name for p in out.iterdir()} == REPORT_FILES
    report = (out / "report.md").read_text()
    for text in ("## Per month", "| 2024-03 ", "| 2024-04 ", "## Per symbol", "| SYN01 ", "| all ", "2.0 bps"):
        assert text in report
    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert metrics["summary"]["rows"] == 4 * 2 * 120 and metrics["summary"]["pending"] == 2 * HORIZON
    assert [row["month"] for row in metrics["by_month"]] == ["2024-03", "2024-04"]
    trades = pl.read_parquet(out / "trades.parquet")
    assert trades.height == metrics["summary"]["trades"] and trades["equity"][-1] == pytest.approx(
        metrics["summary"]["total_return"])
    assert all((out / name).read_bytes()[:4] == b"\x89PNG" for name in REPORT_FILES if name.endswith(".png"))
    assert "realized" in capsys.readouterr().out
    assert _backtest(tiny_bundle, market_root, out) == 0  # an earlier backtest's folder is replaced
    assert "1.0 bps" in (out / "report.md").read_text()


@pytest.mark.parametrize(("change", "message"), [
    ({"--start": "2024-04-02", "--end": "2024-03-30"}, "is after --end"),
    ({"--horizon": "5"}, "Horizon 5 is not trained"),
    ({"--start": "2024-04-01", "--end": "2024-04-05"}, "No raw bars for 3 requested date"),
    ({"--out": "a_file"}, "is a file"),
    ({"--out": "busy"}, "is not empty and holds no earlier backtest"),
])
def test_bad_backtest_input_exits_2_with_one_error_line_and_writes_nothing(
    tiny_bundle, market_root, tmp_path, capsys, change, message
):
    (tmp_path / "a_file").write_text("keep")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    options = {"--bundle": str(tiny_bundle), "--data": str(market_root), "--start": "2024-03-30",
               "--end": "2024-04-02", "--horizon": str(HORIZON), "--out": "new", **change}
    options["--out"] = str(tmp_path / options["--out"])
    assert main(["backtest", *[x for pair in options.items() for x in pair]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "a_file").read_text() == "keep"


@pytest.mark.parametrize("option", [["--threshold", "1.5"], ["--cost-bps", "-1"], ["--start", "2024-13-01"]])
def test_backtest_options_out_of_range_are_refused_by_the_parser(tmp_path, option):
    args = {"--bundle": "b", "--data": "d", "--start": "2024-03-30", "--end": "2024-04-02", "--out": str(tmp_path / "o")}
    args.update(dict([option]))
    with pytest.raises(SystemExit) as raised:
        main(["backtest", *[x for pair in args.items() for x in pair]])
    assert raised.value.code == 2 and not (tmp_path / "o").exists()
