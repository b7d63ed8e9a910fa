"""Render budgets: what one render may build and how much work it may do.

Every value a sandboxed template builds is sized from its arguments *before* Python
allocates it (``'%*d' % (n, 1)`` is refused from ``n``, not after a 300 MB string exists),
and the work of a render is counted in steps. A step is one sandbox hook (attribute,
item, call, operator, filter, comparison, loop iteration) plus a share proportional to the
data an operation scans or copies, so a step costs roughly the same time whatever the
template does. The budget is deterministic: lint and the daemon refuse the same template
with the same variables on any machine, under any load.

Why steps and not a timer: a wall-clock or CPU deadline in the pure core would read the
clock (the house rule keeps clocks in ``service/``), would make lint verdicts depend on
machine load, and alone cannot stop a loop that prints nothing unless something checks it
inside the loop, which is exactly what the step hooks are. ``PyThreadState_SetAsyncExc``
from a watchdog was the other candidate; it can land outside the render (after it returned,
or inside a ``finally`` of the caller) and be swallowed by any ``except Exception`` on the
way, and still cannot interrupt a long C call, so sizes must be bounded anyway. A caller may
still pass a clock (the daemon passes ``time.thread_time``): the meter then also stops at
``max_seconds``, reading the clock every ``_CLOCK_EVERY`` steps, as a backstop for work the
step model prices too low.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, ItemsView, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined
from jinja2.utils import Namespace
from markupsafe import Markup

# Steps between clock reads when a clock is given; reading thread_time costs ~0.3 us,
# a step ~0.1 us, so this adds ~1% and overshoots max_seconds by well under a millisecond.
_CLOCK_EVERY = 256
# Step prices. A step is ~0.1 us of CPU on CPython 3.11, the cost of one loop iteration;
# every other hook is priced by what it measured in a plain SandboxedEnvironment (a dict
# attribute raises AttributeError inside the sandbox before the item lookup, a call runs
# two safety probes and Context.call). test_render_budget_time.py holds the slowest
# patterns per step under a time bound, so a price that drifts too low fails a test.
LOOP_STEPS = 2  # also pays for statements that have no hook ({% set ns.x = ... %})
OUTPUT_STEPS = 1  # one chunk of output handed to the renderer
ATTR_STEPS = 10  # an attribute through the sandbox (~1 us)
ITEM_STEPS = 2  # an item through the sandbox
CALL_STEPS = 20  # a call through the sandbox (~2 us)
CLASS_CALL_STEPS = 40  # namespace(...), dict(...): an instance and a dict built (~4 us)
MACRO_STEPS = 30  # a macro call also builds a frame, its arguments and an output buffer
FORMAT_STEPS = 50  # str.format: a Python Formatter per call (~5 us)...
FIELD_STEPS = 20  # ...and ~2 us per field
FILTER_STEPS = 6  # a filter call through its size guard (~0.6 us)
OPERATOR_STEPS = 2  # an intercepted operator on numbers
SIZER_ITEM_STEPS = 2  # sizing one item of a container (a Python loop)
# Escaping (Markup, |e, |tojson) turns one character into at most this many ('&#39;' is 5,
# '\u003c' is 6).
ESCAPE_FACTOR = 6


@dataclass(frozen=True, slots=True)
class RenderBudget:
    """The most one render may output, build and do (defaults far above any prompt's needs)."""

    max_output_chars: int = 2_000_000  # the rendered text
    max_value_len: int = 1_000_000  # chars of one string, or items of one list, it builds
    max_alloc: int = 8_000_000  # chars and items of everything it builds, summed (<= ~32 MB)
    max_steps: int = 100_000  # work, ~0.1 us a step: <= ~25 ms of CPU (see the test)
    max_seconds: float = 0.05  # seconds of the caller's clock, when it passes one

    def __post_init__(self) -> None:
        for name in ("max_output_chars", "max_value_len", "max_alloc", "max_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"RenderBudget.{name} must be at least 1")
        if not self.max_seconds > 0:
            raise ValueError("RenderBudget.max_seconds must be positive")


DEFAULT_BUDGET = RenderBudget()


class BudgetExceeded(SecurityError):
    """A render crossed one of its limits; ``limit`` names the RenderBudget field."""

    def __init__(self, limit: str, value: float, detail: str) -> None:
        super().__init__(f"{detail} exceeds the render budget ({limit}={value:,})")
        self.limit = limit
        self.value = value
        self.detail = detail


class Meter:
    """The running account of one render against its budget."""

    __slots__ = (
        "budget", "cells", "clock", "deadline", "max_alloc", "max_value_len", "next_check",
        "steps", "tripped",
    )

    def __init__(self, budget: RenderBudget, clock: Callable[[], float] | None = None) -> None:
        self.budget = budget
        self.max_value_len = budget.max_value_len  # read on every build: one attribute hop
        self.max_alloc = budget.max_alloc
        self.steps = 0
        self.cells = 0
        self.clock = clock
        self.tripped: BudgetExceeded | None = None
        self.deadline = clock() + budget.max_seconds if clock is not None else math.inf
        self.next_check = min(_CLOCK_EVERY, budget.max_steps) if clock else budget.max_steps

    def step(self, units: int = 1) -> None:
        """Count ``units`` of work; raise BudgetExceeded once the budget is spent."""
        self.steps += units
        if self.steps > self.next_check:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Raise BudgetExceeded if a limit is crossed, else schedule the next check."""
        if self.tripped is not None:  # sticky: a swallowed refusal is raised again
            raise BudgetExceeded(self.tripped.limit, self.tripped.value, self.tripped.detail)
        budget = self.budget
        if self.steps > budget.max_steps:
            self.trip("max_steps", budget.max_steps, f"work of {self.steps:,} steps")
        if self.clock is None:
            self.next_check = budget.max_steps
            return
        if self.clock() > self.deadline:
            self.trip("max_seconds", budget.max_seconds, "render time")
        self.next_check = min(self.steps + _CLOCK_EVERY, budget.max_steps)

    def trip(self, limit: str, value: float, detail: str) -> None:
        """Raise BudgetExceeded for ``limit`` and make every later check raise it too."""
        self.tripped = BudgetExceeded(limit, value, detail)
        self.next_check = -1
        raise BudgetExceeded(limit, value, detail)

    def check_len(self, length: int, what: str) -> None:
        """Refuse a single value of ``length`` chars or items beyond ``max_value_len``."""
        if length > self.budget.max_value_len:
            self.trip("max_value_len", self.budget.max_value_len, f"{what} of {length:,}")

    def charge(self, cells: int) -> None:
        """Account for ``cells`` chars or items about to be built (and the work of copying)."""
        self.cells += cells
        self.steps += 1 + (cells >> 8)
        if self.cells > self.budget.max_alloc or self.steps > self.next_check:
            self._over(0, "")

    def build(self, length: int, what: str, cells: int = 1) -> None:
        """Account for a value of ``length`` chars or items (``cells`` each) about to be built."""
        total = length * cells
        self.cells += total
        self.steps += 1 + (total >> 8)
        # One comparison chain on the hot path; _over finds which limit it was.
        if length > self.max_value_len or self.cells > self.max_alloc or (
            self.steps > self.next_check
        ):
            self._over(length, what)

    def _over(self, length: int, what: str) -> None:
        self.check_len(length, what)
        if self.cells > self.budget.max_alloc:
            self.trip("max_alloc", self.budget.max_alloc, f"{self.cells:,} chars and items built")
        if self.steps > self.next_check:
            self.checkpoint()

    def output(self, length: int) -> None:
        """Account for ``length`` chars of text about to be written to the output."""
        if length > self.budget.max_output_chars:
            self.trip("max_output_chars", self.budget.max_output_chars, f"output of {length:,}")
        self.charge(length)


# The meter of the render running in this thread (or task); None outside renders.
CURRENT_METER: ContextVar[Meter | None] = ContextVar("promptd_render_meter", default=None)


def current_meter() -> Meter:
    """Return the meter of the render in progress (a fresh default one outside renders)."""
    meter = CURRENT_METER.get()
    # Outside a render means Jinja folding constants at compile time: they are bounded
    # by the default budget, and a refusal there only stops the folding.
    return meter if meter is not None else Meter(DEFAULT_BUDGET)


def start_metering(meter: Meter) -> object:
    """Make ``meter`` the current one; return the token ``stop_metering`` takes."""
    return CURRENT_METER.set(meter)


def stop_metering(token: object) -> None:
    """Restore the meter that was current before ``start_metering``."""
    CURRENT_METER.reset(token)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- sizes

STR, REPR, JSON = 0, 1, 2
_UNKNOWN_SIZE = 256  # an object we cannot see into (functions, loop contexts) prints short
_CONTAINERS = (list, tuple, dict, set, frozenset, KeysView, ValuesView, ItemsView)


def _quoted_size(text: str, mode: int) -> int:
    n = len(text)
    if mode == REPR:
        if text.isprintable():
            return n + 2 + text.count("\\") + text.count("'")
        return 10 * n + 2  # '\U000e0001'
    if text.isascii() and text.isprintable():  # JSON, HTML-safe as |tojson writes it
        specials = text.count("<") + text.count(">") + text.count("&") + text.count("'")
        return n + 2 + text.count('"') + text.count("\\") + 5 * specials
    return 12 * n + 2  # a surrogate pair '\ud83d\ude00'


class _Sizer:
    """Sizes nested data once per object, so shared references cost one visit each."""

    __slots__ = ("active", "limit", "memo", "visited")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.memo: dict[int, tuple[object, int]] = {}  # keeps each object alive: ids stay unique
        self.active: set[int] = set()
        self.visited = 0

    def size(self, value: Any, mode: int) -> int:
        if isinstance(value, str):
            if mode == STR:
                return len(value)
            if len(value) < 64:
                return _quoted_size(value, mode)
            return self._memo(value, lambda: _quoted_size(value, mode))
        if isinstance(value, bool) or value is None:
            return 5
        if isinstance(value, int):
            return value.bit_length() * 3 // 10 + 2
        if isinstance(value, float):
            return 24
        if isinstance(value, bytes | bytearray):
            return 4 * len(value) + 14
        if isinstance(value, Undefined):
            return 0
        if isinstance(value, Namespace):
            attrs = object.__getattribute__(value, "_Namespace__attrs")
            return 13 + self.size(attrs, REPR if mode == STR else mode)
        if isinstance(value, _CONTAINERS):
            return self._memo(value, lambda: self._container(value, mode))
        return _UNKNOWN_SIZE

    def _memo(self, value: object, compute: Callable[[], int]) -> int:
        key = id(value)
        known = self.memo.get(key)
        if known is not None:
            return known[1]
        if key in self.active:
            return 5  # a cycle prints as [...]
        self.active.add(key)
        try:
            size = compute()
        finally:
            self.active.discard(key)
        self.memo[key] = (value, size)
        return size

    def _container(self, value: Any, mode: int) -> int:
        inner = REPR if mode == STR else mode
        total, limit, size = 16, self.limit, self.size
        if isinstance(value, dict):
            for key, item in value.items():
                total += size(key, inner) + size(item, inner) + 4
                self.visited += 1
                if total > limit:
                    break
            return total
        for item in value:
            total += size(item, inner) + 2
            self.visited += 1
            if total > limit:
                break
        return total


_SCALAR_SIZER = _Sizer(0)  # sizes of scalars need no memo


def text_size(value: Any, limit: int, mode: int = STR, meter: Meter | None = None) -> int:
    """Return the length ``str(value)`` (or repr, or JSON) would have; above ``limit``: too big."""
    kind = type(value)
    if kind is str:
        return len(value) if mode == STR else _quoted_size(value, mode)
    if kind is int or kind is float or kind is bool or value is None:
        return _Sizer.size(_SCALAR_SIZER, value, mode)
    sizer = _Sizer(limit)
    size = sizer.size(value, mode)
    if meter is not None:
        meter.step(SIZER_ITEM_STEPS * sizer.visited)
    return size


def data_weight(value: Any, meter: Meter) -> int:
    """Return a step count for scanning or comparing ``value`` (its size, shared parts once)."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) >> 8
    if kind is list or kind is tuple or kind is dict:
        return text_size(value, meter.budget.max_alloc, STR, meter) >> 8
    return 0


def _as_int(value: Any) -> int:
    return abs(value) if isinstance(value, int) else 0


def number_size(value: Any, precision: int | None, limit: int) -> int:
    """Return an upper bound on the length of ``value`` formatted as a number."""
    extra = precision or 0
    if isinstance(value, int):
        return value.bit_length() + 3 + extra  # binary is the longest spelling
    if isinstance(value, float):
        return 330 + (6 if precision is None else precision)  # '%f' % 1e308 has 309 digits
    return text_size(value, limit) + extra


# A printf conversion: %(key)flags width .precision length type
_PRINTF = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<conv>.)",
    re.S,
)


