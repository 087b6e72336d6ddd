"""Sanity checks: similarity measures against references, model randomisation and random logits on the shapes world."""
import matplotlib
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from conceptscope.evaluation import random_logit_check, randomisation_check, similarities
from conceptscope.evaluation.sanity import ssim

from .helpers import assert_unchanged, model_state

matplotlib.use("Agg")


def test_similarities_against_references():
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(3, 12, 12, generator=generator), torch.randn(3, 12, 12, generator=generator)
    found = similarities(first, second, top_k=0.25)
    for i in range(3):
        assert found["spearman"][i] == pytest.approx(spearmanr(first[i].flatten(), second[i].flatten())[0])
        assert found["spearman_abs"][i] == pytest.approx(spearmanr(first[i].abs().flatten(),
                                                                   second[i].abs().flatten())[0])
        top = [set(np.argsort(-h[i].abs().flatten().numpy())[:36]) for h in (first, second)]
        assert found["top_k"][i] == pytest.approx(len(top[0] & top[1]) / 36)
    same = similarities(first, first)
    for metric in same:
        torch.testing.assert_close(same[metric], torch.ones(3, dtype=torch.float64))
    # constant images a and b: SSIM = (2ab + c1) / (a^2 + b^2 + c1), c1 = 0.01^2
    a, b = torch.full((1, 16, 16), 0.8, dtype=torch.float64), torch.full((1, 16, 16), 0.3, dtype=torch.float64)
    assert float(ssim(a, b)) == pytest.approx((2 * 0.8 * 0.3 + 1e-4) / (0.64 + 0.09 + 1e-4))


@pytest.fixture(scope="module")
def images(world):
    dataset = world.dataset("test", n=4)
    return torch.stack([dataset[i][0] for i in range(4)])


def test_cascading_randomisation_on_the_shapes_world(world, images):
    before, rng = model_state(world.model), torch.get_rng_state()
    control = randomisation_check(world.model, images, "edge")
    assert all(np.allclose(values, 1) for values in control.similarity.values())  # ignores the model: fails
    result = randomisation_check(world.model, images, "gradient")
    assert result.steps == ["original", "classifier.2", "classifier.0", "features.15", "features.11", "features.8",
                            "features.4", "features.0"]
    assert result.similarity["spearman_abs"][0].min() == pytest.approx(1)
    assert result.similarity["spearman_abs"][-1].mean() < 0.3 and result.similarity["ssim"][-1].mean() < 0.2
    assert torch.equal(torch.get_rng_state(), rng)
    assert_unchanged(world.model, before)
    table = result.table()
    assert table[-1]["step"] == "features.0"
    assert table[-1]["ssim"] == pytest.approx(result.similarity["ssim"][-1].mean())
    assert len(result.strip(images=2).axes) == 2 * 8
    np.testing.assert_allclose(result.figure().axes[0].lines[0].get_ydata(), result.similarity["spearman"].mean(1))


def test_independent_randomisation_and_lrp(world, images):
    again = randomisation_check(world.model, images, "lrp", layers=["features.11", "classifier.2"],
                                mode="independent", seed=3)
    cascade = randomisation_check(world.model, images, "lrp", layers=["features.11", "classifier.2"], seed=3)
    # the first step randomises the same layer (classifier.2) in both modes; the second differs
    np.testing.assert_allclose(again.heatmaps[1], cascade.heatmaps[1])
    assert not np.allclose(again.heatmaps[2], cascade.heatmaps[2])
    assert (again.similarity["spearman"][1:] < 0.9).all()


def test_random_logit(world, images):
    gradient = random_logit_check(world.model, images, "gradient")
    assert (gradient.others != gradient.targets).all()
    assert gradient.similarity["ssim"].mean() < 0.8
    control = random_logit_check(world.model, images, "edge")
    np.testing.assert_allclose(control.similarity["ssim"], 1)


def test_bad_input(world, images):
    with pytest.raises(ValueError, match="layer 'features.2' \\(ReLU\\) cannot be randomised"):
        randomisation_check(world.model, images, "gradient", layers=["features.2"])
    with pytest.raises(ValueError, match="unknown method 'saliency'"):
        randomisation_check(world.model, images, "saliency")
    with pytest.raises(ValueError, match="mode must be"):
        randomisation_check(world.model, images, "edge", mode="top-down")
    with pytest.raises(ValueError, match="expected \\(B, H, W\\)"):
        randomisation_check(world.model, images, lambda model, x, t: x, layers=["classifier.2"])


def test_an_interrupted_check_leaves_the_model_unchanged(world, images):
    before = model_state(world.model)
    calls = []

    def interrupted(model, x, targets):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return x.sum(1)

    with pytest.raises(KeyboardInterrupt):
        randomisation_check(world.model, images, interrupted)
    assert len(calls) == 3
    assert_unchanged(world.model, before)
