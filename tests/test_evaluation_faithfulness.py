"""Pixel flipping, region perturbation, insertion/deletion: exact values on a linear model, baselines, shapes world."""
import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conceptscope.evaluation import insertion_deletion, linear_imputation, pixel_flipping

from .helpers import assert_unchanged, model_state

matplotlib.use("Agg")


@pytest.fixture()
def linear():
    """A model whose logit c is sum(w_c * x): every curve has a closed form."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2, bias=False)).double()
    x = torch.randn(3, 3, 4, 4, dtype=torch.float64)
    contributions = (model[1].weight[0].detach().view(3, 4, 4) * x).sum(1)  # (3, 4, 4): per-pixel share of logit 0
    return model, x, contributions


def test_morf_deletion_with_zero_baseline_removes_the_largest_contributions_first(linear):
    model, x, contributions = linear
    before = model_state(model)
    curves = pixel_flipping(model, x, contributions, 0, steps=16, baseline="zero")
    flat = contributions.flatten(1)
    removed = torch.sort(flat, 1, descending=True).values.cumsum(1)
    expected = flat.sum(1, keepdim=True) - torch.cat([torch.zeros(3, 1, dtype=torch.float64), removed], 1)
    np.testing.assert_allclose(curves.scores, expected.numpy(), atol=1e-12)
    np.testing.assert_allclose(curves.aopc, (expected[:, :1] - expected).mean(1).numpy(), atol=1e-12)
    np.testing.assert_allclose(curves.fractions, np.arange(17) / 16)
    assert (np.diff(curves.scores, axis=1) <= 1e-12).all() == bool((flat >= 0).all())
    assert_unchanged(model, before)


def test_lerf_patches_and_uneven_steps(linear):
    model, x, contributions = linear
    # 2x2 patches (4 of them), 3 steps: after step k, round(k * 4 / 3) = 0, 1, 3, 4 patches are removed
    curves = pixel_flipping(model, x, contributions, 0, order="lerf", patch_size=2, steps=3, baseline=0.0)
    patch_sums = contributions.view(3, 2, 2, 2, 2).sum((2, 4)).flatten(1)
    cumulative = torch.sort(patch_sums, 1).values.cumsum(1)
    expected = patch_sums.sum(1, keepdim=True) - torch.cat([torch.zeros(3, 1, dtype=torch.float64),
                                                            cumulative[:, [0, 2, 3]]], 1)
    np.testing.assert_allclose(curves.scores, expected.numpy(), atol=1e-12)
    np.testing.assert_allclose(curves.fractions, [0, 0.25, 0.75, 1])


def test_insertion_and_deletion_auc(linear):
    model, x, contributions = linear
    insertion, deletion = insertion_deletion(model, x, contributions, 0, steps=16, baseline=0.0, score="logit")
    inserted = torch.cat([torch.zeros(3, 1, dtype=torch.float64),
                          torch.sort(contributions.flatten(1), 1, descending=True).values.cumsum(1)], 1)
    np.testing.assert_allclose(insertion.scores, inserted.numpy(), atol=1e-12)
    np.testing.assert_allclose(insertion.auc, np.trapezoid(inserted.numpy(), np.arange(17) / 16, axis=1))
    np.testing.assert_allclose(deletion.scores[:, :1] - deletion.scores, insertion.scores, atol=1e-12)
    probabilities = pixel_flipping(model, x, contributions, 0, steps=4, baseline=0.0, score="probability")
    logits = pixel_flipping(model, x, contributions, 0, steps=4, baseline=0.0)
    other = pixel_flipping(model, x, contributions, 1, steps=4, baseline=0.0)
    np.testing.assert_allclose(probabilities.scores, 1 / (1 + np.exp(other.scores - logits.scores)), atol=1e-12)


def test_baselines(linear):
    model, x, contributions = linear
    everything = dict(steps=1, patch_size=4)  # one step removes the whole image: the score of the baseline itself
    w = model[1].weight[0].detach().view(3, 4, 4)
    mean = pixel_flipping(model, x, contributions, 0, baseline="mean", **everything).scores[:, 1]
    np.testing.assert_allclose(mean, (w * x.mean((2, 3), keepdim=True)).sum((1, 2, 3)).numpy(), atol=1e-12)
    constant = torch.full((3, 4, 4), 0.5, dtype=torch.float64)
    given = pixel_flipping(model, x, contributions, 0, baseline=constant, **everything).scores[:, 1]
    np.testing.assert_allclose(given, float((w * 0.5).sum()), atol=1e-12)
    flat = torch.full((1, 3, 4, 4), 2.0, dtype=torch.float64)  # blurring a constant image changes nothing
    blur = pixel_flipping(model, flat, torch.rand(1, 4, 4), 0, baseline="blur", sigma=1.0, **everything).scores
    np.testing.assert_allclose(blur[:, 1], blur[:, 0], atol=1e-12)
    noise = [pixel_flipping(model, x, contributions, 0, baseline="noise", seed=s, **everything).scores[:, 1]
             for s in (0, 0, 1)]
    np.testing.assert_array_equal(noise[0], noise[1])
    assert not np.allclose(noise[0], noise[2])


def test_linear_baseline_in_the_curves(linear):
    model, x, contributions = linear
    curves = pixel_flipping(model, x, contributions, 0, patch_size=2, steps=4, baseline="linear")
    mean = pixel_flipping(model, x, contributions, 0, patch_size=2, steps=4, baseline="mean")
    np.testing.assert_allclose(curves.scores[:, -1], mean.scores[:, -1], atol=1e-12)  # nothing left: the mean
    patch_sums = contributions.view(3, 2, 2, 2, 2).sum((2, 4)).flatten(1)
    first = patch_sums.argmax(1)  # the patch removed in step 1
    removed = torch.zeros(3, 4, 4, dtype=torch.bool)
    for i, patch in enumerate(first.tolist()):
        row, column = divmod(patch, 2)
        removed[i, 2 * row:2 * row + 2, 2 * column:2 * column + 2] = True
    with torch.no_grad():
        expected = model(linear_imputation(x, removed))[:, 0]
    np.testing.assert_allclose(curves.scores[:, 1], expected.numpy(), atol=1e-12)


def test_linear_imputation_solves_roads_equations():
    torch.manual_seed(1)
    images = torch.rand(2, 3, 9, 9, dtype=torch.float64)
    removed = torch.zeros(2, 9, 9, dtype=torch.bool)
    removed[0, 2:6, 3:7] = True
    removed[0, 0, 0] = True  # a corner pixel: only 3 neighbours
    removed[1, :, :4] = True
    filled = linear_imputation(images, removed)
    kernel = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]],
                          dtype=torch.float64).view(1, 1, 3, 3)
    neighbour_mean = (F.conv2d(filled.view(6, 1, 9, 9), kernel, padding=1)
                      / F.conv2d(torch.ones(1, 1, 9, 9, dtype=torch.float64), kernel, padding=1)).view(2, 3, 9, 9)
    holes = removed[:, None].expand_as(images)
    torch.testing.assert_close(filled[holes], neighbour_mean[holes], atol=1e-12, rtol=0)
    torch.testing.assert_close(filled[~holes], images[~holes], atol=0, rtol=0)
    # a linear ramp is harmonic for these symmetric weights: an interior hole is filled back exactly
    steps = torch.arange(9, dtype=torch.float64)
    ramp = (0.3 * steps[:, None] - 0.2 * steps[None]).expand(1, 3, 9, 9)
    interior = removed[:1].clone()
    interior[0, 0, 0] = False
    torch.testing.assert_close(linear_imputation(ramp, interior), ramp, atol=1e-10, rtol=0)
    everything = torch.ones(1, 9, 9, dtype=torch.bool)
    torch.testing.assert_close(linear_imputation(images[:1], everything), images[:1].mean((2, 3), keepdim=True)
                               .expand(1, 3, 9, 9))


def test_bad_settings_get_clear_errors(linear):
    model, x, contributions = linear
    with pytest.raises(ValueError, match="does not tile the 4x4 image"):
        pixel_flipping(model, x, contributions, patch_size=3)
    with pytest.raises(ValueError, match="steps must be an integer from 1 to the number of patches \\(4 patches"):
        pixel_flipping(model, x, contributions, patch_size=2, steps=5)
    with pytest.raises(ValueError, match="steps must be"):
        pixel_flipping(model, x, contributions, steps=0)
    with pytest.raises(ValueError, match="one heatmap \\(H, W\\) per image"):
        pixel_flipping(model, x, contributions[:2])
    with pytest.raises(ValueError, match="unknown baseline 'gray'"):
        pixel_flipping(model, x, contributions, baseline="gray")
    with pytest.raises(ValueError, match="order must be"):
        pixel_flipping(model, x, contributions, order="most")
    with pytest.raises(ValueError, match="NaN"):
        pixel_flipping(model, x, contributions * float("nan"))


@pytest.fixture(scope="module")
def shapes(world, xp):
    dataset = world.dataset("test", n=12)
    images = torch.stack([dataset[i][0] for i in range(12)])
    return images, xp.heatmap(images)


def test_lrp_on_the_shapes_world_is_faithful(world, shapes):
    images, heatmaps = shapes
    before = model_state(world.model)
    settings = dict(patch_size=4, steps=16, baseline="mean")
    morf = pixel_flipping(world.model, images, heatmaps, order="morf", **settings)
    lerf = pixel_flipping(world.model, images, heatmaps, order="lerf", **settings)
    shuffled = heatmaps.flatten(1)[:, torch.randperm(heatmaps[0].numel(), generator=torch.Generator().manual_seed(0))]
    random = pixel_flipping(world.model, images, shuffled.view_as(heatmaps), order="morf", **settings)
    assert morf.aopc.mean() > 2 * random.aopc.mean()
    assert morf.aopc.mean() > lerf.aopc.mean() + 1
    # batching does not change a value
    small = pixel_flipping(world.model, images[:3], heatmaps[:3], order="morf", batch_size=5, **settings)
    np.testing.assert_allclose(small.scores, morf.scores[:3], rtol=1e-5, atol=1e-5)
    assert_unchanged(world.model, before)
    figure = morf.figure()
    np.testing.assert_allclose(figure.axes[0].lines[0].get_ydata(), morf.scores.mean(0))
    np.testing.assert_allclose(figure.axes[0].lines[0].get_xdata(), np.arange(17) / 16)