def printf_size(fmt: str | bytes, values: Any, limit: int, factor: int = 1) -> int:
    """Return an upper bound on ``len(fmt % values)``, reading widths from ``values``."""
    text = fmt if isinstance(fmt, str) else bytes(fmt).decode("latin-1")
    positional = values if isinstance(values, tuple) else (values,)
    mapping = values if isinstance(values, Mapping) else None
    index, total = 0, len(text)

    def take() -> Any:
        nonlocal index
        index += 1
        return positional[index - 1] if index <= len(positional) else None

    for match in _PRINTF.finditer(text):
        conv = match["conv"]
        if conv == "%":
            continue
        width = _as_int(take()) if match["width"] == "*" else int(match["width"] or 0)
        prec_text = match["prec"]
        precision = _as_int(take()) if prec_text == "*" else int(prec_text) if prec_text else None
        if match["key"] is not None and mapping is not None:
            value = mapping.get(match["key"])
        else:
            value = take()
        if conv == "s":
            size = text_size(value, limit)
            size = size if precision is None else min(size, precision)
        elif conv in "ra":
            size = text_size(value, limit, REPR) * (10 if conv == "a" else 1)
        elif conv == "c":
            size = 1
        else:
            size = number_size(value, precision, limit)
        total += max(width, size * factor)
        if total > limit:
            break
    return total


