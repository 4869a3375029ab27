"""Whether a plain value read from JSON or a hydra override fits a declared Python type, and how to say
which values do: a checkpoint's network description and training's ``trainer.*`` overrides are checked
with these, so a wrong type is refused by name instead of failing later inside a constructor."""

from __future__ import annotations

import types
import typing


def fits_type(value, hint) -> bool:
    """JSON/YAML numbers: an int where an int is declared, an int or a float for a float, booleans apart;
    lists for tuples and lists; a type these values cannot name (a class, a callable) is not judged."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits_type(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list) or hint in (tuple, list):
        return isinstance(value, (list, tuple))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def describe_type(hint) -> str:
    """``int`` → "an integer", ``int | None`` → "an integer or null", ``Literal["a", 1]`` → "'a' or 1"."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(describe_type(arg) for arg in typing.get_args(hint)))
    if origin is typing.Literal:
        return " or ".join(repr(arg) for arg in typing.get_args(hint))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if hint in names:
        return names[hint]
    if origin in (tuple, list) or hint in (tuple, list):
        return "a list"
    return getattr(hint, "__name__", str(hint))
