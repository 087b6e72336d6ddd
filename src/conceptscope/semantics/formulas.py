"""The SemanticLens formulas, vectorised over all concepts of a layer: text prompts with templates, similarities,
clarity, polysemanticity, redundancy and their random-set baselines, labels.

Conventions: ``refs`` is a ``(..., C, n, D)`` tensor of L2-normalised reference embeddings (C concepts, n reference
slots), ``valid`` the ``(..., C, n)`` bool mask of the slots that hold a reference. Statistics that a concept cannot
have (too few references, no other concept) are NaN. Nothing here touches a model or the disk.
"""
import math

import torch
import torch.nn.functional as F

#: iterations of the two-means clustering behind polysemanticity (16 references converge in a handful)
TWO_MEANS_ITERATIONS = 10
#: at least this many random reference sets make up a baseline (layers with fewer concepts draw several random layers)
BASELINE_SETS = 256
#: the status of a concept's label: it has one, none reaches the threshold and margin, or it has no references
LABELLED, NO_LABEL, NO_REFERENCES = "labelled", "no label", "no references"


def normalize(x):
    """``x`` scaled to unit length along the last dimension (zero vectors stay zero)."""
    return F.normalize(x, dim=-1, eps=1e-12)


# -- text prompts ------------------------------------------------------------------------------------------------------
def check_templates(templates):
    """``templates`` as a tuple of strings with exactly one ``{}`` each (None stays None; a lone string is one)."""
    if templates is None:
        return None
    templates = (templates,) if isinstance(templates, str) else tuple(templates)
    if not templates:
        raise ValueError("templates is empty: give None (the bare texts) or templates such as ['a picture of {}']")
    for template in templates:
        if not isinstance(template, str) or template.count("{}") != 1 or template.replace("{}", "").count("{"):
            raise ValueError(f"template {template!r} must be a string with exactly one '{{}}' (where the text goes) "
                             "and no other braces, e.g. 'a picture of {}'")
    return templates


def prompts(texts, templates):
    """The strings to encode for ``texts`` under ``templates``: every text in every template (text-major), then every
    template with the empty string (the "null" prompts); just the texts when ``templates`` is None."""
    if templates is None:
        return list(texts)
    return [t.format(text) for text in texts for t in templates] + [t.format("") for t in templates]


def text_embeddings(encoded, n_texts, templates):
    """Query embeddings ``(n_texts, D)`` from the encoded :func:`prompts`: without templates the normalised text
    embeddings; with templates, per text the mean over templates of the normalised prompt embeddings minus the mean
    of the normalised null prompts (what the template itself contributes, as in SemanticLens), renormalised."""
    encoded = normalize(encoded.float())
    if templates is None:
        return encoded
    per_text = encoded[:n_texts * len(templates)].reshape(n_texts, len(templates), -1).mean(1)
    return normalize(per_text - encoded[n_texts * len(templates):].mean(0))


# -- per-concept statistics --------------------------------------------------------------------------------------------
def concept_embeddings(refs, valid):
    """The concept embedding: the normalised mean of its valid reference embeddings (zero without references)."""
    return normalize((refs * valid[..., None]).sum(-2))


def similarities(queries, keys):
    """Cosine similarities ``(Q, K)`` of normalised ``queries (Q, D)`` and ``keys (K, D)``."""
    return queries @ keys.transpose(-1, -2)


def rank(sims, present, k):
    """Per row of ``sims (Q, K)``, the indices of the ``k`` best columns among the ``present (K,)`` ones, best first
    (ties: lower index first); fewer when fewer are present."""
    order = torch.sort(sims.masked_fill(~present, -math.inf), dim=-1, descending=True, stable=True).indices
    return order[..., :min(k, int(present.sum()))]


def _gram(refs):
    """Pairwise dot products ``(..., n, n)`` of each concept's references."""
    return refs @ refs.transpose(-1, -2)


def clarity(refs, valid, gram=None):
    """Mean pairwise cosine similarity of a concept's valid references, the diagonal excluded: 1 when all its
    references look the same, near 0 (or below) when they are unrelated. NaN with fewer than two references.
    ``gram``: the references' :func:`_gram`, when already computed."""
    gram = _gram(refs) if gram is None else gram
    pairs = valid[..., :, None] & valid[..., None, :]
    pairs &= ~torch.eye(pairs.shape[-1], dtype=torch.bool, device=pairs.device)
    count = pairs.sum((-1, -2))
    total = (gram * pairs).sum((-1, -2))
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan)


