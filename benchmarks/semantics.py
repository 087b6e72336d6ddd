"""Benchmark: SemanticLens on CPU — embedding throughput, search latency, interpretability scores (against the
semanticlens package), and the ground-truth figures of the shapes world.

    python benchmarks/semantics.py [--threads 2] [--images 1000] [--repeat 3] [--embedding-only | --vit-only]
                                   [--reference-python /work/refvenvs/semanticlens/bin/python [--reference-repeat 3]]

Writes benchmarks/results/semantics_cpu.json; one row per figure (``part``, ``case``, ``value``, ``unit``, ``note``).

- embedding: references (and distinct pictures) embedded per second by a fresh ``SemanticLens`` (cache removed after
  each run; the crop modes in turn for ``--repeat`` rounds after a warm-up round, median and best) with the shipped
  tiny CLIP over an atlas of the largest ``--images`` test images
  (features.8/.11/.15, k=16, n=16 references per concept): relevance crops (CRP batched over samples and
  channels), windows (one forward pass per batch) and whole images (each sample pictured once), and
  the ratio of relevance to window throughput (target >= 0.5); plus the tiny CLIP's ``encode_images`` alone on
  32 px crops.
- search: latency of ``lens.search`` with 1 and 10 texts over every concept of every layer of the shapes VGG.
- scores: clarity, polysemanticity and redundancy (:mod:`conceptscope.semantics.formulas`) of 1280 concepts x 100
  references x 512 dimensions, the synthetic embeddings of ``benchmarks/reference/semanticlens_scores.py``; with
  ``--reference-python`` that script (semanticlens 0.2.1, in its own venv) runs on the same embeddings in a
  subprocess, in turn with ours for ``--reference-repeat`` rounds after a warm-up round (idle OpenMP threads sleeping,
  ``OMP_WAIT_POLICY=PASSIVE``), and the ratios of the best and of the median total times are reported (target >= 10x;
  its wall time swings with the load of other jobs, the CPU-time ratio less).
- ground truth: :mod:`conceptscope.world.lens_evaluation` per atlas size, layer and crop — retrieval@3 (share of the
  concepts a layer encodes whose text query puts an encoding channel in the top 3; single attributes counted apart),
  for the VGG's layers and the shapes ViT's last block output (AttnLRP; its ground truth from the patch tokens'
  activations over the objects; ``--vit-only``: only that, into semantics_vit_cpu.json), label accuracy (share of
  selective channels labelled with a concept they encode; the lens's default label settings (bare texts), and with
  ``templates=TEMPLATES``);
  and the audit of class "green square" in the spurious VGG against the clean VGG (share of the
  class's relevance on concepts aligned with "a magenta mark in the corner") on the same number of images, which carry
  the mark as in training. The figures depend on the atlas size (which references a channel gets), hence two sizes.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import OwnSeconds, in_turn, report, sleeping_threads, speedup  # noqa: E402
from reference import synthetic  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.semantics import SemanticLens, formulas  # noqa: E402
from conceptscope.semantics.lens import TEMPLATES  # noqa: E402
from conceptscope.world import lens_evaluation as evaluation  # noqa: E402

REFERENCE = Path(__file__).parent / "reference" / "semanticlens_scores.py"
LAYERS = ["features.8", "features.11", "features.15"]
VIT_LAYERS = ["blocks.3"]  # the shapes ViT's last block output
CROPS = ("relevance", "window", "none")
K, N_REFERENCES = 16, 16
CONCEPTS, REFS, DIM, SEED = 1280, 100, 512, 0
QUERIES = ["yellow", "dotted", "a red circle", "blue striped", "a green square", "a cross", "red", "a circle",
           "striped", "a magenta mark in the corner"]


def row(part, case, value, unit, note=""):
    """One line of the results table."""
    return {"part": part, "case": case, "value": value, "unit": unit, "note": note}


def fresh_lens(atlas, clip, **options):
    """A lens embedded from scratch (its cache file removed afterwards, so the next one computes again too)."""
    lens = SemanticLens(atlas, clip, progress=False, **options)
    assert not lens.from_cache
    lens.cache.unlink()
    return lens


def embedding_rows(atlas, clip, rounds):
    """Throughput per crop mode, the modes in turn for ``rounds`` rounds after a warm-up round; returns the rows and
    the last lens of each mode (for the ground-truth figures)."""
    rows, lenses = [], {}

    def build(crop):
        return lambda: lenses.__setitem__(crop, fresh_lens(atlas, clip, n=N_REFERENCES, crop=crop))
    times = in_turn({crop: build(crop) for crop in CROPS}, rounds)
    for crop in CROPS:
        seconds = times[crop].median
        indices = torch.cat([embedded.indices[embedded.valid] for embedded in lenses[crop].embeddings.values()])
        pictures = len(indices) if crop != "none" else len(indices.unique())
        rows.append(row("embedding", f"{crop} crops, {', '.join(LAYERS)}", len(indices) / seconds, "references/s",
                        f"{len(indices)} references, {pictures} pictures embedded, median {seconds:.2f} s (best "
                        f"{times[crop].best:.2f}, spread {times[crop].spread:.2f}), {pictures / seconds:.0f} "
                        "pictures/s; crop modes in turn"))
    relevance, window = times["relevance"], times["window"]
    rows.append(row("embedding", "relevance crops vs window crops (throughput ratio)", window.median / relevance.median,
                    "x", f"target >= 0.5; best-time ratio {window.best / relevance.best:.2f}; crop modes in turn"))
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(1024)]
    seconds = in_turn({"encode": lambda: clip.encode_images(crops)}, rounds)["encode"].median
    rows.append(row("embedding", "tiny CLIP encode_images alone, 32 px crops", len(crops) / seconds, "images/s",
                    f"{len(crops)} crops in {seconds:.2f} s"))
    return rows, lenses


def search_rows(world, clip, images, repeat):
    xp = cs.Explainer(world.model)
    atlas = cs.Atlas.build(xp, images, list(xp.layers), tempfile.mkdtemp(prefix="semantics-search-"), k=K,
                           batch_size=50, progress=False)
    lens = SemanticLens(atlas, clip, n=N_REFERENCES, crop="none", progress=False)  # search cost ignores the crop
    concepts = sum(atlas.layers.values())
    rows = []
    for texts in (QUERIES[0], QUERIES):
        seconds = in_turn({"search": lambda: lens.search(texts, k=10)}, max(repeat, 20))["search"].median
        count = 1 if isinstance(texts, str) else len(texts)
        rows.append(row("search", f"{count} text{'s' * (count > 1)}, {concepts} concepts of {len(atlas.layers)} "
                        "layers", seconds * 1e3, "ms", "k=10, bare texts"))
    return rows


def _our_scores(refs, valid, runs):
    """Wall and CPU seconds of each score over all concepts, one run, appended to ``runs``; the total wall seconds."""
    jobs = {"clarity": lambda: formulas.clarity(refs, valid),
            "polysemanticity": lambda: formulas.polysemanticity(refs, valid),
            "redundancy": lambda: formulas.redundancy(formulas.concept_embeddings(refs, valid), valid.any(-1))}
    seconds, cpu_seconds = {}, {}
    for name, job in jobs.items():
        start, cpu = time.perf_counter(), time.process_time()
        job()
        seconds[name], cpu_seconds[name] = time.perf_counter() - start, time.process_time() - cpu
    seconds["total"], cpu_seconds["total"] = sum(seconds.values()), sum(cpu_seconds.values())
    runs.append({"seconds": seconds, "cpu_seconds": cpu_seconds})
    return OwnSeconds(seconds["total"])


def _reference_scores(reference_python, threads, runs):
    """The reference script's run in its own venv, appended to ``runs``; its total wall seconds."""
    command = [reference_python, str(REFERENCE), "--concepts", str(CONCEPTS), "--refs", str(REFS), "--dim", str(DIM),
               "--seed", str(SEED), "--threads", str(threads)]
    runs.append(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1]))
    return OwnSeconds(runs[-1]["seconds"]["total"])


