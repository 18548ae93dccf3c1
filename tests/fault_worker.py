"""One operation of the fault tests, run as its own process so that it can die as a real one does.

    python tests/fault_worker.py OPERATION ROOT [KILL_AT]

ROOT holds `ohlcv/` (raw dates), `bundles/` (a store with LIVE) and `predictions/`. The
operation (`score`, `save`, `promote`, `retrain`) counts every filesystem change it makes
under ROOT (a Python audit hook sees files opened for writing, renames and replaces,
removals, folders created or removed; the atomic folder exchange is counted by hand) and,
when KILL_AT is k > 0, sends itself SIGKILL just before the k-th: no `finally`, no cleanup
runs, as with `kill -9`. Otherwise it finishes and prints the changes it made, one event
name per line. On stderr it says `armed` when the operation starts and `done in S s` when
it ends, so a parent may also kill it part-way, inside a native write no event sees.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import date
from pathlib import Path

CHANGES = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "shutil.rmtree", "atomic.exchange"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class KillSwitch:
    """Counts filesystem changes under `root`; SIGKILL just before change number `kill_at` (0: never)."""

    def __init__(self, root: Path, kill_at: int) -> None:
        self.root, self.kill_at, self.changes, self.armed = str(root), kill_at, [], False

    def arm(self) -> None:
        """Start counting: the operation's setup (imports, loading) is done. Says so on stderr,
        for a parent that kills after a delay instead."""
        self.armed, self.started = True, time.perf_counter()
        print("armed", file=sys.stderr, flush=True)

    def __call__(self, event: str, args: tuple) -> None:
        if not self.armed or not (event in CHANGES or (event == "open" and _writes(args))):
            return
        if event != "atomic.exchange" and not str(args[0]).startswith(self.root):
            return  # elsewhere (the system's temporary folder), or relative to a folder being removed
        self.changes.append(event)
        if len(self.changes) == self.kill_at:
            self.armed = False
            os.kill(os.getpid(), signal.SIGKILL)


def _writes(args: tuple) -> bool:
    _, mode, flags = args
    return any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & WRITE_FLAGS)


def command(operation: str, root: Path, kill_at: int = 0) -> list[str]:
    """The command line that runs `operation` on `root` in a new process."""
    return [sys.executable, __file__, operation, str(root), str(kill_at)]


def hidden(path: Path, root: Path) -> bool:
    """Whether `path` is, or is inside, a dot-named entry under `root` (a temporary)."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def visible_files(folder: Path) -> dict[str, bytes]:
    """The parquet files a dataset reader sees under `folder` (none hidden), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet")) if not hidden(p, folder)}


def _last_day(root: Path) -> date:
    return date.fromisoformat(sorted(root.glob("ohlcv/date=*"))[-1].name.removeprefix("date="))


def score(root: Path, switch: KillSwitch) -> None:
    from pipeline_core.batch import score_date
    from pipeline_core.bundle import BundleStore
    from pipeline_core.pipeline import InferencePipeline

    pipeline = InferencePipeline.load(BundleStore(root / "bundles").live_path())
    switch.arm()
    list(score_date(pipeline, root / "ohlcv", root / "predictions", _last_day(root), pipeline.config.horizons))


def save(root: Path, switch: KillSwitch) -> None:
    from pipeline_core.bundle import BundleStore
    from pipeline_core.pipeline import InferencePipeline

    store = BundleStore(root / "bundles")
    pipeline = InferencePipeline.load(store.path("pipeline_v2"))
    switch.arm()
    pipeline.save(store.path(store.next_version()))  # a new version
    pipeline.save(store.path("pipeline_v2"))  # over a bundle that is not live


def promote(root: Path, switch: KillSwitch) -> None:
    from pipeline_core.bundle import BundleStore

    switch.arm()
    BundleStore(root / "bundles").promote("pipeline_v2", force=True, reason="fault test")


def retrain(root: Path, switch: KillSwitch) -> None:
    from pipeline_core.bundle import BundleStore
    from pipeline_core.pipeline import InferenceConfig
    from pipeline_core.retraining import RetrainPolicy, retrain_and_gate
    from pipeline_core.training import TrainOptions

    config = InferenceConfig(model_names=["xgboost"], horizons=[10])
    options = TrainOptions(model_params={"xgboost": {"n_estimators": 20, "max_depth": 3, "n_jobs": 1}})
    policy = RetrainPolicy(window_days=5, holdout_days=2, audit_samples=3)
    switch.arm()
    retrain_and_gate(root / "ohlcv", BundleStore(root / "bundles"), _last_day(root), config, policy, options)


OPERATIONS = {"score": score, "save": save, "promote": promote, "retrain": retrain}


def main(operation: str, root: Path, kill_at: int) -> None:
    from pipeline_core import atomic

    switch = KillSwitch(root, kill_at)
    sys.addaudithook(switch)
    exchange = atomic.exchange

    def counted_exchange(first: Path, second: Path) -> bool:  # a ctypes call, which no audit event names
        switch("atomic.exchange", ())
        return exchange(first, second)

    atomic.exchange = counted_exchange
    OPERATIONS[operation](root, switch)
    switch.armed = False
    print(f"done in {time.perf_counter() - switch.started:.3f} s", file=sys.stderr)
    print("\n".join(switch.changes))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]).resolve(), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
