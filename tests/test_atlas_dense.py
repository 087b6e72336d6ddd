"""The atlas and SemanticLens on the shapes world's segmenter and detector (L-CRP): each sample's relevance is
explained for its largest predicted region (segmenter, target="region") or its strongest detection (detector,
target="peak"); stored scores, class statistics and references are checked against direct explanations of those
targets, computed here independently."""
import numpy as np
import pytest
import torch

import conceptscope as cs
from conceptscope.engine.targets import largest_region, peak, target_class
from conceptscope.semantics import SemanticLens
from conceptscope.world.segmentation import segment_classes
from tests.helpers import assert_unchanged, model_state

N, K = 24, 4
LAYER = "backbone.features.6"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(world):
    return world.dataset("test", N)


@pytest.fixture(scope="module")
def segmenter(world):
    return cs.Explainer(world.load_model("segmenter"), classes=segment_classes(world))


@pytest.fixture(scope="module")
def atlas(tmp_path_factory, segmenter, dataset):
    return cs.Atlas.build(segmenter, dataset, [LAYER], tmp_path_factory.mktemp("atlas") / "segmenter", k=K,
                          batch_size=8, target="region", progress=False)


def largest_class(model, image):
    """The non-background class with the most predicted pixels (0 if only the background is predicted)."""
    with torch.no_grad():
        counts = np.bincount(model(image[None])[0].argmax(0).flatten().numpy(), minlength=8)
    counts[0] = 0
    return int(counts.argmax()) if counts.max() > 0 else 0


def test_the_target_policies_by_hand():
    logits = torch.zeros(3, 4, 2, 3)  # 3 images, classes 0 (background) .. 3, 2 x 3 pixels
    logits[0, 0] = 1  # only background predicted
    logits[1, 2, :, :2], logits[1, 3, 1, 2], logits[1, 0, 0, 2] = 5, 5, 1  # class 2 on 4 pixels, class 3 on 1
    logits[2, 1, 0, 0], logits[2, 3, 1, 1] = 9, 7  # classes 1 and 3 on one pixel each: the lower index wins the tie
    assert [r.cls for r in largest_region(logits)] == [0, 2, 1]
    assert all(r.mask is None for r in largest_region(logits))
    assert [o.index for o in peak(logits)] == [(0, 0, 0), (2, 0, 0), (1, 0, 0)]
    assert [target_class(t) for t in (3, cs.Contrast(2, 1), cs.Region(5), cs.Output((4, 1, 2)))] == [3, 2, 5, 4]
    resolved = cs.Explainer(torch.nn.Conv2d(3, 4, 1)).attribute(torch.randn(2, 3, 2, 3), largest_region).targets
    assert all(isinstance(r, cs.Region) and r.mask.shape == (2, 3) for r in resolved)
    with pytest.raises(ValueError, match=r"needs a dense \(B, classes, H, W\) output"):
        largest_region(torch.zeros(2, 4))


def test_a_segmenter_atlas_explains_each_sample_s_largest_predicted_region(atlas, segmenter, dataset):
    classes = [largest_class(segmenter.model, dataset[i][0]) for i in range(N)]
    assert atlas.classes == segment_classes(cs.load_world("shapes"))  # the explainer's names, with the background
    assert atlas.class_counts().tolist() == np.bincount(classes, minlength=8).tolist()
    for channel in (0, 7, 30):
        indices, scores = atlas.top(LAYER, channel)
        for index, score in zip(indices[:2], scores[:2]):
            explanation = segmenter.explain(dataset[int(index)][0], cs.Region(classes[index]), [LAYER])
            assert float(explanation.concept_relevance(LAYER)[channel]) == pytest.approx(float(score), rel=1e-4)
    totals = atlas.class_relevance(LAYER)  # (channels, classes): each sample's region relevance under its class
    expected = torch.zeros_like(totals)
    for i in range(N):
        explanation = segmenter.explain(dataset[i][0], cs.Region(classes[i]), [LAYER])
        expected[:, classes[i]] += explanation.concept_relevance(LAYER).double()
    torch.testing.assert_close(totals, expected, rtol=1e-4, atol=1e-4)


def test_references_are_cut_from_the_region_s_conditional_heatmap(atlas, segmenter, dataset):
    channel = int(atlas.class_relevance(LAYER).sum(1).argmax())
    references = atlas.references(LAYER, channel, n=2)
    assert len(references) == 2
    for reference in references:
        image = dataset[reference.index][0]
        want = segmenter.explain(image, cs.Region(largest_class(segmenter.model, image)), [LAYER])
        np.testing.assert_allclose(reference.heatmap, want.conditional_heatmaps(LAYER, [channel])[0].numpy(),
                                   rtol=1e-4, atol=1e-6)
        assert reference.box is not None and reference.image.shape[:2] == (reference.box[2] - reference.box[0],
                                                                            reference.box[3] - reference.box[1])


def test_semantic_lens_on_a_segmenter_atlas(atlas, world):
    foundation = world.clip
    lens = SemanticLens(atlas, foundation, progress=False)
    embedded = lens.embeddings[LAYER]
    channel = int(atlas.class_relevance(LAYER).sum(1).argmax())
    references = atlas.references(LAYER, channel, n=K)
    want = foundation.encode_images([reference.image for reference in references]).cpu()
    torch.testing.assert_close(embedded.references[channel, :len(references)], want, atol=1e-5, rtol=0)
    hits = lens.search("a red circle", k=3)
    query = foundation.encode_texts(["a red circle"]).cpu()[0]
    sims = embedded.concepts @ query
    assert [hit.channel for hit in hits] == sims.argsort(descending=True)[:3].tolist()
    assert [hit.score for hit in hits] == pytest.approx(sims.sort(descending=True).values[:3].tolist(), abs=1e-6)


def test_a_detector_atlas_explains_each_sample_s_strongest_detection(tmp_path, world, dataset):
    detector = world.load_model("detector")
    xp = cs.Explainer(detector, output=0)
    atlas = cs.Atlas.build(xp, dataset, ["backbone.fuse.0"], tmp_path / "detector", k=K, batch_size=8, target="peak",
                           progress=False)
    with torch.no_grad():
        heat = detector(torch.stack([dataset[i][0] for i in range(N)]))[0]
    peaks = [np.unravel_index(int(h.flatten().argmax()), tuple(h.shape)) for h in heat]
    assert atlas.class_counts().tolist() == np.bincount([p[0] for p in peaks], minlength=len(world.classes)).tolist()
    indices, scores = atlas.top("backbone.fuse.0", 5)
    explanation = xp.explain(dataset[int(indices[0])][0], cs.Output(peaks[indices[0]]), ["backbone.fuse.0"])
    assert float(explanation.concept_relevance("backbone.fuse.0")[5]) == pytest.approx(float(scores[0]), rel=1e-4)


def test_class_targets_on_a_dense_model_and_regions_on_a_classifier_are_refused(tmp_path, world, segmenter, dataset):
    before = model_state(segmenter.model)
    for target in ("label", "prediction"):
        with pytest.raises(ValueError, match="target='region' for a segmenter"):
            cs.Atlas.build(segmenter, dataset, [LAYER], tmp_path / target, k=K, target=target, progress=False)
    assert_unchanged(segmenter.model, before)
    with pytest.raises(ValueError, match=r"needs a \(batch, classes, H, W\) output"):
        cs.Atlas.build(cs.Explainer(world.model), dataset, ["features.15"], tmp_path / "c", k=K, target="region",
                       progress=False)
