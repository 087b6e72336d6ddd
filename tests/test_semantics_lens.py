"""SemanticLens end to end on the shapes world: a small atlas, concept embeddings (relevance crops, windows, whole
images) against the atlas and per-reference recomputation, the cache, and search, labels, scores, audits and
comparison checked against direct computations; bad input."""
import json
import time
import warnings
from unittest import mock

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

import conceptscope as cs
from conceptscope.atlas.samples import split_item
from conceptscope.semantics import OpenClip, SemanticLens, formulas
from conceptscope.semantics.references import reference_images, reference_table, window_box
from conceptscope.world.concepts import COLOURS

N, K = 60, 6
LAYERS = ["features.15", "classifier.0"]  # the last conv layer, and a linear layer with dead (negative) units
VOCABULARY = ["red", "green", "blue", "yellow", "circle", "square", "triangle", "striped", "dotted"]


pytestmark = pytest.mark.usefixtures("one_thread")


def random_clip(seed=0, name="random-tiny-clip"):
    """A seeded random-weights tiny open_clip CLIP (embedding size 64, as many as the layers' channels)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = open_clip.CLIP(64, open_clip.CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8,
                                                           image_size=32),
                               open_clip.CLIPTextCfg(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))
    return OpenClip(model, open_clip.SimpleTokenizer(context_length=16), name)


@pytest.fixture(scope="module")
def foundation(world):
    """The shapes world's tiny CLIP where it is shipped, else a random tiny CLIP."""
    try:
        return world.clip
    except (AttributeError, FileNotFoundError):
        return random_clip()


@pytest.fixture(scope="module")
def dataset(world):
    return world.dataset("test", N)


@pytest.fixture(scope="module")
def atlas(tmp_path_factory, world, dataset):
    return cs.Atlas.build(cs.Explainer(world.model), dataset, LAYERS, tmp_path_factory.mktemp("atlas") / "shapes", k=K,
                          batch_size=20, progress=False)


@pytest.fixture(scope="module")
def lens(atlas, foundation):
    return SemanticLens(atlas, foundation, progress=False)


def embed(foundation, images):
    return foundation.encode_images(list(images)).cpu()


# -- embeddings ------------------------------------------------------------------------------------------------------
def test_embeddings_are_normalised_and_follow_the_atlas(lens, atlas, foundation):
    assert lens.n == K and lens.layers == LAYERS  # n=16 is capped at the atlas' k
    for layer in LAYERS:
        embedded = lens.embeddings[layer]
        channels = atlas.layers[layer]
        assert embedded.references.shape == (channels, K, foundation.embed_dim)
        norms = embedded.references.norm(dim=-1)
        assert torch.allclose(norms[embedded.valid], torch.ones(int(embedded.valid.sum())), atol=1e-5)
        assert not embedded.references[~embedded.valid].any()
        live = atlas.live_counts(layer) > 0
        assert torch.equal(embedded.present, live)  # dead concepts (never relevant) have no references at all
        assert torch.allclose(embedded.concepts.norm(dim=-1), live.float(), atol=1e-5)
        for channel in range(channels):
            indices, _ = atlas.top(layer, channel, "relevance", K)
            assert embedded.valid[channel].tolist() == [True] * len(indices) + [False] * (K - len(indices))
            assert embedded.indices[channel, :len(indices)].tolist() == indices.tolist()


def test_relevance_crops_are_the_atlas_references(lens, atlas, foundation):
    for layer, channel in [("features.15", 0), ("features.15", 41), ("classifier.0", 7)]:
        references = atlas.references(layer, channel, n=K)
        want = embed(foundation, [reference.image for reference in references])
        torch.testing.assert_close(lens.embeddings[layer].references[channel, :len(references)], want, atol=1e-5,
                                   rtol=0)


