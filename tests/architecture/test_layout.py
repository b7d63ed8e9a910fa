"""The folder tree is the architecture: imports point one way, and nothing imports in a circle.

Layers, lowest first (a module may import its own layer and the layers below it only):

    analytics  <-  deploy, improver  <-  service.contract  <-  service.store
    <-  service.projections  <-  service.runtime  <-  service.commands
    <-  service.jobs | service.http  <-  service.server  <-  service.simulation
    <-  service.cli

``service.jobs`` and ``service.http`` are siblings and never import each other. The agent
SDK (``service.sdk``) stands apart: it may import the contract, the template sandbox and
sticky assignment, and nothing else of ours, so an agent installs it without the server;
only the simulated fleet (an agent) and the CLI (an admin client) import it.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.architecture.imports import REPO, Import, import_graph, module_name, source_files

LAYERS: list[tuple[str, ...]] = [
    ("service",),  # the package itself holds only __version__
    ("analytics",),
    ("deploy", "improver"),
    ("service.contract",),
    ("service.store",),
    ("service.projections",),
    ("service.runtime",),
    ("service.commands",),
    ("service.jobs", "service.http"),
    ("service.server",),
    ("service.simulation",),
    ("service.cli",),
]
SDK = "service.sdk"
SDK_MAY_IMPORT = ("service", "service.contract", "improver.templates", "deploy.assignment")
SIBLINGS = {("service.jobs", "service.http"), ("service.http", "service.jobs"),
            ("deploy", "improver"), ("improver", "deploy")}


def room(module: str) -> str:
    """Return the layer entry a module belongs to (its longest matching prefix)."""
    names = [name for layer in LAYERS for name in layer] + [SDK]
    matches = [n for n in names if module == n or module.startswith(n + ".")]
    assert matches, f"{module} belongs to no layer: add it to LAYERS"
    return max(matches, key=len)


def rank(entry: str) -> int:
    """Return the index of the layer holding ``entry``."""
    return next(i for i, layer in enumerate(LAYERS) if entry in layer)


def _allowed(imp: Import) -> bool:
    source, target = room(imp.importer), room(imp.imported)
    if source == SDK:
        return target == SDK or any(imp.imported == m or imp.imported.startswith(m + ".")
                                    for m in SDK_MAY_IMPORT if m != "service") \
            or imp.imported == "service"
    if target == SDK:
        return source in ("service.simulation", "service.cli")
    if source == target:
        return True
    if (source, target) in SIBLINGS:
        return False
    return rank(target) < rank(source)


GRAPH = import_graph()


def test_every_module_belongs_to_a_layer() -> None:
    for path in source_files():
        room(module_name(path))


def test_imports_point_one_way() -> None:
    against = [f"{i.importer}:{i.line} imports {i.imported}" for i in GRAPH
               if not i.type_only and not _allowed(i)]
    assert not against, "imports against the direction:\n" + "\n".join(against)


def test_no_import_cycles_between_modules() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for i in GRAPH:
        # A package's __init__ re-exporting its own modules is not a cycle in behaviour.
        if not i.type_only and not i.imported.startswith(i.importer + "."):
            edges[i.importer].add(i.imported)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", ["analytics", "deploy", "improver", "service"])
def test_no_module_is_too_long_to_read_in_one_sitting(package: str) -> None:
    long = [f"{p.relative_to(REPO)}: {n} lines" for p in (REPO / package).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500]
    assert not long, "modules over 500 lines:\n" + "\n".join(long)


def test_service_keeps_its_top_level_small() -> None:
    top = sorted(p.name for p in (REPO / "service").glob("*.py"))
    assert len(top) <= 10, top
