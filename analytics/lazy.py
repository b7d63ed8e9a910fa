"""Package attributes that load their module on first use (PEP 562), for our packages' roots.

A package root re-exports names from its modules; importing them all at once would make
``import deploy.assignment`` (the SDK) or a CLI command pay for numpy, scipy and
scikit-learn through modules it never uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str], namespace: MutableMapping[str, Any],
                 exported: Iterable[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's ``__getattr__`` and ``__dir__``.

    ``where`` maps each exported name to the module (under ``package``) that defines it; a
    name once loaded is stored in ``namespace`` (the package's globals) and is then a plain
    attribute.
    """
    names = sorted(exported)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
