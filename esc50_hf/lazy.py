"""Lazy re-exports for a subpackage (PEP 562): its modules' public names, importable from the subpackage itself and
loaded on first access, so that importing the subpackage stays cheap."""

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`(__getattr__, __dir__, __all__)` for the subpackage `package`.

    Args:
        package (`str`): The subpackage's `__name__`.
        namespace (`dict`): Its `globals()`: a name loaded once is stored there, so later accesses skip `__getattr__`.
        exports (`dict[str, str]`): Module name (relative) -> its public names, separated by spaces.
    """
    lazy = {name: module for module, names in exports.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        if name not in lazy:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{lazy[name]}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(lazy))

    return __getattr__, __dir__, sorted(lazy)
