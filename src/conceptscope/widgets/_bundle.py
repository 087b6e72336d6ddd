"""Location of the bundled front-end modules (built from ``js/`` by esbuild, see hatch_build.py)."""

from __future__ import annotations

import pathlib

STATIC = pathlib.Path(__file__).parent / "static"

# Used as the widget's module when the bundle is missing; widget creation raises before use.
_MISSING = "// conceptscope: front-end bundle missing\nexport default {};\n"


class MissingBundleError(FileNotFoundError):
    """The JavaScript bundle of a view was not built."""


def esm(view: str) -> pathlib.Path | str:
    """The bundled module ``static/<view>.js`` for a widget's ``_esm`` (a stub if it is missing)."""
    path = STATIC / f"{view}.js"
    return path if path.is_file() else _MISSING


def require(view: str) -> None:
    """Raise :class:`MissingBundleError` with the fix when ``static/<view>.js`` was not built."""
    path = STATIC / f"{view}.js"
    if not path.is_file():
        raise MissingBundleError(
            f"the front-end bundle {path} is missing. Build it from a source checkout with "
            "`npm ci && npm run build` (or reinstall conceptscope: `pip install -e .` builds it), "
            "then restart the kernel."
        )
