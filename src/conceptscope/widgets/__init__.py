"""Jupyter widgets (anywidget) for exploring explanations; front-end modules live in ``js/``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._bundle import MissingBundleError
from ._protocol import ProtocolError
from .compare import CompareView
from .concepts import ConceptList
from .controller import Controller, ModelInput, Picture
from .explorer import Explorer
from .gallery import NeuronGallery
from .heatmap import HeatmapView
from .perturbation import PerturbationView
from .precompute import Precompute
from .semantic_search import SemanticSearch
from .snapshot import save_html
from .target import TargetView
from .tree import CompositionTree

if TYPE_CHECKING:
    from ..atlas import Atlas
    from ..engine import Explainer


def explore(explainer: Explainer, image: ModelInput, atlas: Atlas | None = None, target: int | None = None,
            classes: Sequence[str] | None = None, picture: Picture | None = None, *, raw_image: Any = None,
            **kwargs: Any) -> Explorer:
    """Open the explorer on ``image`` (a model input, C x H x W): heatmap, concepts, composition tree,
    prediction and target selector, with an ``atlas`` the reference gallery of each concept, and with a
    ``lens=`` (a SemanticLens, whose atlas is used when ``atlas`` is None) the semantic search and audit,
    its concepts labelled from ``vocabulary=`` (a list of words).

    ``picture`` is the uint8 (H, W, 3) picture shown (default: the input rescaled; ``raw_image=`` is its deprecated
    old name); ``classes`` names the classes (default: the atlas' class names); ``target`` None explains the
    prediction.
    """
    if raw_image is not None:
        if picture is not None:
            raise TypeError("give picture= only (raw_image= is its deprecated old name)")
        warnings.warn("explore(raw_image=...) is deprecated: use picture=...", DeprecationWarning, stacklevel=2)
        picture = raw_image
    return Explorer(explainer, image, atlas=atlas, target=target, classes=classes, picture=picture, **kwargs)


def compare(model_or_explainer, image, methods=None, **kwargs) -> CompareView:
    """Attribution ``methods`` (names of ``cs.methods.METHODS``) side by side on ``image`` (a model input,
    C x H x W), graded against ``evidence=`` (a bool mask, or ``{class: mask}``) when given; see
    :class:`CompareView` for the other options. ``.figure()`` draws the same grid with matplotlib."""
    return CompareView(model_or_explainer, image, methods, **kwargs)


def perturb(model_or_methods, image, **kwargs) -> PerturbationView:
    """A slider that removes the top fraction of ``image``'s pixels by an explanation (``method=``, default LRP), or of
    a layer's concepts by CRP relevance (``unit="concepts"``), while the picture and the class probabilities follow;
    see :class:`PerturbationView` for the options."""
    return PerturbationView(model_or_methods, image, **kwargs)


__all__ = ["CompareView", "CompositionTree", "ConceptList", "Controller", "Explorer", "HeatmapView",
           "MissingBundleError", "NeuronGallery", "PerturbationView", "Precompute", "ProtocolError", "SemanticSearch",
           "TargetView", "compare", "explore", "perturb", "save_html"]
