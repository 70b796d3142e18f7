"""``spec.venue.options``: strings from the manifest turned into typed fields of NautilusTrader configs.

The spec keeps options a map of strings (the API server's CEL rules must be able to see every
key), so each value is converted here to the type the target config class declares for that
field: ``"false"`` to a bool, ``"5"`` to an int or a ``PositiveInt`` (bounds checked), an
enum member by name or value, and JSON for structured fields (``'{"BTCUSDT": 5}'``). An
option goes to every config class (data, execution) that has a field of that name; a name
none of them has, or one the spec sets elsewhere, is an error listing what is allowed.
"""

from __future__ import annotations

import enum
import json
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec
from nautilus_trader.common.config import msgspec_decoding_hook

_SCALARS = (str, int, float, bool, Decimal)


class VenueOptionError(ValueError):
    """An option the adapter does not have, or a value that does not fit the option's type."""


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return tp, False


def _is_scalar(tp: Any) -> bool:
    base = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp
    if typing.get_origin(base) is not None:  # list[...], dict[...], Literal, unions
        return False
    return not (isinstance(base, type) and issubclass(base, msgspec.Struct))


def _decode_hook(tp: type, value: Any) -> Any:
    """NautilusTrader's hook, plus enums of the Rust core (pyo3), looked up by member name."""
    if isinstance(tp, type) and issubclass(tp, str) and isinstance(value, str):
        return tp(value)  # str subclasses such as Binance's BinanceSymbol (futures_leverages keys)
    try:
        return msgspec_decoding_hook(tp, value)
    except TypeError:
        if isinstance(value, str) and hasattr(tp, value.upper()):
            return getattr(tp, value.upper())
        raise


def convert_value(raw: str, tp: Any) -> Any:
    """``raw`` converted to the field type ``tp``; ValueError with msgspec's reason when it does not fit."""
    inner, optional = _strip_optional(tp)
    if optional and raw.strip().lower() in ("", "null", "none"):
        return None
    value: Any = raw
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        # Python enums: accept the member's name as well as its value, in any case.
        by_name = {m.name.lower(): m for m in inner}
        if raw.lower() in by_name:
            return by_name[raw.lower()]
    if not _is_scalar(inner):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected JSON for this structured setting ({exc.msg})") from None
    try:
        return msgspec.convert(value, type=tp, strict=False, dec_hook=_decode_hook)
    except (msgspec.ValidationError, TypeError, ValueError, KeyError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


def _type_name(tp: Any) -> str:
    inner, optional = _strip_optional(tp)
    base = typing.get_args(inner)[0] if typing.get_origin(inner) is typing.Annotated else inner
    name = getattr(base, "__name__", None) or str(base).replace("typing.", "")
    if isinstance(base, type) and issubclass(base, enum.Enum):
        name = f"{name} ({'|'.join(m.name for m in base)})"
    return f"{name} or null" if optional else name


def field_types(cls: type) -> dict[str, Any]:
    """The fields of a config class with their types, resolved.

    Some adapters' config modules name types they import only for type checking (Bybit's
    ``BybitProductType``, ``BybitSymbol``); those are resolved among the classes of the
    adapter's loaded modules.
    """
    try:
        return {f.name: f.type for f in msgspec.structs.fields(cls)}
    except NameError:
        pass
    namespace: dict[str, Any] = {}
    package = ".".join(cls.__module__.split(".")[:3])  # nautilus_trader.adapters.<adapter>
    for name, module in list(sys.modules.items()):
        if module is not None and (name == package or name.startswith(package + ".")):
            namespace |= {k: v for k, v in vars(module).items() if isinstance(v, type)}
    for klass in reversed(cls.__mro__):  # each class's own module wins for its annotations
        namespace |= vars(sys.modules[klass.__module__])
    hints = typing.get_type_hints(cls, globalns=namespace, include_extras=True)
    return {name: hints[name] for name in cls.__struct_fields__}  # type: ignore[attr-defined]


def option_fields(config_classes: Sequence[type], reserved: Mapping[str, str]) -> dict[str, Any]:
    """Every option name the classes accept (not reserved), with its type: what a user may set."""
    allowed: dict[str, Any] = {}
    for cls in config_classes:
        for name, tp in field_types(cls).items():
            if name not in reserved:
                allowed.setdefault(name, tp)
    return allowed


def convert_options(
    options: Mapping[str, str] | None,
    config_classes: Sequence[type],
    *,
    reserved: Mapping[str, str],
    adapter: str,
) -> list[dict[str, Any]]:
    """For each config class, the typed keyword arguments the options give it.

    ``reserved`` maps field names the runtime sets itself to the spec field (or reason) that
    sets them, so the error can send the user there.
    """
    per_class: list[dict[str, Any]] = [{} for _ in config_classes]
    if not options:
        return per_class
    allowed = option_fields(config_classes, reserved)
    for key, raw in options.items():
        if key in reserved:
            raise VenueOptionError(f"spec.venue.options.{key} cannot be set as an option: {reserved[key]}")
        if key not in allowed:
            listing = ", ".join(f"{name} ({_type_name(tp)})" for name, tp in sorted(allowed.items()))
            raise VenueOptionError(
                f"spec.venue.options.{key} is not an option of the {adapter} adapter; allowed: {listing}"
            )
        for index, cls in enumerate(config_classes):
            tp = field_types(cls).get(key)
            if tp is None:
                continue
            try:
                per_class[index][key] = convert_value(raw, tp)
            except ValueError as exc:
                raise VenueOptionError(
                    f"spec.venue.options.{key}: {raw!r} is not a valid {_type_name(tp)} for {cls.__name__}.{key}: {exc}"
                ) from None
    return per_class
