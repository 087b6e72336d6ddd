"""Diverging colormaps for relevance: zero is the centre colour, scaling is symmetric.

Relevance is signed, so the colour scale is centred at zero and scaled by the largest absolute
value (or a given ``vmax``): ``-vmax`` maps to the negative end, ``+vmax`` to the positive end.
The colour table has an odd number of entries so that zero hits the centre colour exactly and
``r`` and ``-r`` land on mirror-image entries.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from matplotlib import colormaps as _mpl_colormaps
from matplotlib.colors import Colormap, LinearSegmentedColormap

_HALF = 128  # colour table entries on each side of the centre
_LUT_SIZE = 2 * _HALF + 1

# zennit's "coldnhot": cyan -> blue -> black (centre) -> red -> yellow -> white.
_COLDNHOT = LinearSegmentedColormap.from_list(
    "coldnhot",
    [(0.0, "#00ffff"), (0.25, "#0000ff"), (0.5, "#000000"),
     (2 / 3, "#ff0000"), (5 / 6, "#ffff00"), (1.0, "#ffffff")],
)

COLORMAPS: tuple[str, ...] = ("bwr", "seismic", "coolwarm", "coldnhot")
"""Names accepted by :func:`relevance_to_rgba`; the first is the default."""


def colormap(name: str) -> Colormap:
    """The matplotlib colormap called ``name`` (one of :data:`COLORMAPS`; "coldnhot" is zennit's)."""
    if name == "coldnhot":
        return _COLDNHOT
    return _mpl_colormaps[name]


@cache
def colour_table(name: str) -> np.ndarray:
    """RGBA uint8 table of ``2*128+1`` entries; entry 128 is the colour of zero relevance."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    table = colormap(name).resampled(_LUT_SIZE)(np.arange(_LUT_SIZE), bytes=True)
    table.setflags(write=False)
    return table


def relevance_to_rgba(relevance: np.ndarray, cmap: str = "bwr", vmax: float | None = None,
                      alpha: bool = False) -> np.ndarray:
    """Map a 2-D relevance array to an RGBA uint8 image (H, W, 4): opaque, or with ``alpha=True`` as transparent as
    the relevance is small (alpha = sqrt(|relevance| / vmax): zero relevance leaves what lies below untouched, and the
    square root keeps a tenth of the maximum visible).

    ``vmax`` fixes the scale (e.g. to compare several maps); by default it is ``max |relevance|``.
    An all-zero map (or ``vmax == 0``) is drawn entirely in the centre colour.
    """
    rel = np.asarray(relevance, dtype=np.float64)
    if rel.ndim != 2:
        raise ValueError(f"relevance must be 2-D (H, W); got shape {rel.shape}")
    if not np.all(np.isfinite(rel)):
        raise ValueError("relevance contains NaN or infinite values")
    scale = float(np.abs(rel).max(initial=0.0)) if vmax is None else float(vmax)
    if scale < 0 or not np.isfinite(scale):
        raise ValueError(f"vmax must be a finite non-negative number; got {vmax!r}")
    unit = np.clip(rel / scale, -1.0, 1.0) if scale > 0 else np.zeros_like(rel)
    index = _HALF + np.rint(unit * _HALF).astype(np.intp)
    rgba = colour_table(cmap)[index]
    if alpha:
        rgba[..., 3] = np.rint(np.sqrt(np.abs(unit)) * 255).astype(np.uint8)
    return rgba
