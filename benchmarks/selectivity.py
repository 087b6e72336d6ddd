"""Ground-truth channel selectivity of the shapes world's shipped models: per layer and concept, how many channels
encode the concept (objects with it vs all other objects, AUC >= threshold), the best AUC and its channel.

Concepts are the world's attribute values, the conjunctions the class rules name ("red circle", ...) and, for the
spurious VGG, the corner mark. For a conjunction, ``above_parts`` counts the encoding channels whose AUC for it beats
their AUC for each part (a conjunction channel, not a colour or shape channel). The row model ``vgg (control)`` is the
plain VGG on the spurious model's probe images: whether a corner-mark channel needs the spurious training at all.

    python benchmarks/selectivity.py [--n 1000] [--seed S] [--threshold 0.9]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.world.concepts import CORNER_MARK  # noqa: E402
from conceptscope.world.rules import RULES  # noqa: E402
from conceptscope.world.selectivity import THRESHOLD, object_activations, probe_dataset, selectivity  # noqa: E402

VGG_LAYERS = ["features.0", "features.4", "features.7", "features.8", "features.11", "features.15"]
RESNET_LAYERS = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2", "layer3.0.conv1",
                 "layer3.0.conv2", "layer3.0"]
CONJUNCTIONS = [" ".join(value for _, value in rule.conditions) for rule in RULES if len(rule.conditions) > 1]


def rows_for(label, model, dataset, layers, concepts, threshold):
    """One row per (layer, concept) and the seconds the object activations took."""
    start = time.perf_counter()
    found = object_activations(model, dataset, layers)
    seconds = time.perf_counter() - start
    scores = selectivity(found.activations, found.attributes, concepts)
    rows = []
    for layer in layers:
        auc = scores[layer]
        for k, concept in enumerate(concepts):
            encoding = auc[:, k] >= threshold
            row = {"model": label, "layer": layer, "concept": concept, "channels": int(encoding.sum()),
                   "top_auc": float(auc[:, k].max()), "top_channel": int(auc[:, k].argmax())}
            if concept in CONJUNCTIONS:
                parts = torch.stack([auc[:, concepts.index(part)] for part in concept.split()], 1)
                row["above_parts"] = int((encoding & (auc[:, k] > parts.amax(1))).sum())
            rows.append(row)
    return rows, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="test images per model")
    parser.add_argument("--seed", type=int, default=None, help="image seed (default: the test split's)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plain, spurious = cs.load_world("shapes"), cs.load_world("shapes", "spurious")
    plain_data, marked_data = probe_dataset(plain, args.n, args.seed), probe_dataset(spurious, args.n, args.seed)
    concepts = plain.concepts + CONJUNCTIONS
    runs = [("vgg", plain.model, plain_data, VGG_LAYERS, concepts),
            ("resnet", plain.resnet, plain_data, RESNET_LAYERS, concepts),
            ("vgg (spurious)", spurious.model, marked_data, VGG_LAYERS, concepts + [CORNER_MARK]),
            ("vgg (control)", plain.model, marked_data, VGG_LAYERS, [CORNER_MARK])]
    rows, seconds = [], {}
    for label, model, dataset, layers, names in runs:
        found, seconds[label] = rows_for(label, model, dataset, layers, names, args.threshold)
        rows += found
    report("selectivity", rows, {"n": args.n, "seed": args.seed, "threshold": args.threshold,
                                 "objects_seconds": seconds})


if __name__ == "__main__":
    main()
