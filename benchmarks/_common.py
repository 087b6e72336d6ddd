"""Shared helpers for the benchmarks: timing sides in turn, result tables and JSON output."""
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def sleeping_threads():
    """Re-run this benchmark with ``OMP_WAIT_POLICY=PASSIVE`` unless it is set (processes it starts inherit it): idle
    OpenMP threads then sleep instead of spinning, which on a shared 2-core machine takes the cores from the side
    running in another process (a reference library in its own venv) and from other jobs."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


class OwnSeconds(float):
    """Seconds a side measured itself (e.g. a reference library in a subprocess timing only its work): returned by a
    side of :func:`in_turn`, they count instead of the wall time of the call."""


class Timing:
    """The seconds of one side's timed rounds: best, median and spread (slowest minus fastest)."""

    def __init__(self, times):
        self.times = list(times)
        self.best = min(self.times)
        self.median = statistics.median(self.times)
        self.spread = max(self.times) - self.best

    def columns(self, prefix):
        """``{"<prefix> best s", "<prefix> median s", "<prefix> spread s"}`` (no prefix: "best s", ...): the
        columns of a table row and its JSON."""
        return {f"{prefix} best s".lstrip(): self.best, f"{prefix} median s".lstrip(): self.median,
                f"{prefix} spread s".lstrip(): self.spread}


def in_turn(sides, rounds=3, warmup=1):
    """Time each of ``sides`` (``{name: function}``) once per round, in turn, for ``rounds`` rounds after ``warmup``
    untimed rounds, so that load from other jobs on a shared machine hits every side alike: ``{name: Timing}``.

    A side returning :class:`OwnSeconds` counts those; otherwise the wall time of its call (CUDA synchronised)."""
    for _ in range(warmup):
        for run in sides.values():
            run()
    times = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            start = time.perf_counter()
            found = run()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(found if isinstance(found, OwnSeconds) else time.perf_counter() - start)
    return {name: Timing(found) for name, found in times.items()}


def speedup(slow, fast, prefix="speedup"):
    """How many times ``fast`` (a :class:`Timing`) beats ``slow``, on the best and on the median times."""
    return {f"{prefix} (best)": slow.best / fast.best, f"{prefix} (median)": slow.median / fast.median}


def command():
    """The command line that ran this benchmark, from the repository's root (what the README prints beside a
    figure)."""
    script = Path(sys.argv[0]).resolve()
    root = Path(__file__).resolve().parent.parent
    script = script.relative_to(root) if script.is_relative_to(root) else script
    return " ".join(["python", script.as_posix(), *sys.argv[1:]])


def report(name, rows, meta=None):
    """Print ``rows`` (list of dicts) as a table and write them with machine info to ``results/<name>.json``."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_fmt(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(c[i]) for c in cells)) for i, col in enumerate(columns)]
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))
    RESULTS.mkdir(exist_ok=True)
    info = {"command": command(), "machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available()
            else None, **(meta or {})}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    print(f"wrote {path}")


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)