def test_relevance_crops_equal_the_atlas_references_crop_for_crop(atlas):
    """The lens cuts relevance crops of all a sample's concepts from one explanation, channels batched; every crop must
    be the one Atlas.references cuts for that concept."""
    table = reference_table(atlas, LAYERS, K, "relevance")
    chosen = torch.zeros(64, dtype=torch.bool)
    chosen[::5] = True  # 13 concepts per layer, their references spread over most of the samples
    some = {layer: indices.masked_fill(~chosen[:, None], -1) for layer, indices in table.items()}
    crops = list(reference_images(atlas, some, "relevance", "relevance", progress=False))
    assert len(crops) == sum(int((indices >= 0).sum()) for indices in some.values()) > 100
    expected = {}
    for image, [(layer, channel, slot)] in crops:
        if (layer, channel) not in expected:
            expected[layer, channel] = atlas.references(layer, channel, n=K)
        reference = expected[layer, channel][slot]
        assert reference.index == int(table[layer][channel, slot])
        np.testing.assert_array_equal(image, reference.image)


def test_relevance_crops_of_predictions_and_actmax_equal_the_atlas_references(tmp_path, world):
    atlas = cs.Atlas.build(cs.Explainer(world.model), world.dataset("test", 12), ["classifier.0"],
                           tmp_path / "a", k=2, batch_size=12, target="prediction", progress=False)
    table = reference_table(atlas, atlas.layers, 2, "activation")
    crops = list(reference_images(atlas, table, "activation", "relevance", progress=False))
    assert len(crops) == int(sum((indices >= 0).sum() for indices in table.values())) > 50
    for image, [(layer, channel, slot)] in crops:
        np.testing.assert_array_equal(image, atlas.references(layer, channel, "activation", n=2)[slot].image)


def test_window_crops(atlas, foundation, dataset):
    lens = SemanticLens(atlas, foundation, crop="window", window=0.5, progress=False)
    xp = atlas.explainer
    for layer, channel in [("features.15", 3), ("classifier.0", 5)]:
        pictures = []
        for index in atlas.top(layer, channel, "relevance", K)[0]:
            image, label = split_item(dataset[int(index)], int(index), "label")
            activation = xp.explain(image, label, [layer]).activations[layer][channel]
            picture = dataset.raw_image(int(index))
            box = window_box(activation, image.shape[-2:], 0.5)
            if layer == "features.15":
                assert box[2] - box[0] == box[3] - box[1] == 32  # half the 64 px side, inside the image
                row, col = np.unravel_index(int(torch.nn.functional.interpolate(
                    activation[None, None], size=(64, 64), mode="bilinear").argmax()), (64, 64))
                assert box[0] <= row < box[2] and box[1] <= col < box[3]
                picture = picture[box[0]:box[2], box[1]:box[3]]
            else:
                assert box is None  # no spatial map: the whole image
            pictures.append(picture)
        torch.testing.assert_close(lens.embeddings[layer].references[channel, :len(pictures)],
                                   embed(foundation, pictures), atol=1e-5, rtol=0)
    assert window_box(torch.zeros(4, 4), (64, 64), 0.25) == (0, 0, 16, 16)  # shifted inside at the border


def test_whole_images_embed_each_sample_once(atlas, foundation, dataset):
    embedded = []
    real = foundation.encode_images

    def counting(images, batch_size=256):
        embedded.extend(np.asarray(image).tobytes() for image in images)
        return real(images, batch_size)

    with mock.patch.object(foundation, "encode_images", counting):
        lens = SemanticLens(atlas, foundation, crop="none", batch_size=16, progress=False)
    needed = {int(i) for layer in LAYERS for i in lens.embeddings[layer].indices.flatten() if i >= 0}
    assert len(embedded) == len(needed) == len(set(embedded))
    for layer in LAYERS:
        embeddings = lens.embeddings[layer]
        index = int(embeddings.indices[2, 0])
        torch.testing.assert_close(embeddings.references[2, 0], embed(foundation, [dataset.raw_image(index)])[0],
                                   atol=1e-5, rtol=0)


def test_negative_activations_give_no_invalid_indices(atlas, foundation):
    lens = SemanticLens(atlas, foundation, layers="classifier.0", mode="activation", crop="none", progress=False)
    dead = [c for c in range(atlas.layers["classifier.0"]) if atlas.top("classifier.0", c, "activation")[1][0] < 0]
    assert dead  # the layer has units that never fire: all their ActMax scores are negative
    embedded = lens.embeddings["classifier.0"]
    assert embedded.valid.all() and ((embedded.indices >= 0) & (embedded.indices < N)).all()


