"""`make ui`: `dg dev` (webserver, daemon, code server) under a supervisor that stops it.

On Ctrl-C or SIGTERM this interrupts the whole process group, as a terminal's Ctrl-C does,
and waits for the webserver and the daemon (the processes that write to the instance) to
finish. `dg dev` itself then waits on its code server, which restarts its gRPC child
instead of exiting, so what is left is killed: the command returns within seconds and
leaves nothing behind. Anything still running after GRACE_S seconds is killed too.

    python scripts/serve_ui.py [dg dev options, e.g. -p 3001]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 8
DG = Path(sys.executable).with_name("dg")
STATEFUL = ("dagster_webserver", "dagster._daemon")  # module names in their command lines


def main(argv: list[str]) -> int:
    # A background job of a non-interactive shell starts with SIGINT ignored, and its children
    # would inherit that: dg dev gets the default disposition, so the interrupt below works.
    child = subprocess.Popen(
        [str(DG), "dev", "-w", "workspace.yaml", *argv], start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def stop(signum, _frame) -> None:
        _signal_group(child.pid, signal.SIGINT)
        deadline = time.monotonic() + GRACE_S
        while _stateful_running(child.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _stateful_running(child.pid):
            print(f"dg dev still running {GRACE_S}s after {signal.Signals(signum).name}: killing it", flush=True)
        _signal_group(child.pid, signal.SIGKILL)  # dg dev and its code server
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = child.wait()
    _signal_group(child.pid, signal.SIGKILL)
    return code


def _stateful_running(pgid: int) -> bool:
    """Whether the webserver or the daemon of the group `pgid` is still running."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            in_group = int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid
            cmdline = stat.with_name("cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue  # the process ended while being read
        if in_group and any(name in cmdline for name in STATEFUL):
            return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
