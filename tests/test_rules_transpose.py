"""The linearised rules: Gamma in two products equal to zennit's four, and the transposed convolutions
(flipped-kernel convolutions for stride 1, transposed convolutions otherwise, channel sums for kernels shared by every
output channel, channels-last on the CPU) against autograd."""
import copy

import pytest
import torch
from zennit.rules import Epsilon, Flat, Gamma

from conceptscope.engine.rules import GammaRule, LinearizedRule, linearize

from .helpers import relative_error

CONVOLUTIONS = [
    ("1d", lambda: torch.nn.Conv1d(4, 6, 3, padding=1), (2, 4, 11)),
    ("3d", lambda: torch.nn.Conv3d(3, 5, 3, padding=1), (2, 3, 5, 6, 7)),
    ("stride 1", lambda: torch.nn.Conv2d(4, 6, 3, padding=1), (2, 4, 9, 10)),
    ("no padding", lambda: torch.nn.Conv2d(4, 6, 3), (2, 4, 9, 10)),
    ("dilated", lambda: torch.nn.Conv2d(4, 6, 3, padding=2, dilation=2), (2, 4, 9, 10)),
    ("padding wider than the kernel", lambda: torch.nn.Conv2d(4, 6, 1, padding=1), (2, 4, 9, 10)),
    ("stride 2, odd size", lambda: torch.nn.Conv2d(4, 6, 3, stride=2, padding=1), (2, 4, 9, 11)),
    ("stride 2, 7x7", lambda: torch.nn.Conv2d(3, 8, 7, stride=2, padding=3), (2, 3, 17, 16)),
    ("stride 2, 1x1", lambda: torch.nn.Conv2d(4, 6, 1, stride=2), (2, 4, 9, 10)),
    ("groups", lambda: torch.nn.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 9, 10)),
]


@pytest.mark.parametrize("rule", [Epsilon, Flat])
@pytest.mark.parametrize("name,make,shape", CONVOLUTIONS, ids=[c[0] for c in CONVOLUTIONS])
def test_transpose_equals_autograd(rule, name, make, shape):
    torch.manual_seed(0)
    conv = make().double()
    linearized = linearize(rule(), conv)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    output = linearized._forward(0, x)
    grad = torch.randn_like(output)
    (expected,) = torch.autograd.grad(output, x, grad)
    found = linearized._transpose(0, grad, x.shape)
    assert found.shape == expected.shape
    assert torch.allclose(found, expected, rtol=1e-10, atol=1e-10), float((found - expected).abs().max())
    if rule is Flat and conv.groups == 1:
        assert linearized._kernel(0)[0], "Flat's kernel is the same for every output channel: summed first"


GAMMA_MODULES = [
    ("conv", lambda: torch.nn.Conv2d(4, 6, 3, padding=1), (2, 4, 9, 10)),
    ("conv, stride 2, groups", lambda: torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 9, 11)),
    ("linear on tokens", lambda: torch.nn.Linear(7, 5), (3, 8, 7)),
    ("linear without bias", lambda: torch.nn.Linear(7, 5, bias=False), (3, 7)),
]


def _shifted(denominator):
    return denominator + 0.1 * torch.where(denominator >= 0, 1.0, -1.0)


@pytest.mark.parametrize("gamma,zero_params,stabilizer", [(0.25, None, 1e-6), (0.05, None, 1e-6), (1.0, ["bias"], 1e-6),
                                                          (0.25, None, _shifted)])
@pytest.mark.parametrize("name,make,shape", GAMMA_MODULES, ids=[m[0] for m in GAMMA_MODULES])
def test_two_term_gamma_equals_zennit_s_gamma_hook(name, make, shape, gamma, zero_params, stabilizer):
    """GammaRule's two products give what zennit's four-product Gamma hook gives, inputs and biases of both signs,
    with the rule's own stabiliser (a number or a function)."""
    torch.manual_seed(0)
    module = make().double()
    if module.bias is not None:
        module.bias.data.normal_()
    rule = Gamma(gamma, stabilizer=stabilizer, zero_params=zero_params)
    linearized = linearize(rule, module)
    assert isinstance(linearized, GammaRule) and linearized.gamma == pytest.approx(gamma)
    x = torch.randn(shape, dtype=torch.float64)
    output = module(x)
    grad = torch.randn_like(output)
    found, _, _ = linearized.vjp(linearized.coefficients(x, output), grad, x.shape)
    probe = x.clone().requires_grad_()
    handle = copy.deepcopy(rule).register(module)
    try:
        (expected,) = torch.autograd.grad(module(probe), probe, grad)
    finally:
        handle.remove()
    assert relative_error(expected, found) <= 1e-12
    assert len(linearized.coefficients(x.clamp(min=0), module(x.clamp(min=0)))) == 2


def test_gamma_with_other_parameter_modifiers_keeps_zennit_s_four_products():
    """A Gamma whose modifiers are not the standard ones (here the weights zeroed) is linearised term by term."""
    rule = Gamma(0.25, zero_params=["weight"])
    assert type(linearize(rule, torch.nn.Linear(3, 2))) is LinearizedRule
