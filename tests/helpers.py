"""Small helpers shared by the tests."""
import torch


def relative_error(a, b):
    """Largest absolute difference relative to the largest magnitude of ``b``."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def model_state(model):
    """Everything the engine promises to leave unchanged: parameters, buffers, hooks, training and requires_grad."""
    return {
        "params": {name: p.detach().clone() for name, p in model.named_parameters()},
        "buffers": {name: b.detach().clone() for name, b in model.named_buffers()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "training": {name: m.training for name, m in model.named_modules()},
        "hooks": {name: (list(m._forward_hooks), list(m._forward_pre_hooks), list(m._backward_hooks),
                         list(getattr(m, "_backward_pre_hooks", {}))) for name, m in model.named_modules()},
        "modules": [name for name, _ in model.named_modules()],
        "forward": {name: m.forward for name, m in model.named_modules()},
    }


def assert_unchanged(model, before):
    """Assert that ``model`` is in the state ``before`` (from :func:`model_state`), tensors compared exactly."""
    after = model_state(model)
    for kind in ("params", "buffers"):
        assert after[kind].keys() == before[kind].keys()
        for name in before[kind]:
            assert torch.equal(after[kind][name], before[kind][name]), f"{kind[:-1]} {name} changed"
    for kind in ("requires_grad", "training", "hooks", "modules", "forward"):
        assert after[kind] == before[kind], f"{kind} changed"


def wired(explorer, timeout=60):
    """``explorer`` with every view's messages to the front end kept in ``view.sent`` instead of sent, once its first
    computations are done."""
    for view in explorer.views:
        view.sent = []
        view.send = lambda content, buffers=None, view=view: view.sent.append(content)
    assert explorer.wait(timeout)
    return explorer


def deliver(explorer, view, timeout=60, **message):
    """Hand ``message`` to ``view`` as its front end would, wait for the explorer's work, return the last reply."""
    view._on_message(view, message, [])
    assert explorer.wait(timeout)
    return view.sent[-1]