def _project(gram, coefficients):
    """``G a`` ``(..., k, n)`` for centres given as weighted sums of the references (``coefficients (..., k, n)``):
    each reference's dot product with each centre (``a G``, as G is symmetric)."""
    return coefficients @ gram


def _distances(gram, coefficients):
    """Squared distances ``(..., k, n)`` of the n references to the k centres, from the Gram matrix ``(..., n, n)``
    alone: ``|x_i - c|^2 = G_ii - 2 (G a)_i + a^T G a``."""
    projections = _project(gram, coefficients)
    norms = (projections * coefficients).sum(-1, keepdim=True)
    return gram.diagonal(dim1=-2, dim2=-1)[..., None, :] - 2 * projections + norms


def _farthest(gram, valid, coefficients):
    """One-hot coefficients ``(..., n)`` of the valid reference farthest from the centre ``coefficients (..., n)``
    (ties: the lower slot)."""
    distances = _distances(gram, coefficients[..., None, :])[..., 0, :].masked_fill(~valid, -math.inf)
    return F.one_hot(distances.argmax(-1), valid.shape[-1]).to(gram.dtype)


def two_means(gram, valid, iterations=TWO_MEANS_ITERATIONS):
    """Two-means clustering of each concept's valid references, all concepts at once, from the Gram matrices
    ``(..., n, n)`` of their embeddings; returns the two centres as coefficients ``(..., 2, n)`` over the references
    (centre k is ``coefficients[k] @ refs``, the mean of its members). Deterministic: the first centre is the
    reference farthest from the mean, the second the reference farthest from the first; then ``iterations`` Lloyd
    steps (a point equally near both goes to the first; an emptied cluster keeps its centre)."""
    weights = valid.to(gram.dtype)
    first = _farthest(gram, valid, weights / weights.sum(-1, keepdim=True).clamp(min=1))
    centres = torch.stack([first, _farthest(gram, valid, first)], -2)
    for _ in range(iterations):
        distances = _distances(gram, centres)
        second = (distances[..., 1, :] < distances[..., 0, :]) & valid
        members = torch.stack([valid & ~second, second], -2).to(gram.dtype)
        sizes = members.sum(-1, keepdim=True)
        centres = torch.where(sizes > 0, members / sizes.clamp(min=1), centres)
    return centres


def polysemanticity(refs, valid, iterations=TWO_MEANS_ITERATIONS, gram=None):
    """How far apart the two groups of a concept's references are: ``1 - cos(c1, c2)`` of the two centres of a
    two-means clustering of its references (SemanticLens' definition: one minus the clarity of the cluster centres).
    0 when the references form one tight group (the split halves have nearly the same mean), high when they form two
    distinct groups; a diffuse single group scores in between, so read it next to clarity and the random baseline.
    NaN with fewer than two references. ``gram``: the references' :func:`_gram`, when already computed."""
    gram = _gram(refs) if gram is None else gram
    centres = two_means(gram, valid, iterations)
    products = (_project(gram, centres)[..., :, None, :] * centres[..., None, :, :]).sum(-1)  # c_k . c_l
    cos = products[..., 0, 1] / (products[..., 0, 0] * products[..., 1, 1]).clamp(min=1e-24).sqrt()
    return torch.where(valid.sum(-1) >= 2, (1 - cos).clamp(0, 2), torch.nan)


def centred(refs, valid):
    """Concept embeddings ``(C, D)`` with the layer's mean reference embedding taken out, renormalised: what sets each
    concept apart from the layer's other concepts. Everything a foundation model embeds from one kind of image shares
    a large common direction (as texts share their template's), which otherwise dominates text similarity. Concepts
    without references stay zero."""
    concepts = concept_embeddings(refs, valid)
    return normalize(torch.where(valid.any(-1, keepdim=True), concepts - refs[valid].mean(0), concepts))


def redundancy(embeddings, present):
    """For each concept, the highest cosine similarity of its embedding ``(..., C, D)`` to another concept of the same
    layer that has references (``present (..., C)``). NaN for concepts without references or without a peer."""
    sims = embeddings @ embeddings.transpose(-1, -2)
    peers = present[..., None, :] & ~torch.eye(sims.shape[-1], dtype=torch.bool, device=sims.device)
    best = sims.masked_fill(~peers, -math.inf).amax(-1)
    return torch.where(present & torch.isfinite(best), best, torch.nan)


def layer_statistics(refs, valid):
    """``{"clarity", "polysemanticity", "redundancy"}`` per concept, each a float tensor ``(..., C)``."""
    gram = _gram(refs)
    return {"clarity": clarity(refs, valid, gram=gram),
            "polysemanticity": polysemanticity(refs, valid, gram=gram),
            "redundancy": redundancy(concept_embeddings(refs, valid), valid.any(-1))}


