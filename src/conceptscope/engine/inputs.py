"""Validation of images and regions, with errors that say what was expected."""
import numpy as np
import torch


def as_batch(images, spec, device, dtype):
    """Return ``images`` as a float batch on ``device``: ``(B, C, H, W)`` for image models (one image ``(C, H, W)``
    is accepted too), ``(B, F)`` for models whose first layer is linear. ``spec`` is ``(dims, channels)`` of one
    sample, from :func:`conceptscope.models.input_channels`."""
    dims, channels = spec
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected images as a torch.Tensor or numpy array, got {type(images).__name__}")
    if images.is_meta:
        raise ValueError("the images are on the meta device and hold no values: pass real pixel data")
    if images.dim() > 0 and images.shape[0] == 0:
        raise ValueError(f"the batch is empty (shape {tuple(images.shape)}): pass at least one image")
    if images.dim() == 0:
        raise ValueError(f"expected images of shape (B, C, H, W) or (C, H, W), got a 0-d tensor ({images.item()!r} "
                         "if a number); pass the image itself")
    if not images.is_floating_point():
        raise TypeError(
            f"expected float images normalised as the model was trained (e.g. world.normalize(...)), got dtype "
            f"{images.dtype}; convert uint8 pixels with images.float() / 255 and normalise them first"
        )
    if dims is not None and images.dim() == dims:
        images = images[None]
    if dims is not None and (images.dim() != dims + 1 or images.shape[1] != channels):
        spatial = ", H, W" if dims == 3 else ", L" if dims == 2 else ""
        want = f"(B, {channels}{spatial}) or ({channels}{spatial})"
        hint = " (channels last? use images.permute(2, 0, 1))" if images.shape[-1] == channels else ""
        raise ValueError(f"expected inputs of shape {want}, got shape {tuple(images.shape)}{hint}")
    return images.to(device=device, dtype=dtype)


def check_region(region, shape):
    """Return ``region`` as a bool tensor of the input's spatial ``shape`` (H, W), or raise a clear error."""
    if not isinstance(region, (torch.Tensor, np.ndarray, list, tuple)):
        raise TypeError(f"region must be a boolean mask (tensor or array) of the input's size {tuple(shape)}, got "
                        f"{type(region).__name__}")
    try:
        region = torch.as_tensor(np.asarray(region) if not isinstance(region, torch.Tensor) else region)
    except (ValueError, TypeError) as error:
        raise TypeError(f"region must be a boolean mask of the input's size {tuple(shape)}: {error}") from None
    if tuple(region.shape) != tuple(shape):
        raise ValueError(f"region must be a boolean mask of the input's size {tuple(shape)}, got shape "
                         f"{tuple(region.shape)}")
    if region.dtype != torch.bool:
        raise TypeError(f"region must be a boolean mask, got dtype {region.dtype}")
    if region.is_meta or not region.any():
        raise ValueError("region selects no pixel (the mask is all False): pass a mask with at least one True pixel, "
                         "or region=None for the whole image")
    return region
