"""Concept composition trees: which lower-layer concepts a concept is made of, expanded lazily."""


class CompositionNode:
    """A concept in a composition tree.

    ``share`` is the node's relevance as a fraction of its parent's relevance (1 for the root). ``children`` are
    computed on first access: the ``top`` most relevant concepts of the recorded layers directly below (through
    branches such as ResNet shortcuts), conditioned on the path from the root to this node.
    """

    def __init__(self, explainer, explanation, path, relevance, share, top):
        self._explainer = explainer
        self._explanation = explanation
        self.path = path  # [(layer, channel), ...] from the root to this node
        self.relevance = relevance
        self.share = share
        self.top = top
        self._children = None

    @property
    def layer(self):
        return self.path[-1][0]

    @property
    def channel(self):
        return self.path[-1][1]

    @property
    def conditions(self):
        """The CRP condition set of this node: every concept on its path."""
        return {layer: [channel] for layer, channel in self.path}

    @property
    def expanded(self):
        return self._children is not None

    @property
    def children(self):
        """The ``top`` sub-concepts of this node (computed now if not yet)."""
        if self._children is None:
            with self._explainer.lock:
                self._children = self._expand()
        return self._children

    def _expand(self):
        explanation = self._explanation
        lower = explanation.lower_layers(self.layer)
        if not lower:
            return []
        relevances = explanation.path_concept_relevances(self.conditions, lower)
        scored = [(float(value), layer, channel) for layer, relevance in relevances.items()
                  for channel, value in enumerate(relevance.tolist())]
        scored.sort(reverse=self.relevance >= 0)  # the children that carry most of the parent's relevance
        denominator = self.relevance if self.relevance != 0 else float("nan")
        return [
            CompositionNode(self._explainer, explanation, self.path + [(layer, channel)], value, value / denominator,
                            self.top)
            for value, layer, channel in scored[: self.top]
        ]

    def heatmap(self):
        """The conditional heatmap of this node's path (H, W)."""
        with self._explainer.lock:
            return self._explanation.conditional_heatmap(self.conditions)

    def expand(self, depth):
        """Compute the children down to ``depth`` levels below this node; return self."""
        if depth > 0:
            for child in self.children:
                child.expand(depth - 1)
        return self

    def to_dict(self):
        """JSON-serialisable form with the children computed so far (``children`` is None where not expanded)."""
        return {
            "layer": self.layer,
            "channel": self.channel,
            "relevance": self.relevance,
            "share": self.share,
            "path": [list(step) for step in self.path],
            "children": None if self._children is None else [child.to_dict() for child in self._children],
        }