def test_dead_concepts_are_left_out_of_search_labels_scores_and_redundancy(lens, atlas):
    dead = torch.nonzero(atlas.live_counts("classifier.0") == 0).flatten().tolist()
    assert len(dead) == 6  # the six channels of classifier.0 that are never relevant on the test set
    for channel in dead:
        found = atlas.top("classifier.0", channel)
        assert len(found[0]) == 0 and found.live == 0 and "never relevant on this dataset" in found.reason
    hits = lens.search("red", layer="classifier.0", k=64)
    assert len(hits) == 64 - len(dead) and not {hit.channel for hit in hits} & set(dead)
    labels = lens.label(VOCABULARY, layer="classifier.0")
    assert [label.channel for label in labels if label.status == "no references"] == dead
    scores = lens.scores("classifier.0")
    for channel in dead:
        assert scores.references[channel] == 0
        assert all(np.isnan(getattr(scores, name)[channel]) for name in ("clarity", "polysemanticity", "redundancy"))
    live = [c for c in range(64) if c not in dead]
    concepts = lens.embeddings["classifier.0"].concepts
    for channel in live[:8]:  # redundancy: the best peer among the live concepts only
        peers = [c for c in live if c != channel]
        assert scores.redundancy[channel] == pytest.approx(float((concepts[peers] @ concepts[channel]).max()), abs=1e-5)
    audit = lens.audit("red circle", valid=["red"], layer="classifier.0", n=64)
    assert not {concept.channel for concept in audit.layers[0].concepts} & set(dead)


def test_fewer_samples_than_references(tmp_path, world, foundation):
    small = world.dataset("test", 4)
    atlas = cs.Atlas.build(cs.Explainer(world.model), small, ["features.15"], tmp_path / "small", k=K, batch_size=4,
                           progress=False)
    lens = SemanticLens(atlas, foundation, progress=False)
    embedded = lens.embeddings["features.15"]
    live = atlas.live_counts("features.15")  # at most the 4 samples; fewer where the channel is dead on some
    assert embedded.valid.sum(1).tolist() == live.tolist() and live.max() == 4  # empty (-inf) slots aren't references
    assert (embedded.indices[:, 4:] == -1).all() and not embedded.references[:, 4:].any()
    scores = lens.scores("features.15")
    assert list(scores.references) == live.tolist()
    assert np.isnan(scores.clarity).tolist() == (live < 2).tolist()


# -- cache -----------------------------------------------------------------------------------------------------------
def test_cache_reloads_identical_tensors(lens, atlas, foundation):
    start = time.process_time()  # CPU time: not slowed down by other processes on a busy machine
    again = SemanticLens(atlas, foundation, progress=False)
    assert again.from_cache and not lens.from_cache and again.cache == lens.cache
    assert time.process_time() - start < 0.5  # computing them took seconds
    for layer in LAYERS:
        for name in ("references", "valid", "indices", "concepts"):
            assert torch.equal(getattr(again.embeddings[layer], name), getattr(lens.embeddings[layer], name))
    assert lens.cache.parent == atlas.path / "semantics"
    reordered = SemanticLens(atlas, foundation, layers=LAYERS[::-1], progress=False)  # the same set of concepts
    assert reordered.from_cache and reordered.cache == lens.cache and reordered.layers == LAYERS
    without_images = cs.Atlas.load(atlas.path, atlas.explainer)  # no dataset: cached embeddings still load
    assert SemanticLens(without_images, foundation, progress=False).from_cache
    with pytest.raises(ValueError, match="needs the dataset"):
        SemanticLens(without_images, foundation, crop="none", n=2, progress=False)


def test_other_settings_get_their_own_cache(lens, atlas, foundation):
    others = [SemanticLens(atlas, foundation, crop="window", window=0.25, progress=False),
              SemanticLens(atlas, foundation, n=3, crop="none", progress=False),
              SemanticLens(atlas, foundation, layers=["features.15"], crop="none", progress=False),
              SemanticLens(atlas, random_clip(seed=1, name="another-clip"), crop="none", progress=False)]
    assert len({lens.cache, *(other.cache for other in others)}) == 5
    assert not any(other.from_cache for other in others)


