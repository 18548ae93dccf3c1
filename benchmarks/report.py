"""The targets of issue 4 part 6, and the results as text tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    profile: str | None  # None: every profile
    metric: str  # a key of `headline`
    bound: float
    kind: str  # "min": value >= bound; "max": value < bound (<= when `inclusive`)
    label: str
    inclusive: bool = False


TARGETS = (
    Target("low-latency", "batch_rows_per_sec", 100_000, "min", "batch >= 100,000 rows/s"),
    Target("low-latency", "predict_median_ms", 5.0, "max", "100-bar predict median < 5 ms"),
    Target("max-accuracy", "batch_rows_per_sec", 10_000, "min", "batch >= 10,000 rows/s"),
    Target("max-accuracy", "batch_rows_per_sec", 30_000, "min", "(aim) batch >= 30,000 rows/s"),
    Target("max-accuracy", "predict_median_ms", 100.0, "max", "100-bar predict median < 100 ms"),
    Target("max-accuracy", "predict_median_ms", 30.0, "max", "(aim) 100-bar predict median < 30 ms"),
    Target(None, "overhead_ratio", 1.3, "max", "end-to-end <= 1.3 x raw models", inclusive=True),
    Target(None, "memory_ratio", 1.5, "max", "peak RSS 4M rows < 1.5 x 1M rows"),
    Target(None, "checks_ratio", 0.5, "max", "checks <= 0.5 x scoring (range run)", inclusive=True),
)


def headline(result: dict[str, Any]) -> dict[str, float | None]:
    """The figures the targets and the summary table read, from one profile's results."""
    batch, raw, overhead = result.get("batch"), result.get("raw"), result.get("overhead") or {}
    latency, memory, checks = result.get("latency"), result.get("memory"), result.get("checks")
    return {
        "batch_rows_per_sec": batch["rows_per_sec"] if batch else None,
        "batch_rows_per_cpu_sec": batch["rows_per_cpu_sec"] if batch else None,
        "raw_rows_per_sec": raw["rows_per_sec"] if raw else None,
        "raw_rows_per_cpu_sec": raw["rows_per_cpu_sec"] if raw else None,
        "overhead_ratio": overhead.get("median_ratio"),
        "overhead_ratio_cpu": overhead.get("median_ratio_cpu"),
        "predict_median_ms": latency["predict"]["median_ms"] if latency else None,
        "predict_p95_ms": latency["predict"]["p95_ms"] if latency else None,
        "predict_cpu_median_ms": latency["predict"]["cpu_median_ms"] if latency else None,
        "single_median_ms": latency["predict_single"]["median_ms"] if latency else None,
        "single_p95_ms": latency["predict_single"]["p95_ms"] if latency else None,
        "memory_ratio": memory.get("ratio_peak") if memory else None,
        "checks_ratio": checks["checks_over_scoring"] if checks else None,
    }


def check_targets(profiles: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each applicable target with the measured value, met or not, and the margin."""
    checks = []
    for profile, result in profiles.items():
        figures = result["headline"]
        for target in TARGETS:
            if target.profile not in (None, profile) or figures.get(target.metric) is None:
                continue
            value = figures[target.metric]
            if target.kind == "min":
                met = value >= target.bound
            else:
                met = value <= target.bound if target.inclusive else value < target.bound
            # factor > 1 means better than the target by that factor, < 1 short of it
            factor = value / target.bound if target.kind == "min" else target.bound / value
            checks.append({"profile": profile, "target": target.label, "metric": target.metric, "value": value,
                           "bound": target.bound, "met": bool(met), "factor": round(factor, 2)})
    return checks


def _rows_label(rows: int) -> str:
    return f"{rows / 1e6:g}M" if rows >= 100_000 else f"{rows:,}"


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def summary_table(profiles: dict[str, dict[str, Any]]) -> str:
    header = ("profile", "batch rows/s", "raw rows/s", "e2e/raw", "(CPU: batch, raw rows/s; e2e/raw)",
              "predict100 med/p95 (CPU) ms", "single med/p95 ms", "peak (net) MiB per file", "peak ratio",
              "checks/scoring")
    rows = [header]
    for profile, result in profiles.items():
        f = result["headline"]
        memory = result.get("memory") or {}
        peaks = " / ".join(f"{_rows_label(int(rows))}: {run['peak_mib']:,.0f} ({run['net_mib']:,.0f})"
                           for rows, run in memory.get("runs", {}).items())
        rows.append((
            profile,
            _fmt(f["batch_rows_per_sec"]),
            _fmt(f["raw_rows_per_sec"]),
            _fmt(f["overhead_ratio"], 2),
            f"{_fmt(f['batch_rows_per_cpu_sec'])}, {_fmt(f['raw_rows_per_cpu_sec'])}; {_fmt(f['overhead_ratio_cpu'], 2)}",
            f"{_fmt(f['predict_median_ms'], 1)} / {_fmt(f['predict_p95_ms'], 1)} ({_fmt(f['predict_cpu_median_ms'], 1)})",
            f"{_fmt(f['single_median_ms'], 1)} / {_fmt(f['single_p95_ms'], 1)}",
            peaks or "-",
            _fmt(f["memory_ratio"], 2),
            _fmt(f["checks_ratio"], 2),
        ))
    return _grid(rows)


def targets_table(checks: list[dict[str, Any]]) -> str:
    rows = [("profile", "target", "measured", "status", "factor vs target")]
    for check in checks:
        digits = 2 if check["metric"].endswith("ratio") else (1 if check["metric"].endswith("ms") else 0)
        rows.append((check["profile"], check["target"], _fmt(check["value"], digits),
                     "met" if check["met"] else "MISSED", f"x{check['factor']:.2f}"))
    return _grid(rows)


def checks_table(profiles: dict[str, dict[str, Any]]) -> str:
    rows = [("profile: range run", "scoring s", "checks s (no_lookahead + parity + throughput)", "checks/scoring")]
    for profile, result in profiles.items():
        if "checks" in result:
            c = result["checks"]
            seconds = c["check_seconds"]
            rows.append((f"{profile}: {c['dates']} dates x {len(c['horizons'])} horizons, {c['bars_per_date']:,} bars/date",
                         _fmt(c["scoring_seconds"], 1),
                         f"{_fmt(c['checks_seconds'], 1)} ({' + '.join(_fmt(s, 2) for s in seconds.values())})",
                         _fmt(c["checks_over_scoring"], 2)))
    return _grid(rows)


def imports_line(imports: dict[str, Any]) -> str:
    timings = "; ".join(f"{name}: {t['median_s']:.2f} s median, {t['max_s']:.2f} s max of {t['n']}"
                        for name, t in imports.items() if isinstance(t, dict))
    return f"Import time in fresh processes (load {imports['load_1min']}): {timings}"


def stages_table(profile: str, breakdown: dict[str, Any]) -> str:
    scored = max(breakdown["scored_rows"], 1)
    rows = [(f"{profile}: stage ({breakdown['rows']:,} bars, {scored:,} scored)", "wall ms", "CPU ms", "CPU us/row")]
    for name, times in breakdown["stages"].items():
        rows.append((name, _fmt(times["ms"], 1), _fmt(times["cpu_ms"], 1), _fmt(times["cpu_ms"] * 1000 / scored, 2)))
    return _grid(rows)


def _grid(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [str(cell).ljust(w) if i == 0 else str(cell).rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
