"""Size-checked stand-ins for the methods and filters through which a template allocates.

Each guard reads the size of the result off the arguments (a width, a repeat count, the
number of matches of ``old``) and accounts for it on the render's meter before the real
method runs, so an oversized result is refused without being built. Methods that only
copy or scan their input are charged for the copy or the scan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import _PassArg, pass_context
from markupsafe import Markup, escape

from improver.render_budget import (
    CURRENT_METER,
    ESCAPE_FACTOR,
    FIELD_STEPS,
    FILTER_STEPS,
    FORMAT_STEPS,
    JSON,
    REPR,
    STR,
    Meter,
    current_meter,
    data_weight,
    printf_size,
    spec_size,
    text_size,
)

_LINE_BREAKS = ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
# Memory is counted in cells of ~4 bytes (one character of the widest str): a list slot is
# 2 cells, a new small object (an int from a range, a piece of a split) ~10 beyond its
# characters, a dict entry with its share of the hash table ~24.
_SLOT_CELLS = 2
_FRESH_OBJECT_CELLS = 12
_DICT_ENTRY_CELLS = 24


def _index(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _lines(text: str | bytes) -> int:
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
        meter.build(size, "a list", _FRESH_OBJECT_CELLS)
        meter.step(size >> 2)
        return list(iterable)
    items: list[Any] = []
    for item in metered(meter, iterable):
        items.append(item)
        if len(items) > limit:
            meter.check_len(len(items), "a list")
    meter.charge(_SLOT_CELLS * len(items))
    return items


# --------------------------------------------------------------------------- methods
# A guard takes (meter, owner, *args, **kwargs) and returns None, or the (args, kwargs)
# to call the method with instead (when it had to consume an iterator to size it).


def _pad(meter: Meter, text: Any, width: Any = 0, *_: Any) -> None:
    meter.build(max(len(text), _index(width)), "a padded string")


def _expandtabs(meter: Meter, text: Any, tabsize: Any = 8) -> None:
    tab = "\t" if isinstance(text, str) else b"\t"
    meter.build(len(text) + text.count(tab) * max(_index(tabsize) - 1, 0), "an expanded string")


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
    meter.build(pieces, "a list of pieces", _FRESH_OBJECT_CELLS + _SLOT_CELLS)
    meter.charge(len(text))


def _splitlines(meter: Meter, text: Any, *_: Any, **__: Any) -> None:
    meter.build(_lines(text), "a list of lines", _FRESH_OBJECT_CELLS + _SLOT_CELLS)
    meter.charge(len(text))


def _copy(meter: Meter, owner: Any, *_: Any, **__: Any) -> None:
    if isinstance(owner, dict):
        meter.charge(_DICT_ENTRY_CELLS * len(owner))
    else:
        meter.charge(len(owner) * (_SLOT_CELLS if isinstance(owner, list) else 1))


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
    meter.build(_index(length), "bytes")


def _grow(meter: Meter, owner: Any, *_: Any) -> None:  # list.append / list.insert
    meter.check_len(len(owner) + 1, "a list")
    meter.charge(_SLOT_CELLS)


def _extend(meter: Meter, owner: Any, iterable: Any = ()) -> tuple[tuple[Any, ...], dict[str, Any]]:
    items = materialize(meter, iterable)
    meter.check_len(len(owner) + len(items), "a list")
    meter.charge(_SLOT_CELLS * len(items))
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


# --------------------------------------------------------------------------- filters
# A filter guard takes (meter, context, value, *args, **kwargs) like the filter itself
# and returns None, or the (value, args, kwargs) to call the filter with instead.


def _text_of(meter: Meter, value: Any, factor: int = 1) -> int:
    size = text_size(value, meter.budget.max_value_len, STR, meter)
    meter.build(size * factor, "a string")
    return size


def _f_center(meter: Meter, _c: Context, value: Any, width: Any = 80) -> None:
    meter.build(max(_text_of(meter, value), _index(width)), "a centered string")


def _f_format(meter: Meter, _c: Context, value: Any, *args: Any, **kwargs: Any) -> None:
    limit = meter.budget.max_value_len
    _text_of(meter, value)
    meter.build(printf_size(str(value), kwargs or args, limit), "a formatted string")


def _f_indent(meter: Meter, _c: Context, text: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    pad = len(width) if isinstance(width, str) else _index(width)
    meter.build(pad, "an indentation")
    if isinstance(text, str):
        meter.build(len(text) + 1 + _lines(text) * (pad + 1), "an indented string")


def _f_wordwrap(
    meter: Meter, _c: Context, text: Any, width: Any = 79, breaks: Any = True, wrap: Any = None,
    *_: Any, **__: Any,
) -> None:
    if isinstance(text, str):
        joint = len(wrap) if isinstance(wrap, str) else 1
        meter.step(3 * len(text))  # textwrap is pure Python: up to ~0.3 us per char
        meter.build(len(text) + (len(text) + _lines(text)) * joint, "a wrapped string")


def _f_join(
    meter: Meter, context: Context, value: Any, d: Any = "", attribute: Any = None
) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    items = materialize(meter, value) if not isinstance(value, str) else value
    if attribute is not None:
        getter = make_attrgetter(context.environment, attribute)
        items = [getter(item) for item in metered(meter, items)]
    limit = meter.budget.max_value_len
    factor = ESCAPE_FACTOR if context.eval_ctx.autoescape else 1
    total = len(str(d)) * max(len(items) - 1, 0)
    for item in items if not isinstance(items, str) else ():
        total += text_size(item, limit) * factor
        if total > limit:
            break
    if isinstance(items, str):
        total += len(items)
    meter.step(len(items) >> 2)
    meter.build(total, "a joined string")
    return items, (d,), {}


def _f_replace(
    meter: Meter, _c: Context, text: Any, old: Any, new: Any, count: Any = None
) -> None:
    size = _text_of(meter, text)
    old, new = str(old), str(new)
    hits = text.count(old) if isinstance(text, str) and old else size + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    meter.build(size + hits * max(len(new) - len(old), 0), "a replaced string")


def _f_batch(meter: Meter, _c: Context, _value: Any, linecount: Any, *_: Any) -> None:
    meter.build(_index(linecount), "a batch", _SLOT_CELLS)


def _f_slice(meter: Meter, _c: Context, _value: Any, slices: Any, *_: Any) -> None:
    meter.build(_index(slices), "a list of slices", 16)  # an empty list each


def _f_list(meter: Meter, _c: Context, value: Any) -> tuple[Any, tuple[()], dict[str, Any]] | None:
    if isinstance(value, str):
        fresh = _SLOT_CELLS if value.isascii() else _SLOT_CELLS + _FRESH_OBJECT_CELLS
        meter.build(len(value), "a list of characters", fresh)
        return None
    return materialize(meter, value), (), {}


def _f_sum(
    meter: Meter, context: Context, value: Any, attribute: Any = None, start: Any = 0
) -> tuple[Any, tuple[()], dict[str, Any]]:
    items = materialize(meter, value)
    if attribute is not None:
        getter = make_attrgetter(context.environment, attribute)
        items = [getter(item) for item in metered(meter, items)]
    if isinstance(start, list | tuple | str):  # concatenation: each + copies the total so far
        total = len(start) + sum(len(item) for item in items if hasattr(item, "__len__"))
        meter.build(total, "a sum of sequences")
        meter.step((len(items) * total) >> 4)
    return items, (), {"start": start}


def _f_text(factor: int, mode: int = STR, per_k: int = 10) -> Callable[..., None]:
    # For non-str input (str() of a list, a number): sized by what str() would print.
    def guard(meter: Meter, _c: Context, value: Any, *_: Any, **__: Any) -> None:
        size = text_size(value, meter.budget.max_value_len, mode, meter)
        meter.step(size * per_k // 1000)
        meter.build(size * factor, "a string")

    return guard


def _f_urlize(
    meter: Meter, _c: Context, value: Any, *args: Any, **kwargs: Any
) -> None:
    size = _text_of(meter, value, ESCAPE_FACTOR)
    extra = sum(len(arg) for arg in (*args, *kwargs.values()) if isinstance(arg, str))
    meter.step(6 * size)  # ~0.6 us per char: a Python loop with regexes per word
    meter.build(3 * ESCAPE_FACTOR * size + (size // 2 + 1) * (64 + extra), "an urlized string")


def _f_sorted(meter: Meter, _c: Context, value: Any, *_: Any, **__: Any) -> None:
    if hasattr(value, "__len__"):  # comparisons of big items cost their size
        meter.step((len(value) + data_weight(value, meter)) * max(len(value).bit_length(), 1))


# Filters that build one string from the text of their input: how many chars they may
# write per char of input (ASCII input, any other), and their measured steps per 1,000
# input chars (textwrap and urlize are pure Python). A str input takes a fast path.
_TEXT_FILTERS: dict[str, tuple[int, int, int]] = {
    **dict.fromkeys(("upper", "lower", "capitalize"), (1, 3, 10)),  # 'ß'.upper() is 'SS'
    **dict.fromkeys(("string", "safe", "trim", "truncate"), (1, 1, 10)),
    "title": (1, 3, 700),
    "striptags": (1, 1, 200),
    "wordcount": (1, 1, 300),
    **dict.fromkeys(("e", "escape", "forceescape"), (ESCAPE_FACTOR, ESCAPE_FACTOR, 20)),
    "urlencode": (3, 12, 400),  # one UTF-8 byte is '%XX'
}
_FILTER_GUARDS: dict[str, Callable[..., Any]] = {
    "center": _f_center,
    "format": _f_format,
    "indent": _f_indent,
    "wordwrap": _f_wordwrap,
    "join": _f_join,
    "replace": _f_replace,
    "batch": _f_batch,
    "slice": _f_slice,
    "list": _f_list,
    "sum": _f_sum,
    "urlize": _f_urlize,
    **{name: _f_text(ascii_f, STR, per_k) for name, (ascii_f, _, per_k) in _TEXT_FILTERS.items()},
    "xmlattr": _f_text(ESCAPE_FACTOR),
    "pprint": _f_text(4, REPR, 1000),  # pprint is pure Python, ~0.1 us per char
    "tojson": _f_text(4, JSON, 20),  # with indent= each item also gets a line
    **dict.fromkeys(("sort", "dictsort", "groupby"), _f_sorted),
}


# Filters that walk their input item by item: measured steps per 1,000 items (a key
# function or a nested filter call per item costs ~0.5-1 us, list() ~20 ns); the others
# take O(1) per call or are priced by their guard from the text they build.
_PER_K_ITEMS: dict[str, int] = {
    **dict.fromkeys(("sort", "dictsort", "groupby"), 5000),
    "unique": 3000,
    **dict.fromkeys(("min", "max"), 2000),
    **dict.fromkeys(("map", "select", "reject", "selectattr", "rejectattr"), 10_000),
    "pprint": 11_000,
    "join": 3000,  # each item is sized, then str()-ed
    **dict.fromkeys(("batch", "slice", "items", "tojson"), 1000),
    **dict.fromkeys(("sum", "list", "reverse"), 250),
}


def _price_input(meter: Meter, value: Any, per_k: int) -> Any:
    kind = type(value)
    if kind is str or kind is int or not per_k:
        meter.step(FILTER_STEPS)
    elif hasattr(value, "__len__"):
        meter.step(FILTER_STEPS + per_k * len(value) // 1000)
    elif hasattr(value, "__next__"):
        meter.step(FILTER_STEPS)
        return metered(meter, value, -(-per_k // 1000))  # a lazy result of another filter
    else:
        meter.step(FILTER_STEPS)
    return value


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Return ``func`` with its input priced and its result sized before it runs."""
    pass_arg = _PassArg.from_obj(func)
    guard = _FILTER_GUARDS.get(name)
    per_item = _PER_K_ITEMS.get(name, 0)
    ascii_factor, other_factor, per_k = _TEXT_FILTERS.get(name, (0, 0, 0))
    what = f"the result of |{name}"

    # pass_context also stops Jinja from running the filter at compile time on constants,
    # where no render's budget would account for what it builds.
    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        meter = CURRENT_METER.get() or current_meter()
        if ascii_factor and type(value) is str:  # the common case, Meter.build inlined
            size = len(value) * (ascii_factor if value.isascii() else other_factor)
            meter.cells += size
            meter.steps += FILTER_STEPS + (size >> 8) + len(value) * per_k // 1000
            if size > meter.max_value_len or meter.cells > meter.max_alloc or (
                meter.steps > meter.next_check
            ):
                meter.build(size, what, 0)
        else:
            value = _price_input(meter, value, per_item)
            if guard is not None:
                replaced = guard(meter, context, value, *args, **kwargs)
                if replaced is not None:
                    value, args, kwargs = replaced
        if pass_arg is None:
            return func(value, *args, **kwargs)
        if pass_arg is _PassArg.context:
            return func(context, value, *args, **kwargs)
        if pass_arg is _PassArg.eval_context:
            return func(context.eval_ctx, value, *args, **kwargs)
        return func(context.environment, value, *args, **kwargs)

    bounded.__name__ = bounded.__qualname__ = f"bounded_{name}"
    bounded.__doc__ = func.__doc__
    return bounded


def bounded_test(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Return the test ``func`` charging for the data it compares or scans."""
    pass_arg = _PassArg.from_obj(func)
    skip = 0 if pass_arg is None else 1
    stringifies = name in ("lower", "upper")

    def bounded(*args: Any, **kwargs: Any) -> Any:
        meter = current_meter()
        operands = args[skip:]
        if stringifies and operands and type(operands[0]) is not str:
            _text_of(meter, operands[0])
        meter.step(1 + sum(data_weight(arg, meter) for arg in operands))
        return func(*args, **kwargs)

    if pass_arg is not None:
        bounded.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    bounded.__name__ = bounded.__qualname__ = f"bounded_{name}"
    return bounded
