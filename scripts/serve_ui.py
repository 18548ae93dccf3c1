"""`make ui`: `dagster dev` (webserver, daemon, code server) under a supervisor that stops it.

`dagster dev` alone may keep its webserver running long after SIGINT or SIGTERM. This runs
it in its own process group, passes Ctrl-C or SIGTERM on to the whole group, and kills
what is left after GRACE_S seconds, so the command always returns and leaves nothing behind.

    python scripts/serve_ui.py [dagster dev options, e.g. -p 3001]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

GRACE_S = 20
DAGSTER = Path(sys.executable).with_name("dagster")


def main(argv: list[str]) -> int:
    child = subprocess.Popen([str(DAGSTER), "dev", "-w", "workspace.yaml", *argv], start_new_session=True)

    def stop(signum, _frame) -> None:
        _signal_group(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            print(f"dagster dev still running {GRACE_S}s after {signal.Signals(signum).name}: killing it", flush=True)
        _signal_group(child.pid, signal.SIGKILL)  # whatever of the group is left (webserver, daemon)
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = child.wait()
    _signal_group(child.pid, signal.SIGKILL)
    return code


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
