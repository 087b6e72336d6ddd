"""Jupyter widgets (anywidget) for exploring explanations; front-end modules live in ``js/``."""

from .compare import CompareView
from .concepts import ConceptList
from .controller import Controller
from .explorer import Explorer
from .gallery import NeuronGallery
from .heatmap import HeatmapView
from .semantic_search import SemanticSearch
from .snapshot import save_html
from .target import TargetView
from .tree import CompositionTree


def explore(explainer, image, atlas=None, target=None, classes=None, raw_image=None, **kwargs) -> Explorer:
    """Open the explorer on ``image`` (a model input, C x H x W): heatmap, concepts, composition tree,
    prediction and target selector, with an ``atlas`` the reference gallery of each concept, and with a
    ``lens=`` (a SemanticLens, whose atlas is used when ``atlas`` is None) the semantic search and audit,
    its concepts labelled from ``vocabulary=`` (a list of words).

    ``raw_image`` is the uint8 (H, W, 3) picture shown (default: the input rescaled); ``classes``
    names the classes (default: the atlas' class names); ``target`` None explains the prediction.
    """
    return Explorer(explainer, image, atlas=atlas, target=target, classes=classes, picture=raw_image, **kwargs)


def compare(model_or_explainer, image, methods=None, **kwargs) -> CompareView:
    """Attribution ``methods`` (names of ``cs.methods.METHODS``) side by side on ``image`` (a model input,
    C x H x W), graded against ``evidence=`` (a bool mask, or ``{class: mask}``) when given; see
    :class:`CompareView` for the other options. ``.figure()`` draws the same grid with matplotlib."""
    return CompareView(model_or_explainer, image, methods, **kwargs)


__all__ = ["CompareView", "CompositionTree", "ConceptList", "Controller", "Explorer", "HeatmapView", "NeuronGallery",
           "SemanticSearch", "TargetView", "compare", "explore", "save_html"]
