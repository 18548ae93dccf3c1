"""Peak memory of `process_file`, each measurement in a fresh interpreter.

The parent starts `python -m benchmarks.memory ...` once per measurement; the child
does one thing (import, load the bundle, score the file), then prints its own peak
resident set size. Peak RSS is `VmHWM` from /proc/self/status (Linux), not
`getrusage().ru_maxrss`: Linux carries ru_maxrss over fork + exec, so a child started
by a parent holding 900 MiB reports at least 900 MiB (RUSAGE_CHILDREN in the parent has
the same flaw), while VmHWM belongs to the new address space. ru_maxrss is recorded
too, and used where /proc is missing. Baselines: an idle interpreter that imported the
package and the model libraries, then loaded the bundle (its peak after each step);
every measuring process reports the same two steps before scoring, and its "net" figure
subtracts its own peak after loading the bundle.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MARKER = "BENCH_MEMORY "
REPO_ROOT = Path(__file__).resolve().parent.parent


def measure(bundle: Path, input_path: Path | None, output: Path, chunk_rows: int, batch_size: int) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return what it printed."""
    command = [sys.executable, "-m", "benchmarks.memory", "--bundle", str(bundle), "--output", str(output),
               "--chunk-rows", str(chunk_rows), "--batch-size", str(batch_size)]
    if input_path is not None:
        command += ["--input", str(input_path)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"Memory measurement {' '.join(command[3:])} failed:\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    return json.loads(lines[-1].removeprefix(MARKER))


def memory_profile(bundle: Path, files: dict[int, Path], output: Path, chunk_rows: int,
                   batch_size: int) -> dict[str, Any]:
    """Baselines of an idle interpreter, then peak RSS of process_file on each file, in MiB.

    Each process reports its peak after the imports, after loading the bundle and at the
    end; "net" is the end peak minus that same process's peak after loading the bundle.
    """
    idle = measure(bundle, None, output, chunk_rows, batch_size)
    runs = {}
    for rows, path in sorted(files.items()):
        run = measure(bundle, path, output, chunk_rows, batch_size)
        run["net_mib"] = round(run["peak_mib"] - run["bundle_mib"], 1)
        runs[str(rows)] = run
    output.unlink(missing_ok=True)
    result = {"baseline_imports_mib": idle["imports_mib"], "baseline_bundle_mib": idle["bundle_mib"],
              "chunk_rows": chunk_rows, "runs": runs}
    sizes = sorted(files)
    if len(sizes) >= 2:
        small, large = runs[str(sizes[0])], runs[str(sizes[-1])]
        result["ratio_peak"] = round(large["peak_mib"] / small["peak_mib"], 3)
        result["ratio_net"] = round(large["net_mib"] / small["net_mib"], 3) if small["net_mib"] > 0 else None
    return result


def _peak_mib() -> float:
    """Peak RSS of this process in MiB: VmHWM, or ru_maxrss without /proc (see the module doc)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return _maxrss_mib()


def _maxrss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _peaks() -> dict[str, float]:
    return {"peak_mib": _peak_mib(), "ru_maxrss_mib": _maxrss_mib()}


def _child(args: argparse.Namespace) -> dict[str, Any]:
    import pipeline_core.batch  # noqa: F401  (what a scoring process imports)
    from pipeline_core.models import MODEL_FAMILIES  # noqa: F401  (loads every model library)
    from pipeline_core.pipeline import InferencePipeline

    report = {"imports_mib": _peak_mib()}
    pipeline = InferencePipeline.load(args.bundle)
    report["bundle_mib"] = _peak_mib()
    if args.input is None:
        return report
    from pipeline_core.batch import BatchInference

    started = time.perf_counter()
    result = BatchInference(pipeline, args.batch_size, args.chunk_rows).process_file(
        args.input, horizon=list(pipeline.config.horizons), output_path=args.output
    )
    return {**report, **_peaks(), "seconds": round(time.perf_counter() - started, 2),
            "scored_rows": result.n_rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One peak-memory measurement (started by benchmarks.run).")
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--input", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--chunk-rows", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    print(MARKER + json.dumps(_child(parser.parse_args(argv))), flush=True)


if __name__ == "__main__":
    main()
