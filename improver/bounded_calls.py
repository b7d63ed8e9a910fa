"""Size-checked stand-ins for the methods through which a template allocates.

Each guard reads the size of the result off the arguments (a width, a repeat count, the
number of matches of ``old``) and accounts for it on the render's meter before the real
method runs, so an oversized result is refused without being built. Methods that only
copy or scan their input are charged for the copy or the scan. The filters have theirs in
``improver.bounded_filters``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from markupsafe import Markup, escape

from improver.render_budget import (
    ESCAPE_FACTOR,
    FIELD_STEPS,
    FORMAT_STEPS,
    REPR,
    STR,
    Meter,
    current_meter,
    data_weight,
    spec_size,
    text_size,
)

_LINE_BREAKS = ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
# Memory is counted in cells of ~4 bytes (one character of the widest str): a list slot is
# 2 cells, a new small object (an int from a range, a piece of a split) ~10 beyond its
# characters, a dict entry with its share of the hash table ~24.
SLOT_CELLS = 2
FRESH_OBJECT_CELLS = 12
_DICT_ENTRY_CELLS = 24


def positive_int(value: Any) -> int:
    """Return ``value`` if it is a positive int (a width, a count), else 0."""
    return value if isinstance(value, int) and value > 0 else 0


def count_lines(text: str | bytes) -> int:
    """Return how many lines ``splitlines`` may make of ``text`` (every line break counts)."""
    if isinstance(text, str):
        return 1 + sum(map(text.count, _LINE_BREAKS))
    return 1 + text.count(b"\n") + text.count(b"\r")


def _case_len(text: str | bytes) -> int:
    return len(text) if isinstance(text, bytes) or text.isascii() else 3 * len(text)  # 'ß' -> 'SS'


def metered(meter: Meter, iterable: Iterable[Any], price: int = 1) -> Iterable[Any]:
    """Yield the items of ``iterable`` at ``price`` steps each (so empty loops still pay)."""
    for item in iterable:
        meter.steps += price
        if meter.steps > meter.next_check:
            meter.checkpoint()
        yield item


def materialize(meter: Meter, iterable: Iterable[Any]) -> list[Any] | tuple[Any, ...]:
    """Return the items of ``iterable`` as a sequence, refusing more than a value may hold."""
    if isinstance(iterable, list | tuple):
        return iterable
    limit = meter.budget.max_value_len
    if hasattr(iterable, "__len__"):  # a range, a dict view: its items may be new objects
        size = len(iterable)  # type: ignore[arg-type]
        meter.build(size, "a list", FRESH_OBJECT_CELLS)
        meter.step(size >> 2)
        return list(iterable)
    items: list[Any] = []
    for item in metered(meter, iterable):
        items.append(item)
        if len(items) > limit:
            meter.check_len(len(items), "a list")
    meter.charge(SLOT_CELLS * len(items))
    return items


# --------------------------------------------------------------------------- methods
# A guard takes (meter, owner, *args, **kwargs) and returns None, or the (args, kwargs)
# to call the method with instead (when it had to consume an iterator to size it).


def _pad(meter: Meter, text: Any, width: Any = 0, *_: Any) -> None:
    meter.build(max(len(text), positive_int(width)), "a padded string")


def _expandtabs(meter: Meter, text: Any, tabsize: Any = 8) -> None:
    tab = "\t" if isinstance(text, str) else b"\t"
    extra = text.count(tab) * max(positive_int(tabsize) - 1, 0)
    meter.build(len(text) + extra, "an expanded string")


def _replace(meter: Meter, text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not (isinstance(old, str | bytes) and isinstance(new, str | bytes)):
        return  # the method raises TypeError itself
    if isinstance(text, Markup):
        old, new = escape(old), escape(new)
    hits = len(text) + 1 if not old else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    meter.build(len(text) + hits * max(len(new) - len(old), 0), "a replaced string")


def _join(meter: Meter, sep: Any, iterable: Any) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    if isinstance(iterable, str):  # joining characters: no list of them is needed
        meter.build(len(iterable) * (len(sep) + 1), "a joined string")
        return None
    items = materialize(meter, iterable)
    escaping = isinstance(sep, Markup)
    limit = meter.budget.max_value_len
    total = len(sep) * max(len(items) - 1, 0)
    for item in items:
        if escaping:
            total += ESCAPE_FACTOR * text_size(item, limit)
        elif isinstance(item, str | bytes | bytearray):
            total += len(item)
        if total > limit:
            break
    meter.step(len(items) >> 4)
    meter.build(total, "a joined string")
    return (items,), {}


def _split(meter: Meter, text: Any, sep: Any = None, maxsplit: Any = -1) -> None:
    if sep is None:
        pieces = len(text) // 2 + 1
    elif isinstance(sep, str | bytes) and sep:
        pieces = text.count(sep) + 1
    else:
        return
    if isinstance(maxsplit, int) and maxsplit >= 0:
        pieces = min(pieces, maxsplit + 1)
    meter.build(pieces, "a list of pieces", FRESH_OBJECT_CELLS + SLOT_CELLS)
    meter.charge(len(text))


def _splitlines(meter: Meter, text: Any, *_: Any, **__: Any) -> None:
    meter.build(count_lines(text), "a list of lines", FRESH_OBJECT_CELLS + SLOT_CELLS)
    meter.charge(len(text))


def _copy(meter: Meter, owner: Any, *_: Any, **__: Any) -> None:
    if isinstance(owner, dict):
        meter.charge(_DICT_ENTRY_CELLS * len(owner))
    else:
        meter.charge(len(owner) * (SLOT_CELLS if isinstance(owner, list) else 1))


def _case(meter: Meter, text: Any, *_: Any) -> None:
    meter.build(_case_len(text), "a string")


def _scan(meter: Meter, owner: Any, *args: Any, **__: Any) -> None:
    meter.step(data_weight(owner, meter) + sum(data_weight(arg, meter) for arg in args))


def _translate(meter: Meter, text: Any, table: Any) -> None:
    if isinstance(text, bytes | bytearray):
        meter.charge(len(text))
        return
    values = table.values() if isinstance(table, Mapping) else table
    longest = 1
    if isinstance(values, list | tuple) or isinstance(table, Mapping):
        meter.step(len(values) >> 4)
        longest = max((len(v) for v in values if isinstance(v, str)), default=1)
    meter.build(len(text) * max(longest, 1), "a translated string")


def _encode(meter: Meter, text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> None:
    plain = encoding in ("utf-8", "utf8") and errors == "strict"
    factor = (1 if text.isascii() else 4) if plain else 12  # '\U0001f600' via unicode_escape
    meter.build(factor * len(text), "an encoded string")


def _hex(meter: Meter, data: Any, *_: Any) -> None:
    meter.build(3 * len(data), "a hex string")


def _to_bytes(meter: Meter, _number: Any, length: Any = 1, *_: Any, **__: Any) -> None:
    meter.build(positive_int(length), "bytes")


def _grow(meter: Meter, owner: Any, *_: Any) -> None:  # list.append / list.insert
    meter.check_len(len(owner) + 1, "a list")
    meter.charge(SLOT_CELLS)


def _extend(meter: Meter, owner: Any, iterable: Any = ()) -> tuple[tuple[Any, ...], dict[str, Any]]:
    items = materialize(meter, iterable)
    meter.check_len(len(owner) + len(items), "a list")
    meter.charge(SLOT_CELLS * len(items))
    return (items,), {}


def _update(meter: Meter, owner: Any, other: Any = (), **kwargs: Any) -> Any:
    items = other if isinstance(other, Mapping) else materialize(meter, other)
    added = len(items) + len(kwargs)
    meter.check_len(len(owner) + added, "a dict")
    meter.charge(_DICT_ENTRY_CELLS * added)
    meter.step(added)  # hashing and inserting, ~0.1 us an entry
    return (items,), kwargs


def _sort(meter: Meter, owner: Any, *_: Any, **__: Any) -> None:
    meter.step((len(owner) * max(len(owner).bit_length(), 1)) >> 3)


def _fromkeys(meter: Meter, _owner: Any, iterable: Any, *rest: Any) -> Any:
    items = materialize(meter, iterable)
    meter.build(len(items), "a dict", _DICT_ENTRY_CELLS)
    meter.step(len(items))
    return (items, *rest), {}


def _maketrans(meter: Meter, _owner: Any, x: Any, _y: Any = None, z: Any = "") -> None:
    entries = len(x) + (len(z) if isinstance(z, str | bytes) else 0)  # y maps 1:1 onto x
    meter.build(entries, "a translation table", _DICT_ENTRY_CELLS)
    meter.step(entries)


_TEXT = (str, bytes, bytearray)
_TEXT_GUARDS: dict[str, Callable[..., Any]] = {
    **dict.fromkeys(("center", "ljust", "rjust", "zfill"), _pad),
    "expandtabs": _expandtabs,
    "replace": _replace,
    "join": _join,
    **dict.fromkeys(("split", "rsplit"), _split),
    "splitlines": _splitlines,
    **dict.fromkeys(
        ("strip", "lstrip", "rstrip", "removeprefix", "removesuffix", "partition",
         "rpartition", "decode", "striptags", "unescape"),
        _copy,
    ),
    **dict.fromkeys(("upper", "lower", "casefold", "swapcase", "title", "capitalize"), _case),
    **dict.fromkeys(
        ("count", "find", "rfind", "index", "rindex", "startswith", "endswith", "isalnum",
         "isalpha", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric",
         "isprintable", "isspace", "istitle", "isupper"),
        _scan,
    ),
    "translate": _translate,
    "encode": _encode,
    "hex": _hex,
}
_LIST_GUARDS: dict[str, Callable[..., Any]] = {
    "append": _grow,
    "insert": _grow,
    "extend": _extend,
    "copy": _copy,
    "sort": _sort,
    **dict.fromkeys(("count", "index", "remove", "reverse"), _scan),
}
_DICT_GUARDS: dict[str, Callable[..., Any]] = {"update": _update, "copy": _copy}


def _guard_for(method: Any) -> Callable[..., Any] | None:
    owner, name = method.__self__, method.__name__
    if isinstance(owner, _TEXT):
        return _TEXT_GUARDS.get(name)
    if isinstance(owner, list):
        return _LIST_GUARDS.get(name)
    if isinstance(owner, dict):
        return _DICT_GUARDS.get(name)
    if isinstance(owner, int) and name == "to_bytes":
        return _to_bytes
    if owner is dict and name == "fromkeys":
        return _fromkeys
    return None


_STATIC_GUARDS = {str.maketrans: _maketrans, bytes.maketrans: _maketrans}


def bounded_method(value: Any) -> Callable[..., Any] | None:
    """Return a size-checking stand-in for an allocating builtin method, else None."""
    kind = type(value)
    if kind is not BuiltinMethodType and kind is not MethodType:
        return None
    guard = _STATIC_GUARDS.get(value) if value.__self__ is None else _guard_for(value)
    if guard is None:
        return None
    owner = value.__self__

    def checked(*args: Any, **kwargs: Any) -> Any:
        replaced = guard(current_meter(), owner, *args, **kwargs)
        if replaced is not None:
            args, kwargs = replaced
        return value(*args, **kwargs)

    return checked


# --------------------------------------------------------------------------- str.format


class BoundedFormatter(SandboxedFormatter):
    """The sandbox's formatter, sizing each field before it is formatted."""

    def __init__(self, env: Any, meter: Meter, size: int, factor: int = 1, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._meter, self._size, self._factor = meter, size, factor

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        """Return the converted field once its repr/str is known to fit."""
        if conversion in ("r", "a", "s") and type(value) is not str:
            mode = STR if conversion == "s" else REPR
            size = text_size(value, self._meter.budget.max_value_len, mode, self._meter)
            self._meter.build(size * (10 if conversion == "a" else 1), f"a !{conversion} field")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        """Return the formatted field once the whole result is known to fit."""
        meter = self._meter
        meter.step(FIELD_STEPS)
        field = spec_size(value, format_spec, meter.budget.max_value_len) * self._factor
        self._size += field
        meter.check_len(self._size, "a formatted string")
        meter.charge(field)
        return super().format_field(value, format_spec)


class BoundedEscapeFormatter(BoundedFormatter, SandboxedEscapeFormatter):
    """The escaping formatter ``Markup.format`` uses, sized the same way."""


def bounded_str_format(env: Any, value: Any) -> Callable[..., str] | None:
    """Return a sized stand-in for ``str.format``/``format_map`` (as the sandbox wraps them)."""
    if not isinstance(value, MethodType | BuiltinMethodType) or value.__name__ not in (
        "format",
        "format_map",
    ):
        return None
    fmt = value.__self__
    if not isinstance(fmt, str):
        return None
    is_map = value.__name__ == "format_map"

    def checked(*args: Any, **kwargs: Any) -> str:
        if is_map:
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one positional argument")
            args, kwargs = (), args[0]
        meter = current_meter()
        meter.step(FORMAT_STEPS)
        formatter: BoundedFormatter
        if isinstance(fmt, Markup):
            formatter = BoundedEscapeFormatter(
                env, meter, len(fmt), ESCAPE_FACTOR, escape=fmt.escape
            )
        else:
            formatter = BoundedFormatter(env, meter, len(fmt))
        return type(fmt)(formatter.vformat(fmt, args, kwargs))

    return checked
