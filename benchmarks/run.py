"""Benchmark harness: batch throughput, raw-model throughput and pipeline overhead,
100-bar latency, and peak memory, per deployment profile, on generated data.

    make bench                                   # every section, every profile
    python -m benchmarks.run --quick             # small bundles, fast to build
    python -m benchmarks.run --profiles low-latency --sections batch,latency
    python -m benchmarks.run --omp-wait-policy passive   # idle OpenMP threads sleep

Sections per profile: batch (`process_file` rows/s), raw (the native models alone, and the
pipeline's ratio to them), latency (`predict` on 100 bars, `predict_single`), memory (peak
RSS per file size), stages (where a chunk's time goes) and checks (the scoring checks
against scoring in a Dagster range run); once per run: imports (fresh-process import time).

Bundles are reused from `benchmarks/results/bundles/<profile>/{full,quick}` (trained
there on first use); input files from `benchmarks/results/data`. Results are printed as
tables and written as JSON (default `benchmarks/results/bench.json`). The machine may be
shared: the load average is recorded with every section, timings are medians of
repeated runs, and CPU time is recorded beside wall time (see `benchmarks.timing`).
Figures are reported against the targets, never enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from benchmarks import report
from benchmarks.bundles import describe_sizes, ensure_bundle, model_sizes
from benchmarks.checks import checks_cost
from benchmarks.data import market_file, one_symbol
from benchmarks.environment import DEFAULT_POLICY, POLICIES, policy_note, reexec_with_policy
from benchmarks.imports import import_times
from benchmarks.latency import latency
from benchmarks.memory import memory_profile
from benchmarks.stages import stage_breakdown
from benchmarks.throughput import throughput
from benchmarks.timing import load_average
from pipeline_core.pipeline import InferencePipeline
from pipeline_core.profiles import PROFILES

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("batch", "raw", "latency", "memory", "stages", "checks", "imports")
LIBRARIES = ("numpy", "polars", "pyarrow", "xgboost", "lightgbm", "catboost", "torch", "scikit-learn")
# Threading knobs that change the figures; recorded with the results.
THREAD_VARIABLES = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT", "POLARS_MAX_THREADS", "MKL_NUM_THREADS")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Throughput, latency and memory of pipeline_core per deployment profile.",
    )
    parser.add_argument("--profiles", default=None,
                        help=f"comma-separated profiles (default: all, {','.join(PROFILES)}; none with --bundle)")
    parser.add_argument("--bundle", type=Path, action="append", default=[],
                        help="benchmark this saved bundle too (repeatable; named by its folder)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--rows", type=int, default=1_000_000, help="bars in the batch file (default 1,000,000)")
    parser.add_argument("--symbols", type=int, default=20, help="symbols in the generated files (default 20)")
    parser.add_argument("--memory-rows", default="1000000,4000000",
                        help="comma-separated file sizes for peak memory (default 1000000,4000000)")
    parser.add_argument("--quick", action="store_true",
                        help="train missing bundles with few boosting rounds / epochs (smaller models)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="process_file runs and raw-model passes per profile, alternated (median; default 3)")
    parser.add_argument("--latency-repeats", type=int, default=100, help="timed predict calls (default 100)")
    parser.add_argument("--new-bars", type=int, default=100, help="bars scored per latency call (default 100)")
    parser.add_argument("--chunk-rows", type=int, default=250_000, help="BatchInference chunk_rows (default 250,000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="BatchInference batch_size (default 1000)")
    parser.add_argument("--check-days", type=int, default=10,
                        help="dates of --symbols symbols scored with their checks in the checks section (default 10)")
    parser.add_argument("--stage-rows", type=int, default=None,
                        help="bars in the stage breakdown (default: one chunk, --chunk-rows)")
    parser.add_argument("--omp-wait-policy", choices=POLICIES, default=DEFAULT_POLICY,
                        help="OMP_WAIT_POLICY of the measured processes (default inherit: as this shell has it; "
                             "passive: idle OpenMP threads sleep instead of spinning)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="bundles, data and scratch files")
    parser.add_argument("--json", type=Path, default=None, help="JSON output (default <results-dir>/bench.json)")
    args = parser.parse_args(argv)
    if args.profiles is None:
        args.profiles = "" if args.bundle else ",".join(PROFILES)
    args.profiles = [p for p in args.profiles.split(",") if p]
    args.sections = [s for s in args.sections.split(",") if s]
    args.memory_rows = [int(r) for r in args.memory_rows.split(",") if r]
    unknown = sorted(set(args.profiles) - set(PROFILES)) + sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown profile(s) or section(s) {unknown}: profiles {list(PROFILES)}, sections {list(SECTIONS)}")
    args.json = args.json or args.results_dir / "bench.json"
    args.stage_rows = args.stage_rows or args.chunk_rows
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load_average()[0]:.1f}] {message}", flush=True)


def benchmark_profile(name: str, pipeline: InferencePipeline, bundle: Path, args, files: dict[str, Any]) -> dict[str, Any]:
    """Every requested section for one bundle."""
    result: dict[str, Any] = {}
    scratch = args.results_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    output = scratch / f"{name}.predictions.parquet"
    if "latency" in args.sections:
        log(f"{name}: latency ({args.latency_repeats} calls)")
        result["latency"] = latency(pipeline, files["symbol"], args.new_bars, args.latency_repeats)
    batch, raw = "batch" in args.sections, "raw" in args.sections
    if batch or raw:
        what = " and ".join(["process_file"] * batch + ["the raw native models"] * raw)
        log(f"{name}: {what} on {files['batch'].name}, x{args.repeats}{' alternately' if batch and raw else ''}")
        result.update(throughput(pipeline, files["batch"], output, args.repeats, args.batch_size, args.chunk_rows,
                                 batch=batch, raw=raw))
    if "stages" in args.sections:
        log(f"{name}: stage breakdown on {args.stage_rows:,} bars")
        result["stages"] = stage_breakdown(pipeline, files["batch"], args.stage_rows, args.repeats, scratch)
        window = files["symbol"].slice(0, pipeline.required_lookback + args.new_bars)
        log(f"{name}: stage breakdown of one predict on {window.height} bars (latency input)")
        result["latency_stages"] = stage_breakdown(pipeline, window, window.height, args.latency_repeats, scratch,
                                                   sequence_repeats=args.latency_repeats)
    if "checks" in args.sections:
        log(f"{name}: scoring and its checks in a Dagster range run of {args.check_days} dates")
        result["checks"] = checks_cost(pipeline, scratch, args.check_days, args.symbols)
    if "memory" in args.sections:
        log(f"{name}: peak memory on {', '.join(f'{r:,}' for r in args.memory_rows)} rows (fresh processes)")
        result["memory"] = memory_profile(bundle, files["memory"], output, args.chunk_rows, args.batch_size)
    result["headline"] = report.headline(result)
    return result


def _input_files(args) -> dict[str, Any]:
    data = args.results_dir / "data"
    files: dict[str, Any] = {}
    if set(args.sections) & {"batch", "raw", "stages", "latency"}:
        files["batch"] = market_file(data, args.rows, args.symbols)
        files["symbol"] = one_symbol(files["batch"])
    if "memory" in args.sections:
        files["memory"] = {rows: market_file(data, rows, args.symbols) for rows in args.memory_rows}
    return files


def _environment(args) -> dict[str, Any]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": policy_note(args.omp_wait_policy),
        "thread_environment": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "versions": versions,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def _bundles(args):
    """(name, bundle path, pipeline, info) for each profile and each --bundle."""
    root = args.results_dir / "bundles"
    for profile in args.profiles:
        pipeline, info = ensure_bundle(root, profile, args.quick, log=log)
        yield profile, Path(info["path"]), pipeline, info
    for path in args.bundle:
        pipeline = InferencePipeline.load(path)
        yield path.name, path, pipeline, {"path": str(path), "models": model_sizes(pipeline),
                                          "required_lookback": pipeline.required_lookback}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.perf_counter()
    output: dict[str, Any] = {"environment": _environment(args), "load_average": {"start": load_average()}}
    log(f"load average {load_average()} on {os.cpu_count()} cores; preparing input files")
    files = _input_files(args)
    if "imports" in args.sections:
        log("import time in fresh processes")
        output["imports"] = import_times()
    profiles: dict[str, Any] = {}
    for name, path, pipeline, info in _bundles(args):
        log(f"{name}: {describe_sizes(info['models'])}")
        profiles[name] = {"bundle": info, "load_average_before": load_average(),
                          **benchmark_profile(name, pipeline, path, args, files)}
        profiles[name]["load_average_after"] = load_average()
    output.update(profiles=profiles, targets=report.check_targets(profiles))
    output["load_average"]["end"] = load_average()
    output["seconds"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(output, indent=2, default=str))
    print(render(output))
    log(f"wrote {args.json} in {output['seconds']:.0f} s")
    return output


def render(output: dict[str, Any]) -> str:
    """The summary, targets and stage tables as text."""
    load = output["load_average"]
    profiles = output["profiles"]
    parts = [
        f"Load average (1/5/15 min) at start {load['start']}, at end {load['end']}, "
        f"on {output['environment']['cpu_count']} cores (shared machine: read timings against this); "
        f"{output['environment']['omp_wait_policy']}.",
        "",
        report.summary_table(profiles),
    ]
    for name, result in profiles.items():
        parts.append(f"  {name}: {describe_sizes(result['bundle']['models'])}; "
                     f"load during run {result['load_average_before'][0]} -> {result['load_average_after'][0]}")
    if "imports" in output:
        parts += ["", report.imports_line(output["imports"])]
    if any("checks" in result for result in profiles.values()):
        parts += ["", report.checks_table(profiles)]
    if output["targets"]:
        parts += ["", report.targets_table(output["targets"])]
    for name, result in profiles.items():
        for key in ("stages", "latency_stages"):
            if key in result:
                parts += ["", report.stages_table(name, result[key])]
    return "\n".join(parts)


if __name__ == "__main__":
    reexec_with_policy("benchmarks.run", sys.argv[1:])
    main()
