"""Before/after measurements of proposed hot-path changes, applied by monkeypatching.

    python -m benchmarks.experiments [--rows 1000000] [--repeats 5] [--json PATH]

pipeline_core is never edited: each experiment patches one function in this process
(or sets one environment variable in a child process), runs the same workload
alternately without and with the change, reports median wall and CPU time of both,
and checks that the outputs are identical. The proposals, with file and function:

- omp_passive: scoring processes with OMP_WAIT_POLICY=PASSIVE, and (max-accuracy) the
  torch models with 1 or 2 threads (`num_threads`, a saved model parameter). xgboost,
  lightgbm and torch each bring an OpenMP runtime whose idle threads spin after every
  parallel region; on an oversubscribed host they steal the cores the next stage
  needs, and torch's many small parallel regions (one per op of each recurrent step)
  wait on descheduled threads. Environment and bundle parameters only; the outcome
  depends on the host's load, so compare the load averages recorded with each run.
- batch_single_validation: batch.py, `BatchInference._scored_chunks`: concatenate
  the carried bars and the validated chunk without validating them again
  (`pipeline.predict` validates, sorts and checks duplicates of that frame anyway).
- fused_validation: data/schema.py, `_check_values`: evaluate the twelve checks as one
  `select(any())` and run the per-check `_reject` (with its messages) only when one fails.
- torch_finite_check: models/torch_base.py, `_check_finite`: test `isfinite(chunk.sum())`
  first (NaN/inf anywhere makes the sum non-finite) and fall back to the per-row test
  only then, so error messages are unchanged.
- torch_chunk_128 (not a code change): sequence models always evaluate chunks of
  `chunk_size` (256) rows, zero-padded, so 100 new bars cost 256 windows. `chunk_size`
  is saved in the bundle's architecture; this measures a bundle built with
  `model_params={"lstm": {"chunk_size": 128}, "gru": {...}}` by changing it on the
  loaded networks (outputs may differ in the last bits, which is why it is a
  training-time choice).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import polars as pl
import torch

from benchmarks.bundles import bundle_path
from benchmarks.data import market_file, one_symbol
from benchmarks.environment import DEFAULT_POLICY, POLICIES, policy_note, reexec_with_policy
from benchmarks.memory import REPO_ROOT
from benchmarks.timing import load_average, repeat_ms, timed
from pipeline_core import batch as batch_module
from pipeline_core.batch import BatchInference
from pipeline_core.data import schema, validate_ohlcv
from pipeline_core.models import torch_base
from pipeline_core.pipeline import InferencePipeline, model_key

RESULTS = Path(__file__).resolve().parent / "results"
MARKER = "BENCH_EXPERIMENT "


# ------------------------------------------------------------------------ patches
def _scored_chunks_validated_once(self, chunks, horizons, tally):
    """`BatchInference._scored_chunks` without re-validating carry + chunk."""
    carry = None
    lookback = self.pipeline.required_lookback
    for chunk in chunks:
        bars = validate_ohlcv(chunk)
        if carry is not None:
            batch_module._check_continues(carry, bars)
            bars = pl.concat([carry, bars])  # predict() validates and sorts this frame
        results = self.pipeline.predict(bars, horizon=horizons)
        carried = 0 if carry is None else carry.height
        for h in horizons:
            frame = results[h].to_frame()
            tally.add(frame, results[h].unscored.height - carried if h == horizons[0] else 0)
            yield frame
        carry = bars.group_by("symbol", maintain_order=True).tail(lookback).select(bars.columns)


_original_check_values = schema._check_values


def _check_values_fused(frame: pl.DataFrame) -> None:
    """One pass over the frame; the original checks (and messages) only when one fails."""
    bad = [pl.col("timestamp").is_null()]
    bad += [pl.col(n).is_null() | pl.col(n).is_nan() | pl.col(n).is_infinite() for n in schema.REQUIRED_COLUMNS]
    bad += [pl.col(n) <= 0 for n in schema.PRICE_COLUMNS]
    bad += [
        pl.col("high") < pl.max_horizontal("open", "close"),
        pl.col("low") > pl.min_horizontal("open", "close"),
        pl.col("volume") < 0,
        pl.struct("symbol", "timestamp").is_duplicated(),
    ]
    if any(frame.select(expr.any().alias(f"check_{i}") for i, expr in enumerate(bad)).row(0)):
        _original_check_values(frame)


_original_check_finite = torch_base._check_finite


def _check_finite_by_sum(chunk: torch.Tensor, rows, name: str = "X") -> None:
    if bool(torch.isfinite(chunk.sum())):
        return
    _original_check_finite(chunk, rows, name)


@contextlib.contextmanager
def patched(target: Any, attribute: str, value: Any) -> Iterator[None]:
    original = getattr(target, attribute)
    setattr(target, attribute, value)
    try:
        yield
    finally:
        setattr(target, attribute, original)


# -------------------------------------------------------------------- measuring
def compare(name: str, run: Callable[[], Any], patch: Callable[[], contextlib.AbstractContextManager],
            repeats: int, same: Callable[[Any, Any], bool]) -> dict[str, Any]:
    """Alternate baseline and patched runs; medians of both and whether outputs match."""
    before, after = [], []
    with patch():
        out_after = run()  # warm-up, and the patched output
    out_before = run()
    for _ in range(repeats):
        before.append(timed(run)[:2])
        with patch():
            after.append(timed(run)[:2])
    b, a = np.median(before, axis=0), np.median(after, axis=0)
    return {
        "experiment": name,
        "before_seconds": round(float(b[0]), 4), "after_seconds": round(float(a[0]), 4),
        "before_cpu_seconds": round(float(b[1]), 4), "after_cpu_seconds": round(float(a[1]), 4),
        "cpu_saving_pct": round(100 * (1 - a[1] / b[1]), 1),
        "wall_saving_pct": round(100 * (1 - a[0] / b[0]), 1),
        "identical_output": bool(same(out_before, out_after)),
        "repeats": repeats,
        "load_1min": load_average()[0],
    }


def _frames_equal(left: pl.DataFrame, right: pl.DataFrame) -> bool:
    return left.equals(right)


def batch_experiment(pipeline: InferencePipeline, path: Path, scratch: Path, repeats: int) -> dict[str, Any]:
    output = scratch / "experiment.predictions.parquet"

    def run() -> pl.DataFrame:
        BatchInference(pipeline).process_file(path, horizon=list(pipeline.config.horizons), output_path=output)
        return pl.read_parquet(output)

    result = compare("batch_single_validation", run,
                     lambda: patched(BatchInference, "_scored_chunks", _scored_chunks_validated_once),
                     repeats, _frames_equal)
    output.unlink(missing_ok=True)
    return result


def validation_experiments(pipeline: InferencePipeline, path: Path, repeats: int) -> list[dict[str, Any]]:
    bars = pl.read_parquet(path)
    window = one_symbol(path).slice(0, pipeline.required_lookback + 100)
    patch = lambda: patched(schema, "_check_values", _check_values_fused)  # noqa: E731
    results = [
        compare("fused_validation (validate_ohlcv, whole file)", lambda: validate_ohlcv(bars), patch,
                repeats, _frames_equal),
        compare("fused_validation (predict, 100 new bars)",
                lambda: pipeline.predict(window, horizon=20).probabilities, patch, repeats * 20,
                lambda x, y: np.array_equal(x, y)),
    ]
    try:  # the error path must be unchanged
        with patch():
            validate_ohlcv(bars.head(5).with_columns(pl.lit(-1.0).alias("close")))
    except ValueError as err:
        results[0]["error_message_checked"] = str(err)[:80]
    return results


def torch_experiment(pipeline: InferencePipeline, path: Path, rows: int, repeats: int) -> dict[str, Any]:
    inputs = pipeline.model_inputs(pl.read_parquet(path).head(rows))
    models = [m for m in pipeline.models.values() if m.is_sequence]

    def run() -> list[np.ndarray]:
        return [inputs.run(model, pipeline.config.batch_size) for model in models]

    patch = lambda: patched(torch_base, "_check_finite", _check_finite_by_sum)  # noqa: E731
    result = compare(f"torch_finite_check (sequence models, {inputs.n_scored:,} windows)", run, patch, repeats,
                     lambda x, y: all(np.array_equal(a, b) for a, b in zip(x, y)))
    return result


def torch_batch_experiment(pipeline: InferencePipeline, path: Path, scratch: Path, repeats: int) -> dict[str, Any]:
    """process_file of a small file with and without the cheaper finite check."""
    output = scratch / "experiment_torch.predictions.parquet"

    def run() -> pl.DataFrame:
        BatchInference(pipeline).process_file(path, horizon=list(pipeline.config.horizons), output_path=output)
        return pl.read_parquet(output)

    result = compare(f"torch_finite_check (process_file, {path.name})", run,
                     lambda: patched(torch_base, "_check_finite", _check_finite_by_sum), repeats, _frames_equal)
    output.unlink(missing_ok=True)
    return result


def chunk_experiments(pipeline: InferencePipeline, path: Path, rows: int, repeats: int,
                      chunk_size: int = 128) -> list[dict[str, Any]]:
    """predict on 100 new bars, and the sequence models on `rows` bars, with the
    networks' chunk_size lowered."""
    window = one_symbol(path).slice(0, pipeline.required_lookback + 100)
    models = [m for m in pipeline.models.values() if m.is_sequence]
    nets = [m.native for m in models]
    inputs = pipeline.model_inputs(pl.read_parquet(path).head(rows))

    @contextlib.contextmanager
    def smaller_chunks() -> Iterator[None]:
        original = [net.chunk_size for net in nets]
        for net in nets:
            net.chunk_size = chunk_size
        try:
            yield
        finally:
            for net, size in zip(nets, original):
                net.chunk_size = size

    same = lambda x, y: all(np.array_equal(a, b) for a, b in zip(x, y))  # noqa: E731
    return [
        compare(f"torch_chunk_{chunk_size} (predict, 100 new bars)",
                lambda: [pipeline.predict(window, horizon=20).probabilities], smaller_chunks, repeats * 20, same),
        compare(f"torch_chunk_{chunk_size} (sequence models, {inputs.n_scored:,} windows)",
                lambda: [inputs.run(model, pipeline.config.batch_size) for model in models], smaller_chunks,
                repeats, same),
    ]


