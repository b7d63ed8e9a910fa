"""The import graph of our own packages, read from the source with ``ast`` (nothing imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("analytics", "deploy", "improver", "service")


@dataclass(frozen=True)
class Import:
    """One import statement of ours: who imports what, and whether only for type checking."""

    importer: str
    imported: str
    line: int
    type_only: bool


def module_name(path: Path) -> str:
    """Return the dotted module name of a source file under the repository."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> Iterator[Path]:
    """Yield every Python file of our packages."""
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def _is_ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports_of(path: Path, known: set[str]) -> list[Import]:
    """Return the imports of ours in one file, resolved to module names that exist."""
    importer = module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    type_only = _type_checking_lines(tree)
    found: list[Import] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = importer.split(".") if is_package else importer.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # "from pkg import mod" imports the module pkg.mod when it exists.
            subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in known]
            targets = subs or [module]
        for target in targets:
            if _is_ours(target):
                found.append(Import(importer, target, node.lineno, node.lineno in type_only))
    return found


def import_graph() -> list[Import]:
    """Return every import of ours across our packages."""
    files = list(source_files())
    known = {module_name(p) for p in files}
    return [imp for p in files for imp in imports_of(p, known)]
