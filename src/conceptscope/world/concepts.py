"""Concept vocabulary of the shapes world: the attributes every object has and their values.

Kept separate so that drawing, class rules, datasets and later audits all name concepts
the same way.
"""

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = ("red", "green", "blue", "yellow")
TEXTURES = ("plain", "striped", "dotted")
SIZES = ("small", "large")
POSITIONS = ("left", "right")

#: attribute name -> possible values; each value is a concept with its own ground-truth mask
ATTRIBUTES = {
    "shape": SHAPES,
    "colour": COLOURS,
    "texture": TEXTURES,
    "size": SIZES,
    "position": POSITIONS,
}

#: every object concept, in a fixed order
CONCEPTS = tuple(value for values in ATTRIBUTES.values() for value in values)

#: the spurious corner mark of the "spurious" variant, also exposed as a concept there
CORNER_MARK = "corner_mark"
#: how a text names the corner mark (the tiny CLIP learnt it; its metrics and the lens evaluation query it)
MARK_QUERY = "a magenta mark in the corner"
