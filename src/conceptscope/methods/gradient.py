"""The gradient family, computed by Captum: saliency, gradient x input, Integrated Gradients, SmoothGrad, guided
backprop and deconvnet. Each function takes the private model, a batch ``(B, C, H, W)`` and one target per image and
returns ``(B, C, H, W)`` input attributions; :mod:`.registry` reduces them to maps."""
import torch
from captum.attr import (
    Deconvolution,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
)


def saliency(model, images, targets):
    """|d logit / d x| (Simonyan et al. 2013)."""
    return Saliency(model).attribute(images, target=targets, abs=True)


def gradient_x_input(model, images, targets):
    """x * d logit / d x (Shrikumar et al. 2016)."""
    return InputXGradient(model).attribute(images, target=targets)


def integrated_gradients(model, images, targets, steps=32, baseline=0.0, batch_size=256):
    """Integrated Gradients (Sundararajan et al. 2017) from ``baseline`` (0 = the dataset mean colour for normalised
    inputs) in ``steps`` Gauss-Legendre steps; the attributions sum to logit(x) - logit(baseline) up to the
    quadrature error."""
    return IntegratedGradients(model).attribute(images, baselines=baseline, target=targets, n_steps=steps,
                                                internal_batch_size=batch_size)


def smoothgrad(model, images, targets, samples=16, noise=1.0, seed=0, batch_size=64):
    """SmoothGrad (Smilkov et al. 2017): saliency averaged over ``samples`` noisy copies of each image. ``noise`` is
    the standard deviation of the Gaussian noise in the units of the (normalised) input: 1.0 is ~15 % of the value
    range of a standardised image. The noise is drawn from ``seed``."""
    with torch.random.fork_rng(devices=[images.device] if images.device.type == "cuda" else []):
        torch.manual_seed(seed)
        return NoiseTunnel(Saliency(model)).attribute(
            images, nt_type="smoothgrad", nt_samples=samples, nt_samples_batch_size=batch_size, stdevs=float(noise),
            target=targets, abs=True)


def guided_backprop(model, images, targets):
    """Guided backpropagation (Springenberg et al. 2015): only positive gradients pass the ReLUs backwards."""
    return GuidedBackprop(model).attribute(images, target=targets)


def deconvnet(model, images, targets):
    """Deconvnet (Zeiler & Fergus 2014): the ReLUs act on the backward signal instead of the forward one."""
    return Deconvolution(model).attribute(images, target=targets)
