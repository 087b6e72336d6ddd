"""The ViT-B/16 that conceptscope and lxt both explain (benchmarks/transformers.py, reference/lxt_vit.py), made the same
way in either process: random weights (seed 0), the zero-initialised head re-drawn (seed 1), input seed 2."""
import torch
import torchvision


def build(zero_constants=False, dtype=torch.float32):
    """``(model, x)``; ``zero_constants`` zeroes every bias, the class token and the position embedding."""
    torch.manual_seed(0)
    model = torchvision.models.vit_b_16(weights=None).eval()
    torch.manual_seed(1)
    torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    if zero_constants:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith("bias") or name in ("class_token", "encoder.pos_embedding"):
                    param.zero_()
    model.to(dtype)
    for param in model.parameters():
        param.requires_grad_(False)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2)).to(dtype)
    return model, x
