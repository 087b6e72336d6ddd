"""Quantus's localisation metrics on saved arrays; run with the Python of a venv that has Quantus (never imported by
conceptscope itself).

    python quantus_localisation.py ARRAYS.npz            # prints {metric: [values]} as JSON
    python quantus_localisation.py ARRAYS.npz --serve    # per line "run" on stdin: prints the seconds of one pass
                                                         # through Quantus's call and through evaluate_batch only

``ARRAYS.npz`` holds ``a`` (N, H, W) float relevance and ``s`` (N, H, W) bool masks. Settings: ``abs=False,
normalise=False`` (Quantus's defaults would take absolute values and divide the whole batch by one maximum).
"""
import contextlib
import io
import json
import sys
import time
import warnings

import numpy as np
import quantus

METRICS = {"mass_accuracy": quantus.RelevanceMassAccuracy, "rank_accuracy": quantus.RelevanceRankAccuracy,
           "pointing_game": quantus.PointingGame}


def scores(a, s):
    """``{metric: list of per-image values}``, Quantus's own per-batch evaluation, its printing silenced."""
    x = np.zeros((len(a), 3, *a.shape[1:]), dtype=np.float32)
    y = np.zeros(len(a), dtype=int)
    found = {}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, metric in METRICS.items():
            values = metric(abs=False, normalise=False, disable_warnings=True)(
                model=None, x_batch=x, y_batch=y, a_batch=a[:, None], s_batch=s[:, None], batch_size=len(a))
            found[name] = [float(v) for v in values]
    return found


def batch_only(a, s):
    """The metrics' own vectorised ``evaluate_batch``, without the call's input checks and preprocessing."""
    for metric in METRICS.values():
        metric(abs=False, normalise=False, disable_warnings=True).evaluate_batch(a_batch=a[:, None], s_batch=s[:, None])


def main():
    arrays = np.load(sys.argv[1])
    a, s = arrays["a"].astype(np.float32), arrays["s"].astype(bool)
    if "--serve" not in sys.argv:
        print(json.dumps(scores(a, s)))
        return
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        scores(a, s)
        middle = time.perf_counter()
        batch_only(a, s)
        print(middle - start, time.perf_counter() - middle, flush=True)


if __name__ == "__main__":
    main()
