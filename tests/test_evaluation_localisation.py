"""Localisation metrics: hand-computed cases, Quantus's values on identical inputs (when its venv is present), and
the evaluate table."""
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import conceptscope as cs
from conceptscope.evaluation import METRICS, localisation
from conceptscope.evaluation.localisation import interval, top_k_iou
from conceptscope.world.evaluation import relevance_in_masks
from conceptscope.world.grading import evidence_batch, leaderboard

ROOT = Path(__file__).resolve().parents[1]
QUANTUS_PYTHON = Path(os.environ.get("CONCEPTSCOPE_QUANTUS_PYTHON", "/work/refvenvs/quantus/bin/python"))


def hand_case():
    """Two 3x3 maps with masks whose metric values are worked out by hand below."""
    relevance = torch.tensor([[[5.0, 1.0, -2.0], [0.5, 3.0, 0.0], [0.0, 0.25, 2.0]],
                              [[0.0, 1.0, 0.0], [4.5, 0.0, 0.0], [0.0, 4.0, 0.0]]])
    masks = torch.tensor([[[True, False, False], [False, True, False], [False, False, False]],
                          [[False, True, False], [False, False, False], [False, True, True]]])
    return relevance, masks


def test_metrics_equal_hand_computed_values():
    found = localisation(*hand_case())
    # image 0: positive mass 11.75, 8 inside; K = 2 -> top 2 = {5, 3} both inside; max 5 inside; area 2/9
    # image 1: positive mass 9.5, 5 inside; K = 3 -> top 3 = {4.5 out, 4 in, 1 in}; the max 4.5 lies outside
    assert found["mass_accuracy"].tolist() == pytest.approx([8 / 11.75, 5 / 9.5])
    assert found["rank_accuracy"].tolist() == pytest.approx([1.0, 2 / 3])
    assert found["pointing_game"].tolist() == [1.0, 0.0]
    assert found["area_ratio"].tolist() == pytest.approx([8 / 11.75 / (2 / 9), 5 / 9.5 / (3 / 9)])
    # top 10 % of 9 pixels = 1 pixel: image 0 -> {5} in a mask of 2: IoU 1/2; image 1: {4.5} outside: IoU 0
    assert found["top10_iou"].tolist() == pytest.approx([0.5, 0.0])
    assert top_k_iou(*hand_case(), k=3 / 9).tolist() == pytest.approx([2 / 3, 2 / 4])


def test_rank_accuracy_shares_out_ties_at_the_kth_value():
    # K = 2: the 3 is in; one more place for three tied 1s, one of them in the mask -> 1 + 1/3 hits of 2
    relevance = torch.tensor([[3.0, 1.0, 1.0, 1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False, False, False, False]])
    assert localisation(relevance, mask, ["rank_accuracy"])["rank_accuracy"].tolist() == pytest.approx([2 / 3])
    # a map of zeros ranks no pixel above another: the mask's share of the image, whatever the pixel order
    flat = localisation(torch.zeros(1, 6), mask, ["rank_accuracy"])["rank_accuracy"]
    assert flat.tolist() == pytest.approx([2 / 6])


def test_mass_accuracy_and_area_ratio_agree_with_the_world_s_relevance_in_masks(world, xp):
    data = world.dataset("test", n=8, seed=77)
    images, masks, labels = evidence_batch(data)
    heatmaps = xp.heatmap(images, labels)
    inside, area = relevance_in_masks(heatmaps, masks)
    found = localisation(heatmaps, masks, ["mass_accuracy", "area_ratio"])
    assert np.allclose(found["mass_accuracy"].numpy(), inside)
    assert np.allclose(found["area_ratio"].numpy(), inside / area)


def test_bad_masks_get_clear_errors():
    relevance, masks = hand_case()
    with pytest.raises(ValueError, match="masks must have the relevance maps' shape"):
        localisation(relevance, masks[:, :2])
    with pytest.raises(TypeError, match="boolean"):
        localisation(relevance, masks.int())
    with pytest.raises(ValueError, match=r"image\(s\) \[1\] is empty"):
        localisation(relevance, torch.stack([masks[0], torch.zeros_like(masks[1])]))
    with pytest.raises(ValueError, match="unknown metric 'iou'.*mass_accuracy"):
        localisation(relevance, masks, ["iou"])


