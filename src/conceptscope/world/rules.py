"""Class rules of the shapes world.

A class is defined by a rule "the image contains an object with these attribute values".
Rules are checked in priority order and the label is the first rule that holds, so classes are
exclusive. Single-attribute rules (a colour, a texture, a shape) and conjunctions (colour and
shape, colour and texture, size and shape) are mixed so that a model has to learn single
concepts as well as their combinations.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One class: its name, a readable description and the attribute values an object needs."""

    name: str
    description: str
    conditions: tuple[tuple[str, str], ...]

    def matches(self, obj: Mapping[str, object]) -> bool:
        """Whether one object (a dict of attribute values) satisfies the rule."""
        return all(obj[attribute] == value for attribute, value in self.conditions)


#: the rules in priority order; the class index is the position in this tuple
RULES = (
    Rule("yellow object", "any yellow object", (("colour", "yellow"),)),
    Rule("dotted object", "any dotted object", (("texture", "dotted"),)),
    Rule("red circle", "a circle that is red", (("colour", "red"), ("shape", "circle"))),
    Rule("blue striped", "an object that is blue and striped", (("colour", "blue"), ("texture", "striped"))),
    Rule("cross", "any cross", (("shape", "cross"),)),
    Rule("green square", "a square that is green", (("colour", "green"), ("shape", "square"))),
    Rule("large triangle", "a triangle that is large", (("size", "large"), ("shape", "triangle"))),
)

CLASSES = tuple(rule.name for rule in RULES)


def classify(objects: Sequence[Mapping[str, object]]) -> int | None:
    """Label of an image with these objects: the first rule some object satisfies (None if none)."""
    for index, rule in enumerate(RULES):
        if any(rule.matches(obj) for obj in objects):
            return index
    return None


def evidence(objects: Sequence[Mapping[str, object]], label: int) -> list[int]:
    """Indices of the objects that make rule ``label`` true."""
    return [k for k, obj in enumerate(objects) if RULES[label].matches(obj)]
