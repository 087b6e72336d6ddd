"""Reference timing: the interpretability scores of the semanticlens package (0.2.1) on synthetic concept embeddings.

Run with the python of a separate venv that has semanticlens, e.g.

    python -m venv /work/refvenvs/semanticlens && /work/refvenvs/semanticlens/bin/pip install semanticlens==0.2.1
    /work/refvenvs/semanticlens/bin/python benchmarks/reference/semanticlens_scores.py --concepts 1280 --refs 100 \
        --dim 512 --seed 0

Embeddings: ``--concepts`` x ``--refs`` x ``--dim`` float32 unit vectors; each concept's references scatter around one
or (every other concept) two random unit directions, so that the two-cluster polysemanticity score has some structure
to find. Defaults: 100 references per concept (the default ``num_samples`` of semanticlens'
RelevanceComponentVisualizer) and 512 dimensions (CLIP ViT-B-32's embedding size).

Timed, each once, as semanticlens' README uses them: ``clarity_score(V)``, ``polysemanticity_score(V)`` (one sklearn
KMeans(2, n_init=10) per concept) and ``redundancy_score(V.mean(1))``. ``--threads`` caps torch's and sklearn's
(OpenMP/BLAS) threads. Prints one JSON line on stdout: {"impl", "concepts", "refs", "dim", "seed", "threads",
"versions": {...}, "seconds": {"clarity", "polysemanticity", "redundancy", "total"}, "cpu_seconds": {same keys}}.
"""
import argparse
import json
import time
import warnings
from importlib.metadata import version

import torch
from synthetic import embeddings  # this script's folder (run as a file, it is on sys.path)
from threadpoolctl import threadpool_limits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concepts", type=int, default=1280)
    parser.add_argument("--refs", type=int, default=100)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from semanticlens.scores import clarity_score, polysemanticity_score, redundancy_score

    V = embeddings(args.concepts, args.refs, args.dim, args.seed)
    jobs = {"clarity": lambda: clarity_score(V), "polysemanticity": lambda: polysemanticity_score(V),
            "redundancy": lambda: redundancy_score(V.mean(1))}
    seconds, cpu_seconds = {}, {}
    with threadpool_limits(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's KMeans warnings, if any
        for name, job in jobs.items():
            start, cpu = time.perf_counter(), time.process_time()
            job()
            seconds[name], cpu_seconds[name] = time.perf_counter() - start, time.process_time() - cpu
    seconds["total"], cpu_seconds["total"] = sum(seconds.values()), sum(cpu_seconds.values())
    versions = {name: version(name) for name in ("semanticlens", "torch", "scikit-learn")}
    print(json.dumps({"impl": "semanticlens scores", "concepts": args.concepts, "refs": args.refs, "dim": args.dim,
                      "seed": args.seed, "threads": args.threads, "versions": versions, "seconds": seconds,
                      "cpu_seconds": cpu_seconds}))


if __name__ == "__main__":
    main()