def test_a_cache_of_another_identity_is_not_used(atlas, foundation):
    none = SemanticLens(atlas, foundation, crop="none", progress=False)
    window = SemanticLens(atlas, foundation, crop="window", progress=False)
    window.cache.write_bytes(none.cache.read_bytes())  # the window lens's file now holds other embeddings
    with pytest.warns(UserWarning, match="another identity"):
        again = SemanticLens(atlas, foundation, crop="window", progress=False)
    assert not again.from_cache
    assert torch.equal(again.embeddings["features.15"].references, window.embeddings["features.15"].references)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SemanticLens(atlas, foundation, crop="window", progress=False).from_cache  # rewritten correctly


# -- operations ------------------------------------------------------------------------------------------------------
def concept_matrix(lens, layers=LAYERS):
    keys = [(layer, c) for layer in layers for c in range(len(lens.embeddings[layer].concepts))]
    return torch.cat([lens.embeddings[layer].concepts for layer in layers]), keys


def test_search_by_text_equals_direct_similarities(lens, foundation):
    hits = lens.search("a red circle", k=5)
    assert len(hits) == 5 and all(isinstance(hit, cs.semantics.SearchHit) for hit in hits)
    query = foundation.encode_texts(["a red circle"]).cpu()
    embeddings, keys = concept_matrix(lens)
    sims = (query @ embeddings.T)[0]
    assert [(hit.layer, hit.channel) for hit in hits] == [keys[i] for i in formulas.rank(sims[None], torch.ones(
        len(keys), dtype=torch.bool), 5)[0].tolist()]
    assert [hit.score for hit in hits] == pytest.approx(sorted(sims.tolist(), reverse=True)[:5], abs=1e-6)
    only = lens.search("a red circle", layer="classifier.0", k=500)
    live = int((lens.atlas.live_counts("classifier.0") > 0).sum())
    assert len(only) == live == 64 - 6 and {hit.layer for hit in only} == {"classifier.0"}  # never the dead ones
    json.dumps([hit.to_dict() for hit in hits])


def test_text_search_finds_concepts_of_the_ground_truth(lens, dataset):
    """With the shipped CLIP: the best concept for a colour, texture or shape has references showing that concept far
    more often than images do in general."""
    if lens.foundation.name != "shapes-tiny-clip":
        pytest.skip("needs the shapes world's trained tiny CLIP")
    shares, rates = [], []
    for word in ["red", "green", "blue", "yellow", "striped", "dotted", "circle", "square", "triangle", "cross"]:
        def shows(index, word=word):
            return any(word in (o["colour"], o["texture"], o["shape"]) for o in dataset.objects(int(index)))

        rates.append(np.mean([shows(i) for i in range(N)]))
        for layer in LAYERS:
            (hit,) = lens.search(word if word in ("striped", "dotted") or word in COLOURS else f"a {word}",
                                 layer=layer, k=1)
            shares.append(np.mean([shows(i) for i in lens.embeddings[layer].indices[hit.channel]]))
    assert min(shares) >= 5 / 6 and np.mean(shares) >= 0.95 > np.mean(rates) + 0.4


def test_several_texts_and_templates_equal_one_at_a_time(lens):
    texts = ["red", "a blue square", "dotted"]
    templates = ["a picture of {}", "{} on a grey background", "a drawing of {}"]
    calls = []
    real = lens.foundation.encode_texts
    with mock.patch.object(lens.foundation, "encode_texts", lambda t, b=256: calls.append(list(t)) or real(t, b)):
        together = lens.search(texts, k=7, templates=templates)
    assert len(calls) == 1 and len(calls[0]) == len(texts) * len(templates) + len(templates)  # one encode call
    for text, hits in zip(texts, together):
        alone = lens.search(text, k=7, templates=templates)
        assert [(h.layer, h.channel) for h in hits] == [(h.layer, h.channel) for h in alone]
        assert [h.score for h in hits] == pytest.approx([h.score for h in alone], abs=1e-5)


def test_search_by_image_finds_the_concept_of_that_image(foundation, atlas):
    lens = SemanticLens(atlas, foundation, crop="none", progress=False)
    embeddings, keys = concept_matrix(lens)
    ranks = []
    for layer, channel in [("features.15", c) for c in range(0, 64, 8)]:
        index = int(lens.embeddings[layer].indices[channel, 0])
        picture = atlas.dataset.raw_image(index)
        hits = lens.search(picture, layer=layer, k=64)
        ranks.append([(h.layer, h.channel) for h in hits].index((layer, channel)))
        query = embed(foundation, [picture])
        assert hits[0].score == pytest.approx(float((query @ lens.embeddings[layer].concepts.T).max()), abs=1e-5)
    assert np.median(ranks) < 16  # its own reference puts a concept in the top quarter of the layer
    pil, array = lens.search([Image.fromarray(picture), picture], k=3)
    for hits in (pil, array):
        assert [(h.layer, h.channel) for h in hits] == [(h.layer, h.channel) for h in lens.search(picture, k=3)]


