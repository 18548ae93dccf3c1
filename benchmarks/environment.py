"""The OpenMP wait policy of benchmark processes.

xgboost, lightgbm and torch each load an OpenMP runtime, which reads OMP_WAIT_POLICY
once, when the library loads: it cannot be changed from inside a running process, so
the entry points re-run themselves with the requested policy before measuring.

The default is to inherit the environment, i.e. to measure what a scoring process on
this host gets. Whether PASSIVE (idle threads sleep) beats the default (idle threads
spin for a while) depends on the host's load (`--omp-wait-policy` measures either);
on a quiet machine spinning is faster for torch's many small parallel regions, on an
oversubscribed one spinning threads steal the cores the other stages need.
"""

from __future__ import annotations

import os
import sys

POLICIES = ("inherit", "passive", "active")
DEFAULT_POLICY = "inherit"


def wanted_policy(argv: list[str]) -> str:
    """The value of `--omp-wait-policy` in argv (without parsing anything else)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--omp-wait-policy="):
            return arg.split("=", 1)[1]
        if arg == "--omp-wait-policy" and i + 1 < len(argv):
            return argv[i + 1]
    return DEFAULT_POLICY


def reexec_with_policy(module: str, argv: list[str]) -> None:
    """Replace this process by `python -m module argv` with OMP_WAIT_POLICY set, unless it
    already is (or the policy is "inherit"). Call only from a `__main__` block."""
    policy = wanted_policy(argv)
    if policy not in POLICIES[1:] or os.environ.get("OMP_WAIT_POLICY", "").lower() == policy:
        return
    os.environ["OMP_WAIT_POLICY"] = policy.upper()
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])


def policy_note(requested: str) -> str:
    """What the figures were measured with, for the report."""
    actual = os.environ.get("OMP_WAIT_POLICY")
    if requested != "inherit" and (actual or "").lower() != requested:
        return f"OMP_WAIT_POLICY={actual!r} (requested {requested!r} applies only when run as a program)"
    return f"OMP_WAIT_POLICY={actual!r}" + (" (library default: spin, then sleep)" if actual is None else "")
