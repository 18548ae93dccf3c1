"""How many CPUs other processes want right now, so a model does not ask for those too.

On a 2-core host, an OpenMP pool of 2 threads sharing a core with another busy process
spends its time waiting at barriers: measured on the max-accuracy bundle, one busy
process beside the scorer cut batch throughput from 18,100 to 4,200 rows/s with 2
threads, while 1 thread kept 13,300. Linux only; elsewhere nothing is counted.
"""

from __future__ import annotations

from pathlib import Path


def cpus_busy_elsewhere() -> int:
    """Runnable tasks of other processes at this instant: the kernel's count of runnable
    tasks (/proc/loadavg) minus this process's own running threads."""
    try:
        runnable = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        own = sum(_running(stat) for stat in Path("/proc/self/task").glob("*/stat"))
    except (OSError, ValueError, IndexError):
        return 0
    return max(runnable - own, 0)


def _running(stat: Path) -> bool:
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "R"  # the state follows "(comm)"
    except (OSError, IndexError):  # the thread ended meanwhile
        return False
