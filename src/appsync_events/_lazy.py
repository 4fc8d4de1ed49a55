"""PEP 562 lazy exports: a shim for branches that still import it (nothing in this tree does).

``appsync_events`` and ``appsync_emulator`` each define their own module ``__getattr__``;
the emulator imports no private module of the client.  Remove this module after the merge.

A package lists ``{public name: submodule}``; the submodule is imported the first time the
name is read, and the value is cached in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    table: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    public: Iterable[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the module ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        table: public name -> submodule (relative to ``package``) that defines it; a name
            equal to its submodule stands for the submodule itself.
        namespace: the package's ``globals()``, where loaded values are cached.
        public: the package's ``__all__``.
    """
    names = tuple(public)

    def load(name: str) -> Any:
        home = table.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{home}")
        value = module if home == name else getattr(module, name)
        namespace[name] = value
        return value

    def listing() -> list[str]:
        return sorted({*namespace, *names})

    return load, listing
