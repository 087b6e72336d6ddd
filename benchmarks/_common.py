"""Shared helpers for the benchmarks: timing, result tables and JSON output."""
import json
import platform
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def timed(fn, repeat=3, warmup=1):
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name, rows, meta=None):
    """Print ``rows`` (list of dicts) as a table and write them with machine info to ``results/<name>.json``."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_fmt(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(c[i]) for c in cells)) for i, col in enumerate(columns)]
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))
    RESULTS.mkdir(exist_ok=True)
    info = {"machine": platform.machine(), "processor": platform.processor(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available()
            else None, **(meta or {})}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    print(f"wrote {path}")


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)
