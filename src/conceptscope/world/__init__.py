"""The shapes world: generated images with per-object ground truth, class rules and trained models.

``load_world("shapes")`` returns a :class:`World` with datasets (``world.dataset("test")``),
the shipped models (``world.model``, ``world.resnet``) and the class and concept names.
"""

from .api import World, load_world
from .dataset import ShapesDataset

__all__ = ["ShapesDataset", "World", "load_world"]