def test_no_positive_relevance_has_no_mass_accuracy():
    relevance, masks = hand_case()
    values = localisation(-relevance.abs(), masks, ["mass_accuracy"])["mass_accuracy"]
    assert torch.isnan(values).all()
    assert interval(values)[3] == 0


def test_interval_covers_the_mean_and_narrows_with_n():
    values = torch.tensor([0.0, 1.0] * 50)
    mean, low, high, n = interval(values)
    assert (mean, n) == (0.5, 100) and low < 0.5 < high and high - low == pytest.approx(2 * 1.96 * 0.05, rel=0.15)
    assert interval(torch.cat([values] * 4))[2] - interval(torch.cat([values] * 4))[1] < high - low


def quantus_scores(path, relevance, masks):
    """Quantus's per-image values, computed in a subprocess of its own venv."""
    np.savez(path, a=relevance.numpy(), s=masks.numpy())
    script = ROOT / "benchmarks/reference/quantus_localisation.py"
    done = subprocess.run([str(QUANTUS_PYTHON), str(script), str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.skipif(not QUANTUS_PYTHON.exists(), reason=f"no Quantus venv at {QUANTUS_PYTHON}")
def test_equal_to_quantus_on_identical_inputs(tmp_path):
    generator = torch.Generator().manual_seed(0)
    relevance = torch.randn(16, 12, 12, generator=generator)
    relevance[:4] = relevance[:4].abs()  # some maps without negative values
    masks = torch.rand(16, 12, 12, generator=generator) < 0.25
    # Quantus takes raw sums; the mass accuracy uses positive relevance only, so Quantus gets the clipped maps
    clipped = quantus_scores(tmp_path / "clipped.npz", relevance.clamp_min(0), masks)
    raw = quantus_scores(tmp_path / "raw.npz", relevance, masks)
    ours = localisation(relevance, masks, ["mass_accuracy", "rank_accuracy", "pointing_game"])
    assert np.allclose(ours["mass_accuracy"].numpy(), clipped["mass_accuracy"], rtol=1e-5)
    assert np.array_equal(ours["rank_accuracy"].numpy(), raw["rank_accuracy"])
    assert np.array_equal(ours["pointing_game"].numpy(), raw["pointing_game"])


def test_evaluate_table_on_the_shapes_world(world):
    board = leaderboard(world, ["gradient_x_input", "lrp_epsilon_plus_flat", "gradcam"], n=12, seed=5, progress=False)
    assert board.methods == ["gradient_x_input", "lrp_epsilon_plus_flat", "gradcam"]
    assert board.metrics == list(METRICS)
    images, masks, labels = evidence_batch(world.dataset("test", n=12, seed=5))
    direct = localisation(cs.methods.attribute(world.model, images, labels, "gradcam"), masks)
    for metric, values in direct.items():
        row = board.value("gradcam", metric)
        assert row["mean"] == pytest.approx(float(values.mean())) and row["low"] <= row["mean"] <= row["high"]
        assert row["n"] == 12
    # LRP concentrates relevance on the evidence: far above the uniform ratio 1
    assert board.value("lrp_epsilon_plus_flat", "area_ratio")["low"] > 2
    assert set(board.ranking("mass_accuracy")) == set(board.methods)
    table = board.to_markdown()
    assert table.splitlines()[0].startswith("| method | mass_accuracy") and len(table.splitlines()) == 5
    assert math.isfinite(json.loads(board.to_json())["rows"][0]["mean"])
    figure = board.figure("pointing_game")
    assert len(figure.axes[0].patches) == 3
    with pytest.raises(ValueError, match=r"masks must be \(N, H, W\)"):
        cs.evaluate(world.model, images, masks[:, :10], labels)
