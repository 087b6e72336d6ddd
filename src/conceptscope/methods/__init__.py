"""Attribution methods side by side behind one interface: LRP composites, the gradient family, Grad-CAM(++),
occlusion, RISE and LIME, each giving ``(B, H, W)`` relevance maps for a target.

``cs.methods.attribute(model, x, target, "integrated_gradients")`` or, for many calls, ``m = cs.methods.Methods(model)``
then ``m("rise", x, target, seed=1)``. ``METHODS[name]`` documents each method, its library and its defaults.
"""
from .registry import METHODS, Method, Methods, attribute, available, get

__all__ = ["METHODS", "Method", "Methods", "attribute", "available", "get"]