def _medians(runs, key):
    return {name: statistics.median(run[key][name] for run in runs) for name in runs[0][key]}


def score_rows(reference_python, threads, repeat, reference_repeat):
    """Our scores; with the reference, ours and the reference's take turns (``in_turn``: a warm-up round, then
    ``reference_repeat`` rounds; load from other jobs hits both alike) and best and median totals are compared."""
    refs = synthetic.embeddings(CONCEPTS, REFS, DIM, SEED)
    valid = torch.ones(refs.shape[:2], dtype=torch.bool)
    ours, theirs = [], []
    sides = {"ours": lambda: _our_scores(refs, valid, ours)}
    if reference_python:
        sides["reference"] = lambda: _reference_scores(reference_python, threads, theirs)
    rounds = reference_repeat if reference_python else repeat
    times = in_turn(sides, rounds)
    ours, theirs = ours[-rounds:], theirs[-rounds:]  # the warm-up round left out
    shape = f"{CONCEPTS} concepts x {REFS} refs x {DIM} dims"
    seconds, cpu_seconds = _medians(ours, "seconds"), _medians(ours, "cpu_seconds")
    rows = [row("scores", f"{name}, {shape}", value, "s", f"conceptscope, median; CPU {cpu_seconds[name]:.3f} s")
            for name, value in seconds.items()]
    rows.append(row("scores", f"total, {shape}, best", times["ours"].best, "s",
                    f"conceptscope; spread {times['ours'].spread:.3f} s"))
    baseline = in_turn({"baselines": lambda: formulas.baselines(refs, valid, 0)}, repeat)["baselines"].median
    rows.append(row("scores", f"random-set baselines of all three, {shape}", baseline, "s", "conceptscope"))
    if theirs:
        their_seconds, their_cpu = _medians(theirs, "seconds"), _medians(theirs, "cpu_seconds")
        versions = ", ".join(f"{name} {v}" for name, v in theirs[0]["versions"].items())
        rows += [row("scores", f"{name}, {shape}", value, "s",
                     f"reference ({versions}), median; CPU {their_cpu[name]:.3f} s")
                 for name, value in their_seconds.items()]
        rows.append(row("scores", f"reference total, {shape}, best", times["reference"].best, "s",
                        f"spread {times['reference'].spread:.3f} s"))
        for how, value in speedup(times["reference"], times["ours"]).items():
            rows.append(row("scores", f"{how.replace('speedup', 'speed-up over the reference')}, total wall time",
                            value, "x", f"target >= 10; {rounds} rounds in turn after a warm-up"))
        rows.append(row("scores", "speed-up over the reference (total CPU time, median)",
                        their_cpu["total"] / cpu_seconds["total"], "x", "less disturbed by other jobs"))
    return rows


