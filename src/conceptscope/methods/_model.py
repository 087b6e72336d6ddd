"""The checks shared by the methods (their private model copy comes from :mod:`conceptscope.models.private`)."""
import torch


def check_finite(maps: torch.Tensor, method: str) -> torch.Tensor:
    """``maps`` if every value is finite and some map is not all zero, else a clear error (never a silent result)."""
    if not torch.isfinite(maps).all():
        raise FloatingPointError(f"method {method!r} produced NaN or infinite relevance; check the input's scale "
                                 "and the model's outputs (a softmax or log inside the model can overflow)")
    vanished = (maps.flatten(1) == 0).all(1)
    if vanished.any():
        rows = vanished.nonzero()[:, 0].tolist()
        raise FloatingPointError(f"method {method!r} produced an all-zero map for image(s) {rows}: the relevance "
                                 "vanished (e.g. Grad-CAM of a class with negative evidence only, or a dead layer); "
                                 "try another target, layer or method")
    return maps
