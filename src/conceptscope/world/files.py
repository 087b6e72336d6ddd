"""Where the shapes world's shipped files live (model weights, training metrics): one place that the loaders
(:mod:`.api`, :mod:`.clip`) and the training scripts share without importing each other."""

from pathlib import Path

ASSETS = Path(__file__).parent / "assets"