def test_labels(lens, foundation):
    labels = lens.label(VOCABULARY)
    assert len(labels) == sum(lens.atlas.layers[layer] for layer in LAYERS)
    texts = foundation.encode_texts(VOCABULARY).cpu()
    centred, keys = [], []
    for layer in LAYERS:  # each concept's normalised mean reference minus its layer's mean reference, renormalised
        embedded = lens.embeddings[layer]
        layer_mean = embedded.references[embedded.valid].mean(0)
        for channel in range(len(embedded.concepts)):
            own = embedded.references[channel][embedded.valid[channel]]
            concept = torch.nn.functional.normalize(own.sum(0), dim=0) - layer_mean if len(own) else torch.zeros(64)
            centred.append(torch.nn.functional.normalize(concept, dim=0))
            keys.append((layer, channel))
    sims = torch.stack(centred) @ texts.T
    for label, key, row in zip(labels, keys, sims):
        assert (label.layer, label.channel) == key
        if not lens.embeddings[key[0]].present[key[1]]:  # dead: no references, no label, no scores
            assert (label.label, label.status, label.best) == (None, "no references", None)
            assert np.isnan(label.scores).all() and row.abs().sum() == 0
            continue
        assert label.scores == pytest.approx(row.tolist(), abs=1e-5)
        assert label.best == VOCABULARY[int(row.argmax())]
        known = label.score >= 0.0 and label.margin >= 0.01
        assert (label.label, label.status) == ((label.best, "labelled") if known else (None, "no label"))
    strict = lens.label(VOCABULARY, threshold=2.0, layer="classifier.0")
    assert {label.label for label in strict} == {None} and len(strict) == 64
    assert {label.status for label in strict} == {"no label", "no references"}
    templated = lens.label(VOCABULARY, templates=cs.semantics.lens.TEMPLATES, threshold=-1, margin=0)
    assert all(label.label in VOCABULARY for label in templated if label.status != "no references")
    json.dumps([label.to_dict() for label in labels[:3]])


def test_scores(lens):
    scores = lens.scores("features.15")
    embedded = lens.embeddings["features.15"]
    stats = formulas.layer_statistics(embedded.references, embedded.valid)
    baseline = formulas.baselines(embedded.references, embedded.valid)
    assert scores.channels == tuple(range(64)) and scores.references == (K,) * 64
    for name in ("clarity", "polysemanticity", "redundancy"):
        values = np.array(getattr(scores, name))
        np.testing.assert_allclose(values, stats[name].numpy(), atol=1e-6)
        np.testing.assert_allclose(scores.relative[name], values - baseline[name][0], atol=1e-6)
        summary = scores.summary[name]
        assert summary["mean"] == pytest.approx(values.mean(), abs=1e-6)
        assert summary["median"] == pytest.approx(np.median(values), abs=1e-6)
        assert summary["above_baseline"] == pytest.approx((values > baseline[name][0]).mean())
    json.dumps(scores.to_dict())


def test_audit(lens, atlas, foundation):
    valid, spurious = ["red", "circle"], ["a magenta corner mark"]
    audit = lens.audit("red circle", valid=valid, spurious=spurious, n=5)
    assert audit.cls == "red circle" and [layer.layer for layer in audit.layers] == LAYERS
    templates = cs.semantics.lens.TEMPLATES
    texts = formulas.text_embeddings(foundation.encode_texts(formulas.prompts(valid + spurious, templates)).cpu(), 3,
                                     templates)
    ranked = atlas.concepts_for("red circle", LAYERS, 64)
    for layer in audit.layers:
        assert [c.channel for c in layer.concepts] == [score.channel for score in ranked[layer.layer][:5]]
        sims = lens.embeddings[layer.layer].concepts @ texts.T
        verdicts, _ = formulas.verdicts(sims, 2, audit.threshold)
        for concept in layer.concepts:
            assert concept.valid + concept.spurious == pytest.approx(sims[concept.channel].tolist(), abs=1e-5)
            assert concept.verdict == verdicts[concept.channel]
            assert (concept.match is None) == (concept.verdict == "unexpected")
        positive = {score.channel: max(score.relevance, 0) for score in ranked[layer.layer]}
        spurious_share = sum(p for c, p in positive.items() if verdicts[c] == "spurious") / sum(positive.values())
        assert layer.spurious_share == pytest.approx(spurious_share)
        assert layer.spurious_share + layer.valid_share + layer.unexpected_share == pytest.approx(1)
        assert layer.unexpected == tuple(c for c in layer.concepts if c.verdict == "unexpected")
    by_index = lens.audit(atlas.classes.index("red circle"), valid=valid, spurious=spurious, n=5)
    assert by_index == audit
    json.dumps(audit.to_dict())


