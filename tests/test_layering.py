"""The package's import graph keeps the layering of the README's architecture section: imports go one way.

Parsed from the sources with ``ast`` (every import, also those inside functions), so the rules hold for lazy imports
too and the test needs no import of the modules it checks.
"""
import ast
from pathlib import Path

import pytest

import conceptscope

ROOT = Path(conceptscope.__file__).parent
PACKAGE = "conceptscope"

#: the floor of each part of the package: a module imports its own part and parts on lower floors only. The root
#: module ``errors`` (importing nothing) is below everything; ``models`` and ``render`` are the ground floor; ``world``
#: is the kit on top (nothing imports it)
FLOORS = {"errors": -1, "models": 0, "render": 0, "engine": 1, "plot": 1, "atlas": 2, "methods": 2, "semantics": 3,
          "evaluation": 3, "widgets": 4, "world": 5}


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _is_package(path):
    return path.name == "__init__.py"


def _resolve(name):
    """The module a dotted name refers to: itself if it is a module or package of ours, else its parent (an
    attribute such as a class); None outside the package."""
    while name.startswith(PACKAGE):
        relative = name.split(".")[1:]
        path = ROOT.joinpath(*relative)
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(path):
    """The modules of the package that the module at ``path`` imports anywhere in its source."""
    name = _module_name(path)
    base = name if _is_package(path) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            anchor = base
            for _ in range(node.level - 1):
                anchor = anchor.rpartition(".")[0]
            module = ".".join(part for part in (anchor if node.level else "", node.module or "") if part)
            targets = [f"{module}.{alias.name}" for alias in node.names] or [module]
        else:
            continue
        found.update(resolved for target in targets if (resolved := _resolve(target)) is not None)
    return found - {name}


GRAPH = {_module_name(path): (path, _imports(path)) for path in sorted(ROOT.rglob("*.py"))}


def _part(module):
    """The part of the package (``engine``, ``world``, ...) a module belongs to; None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_graph_is_parsed():
    """The parser finds imports we know are there (else the rules below would pass vacuously)."""
    assert f"{PACKAGE}.models" in GRAPH[f"{PACKAGE}.engine.explainer"][1]
    assert f"{PACKAGE}.atlas.build" in GRAPH[f"{PACKAGE}.atlas.atlas"][1]
    assert f"{PACKAGE}.engine" in GRAPH[f"{PACKAGE}.world.selectivity"][1]
    assert all(_part(module) in FLOORS for module in GRAPH if _part(module) is not None)


@pytest.mark.parametrize("module", [m for m in GRAPH if _part(m) is not None])
def test_imports_go_down_the_floors(module):
    """A module imports its own part and lower floors only; command-line ``__main__`` entry points may also use the
    world (they are run, never imported)."""
    path, imports = GRAPH[module]
    part = _part(module)
    upward = sorted(target for target in imports if _part(target) not in (part, None)
                    and FLOORS[_part(target)] >= FLOORS[part]
                    and not (path.name == "__main__.py" and _part(target) == "world"))
    assert not upward, f"{module} ({part}, floor {FLOORS[part]}) imports {upward} from the same or a higher floor"


def test_nothing_below_the_world_imports_it():
    users = sorted(module for module, (path, imports) in GRAPH.items()
                   if _part(module) not in (None, "world") and path.name != "__main__.py"
                   and any(_part(target) == "world" for target in imports))
    assert not users, f"{users} import conceptscope.world"


def test_there_is_no_import_cycle():
    """No module reaches itself through imports (lazy imports included), so none needs a workaround."""
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(GRAPH[module][1]):
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in GRAPH:
        if module not in state:
            visit(module, [module])


def test_no_module_imports_a_training_script():
    """Training scripts are run, not used: constants others need (e.g. the corner mark's query) live elsewhere."""
    scripts = {f"{PACKAGE}.world.train", f"{PACKAGE}.world.train_clip", f"{PACKAGE}.world.train_dense"}
    users = sorted(module for module, (_, imports) in GRAPH.items() if imports & scripts)
    assert not users, f"{users} import a training script"
