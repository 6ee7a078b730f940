"""The package's floors: imports flow one way, and no module imports itself through others.

The layer order is documented in docs/architecture.md; this test is its enforcement. Imports
under `if TYPE_CHECKING:` are annotations only and never run, so they do not count.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mnsearch"

# Lowest floor first. A module may import from its own floor and from floors below it.
LAYERS = (
    ("errors", "atomic", "cache", "pareto"),
    ("spec",),
    ("cost",),
    ("nn",),
    ("data",),
    ("train",),
    ("search",),
    ("results",),
    ("plots",),
    ("export",),
    ("dashboard",),
    ("testing",),
    ("cli",),
    ("__init__", "__main__"),
)
FLOOR = {part: index for index, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every mnsearch module `path` imports at run time, at any depth of the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(child) for child in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mnsearch"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("mnsearch"):
            for alias in node.names:  # `from mnsearch.nn import native` imports a module
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    known = set(paths)
    graph = {}
    for name, path in paths.items():
        targets = {target for target in imported_modules(path, known) if target in known}
        # importing a submodule runs its package's __init__ first, which is part of the edge
        graph[name] = {target for target in targets if target != name}
    return graph


def floor_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return FLOOR["__init__"]
    return FLOOR[parts[1]]


def test_every_module_has_a_floor():
    unplaced = [name for name in import_graph() if name != "mnsearch"
                and name.split(".")[1] not in FLOOR]
    assert not unplaced, f"add these to LAYERS (and docs/architecture.md): {unplaced}"


def test_imports_flow_down_the_floors():
    upward = [f"{source} -> {target}" for source, targets in import_graph().items()
              for target in targets if floor_of(target) > floor_of(source)]
    assert not upward, "imports from a lower floor to a higher one:\n" + "\n".join(upward)


def test_no_import_circles():
    graph = import_graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [node, target]))
            elif target not in state:
                visit(target, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import circles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("floor", ["spec", "cost", "data", "search", "results", "plots"])
def test_floors_below_nn_or_beside_it_stay_free_of_jax(floor):
    """spec, cost, data, search's planning and the results/plots never import JAX at the top."""
    paths = [PACKAGE / f"{floor}.py"] if (PACKAGE / f"{floor}.py").exists() \
        else sorted((PACKAGE / floor).rglob("*.py"))
    offenders = []
    for path in paths:
        for node in ast.parse(path.read_text()).body:  # module level only
            names = [alias.name for alias in getattr(node, "names", [])] \
                if isinstance(node, ast.Import) else [getattr(node, "module", "") or ""]
            if isinstance(node, ast.Import | ast.ImportFrom) and any(
                    name.split(".")[0] in ("jax", "flax", "optax") for name in names):
                offenders.append(path.name)
    assert not offenders, f"JAX imported at module level in {floor}: {offenders}"