def omp_experiment(bundle: Path, path: Path, repeats: int, torch_threads: tuple[int, ...] = ()) -> dict[str, Any]:
    """Latency and one process_file in child processes, with and without OMP_WAIT_POLICY=PASSIVE
    (and, for bundles with torch models, with each of `torch_threads` threads)."""
    variants = {"default": (None, None), "PASSIVE": ("PASSIVE", None)}
    for threads in torch_threads:
        variants[f"default, torch {threads} thread(s)"] = (None, threads)
        variants[f"PASSIVE, torch {threads} thread(s)"] = ("PASSIVE", threads)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in variants}
    for _ in range(repeats):
        for label, (policy, threads) in variants.items():
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if policy:
                env["OMP_WAIT_POLICY"] = policy
            command = [sys.executable, "-m", "benchmarks.experiments", "--child-omp", str(bundle), "--input", str(path)]
            if threads:
                command += ["--torch-threads", str(threads)]
            done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
            line = [x for x in done.stdout.splitlines() if x.startswith(MARKER)][-1]
            runs[label].append(json.loads(line.removeprefix(MARKER)))
    summary = {label: {key: round(float(np.median([run[key] for run in values])), 3) for key in values[0]}
               for label, values in runs.items()}
    return {"experiment": "omp_passive", "bundle": str(bundle), "median_of_runs": summary, "repeats": repeats,
            "load_1min": load_average()[0]}