def test_compare(lens, atlas, foundation):
    comparison = lens.compare(lens)
    for match in comparison.matches:
        own = lens.embeddings[match.layer].concepts[match.channel]
        other = lens.embeddings[match.other_layer].concepts[match.other_channel]
        assert match.score == pytest.approx(1, abs=1e-5) and torch.allclose(own, other, atol=1e-5)
    assert len(comparison.matches) == 128 - 6 and comparison.unique == comparison.other_unique == ()  # 6 dead
    window = SemanticLens(atlas, foundation, crop="window", progress=False)
    across = lens.compare(window, layer="features.15", other_layer="features.15", threshold=0.99)
    sims = lens.embeddings["features.15"].concepts @ window.embeddings["features.15"].concepts.T
    assert [m.other_channel for m in across.matches] == sims.argmax(1).tolist()
    assert [m.score for m in across.matches] == pytest.approx(sims.max(1).values.tolist(), abs=1e-6)
    assert across.unique == tuple(("features.15", c) for c in range(64) if sims[c].max() < 0.99)
    assert across.other_unique == tuple(("features.15", c) for c in range(64) if sims[:, c].max() < 0.99)
    json.dumps(across.to_dict())
    other = SemanticLens(atlas, random_clip(seed=1, name="another-clip"), crop="none", progress=False)
    with pytest.raises(ValueError, match="different foundation models"):
        lens.compare(other)


# -- bad input -------------------------------------------------------------------------------------------------------
def test_bad_input(lens, atlas, foundation):
    with pytest.raises(KeyError, match="no layer 'features.3'.*features.15"):
        SemanticLens(atlas, foundation, layers=["features.3"])
    with pytest.raises(ValueError, match="unknown crop 'box'"):
        SemanticLens(atlas, foundation, crop="box")
    with pytest.raises(ValueError, match="window"):
        SemanticLens(atlas, foundation, crop="window", window=2)
    with pytest.raises(ValueError, match="n must be"):
        SemanticLens(atlas, foundation, n=0)
    with pytest.raises(ValueError, match="no mode"):
        SemanticLens(atlas, foundation, mode="gradient")
    with pytest.raises(KeyError, match="the lens has no layer 'features.8'"):
        lens.search("red", layer="features.8")
    with pytest.raises(KeyError, match="the lens has no layer"):
        lens.scores("nope")
    with pytest.raises(ValueError, match="non-empty string"):
        lens.search("  ")
    with pytest.raises(ValueError, match="no query"):
        lens.search([])
    with pytest.raises(ValueError, match="exactly one '{}'"):
        lens.search("red", templates=["a picture of red"])
    with pytest.raises(ValueError, match="templates apply to text"):
        lens.search(atlas.dataset.raw_image(0), templates=["a {}"])
    with pytest.raises(TypeError, match="only texts or only images"):
        lens.search(["red", atlas.dataset.raw_image(0)])
    with pytest.raises(ValueError, match="k must be"):
        lens.search("red", k=0)
    with pytest.raises(ValueError, match="no vocabulary entry"):
        lens.label([])
    with pytest.raises(ValueError, match="duplicate"):
        lens.label(["red", "red"])
    with pytest.raises(ValueError, match="unknown class 'purple'"):
        lens.audit("purple", valid=["red"])
    with pytest.raises(ValueError, match="no description"):
        lens.audit("red circle")
    with pytest.raises(TypeError, match="another SemanticLens"):
        lens.compare(atlas)
