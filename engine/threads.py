"""How many threads each native stage gets.

ggml (llama.cpp, whisper.cpp) splits every operation of a graph across its threads and waits at a barrier for
the slowest. A thread on a core that another process is using runs a fraction of the time, and every barrier
(hundreds per token) waits for it: on this 2-core machine, 2 threads with one busy process beside them decoded
at 0.76 tokens/s against 81 idle. So, just before each stage runs, the engine counts the cores that other
processes are using (from /proc/stat, less this process's own CPU time) and gives the stage the rest, at least
one. Idle, that is every core, as before; under load, fewer threads that do not wait for each other.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

WINDOW_SECONDS = 0.1  # the shortest reading: /proc/stat counts in 10 ms ticks per core
STALE_SECONDS = 2.0  # a reading started longer ago than this says little about now: start a fresh one
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _affinity() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _cgroup_quota() -> float | None:
    """Cores allowed by a cgroup CPU quota (a container's `--cpus`), or None when there is none."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a container's CPU quota."""
    quota = _cgroup_quota()
    cores = len(_affinity())
    return max(1, min(cores, math.ceil(quota))) if quota else cores


class CoreMonitor:
    """`free()`: how many of this process's cores other processes left free since the last reading; with
    `fixed`, always that many (an explicit `--threads N`)."""

    def __init__(self, fixed: int | None = None) -> None:
        self.cores = fixed or available_cores()
        self._cpus = set(_affinity())
        # under a quota the machine's other tenants are not ours to count: use every allowed core
        self.enabled = (fixed is None and _cgroup_quota() is None and self.cores > 1
                        and Path("/proc/stat").is_file())
        self._lock = threading.Lock()
        self._last: tuple[float, float, float] | None = None  # (wall, busy seconds on our CPUs, own CPU seconds)
        self.others = 0.0  # cores' worth of CPU other processes used in the last reading
        self._answer = self.cores  # free cores by that reading

    def _sample(self) -> tuple[float, float, float]:
        busy = 0
        with open("/proc/stat") as stat:
            for line in stat:
                if not line.startswith("cpu"):
                    break
                name, *fields = line.split()
                if name != "cpu" and int(name[3:]) in self._cpus:
                    values = [int(v) for v in fields[:8]]
                    busy += sum(values) - values[3] - values[4]  # all but idle and iowait
        own = os.times()  # with the children already waited for (the audio decoder)
        return time.monotonic(), busy / CLOCK_TICKS, own.user + own.system + own.children_user + own.children_system

    def mark(self) -> None:
        """Start a reading now unless a recent one is running, so that the work done before the next `free()`
        counts towards it."""
        if self.enabled:
            with self._lock:
                now = self._sample()
                if self._last is None or now[0] - self._last[0] > STALE_SECONDS:
                    self._last = now

    def free(self) -> int:
        """Cores free of other processes over the reading since `mark()` or the last answer. A reading shorter
        than WINDOW_SECONDS keeps the last answer, and a missing or stale one starts afresh with it (every core
        at first): a stage never waits to be measured."""
        if not self.enabled:
            return self.cores
        with self._lock:
            now = self._sample()
            if self._last is None or now[0] - self._last[0] > STALE_SECONDS:
                self._last = now
                return self._answer
            if now[0] - self._last[0] < WINDOW_SECONDS:
                return self._answer
            self.others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / (now[0] - self._last[0])
            self._last = now
            self._answer = max(1, min(self.cores, round(self.cores - self.others)))
            return self._answer


Threads = Callable[[], int]  # asked before each unit of native work: how many threads to use


def thread_source(threads: Threads | int) -> Threads:
    """A fixed count as a source that always gives it; a source (the engine's `CoreMonitor.free`) as it is."""
    return threads if callable(threads) else (lambda: threads)
