"""Decoding a received event into a Python type (``Subscription.decode_next``), with pydantic.

``decode_event(text, None)`` is plain :func:`json.loads`.  Any other target is validated
by pydantic's :class:`~pydantic.TypeAdapter` straight from the JSON text, so everything
pydantic validates works: dataclasses, ``TypedDict`` (from ``typing_extensions`` on
Python 3.11, as pydantic requires), pydantic models, ``list[int]``, ``dict[str, X]``,
unions, ``Literal``, ``datetime``...  pydantic is an optional dependency: install
``appsync-events[pydantic]``.

Strictness: JSON already has types, so a target is validated in pydantic's strict mode
(``"1"`` is not an ``int``, ``true`` is not an ``int``; an integer is a valid ``float``,
and JSON objects and arrays fill dataclasses, ``TypedDict``, tuples and sets).  A type
with its own pydantic configuration (a pydantic model or pydantic dataclass) keeps it:
its ``strict`` setting decides, lax by default, as ``Model.model_validate_json`` does.
Unknown keys are ignored unless the type's configuration says otherwise.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Final

from .errors import ConfigurationError, DecodeError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = ["decode_event"]

ADAPTER_CACHE_SIZE: Final = 128
"""Target types whose pydantic adapter is kept (building one costs far more than using it)."""
_INSTALL_HINT: Final = (
    "decoding into a type needs pydantic: install appsync-events[pydantic] "
    "(or decode_next() without a type for the plain JSON value)"
)


def decode_event(text: str, target: Any) -> Any:
    """Decode the JSON ``text`` into ``target`` (``None``: the plain JSON value).

    Raises:
        DecodeError: the text is not JSON or does not fit ``target``; the reason names
            each failing field by its path (``$.author.name: Field required``).
        ConfigurationError: ``target`` is not ``None`` and pydantic is not installed, or
            pydantic cannot validate ``target`` (naming it).
    """
    if target is None:
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(text, "None", f"not valid JSON: {exc}") from None
    adapter, strict = _adapter(target)
    from pydantic import ValidationError

    try:
        return adapter.validate_json(text, strict=strict)
    except ValidationError as exc:
        raise DecodeError(text, _name(target), _reason(exc)) from exc


def _adapter(target: Any) -> tuple[TypeAdapter[Any], bool | None]:
    try:
        return _cached_adapter(target)
    except TypeError as exc:  # unhashable target (say, Annotated with a list): not cached
        if "unhashable" not in str(exc):
            raise
        return _build_adapter(target)


@functools.lru_cache(maxsize=ADAPTER_CACHE_SIZE)
def _cached_adapter(target: Any) -> tuple[TypeAdapter[Any], bool | None]:
    return _build_adapter(target)


def _build_adapter(target: Any) -> tuple[TypeAdapter[Any], bool | None]:
    try:
        import pydantic
    except ImportError:
        raise ConfigurationError(_INSTALL_HINT) from None
    try:
        adapter: TypeAdapter[Any] = pydantic.TypeAdapter(target)
    except pydantic.PydanticUserError as exc:  # schema generation errors included
        raise ConfigurationError(f"cannot decode into {_name(target)}: {exc}") from None
    configured = hasattr(target, "model_config") or hasattr(target, "__pydantic_config__")
    return adapter, None if configured else True


def _name(target: Any) -> str:
    name = getattr(target, "__name__", None)
    return name if isinstance(name, str) and "[" not in repr(target) else repr(target)


def _reason(exc: Any) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        if error["type"] == "json_invalid":
            problems.append(f"not valid JSON: {error['msg']}")
            continue
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        problems.append(f"{path}: {error['msg']}")
    return "; ".join(problems)