def ground_truth_rows(truth, vocabulary, lenses, size, layers=LAYERS, model="VGG"):
    rows = []
    for layer in layers:
        for crop, lens in lenses.items():
            case = f"{size} images, {model} {layer}, {crop} crops"
            retrieval = evaluation.retrieval_at_k(lens, layer, truth[layer])
            missed = [concept for concept, hit in retrieval.hits.items() if not hit]
            single = {concept: hit for concept, hit in retrieval.hits.items() if " " not in concept}
            rows.append(row("ground truth", f"{case}: retrieval@3", retrieval.share, "share",
                            f"{sum(retrieval.hits.values())}/{len(retrieval.hits)} concepts, single attributes "
                            f"{sum(single.values())}/{len(single)}; missed: {', '.join(missed) or 'none'}"))
            for what, options in (("lens defaults", {}), ("templates", {"templates": TEMPLATES})):
                labels = evaluation.label_accuracy(lens, layer, truth[layer], vocabulary, **options)
                rows.append(row("ground truth", f"{case}: label accuracy ({what})", labels.share, "share",
                                f"{sum(labels.correct.values())}/{len(labels.correct)} selective channels"))
    return rows


def vit_rows(world, clip, truth, vocabulary, size):
    """The ground-truth figures of the shapes ViT's last block output (``VIT_LAYERS``; AttnLRP) on ``size`` test images,
    through the VGG's code: its own ground truth (patch tokens' activations over the objects), atlas and lenses (RelMax
    references as for the VGG, and ActMax references: the last block's relevance lies in the class token alone)."""
    xp = cs.Explainer(world.vit, "attn_lrp")
    atlas = cs.Atlas.build(xp, world.dataset("test", n=size), VIT_LAYERS, tempfile.mkdtemp(prefix="semantics-vit-"),
                           k=K, batch_size=50, progress=False)
    lenses = {crop: SemanticLens(atlas, clip, n=N_REFERENCES, crop=crop, progress=False) for crop in CROPS}
    lenses["ActMax references, window"] = SemanticLens(atlas, clip, n=N_REFERENCES, mode="activation", crop="window",
                                                       progress=False)
    return ground_truth_rows(truth, vocabulary, lenses, size, VIT_LAYERS, "ViT")


