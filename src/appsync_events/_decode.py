"""Decoding event texts into Python types (:meth:`Subscription.decode_next`)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from .errors import DecodeError

__all__ = ["decode_event"]


_SCALARS: dict[type, tuple[type, ...]] = {
    str: (str,),
    bool: (bool,),
    int: (int,),
    float: (int, float),
    dict: (dict,),
    list: (list,),
}


def decode_event(text: str, target: Any) -> Any:
    """Decode the JSON ``text`` into ``target`` (see :meth:`Subscription.decode_next`).

    Raises:
        DecodeError: the text is not JSON or does not fit ``target``.
    """
    name = getattr(target, "__name__", repr(target))
    validate_json = getattr(target, "model_validate_json", None)
    if validate_json is not None:  # a pydantic model
        try:
            return validate_json(text)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise DecodeError(text, name, str(exc)) from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DecodeError(text, name, f"not valid JSON: {exc}") from None
    if target is None:
        return value
    try:
        return _convert(value, target, "$")
    except _Mismatch as exc:
        raise DecodeError(text, name, str(exc)) from None


class _Mismatch(Exception):
    pass


def _convert(value: Any, hint: Any, path: str) -> Any:
    # Reasoning, case by case: dataclasses and TypedDicts are built field by field (their
    # hints say what each field must be); generic containers convert their items;
    # Optional/Union try each member; scalars are checked with isinstance; anything else
    # (Any, Literal, unknown hints) is passed through unchecked.
    if hint is Any or hint is object:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(value, hint, path)
    if typing.is_typeddict(hint):
        return _typeddict(value, hint, path)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(value, args, path)
    if origin in (list, tuple, set, frozenset) or (
        origin is not None and origin.__module__ == "collections.abc" and origin is not dict
    ):
        return _sequence(value, origin, args, path)
    if origin is dict:
        _expect(value, (dict,), path, "an object")
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(v, item, f"{path}.{k}") for k, v in value.items()}
    if hint is None or hint is type(None):
        if value is not None:
            raise _Mismatch(f"{path}: expected null")
        return None
    if isinstance(hint, type) and hint in _SCALARS:
        if hint is not bool and isinstance(value, bool):
            raise _Mismatch(f"{path}: expected {hint.__name__}, got a boolean")
        _expect(value, _SCALARS[hint], path, hint.__name__)
        return float(value) if hint is float else value
    return value


def _expect(value: Any, kinds: tuple[type, ...], path: str, what: str) -> None:
    if not isinstance(value, kinds):
        raise _Mismatch(f"{path}: expected {what}, got {type(value).__name__}")


def _union(value: Any, args: tuple[Any, ...], path: str) -> Any:
    problems = []
    for member in args:
        try:
            return _convert(value, member, path)
        except _Mismatch as exc:
            problems.append(str(exc))
    raise _Mismatch(" / ".join(problems))


def _sequence(value: Any, origin: Any, args: tuple[Any, ...], path: str) -> Any:
    _expect(value, (list,), path, "an array")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise _Mismatch(f"{path}: expected {len(args)} items, got {len(value)}")
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in pairs)
    item = args[0] if args else Any
    items = [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (tuple, set, frozenset):
        return origin(items)
    return items


def _dataclass(value: Any, cls: type, path: str) -> Any:
    _expect(value, (dict,), path, f"an object for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name in value:
            kwargs[field.name] = _convert(
                value[field.name], hints[field.name], f"{path}.{field.name}"
            )
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise _Mismatch(f"{path}: missing field {field.name!r} of {cls.__name__}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _Mismatch(f"{path}: {cls.__name__}: {exc}") from None


def _typeddict(value: Any, cls: Any, path: str) -> Any:
    _expect(value, (dict,), path, f"an object for {cls.__name__}")
    # __required_keys__ misses Required/NotRequired written as strings (``from __future__
    # import annotations``), so the resolved hints have the last word.
    required = set(cls.__required_keys__)
    hints = typing.get_type_hints(cls, include_extras=True)
    for key, hint in hints.items():
        origin = typing.get_origin(hint)
        if origin is typing.NotRequired:
            required.discard(key)
        elif origin is typing.Required:
            required.add(key)
        if origin in (typing.NotRequired, typing.Required):
            hints[key] = typing.get_args(hint)[0]
    missing = [key for key in required if key not in value]
    if missing:
        raise _Mismatch(f"{path}: missing key(s) {', '.join(map(repr, sorted(missing)))}")
    return {
        key: _convert(item, hints[key], f"{path}.{key}") if key in hints else item
        for key, item in value.items()
    }
