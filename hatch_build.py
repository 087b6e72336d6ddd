"""Hatch build hook: bundle the widget front end (js/<view>.js -> src/conceptscope/widgets/static/).

Runs on wheel builds and editable installs (``pip install -e .``). It runs ``npm ci`` when
``node_modules`` is missing and then ``npm run build`` (esbuild, see js/build.mjs), unless every
bundle is newer than all front-end sources and the lockfile. Set CONCEPTSCOPE_SKIP_JS_BUILD=1 to
skip it (the widgets then raise a clear error until the bundle is built).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).parent
JS = ROOT / "js"
STATIC = ROOT / "src" / "conceptscope" / "widgets" / "static"


def bundles() -> list[Path]:
    """The bundle each view module js/<view>.js is built into."""
    return [STATIC / src.name for src in sorted(JS.glob("*.js"))]


def up_to_date() -> bool:
    """True when every bundle exists and is newer than every front-end input."""
    inputs = [p for p in JS.rglob("*") if p.is_file()] + [ROOT / "package.json", ROOT / "package-lock.json"]
    outputs = bundles()
    if not all(p.is_file() for p in outputs):
        return False
    newest_input = max((p.stat().st_mtime for p in inputs if p.is_file()), default=0.0)
    return min(p.stat().st_mtime for p in outputs) >= newest_input


class JsBuildHook(BuildHookInterface):
    """Build the JavaScript bundles before hatch collects the package files."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":  # sdists ship the sources, not the bundles
            return
        if os.environ.get("CONCEPTSCOPE_SKIP_JS_BUILD"):
            self.app.display_warning("CONCEPTSCOPE_SKIP_JS_BUILD set: not building the widget bundles")
            return
        if up_to_date():
            self.app.display_info("widget bundles are up to date")
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "building conceptscope's widget front end needs Node.js and npm (https://nodejs.org); "
                "install them, or set CONCEPTSCOPE_SKIP_JS_BUILD=1 to build without the widgets"
            )
        if not (ROOT / "node_modules").is_dir():
            self._run([npm, "ci"])
        self._run([npm, "run", "build"])
        missing = [str(p) for p in bundles() if not p.is_file()]
        if missing:
            raise RuntimeError(f"npm run build did not produce {', '.join(missing)}")

    def _run(self, cmd: list[str]) -> None:
        self.app.display_info(f"running {' '.join(cmd[1:])!r} in {ROOT}")
        subprocess.run(cmd, cwd=ROOT, check=True)
