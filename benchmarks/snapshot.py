"""Size of a click-through HTML snapshot (save_html(..., precompute=...)) of the shapes world's explorer.

The explorer (the shapes CNN, a VGG-style network, with an atlas of 64 test images) is saved once as it is and once
with the clicks of a lecture precomputed: 3 classes (the predicted one and the next two) x 2 layers x the top 8
concepts of each, and their composition trees --tree-depth levels deep. Printed: the file sizes, the states and
requests stored, and the seconds the precomputation took (one run, on this machine).

Run: ``.venv/bin/python benchmarks/snapshot.py [--tree-depth 1]``.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from _common import report

import conceptscope as cs
from conceptscope.atlas import Atlas
from conceptscope.widgets import explore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree-depth", type=int, default=1)
    args = parser.parse_args()
    world = cs.load_world("shapes")
    xp = cs.Explainer(world.model)
    data = world.dataset("test", n=64)
    folder = Path(tempfile.mkdtemp())
    atlas = Atlas.build(xp, data, ["features.15", "features.11"], folder / "atlas", k=16, progress=False)
    explorer = explore(xp, data[3][0], atlas=atlas, picture=data.raw_image(3))
    assert explorer.wait(120)
    predicted = explorer.target.predicted
    classes = [predicted, (predicted + 1) % 7, (predicted + 2) % 7]
    spec = dict(classes=classes, layers=["features.15", "features.11"], concepts=8, tree_depth=args.tree_depth)
    plain = explorer.save_html(folder / "plain.html")
    start = time.perf_counter()
    lecture = explorer.save_html(folder / "lecture.html", precompute=spec)
    seconds = time.perf_counter() - start
    text = lecture.read_text(encoding="utf-8")
    table = json.loads(re.search(r'id="cs-snapshot">(.*?)</script>', text, re.S).group(1))["precomputed"]
    rows = [{"snapshot": "as it is", "MB": plain.stat().st_size / 1e6},
            {"snapshot": f"3 classes x 2 layers x 8 concepts, tree depth {args.tree_depth}",
             "MB": lecture.stat().st_size / 1e6, "states": len(table["states"]), "requests": len(table["requests"]),
             "precompute s": seconds}]
    report("snapshot", rows, {"precompute": spec})


if __name__ == "__main__":
    main()