def random_sets(refs, valid, seed=0, least=BASELINE_SETS):
    """Random layers from a layer's reference embeddings: ``(R, C', n', D)`` references and an all-true mask, where
    C' is the number of concepts with references and n' = min(n, all valid references). Each random layer cuts
    seeded random permutations of all the layer's valid references into consecutive sets of n', so every set is n'
    distinct references drawn uniformly; R layers are drawn so that there are at least ``least`` sets. None when the
    layer has fewer than two references."""
    pool = refs[valid]
    concepts = int(valid.any(-1).sum())
    if len(pool) < 2:
        return None
    size = min(refs.shape[-2], len(pool))
    repeats = max(1, math.ceil(least / concepts))
    per_permutation = len(pool) // size
    generator = torch.Generator().manual_seed(seed)
    permutations = [torch.randperm(len(pool), generator=generator)[:per_permutation * size]
                    for _ in range(math.ceil(repeats * concepts / per_permutation))]
    picks = torch.cat(permutations).reshape(-1, size)[:repeats * concepts]
    sets = pool[picks.to(pool.device)].reshape(repeats, concepts, size, -1)
    return sets, torch.ones(sets.shape[:-1], dtype=torch.bool, device=sets.device)


def baselines(refs, valid, seed=0):
    """Mean and standard deviation of each statistic of :func:`layer_statistics` over the random sets of
    :func:`random_sets`: ``{name: (mean, std)}`` (NaN when the layer has fewer than two references)."""
    drawn = random_sets(refs, valid, seed)
    if drawn is None:
        return {name: (math.nan, math.nan) for name in ("clarity", "polysemanticity", "redundancy")}
    found = {}
    for name, values in layer_statistics(*drawn).items():
        values = values[~values.isnan()]
        found[name] = (float(values.mean()) if len(values) else math.nan,
                       float(values.std()) if len(values) > 1 else math.nan)
    return found


def summarize(values, baseline):
    """``{"mean", "median", "baseline", "above_baseline"}`` of a layer's scores ``(C,)`` (NaN ones left out):
    ``above_baseline`` is the share of concepts scoring above the baseline mean (NaN for an empty layer)."""
    defined = values[~values.isnan()].double()
    if not len(defined):
        return {"mean": math.nan, "median": math.nan, "baseline": baseline, "above_baseline": math.nan}
    return {"mean": float(defined.mean()), "median": float(defined.quantile(0.5)), "baseline": baseline,
            "above_baseline": float((defined > baseline).double().mean())}


# -- labels and audits ----------------------------------------------------------------------------------------------
def assign_labels(scores, vocabulary, threshold, margin):
    """Per concept (row of ``scores (C, V)``, NaN rows for concepts without references): ``(label, status, best
    index, best score, margin to the runner-up)``. ``label`` is the best vocabulary entry with status
    :data:`LABELLED`, or None with status :data:`NO_LABEL` when its score is below ``threshold`` or beats the
    runner-up by less than ``margin`` (one entry: margin is infinite), or :data:`NO_REFERENCES` (best index None) for a
    NaN row."""
    if scores.shape[-1] > 1:
        top = scores.topk(2, -1).values
        gaps = top[:, 0] - top[:, 1]
    else:
        gaps = torch.full(scores.shape[:1], math.inf)
    best, index = scores.max(-1)
    known = (best >= threshold) & (gaps >= margin)
    found = []
    for ok, i, b, g, empty in zip(known.tolist(), index.tolist(), best.tolist(), gaps.tolist(),
                                  scores.isnan().all(-1).tolist()):
        if empty:
            found.append((None, NO_REFERENCES, None, math.nan, math.nan))
        else:
            found.append((vocabulary[i] if ok else None, LABELLED if ok else NO_LABEL, int(i), float(b), float(g)))
    return found


def verdicts(sims, n_valid, threshold):
    """Audit verdicts from the similarities ``(C, V + S)`` of concepts to V valid then S spurious descriptions (NaN
    rows: concepts without references): ``(verdict per concept, index of its best description)``, the verdict being
    "unexpected" when no similarity reaches ``threshold``, else "valid" or "spurious" by the best description."""
    best, match = sims.nan_to_num(nan=-math.inf).max(-1)
    found = ["unexpected" if not score >= threshold else "valid" if index < n_valid else "spurious"
             for score, index in zip(best.tolist(), match.tolist())]
    return found, match.tolist()
