"""Size-checked Jinja filters and tests: each filter's result is sized from its arguments
before it runs, and its input is priced by the work the filter does on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.utils import _PassArg, pass_context

from improver.bounded_calls import (
    FRESH_OBJECT_CELLS,
    SLOT_CELLS,
    count_lines,
    materialize,
    metered,
    positive_int,
)
from improver.render_budget import (
    CURRENT_METER,
    ESCAPE_FACTOR,
    FILTER_STEPS,
    JSON,
    REPR,
    STR,
    Meter,
    current_meter,
    data_weight,
    printf_size,
    text_size,
)

# A filter guard takes (meter, context, value, *args, **kwargs) like the filter itself
# and returns None, or the (value, args, kwargs) to call the filter with instead.


def _text_of(meter: Meter, value: Any, factor: int = 1) -> int:
    size = text_size(value, meter.budget.max_value_len, STR, meter)
    meter.build(size * factor, "a string")
    return size


def _f_center(meter: Meter, _c: Context, value: Any, width: Any = 80) -> None:
    meter.build(max(_text_of(meter, value), positive_int(width)), "a centered string")


def _f_format(meter: Meter, _c: Context, value: Any, *args: Any, **kwargs: Any) -> None:
    limit = meter.budget.max_value_len
    _text_of(meter, value)
    meter.build(printf_size(str(value), kwargs or args, limit), "a formatted string")


def _f_indent(meter: Meter, _c: Context, text: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    pad = len(width) if isinstance(width, str) else positive_int(width)
    meter.build(pad, "an indentation")
    if isinstance(text, str):
        meter.build(len(text) + 1 + count_lines(text) * (pad + 1), "an indented string")


def _f_wordwrap(
    meter: Meter, _c: Context, text: Any, width: Any = 79, breaks: Any = True, wrap: Any = None,
    *_: Any, **__: Any,
) -> None:
    if isinstance(text, str):
        joint = len(wrap) if isinstance(wrap, str) else 1
        meter.step(3 * len(text))  # textwrap is pure Python: up to ~0.3 us per char
        meter.build(len(text) + (len(text) + count_lines(text)) * joint, "a wrapped string")


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
    meter.build(positive_int(linecount), "a batch", SLOT_CELLS)


def _f_slice(meter: Meter, _c: Context, _value: Any, slices: Any, *_: Any) -> None:
    meter.build(positive_int(slices), "a list of slices", 16)  # an empty list each


def _f_list(meter: Meter, _c: Context, value: Any) -> tuple[Any, tuple[()], dict[str, Any]] | None:
    if isinstance(value, str):
        fresh = SLOT_CELLS if value.isascii() else SLOT_CELLS + FRESH_OBJECT_CELLS
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
    **{name: _f_text(wide, STR, per_k) for name, (_, wide, per_k) in _TEXT_FILTERS.items()},
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
