"""The linearised rules' transposed convolutions (flipped-kernel convolutions for stride 1, transposed convolutions
otherwise, channel sums for kernels shared by every output channel, channels-last on the CPU) against autograd."""
import pytest
import torch
from zennit.rules import Epsilon, Flat

from conceptscope.engine.rules import linearize

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