# A standard format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<prec>\d+))?[bcdeEfFgGnosxX%]?\Z", re.S
)


def spec_size(value: Any, spec: str, limit: int) -> int:
    """Return an upper bound on ``len(format(value, spec))``."""
    match = _SPEC.match(spec)
    if match is None:  # not the standard grammar: count every number in it as a width
        widths = [int(digits) for digits in re.findall(r"\d+", spec)]
        return max(widths, default=0) + text_size(value, limit)
    width = int(match["width"] or 0)
    precision = int(match["prec"]) if match["prec"] else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        size = number_size(value, precision, limit)
        size += size // 3  # grouping separators
    elif isinstance(value, str):
        size = len(value) if precision is None else min(len(value), precision)
    else:
        size = text_size(value, limit)
    return max(width, size)


# --------------------------------------------------------------------------- operators


def bounded_binop(meter: Meter, op: str, left: Any, right: Any) -> Any:
    """Return ``left op right`` for + * % once the result's size is known to fit."""
    if op == "+":
        if isinstance(left, str) and isinstance(right, str):
            factor = ESCAPE_FACTOR if isinstance(left, Markup) else 1
            meter.build(len(left) + factor * len(right), "a string")
        elif isinstance(left, list | tuple | bytes) and isinstance(right, list | tuple | bytes):
            meter.build(len(left) + len(right), "a sequence")
        return operator.add(left, right)
    if op == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(count, int):
                meter.build(len(seq) * max(count, 0), "a repetition")
        return operator.mul(left, right)
    if isinstance(left, str | bytes):  # "%"
        factor = ESCAPE_FACTOR if isinstance(left, Markup) else 1
        meter.build(printf_size(left, right, meter.budget.max_value_len, factor), "a % format")
    return operator.mod(left, right)