def audit_rows(plain, clip, size):
    """The spurious and the clean VGG on the same ``size`` images, which carry the mark as in training."""
    spurious = cs.load_world("shapes", "spurious")
    data = spurious.dataset("test", n=size, corner_mark="correlated")
    rows = []
    for name, model in (("spurious VGG", spurious.model), ("clean VGG", plain.model)):
        atlas = cs.Atlas.build(cs.Explainer(model), data, LAYERS[1:], tempfile.mkdtemp(prefix="semantics-audit-"),
                               k=K, batch_size=50, progress=False)
        lens = SemanticLens(atlas, clip, n=N_REFERENCES, progress=False)
        audit = lens.audit("green square", valid=["a green square"], spurious=[evaluation.phrase("corner_mark")])
        for layer in audit.layers:
            flagged = [concept.channel for concept in layer.concepts if concept.verdict == "spurious"]
            rows.append(row("audit", f"{size} images, green square, {name}, {layer.layer}: spurious share",
                            layer.spurious_share, "share",
                            f"valid {layer.valid_share:.3f}, unexpected {layer.unexpected_share:.3f}; spurious "
                            f"among the top {len(layer.concepts)}: channels {flagged or 'none'}"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, nargs="+", default=[400, 1000],
                        help="atlas sizes (shapes test images) of the ground-truth figures and audits; the largest "
                             "also serves the embedding and search timings")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference-python", help="python of a venv with semanticlens 0.2.1 (scores reference)")
    parser.add_argument("--reference-repeat", type=int, default=3, help="rounds of ours and the reference in turn")
    parser.add_argument("--vit-only", action="store_true",
                        help="only the shapes ViT's ground-truth figures (last block); writes semantics_vit_cpu.json")
    parser.add_argument("--embedding-only", action="store_true",
                        help="only the embedding throughput (largest --images); writes semantics_embedding_cpu.json")
    args = parser.parse_args()
    if args.reference_python:
        sleeping_threads()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    world = cs.load_world("shapes")
    clip = world.clip
    truth = evaluation.ground_truth(world, world.model, LAYERS)
    vocabulary = evaluation.vocabulary(world)
    if args.vit_only:
        truth = evaluation.ground_truth(world, cs.Explainer(world.vit, "attn_lrp"), VIT_LAYERS)
        report("semantics_vit_cpu", [found for size in sorted(args.images) for found in
                                     vit_rows(world, clip, truth, vocabulary, size)],
               {"images": args.images, "k": K, "references_per_concept": N_REFERENCES, "layers": VIT_LAYERS,
                "foundation": clip.name, "seconds": time.perf_counter() - start})
        return
    timings, figures = [], {}
    if args.embedding_only:
        images = world.dataset("test", n=max(args.images))
        atlas = cs.Atlas.build(cs.Explainer(world.model), images, LAYERS, tempfile.mkdtemp(prefix="semantics-"), k=K,
                               batch_size=50, progress=False)
        report("semantics_embedding_cpu", embedding_rows(atlas, clip, args.repeat)[0],
               {"images": max(args.images), "k": K, "references_per_concept": N_REFERENCES, "layers": LAYERS,
                "foundation": clip.name, "seconds": time.perf_counter() - start})
        return
    for size in sorted(args.images, reverse=True):
        images = world.dataset("test", n=size)
        atlas = cs.Atlas.build(cs.Explainer(world.model), images, LAYERS, tempfile.mkdtemp(prefix="semantics-"), k=K,
                               batch_size=50, progress=False)
        if not timings:
            timings, lenses = embedding_rows(atlas, clip, args.repeat)
            timings += search_rows(world, clip, images, args.repeat)
        else:
            lenses = {crop: SemanticLens(atlas, clip, n=N_REFERENCES, crop=crop, progress=False) for crop in CROPS}
        vit_truth = evaluation.ground_truth(world, cs.Explainer(world.vit, "attn_lrp"), VIT_LAYERS)
        figures[size] = ground_truth_rows(truth, vocabulary, lenses, size) + audit_rows(world, clip, size) + \
            vit_rows(world, clip, vit_truth, vocabulary, size)
    timings += score_rows(args.reference_python, args.threads, args.repeat, args.reference_repeat)
    report("semantics_cpu", timings + [found for size in sorted(figures) for found in figures[size]],
           {"images": args.images, "k": K, "references_per_concept": N_REFERENCES, "layers": LAYERS,
            "foundation": clip.name, "seconds": time.perf_counter() - start})


if __name__ == "__main__":
    main()
