"""Shared measuring helpers for the benches (issue 15, item 6: benches that tell the truth).

Every bench uses these so the figures mean the same thing everywhere:

* time is wall clock with the cyclic garbage collector **on** (as a user's process runs);
  the same call is also timed with the collector paused, labelled as such, because that is
  what the earlier figures reported and the gap shows what the collector costs;
* each timing is the best and the median of N runs (``gc.collect()`` before each run);
* every figure is set against a *floor* measured in the same process (``json.loads`` /
  ``json.dumps`` of the same bytes for the codec, the source's own ``snapshot()`` for the
  runner), so a loaded machine moves both sides;
* every size runs in a **fresh subprocess** (:func:`run_sizes`), so the process's peak RSS
  (``ru_maxrss``, a whole-process high-water mark) belongs to that size alone; the peak is
  reported above a baseline taken in the child before the measured work starts
  (:func:`rss_now_mib`, the current RSS from ``/proc/self/statm``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_SIZES = (10_000, 100_000, 200_000)
QUICK_SIZES = (10_000,)
MIB = 1024 * 1024
_RESULT = "BENCH-RESULT "


@dataclass(frozen=True)
class Timing:
    """The best and median of repeated runs of one call, in seconds."""

    best: float
    median: float
    runs: int

    def as_dict(self) -> dict[str, float]:
        """The figures as a JSON-able dict."""
        return {"best": self.best, "median": self.median, "runs": self.runs}


def time_call(fn: Callable[[], object], repeat: int, *, gc_paused: bool = False) -> Timing:
    """Time ``fn`` ``repeat`` times; the collector stays on unless ``gc_paused``.

    Args:
        fn: the call to time.
        repeat: how many runs (at least 1).
        gc_paused: pause the cyclic garbage collector while timing (as ``timeit`` does).

    Returns:
        The best and the median wall time.
    """
    samples = []
    for _ in range(max(1, repeat)):
        gc.collect()
        if gc_paused:
            gc.disable()
        try:
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return Timing(min(samples), statistics.median(samples), len(samples))


def time_both(fn: Callable[[], object], repeat: int) -> tuple[Timing, Timing]:
    """Time ``fn`` with the collector on, then with it paused: ``(gc_on, gc_paused)``."""
    return time_call(fn, repeat), time_call(fn, repeat, gc_paused=True)


def rss_now_mib() -> float:
    """The process's current resident set size in MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def rss_peak_mib() -> float:
    """The process's peak resident set size so far in MiB (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verdict(value: float | None, limit: float) -> str:
    """``"pass"`` when ``value <= limit``, ``"FAIL"`` otherwise, ``"n/a"`` without a value."""
    if value is None:
        return "n/a"
    return "pass" if value <= limit else "FAIL"


def add_size_arguments(parser: argparse.ArgumentParser, *, repeat: int) -> None:
    """Add ``--sizes``, ``--quick``, ``--repeat`` and the internal ``--one`` to a bench."""
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="comma-separated entry counts, each measured in a fresh process "
        "(default: %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="10,000 entries only")
    parser.add_argument("--repeat", type=int, default=repeat, help="runs per timing (best/median)")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)


def sizes_of(args: argparse.Namespace) -> list[int]:
    """The sizes asked for on the command line."""
    if args.quick:
        return list(QUICK_SIZES)
    try:
        sizes = [int(s.replace("_", "")) for s in str(args.sizes).split(",") if s.strip()]
    except ValueError:
        raise SystemExit(
            f"--sizes: expected comma-separated integers, got {args.sizes!r}"
        ) from None
    if not sizes or any(s <= 0 for s in sizes):
        raise SystemExit(f"--sizes: expected positive integers, got {args.sizes!r}")
    return sizes


def emit_result(result: dict[str, Any]) -> None:
    """Print one size's figures for the parent process (the child's last stdout line)."""
    print(_RESULT + json.dumps(result), flush=True)


def run_sizes(script: str, sizes: Sequence[int], extra: Sequence[str]) -> list[dict[str, Any]]:
    """Run ``script --one SIZE`` in a fresh interpreter per size; collect their results.

    The child's own lines (progress, details) are passed through, indented.

    Args:
        script: the bench script's path (``__file__``).
        sizes: the entry counts.
        extra: further arguments for the child (``--repeat`` and the like).

    Returns:
        One result dict per size, in order.
    """
    results = []
    for size in sizes:
        print(f"--- {size:,} entries (fresh process) ---", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, script, "--one", str(size), *extra],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        result = None
        for line in proc.stdout.splitlines():
            if line.startswith(_RESULT):
                result = json.loads(line[len(_RESULT) :])
            else:
                print("  " + line)
        if proc.returncode != 0 or result is None:
            raise SystemExit(f"the {size:,}-entry run failed (exit status {proc.returncode})")
        print(f"  ({time.perf_counter() - start:.0f} s for this size)", flush=True)
        results.append(result)
    return results


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a Markdown table (pasteable into docs/performance.md)."""
    print()
    print(f"### {title}")
    print()
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join(" ---: " if i else " --- " for i in range(len(headers))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def environment() -> str:
    """One line naming the interpreter, the machine and its load."""
    import platform

    load = os.getloadavg()
    return (
        f"Python {platform.python_version()} on {platform.machine()} {sys.platform}, "
        f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


@dataclass(frozen=True)
class WallCpu:
    """Wall-clock and process CPU timings of the same runs of one call.

    On a machine shared with other jobs the wall time moves with their load; the process's
    CPU time (``time.process_time``: this process only, not a server it waits for) moves
    much less, so ratios of CPU times are the steadier comparison.
    """

    wall: Timing
    cpu: Timing

    def as_dict(self) -> dict[str, dict[str, float]]:
        """The figures as a JSON-able dict."""
        return {"wall": self.wall.as_dict(), "cpu": self.cpu.as_dict()}


def time_wall_cpu(fn: Callable[[], object], repeat: int, *, gc_paused: bool = False) -> WallCpu:
    """Time ``fn`` ``repeat`` times as :func:`time_call` does, in wall and CPU time.

    Args:
        fn: the call to time.
        repeat: how many runs (at least 1).
        gc_paused: pause the cyclic garbage collector while timing.

    Returns:
        The best and median wall time and process CPU time.
    """
    walls, cpus = [], []
    for _ in range(max(1, repeat)):
        gc.collect()
        if gc_paused:
            gc.disable()
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
        finally:
            gc.enable()
    return WallCpu(
        Timing(min(walls), statistics.median(walls), len(walls)),
        Timing(min(cpus), statistics.median(cpus), len(cpus)),
    )
