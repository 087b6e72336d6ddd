"""The exceptions conceptscope raises for kinds of error that more than one of its parts can meet.

Each subclasses the builtin exception such code raised before (``KeyError``, ``ValueError``), so ``except`` clauses
written for those still catch them. Errors of one part only live with it (``UntraceableModelError`` in the engine,
``ProtocolError`` in the widgets, ...); the package exports them all.
"""


class UnknownLayerError(KeyError, ValueError):
    """A layer name the model, explanation, atlas, lens or view does not have; the message lists the ones it has."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # the message itself, not KeyError's repr of it


class AtlasMismatchError(ValueError):
    """The atlas on disk was built for another model, dataset, composite or with other settings."""
