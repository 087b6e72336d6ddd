"""The check that a canonized copy computes the model's logits: a canonizer that changes the model is refused
(CanonizationError, before anything is explained); a difference that float64 shows to be float32 rounding, amplified
by a deep network, only warns."""
import pytest
import torch
from zennit.composites import EpsilonPlusFlat

import conceptscope as cs
from conceptscope.engine.checks import check_canonized

from .helpers import assert_unchanged, model_state


class ScaleFirstConvolution:
    """A wrong canonizer: it scales the first convolution's weights, so the copy is another model."""

    def apply(self, root_module):
        conv = next(m for m in root_module.modules() if isinstance(m, torch.nn.Conv2d))
        conv.weight.data.mul_(1.5)
        return []


def test_a_canonizer_that_changes_the_model_is_refused(world, data):
    before = model_state(world.model)
    xp = cs.Explainer(world.model, EpsilonPlusFlat(canonizers=[ScaleFirstConvolution()]))
    with pytest.raises(cs.CanonizationError, match="differ from the model's by .* so its explanation would be of "
                                                   "another model"):
        xp.heatmap(data[0][0])
    assert_unchanged(world.model, before)


@pytest.mark.parametrize("float64, verdict", [
    (2e-10, "warns"),     # below 1e-9
    (8.8e-9, "warns"),    # a 2.5e7-fold shrink: rounding (efficientnet_b7 with random weights drew 0.216 and 8.8e-9)
    (4.7e-5, "rounding"), # right in float64, but float32 rounding swamps the logits (efficientnet_v2_l: 0.75, 4.7e-5)
    (2e-3, "another"),    # off in float64 too: the canonizer changes the model a little
    (0.2, "another"),     # as large in float64: another model
])
def test_float64_tells_rounding_from_a_changed_model(float64, verdict):
    reference = torch.tensor([[1.0, -2.5, 0.5]])
    explained = reference + torch.tensor([[0.0, 0.54, 0.0]])  # 0.216 relative
    model = torch.nn.Identity()
    if verdict == "warns":
        with pytest.warns(cs.CanonizationWarning, match="amplifies float32 rounding"):
            check_canonized(explained, reference, model, lambda: float64)
    elif verdict == "rounding":
        with pytest.raises(cs.CanonizationError, match="float32 logits are dominated by rounding.* 0.22 .*float32 and "
                                                       "by 5e-05 in float64.*Explain it in float64"):
            check_canonized(explained, reference, model, lambda: float64)
    else:
        with pytest.raises(cs.CanonizationError, match=f"differ from the model's by 0.22 \\(relative; {float64:.2g} "
                                                       "in float64\\), so its explanation would be of another model"):
            check_canonized(explained, reference, model, lambda: float64)