def _omp_child(bundle: Path, path: Path, torch_threads: int | None) -> dict[str, float]:
    pipeline = InferencePipeline.load(bundle)
    for model in pipeline.models.values():
        if model.is_sequence and torch_threads:
            model.params["num_threads"] = torch_threads
    window = one_symbol(path).slice(0, pipeline.required_lookback + 100)
    wall, cpu = repeat_ms(lambda: pipeline.predict(window, horizon=20), 50)
    scratch = path.parent / f"omp_{os.getpid()}.parquet"
    seconds, cpu_seconds, result = timed(lambda: BatchInference(pipeline).process_file(
        path, horizon=list(pipeline.config.horizons), output_path=scratch))
    scratch.unlink(missing_ok=True)
    return {"predict_median_ms": float(np.median(wall)), "predict_cpu_median_ms": float(np.median(cpu)),
            "batch_seconds": seconds, "batch_cpu_seconds": cpu_seconds,
            "batch_rows_per_sec": result.n_samples / seconds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="bars in the batch file (default 1,000,000)")
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--torch-rows", type=int, default=50_000, help="bars scored by the torch experiment")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--omp-rows", type=int, default=50_000,
                        help="bars of the file scored by the omp experiment (default 50,000: with spinning "
                             "threads on a busy machine max-accuracy scores a few hundred rows/s)")
    parser.add_argument("--omp-repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="use the quick bundles")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--json", type=Path, default=None, help="default <results-dir>/experiments.json")
    parser.add_argument("--only", default="omp,batch,validation,torch,chunk", help="comma-separated experiments")
    parser.add_argument("--omp-wait-policy", choices=POLICIES, default=DEFAULT_POLICY,
                        help="OMP_WAIT_POLICY of this process (the omp experiment sets its children's itself)")
    parser.add_argument("--child-omp", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--torch-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_omp:
        print(MARKER + json.dumps(_omp_child(args.child_omp, args.input, args.torch_threads)), flush=True)
        return {}
    only = set(args.only.split(","))
    path = market_file(args.results_dir / "data", args.rows, args.symbols)
    bundles = args.results_dir / "bundles"
    fast = bundle_path(bundles, "low-latency", args.quick)
    accurate = bundle_path(bundles, "max-accuracy", args.quick)
    results: dict[str, Any] = {"load_average_start": load_average(),
                               "omp_wait_policy": policy_note(args.omp_wait_policy), "experiments": []}
    pipeline = InferencePipeline.load(fast)
    log = lambda message: print(f"[experiments load {load_average()[0]:.1f}] {message}", flush=True)  # noqa: E731
    if "omp" in only:
        small = market_file(args.results_dir / "data", args.omp_rows, args.symbols)
        for bundle, threads in ((fast, ()), (accurate, (1, 2))):
            log(f"omp_passive on {bundle}")
            results["experiments"].append(omp_experiment(bundle, small, args.omp_repeats, threads))
    if "batch" in only:
        log("batch_single_validation")
        results["experiments"].append(batch_experiment(pipeline, path, args.results_dir, args.repeats))
    if "validation" in only:
        log("fused_validation")
        results["experiments"] += validation_experiments(pipeline, path, args.repeats)
    if "torch" in only:
        log("torch_finite_check")
        slow = InferencePipeline.load(accurate)
        results["experiments"].append(torch_experiment(slow, path, args.torch_rows, args.repeats))
        small = market_file(args.results_dir / "data", args.omp_rows, args.symbols)
        results["experiments"].append(torch_batch_experiment(slow, small, args.results_dir, args.repeats))
    if "chunk" in only:
        log("torch_chunk_128")
        results["experiments"] += chunk_experiments(InferencePipeline.load(accurate), path, args.torch_rows,
                                                    args.repeats)
    results["load_average_end"] = load_average()
    target = args.json or args.results_dir / "experiments.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2))
    print(render(results))
    log(f"wrote {target}")
    return results


def render(results: dict[str, Any]) -> str:
    """The experiments as a text table (CPU times: what the change saves in work)."""
    rows = [("experiment", "before CPU s", "after CPU s", "CPU saved", "wall saved", "same output")]
    for e in results["experiments"]:
        if "median_of_runs" in e:
            base = e["median_of_runs"]["default"]
            for variant, figures in e["median_of_runs"].items():
                if variant == "default":
                    continue
                for key, cpu, wall in (("predict (ms)", "predict_cpu_median_ms", "predict_median_ms"),
                                       ("batch", "batch_cpu_seconds", "batch_seconds")):
                    rows.append((f"{Path(e['bundle']).parent.name} {key}: {variant} vs default",
                                 f"{base[cpu]:.4g}", f"{figures[cpu]:.4g}", f"{100 * (1 - figures[cpu] / base[cpu]):.0f}%",
                                 f"{100 * (1 - figures[wall] / base[wall]):.0f}%", "-"))
        else:
            rows.append((e["experiment"], f"{e['before_cpu_seconds']:.4g}", f"{e['after_cpu_seconds']:.4g}",
                         f"{e['cpu_saving_pct']:.0f}%", f"{e['wall_saving_pct']:.0f}%", str(e["identical_output"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return (f"Load average {results['load_average_start']} -> {results['load_average_end']}; "
            f"{results['omp_wait_policy']}\n" + "\n".join(lines))


if __name__ == "__main__":
    if "--child-omp" not in sys.argv:
        reexec_with_policy("benchmarks.experiments", sys.argv[1:])
    main()
