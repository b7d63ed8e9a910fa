"""Prompt templates: Jinja2 parsed and rendered only inside a hardened sandbox.

A prompt template is data written by users and by LLMs, never code. Every template goes
through ``SandboxedEnvironment`` with ``StrictUndefined``; on top of the sandbox's run-time
checks, ``parse_template`` rejects statically anything that reaches for Python internals
(underscore attributes, ``attr``, format-string field access, includes), so such a template
fails before a single line of it runs. Every render runs under a ``RenderBudget``
(``improver.render_budget``): what a template builds is sized before it is allocated and its
work is metered, so bombs and loops that print nothing are refused within milliseconds.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext, Macro, markup_join
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_FUNCTION_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_METHOD_ATTRIBUTES,
    SandboxedEnvironment,
)

from improver.bounded_calls import bounded_method, bounded_str_format, metered
from improver.bounded_filters import bounded_filter, bounded_test
from improver.metered_codegen import METERED_ITER, MeteredCodeGenerator
from improver.render_budget import (
    ATTR_STEPS,
    CALL_STEPS,
    CLASS_CALL_STEPS,
    CURRENT_METER,
    DEFAULT_BUDGET,
    ESCAPE_FACTOR,
    ITEM_STEPS,
    LOOP_STEPS,
    MACRO_STEPS,
    OPERATOR_STEPS,
    OUTPUT_STEPS,
    BudgetExceeded,
    Meter,
    RenderBudget,
    bounded_binop,
    current_meter,
    data_weight,
    start_metering,
    stop_metering,
    text_size,
)

# Beyond the sandbox's underscore rule: names that expose frames and code objects.
_UNSAFE_NAMES = frozenset(
    {"mro", "f_globals", "f_locals", "f_builtins", "func_globals", "func_code"}
    | UNSAFE_FUNCTION_ATTRIBUTES
    | UNSAFE_METHOD_ATTRIBUTES
    | UNSAFE_GENERATOR_ATTRIBUTES
    | UNSAFE_COROUTINE_ATTRIBUTES
    | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
)
# A dunder ("__class__") or a name-mangled private ("_TemplateReference__context").
_PRIVATE_NAME = re.compile(r"__\w+__|_[A-Za-z]\w*__\w+")
# A format string field that walks into an attribute or item, e.g. "{0.__class__}".
_FORMAT_FIELD_REACH = re.compile(r"\{[^{}]*?[.\[]\s*_")
_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(?:\(\w*\))?[-#0 +]*(\d*)(?:\.(\d+))?")
# Sizes no prompt needs; the bounds stop memory/CPU bombs such as "{{ 2 ** 10**9 }}".
MAX_INT_BITS = 100_000
MAX_FIELD_WIDTH = 10_000
# The default budget's limits, under their historical names.
MAX_SEQUENCE_LENGTH = DEFAULT_BUDGET.max_value_len
MAX_OUTPUT_CHARS = DEFAULT_BUDGET.max_output_chars
_TEMPLATE_CACHE_SIZE = 512


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; the message names the line when known."""


class TemplateSecurityError(TemplateError):
    """A template that reaches outside the sandbox (Python internals, includes, bombs)."""


class RenderBudgetExceeded(TemplateSecurityError):
    """A render refused because it would cross its RenderBudget; ``limit`` names the field."""

    def __init__(self, limit: str, value: float, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value


class MissingVariableError(TemplateError):
    """Rendering needed a variable the caller did not pass."""

    def __init__(self, variable: str, message: str | None = None) -> None:
        super().__init__(message or f"variable {variable!r} is undefined")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class ParsedTemplate:
    """A template that parsed and passed the static sandbox checks."""

    text: str
    variables: frozenset[str]  # names the caller must (or may) pass in


def _is_unsafe_name(name: str) -> bool:
    return name.startswith("_") or name in _UNSAFE_NAMES


def _check_format_spec(fmt: str) -> None:
    for _literal, _field, spec, _conv in string.Formatter().parse(fmt):
        if spec:
            _check_format_spec(spec)
            for digits in re.findall(r"\d+", spec):
                if int(digits) > MAX_FIELD_WIDTH:
                    raise SecurityError(f"format width {digits} exceeds {MAX_FIELD_WIDTH}")


def _check_int_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise SecurityError(f"integer result would exceed {MAX_INT_BITS} bits")


def _check_percent_widths(fmt: str) -> None:
    for width, precision in _PERCENT_WIDTH.findall(fmt):
        for digits in (width, precision):
            if digits and int(digits) > MAX_FIELD_WIDTH:
                raise SecurityError(f"format width {digits} exceeds {MAX_FIELD_WIDTH}")


def _metered_iterable(node: nodes.Expr) -> nodes.Call:
    """Return ``node`` wrapped so that each item it yields to a for loop is a budget step."""
    # Jinja forbids new node types; an environment attribute cannot be written in a
    # template, so this call can only come from here (the code generator inlines it).
    call = nodes.Call(nodes.EnvironmentAttribute(METERED_ITER), [node], [], None, None)
    return call.set_lineno(node.lineno).set_environment(_ENV)


def _tick(units: int = 1) -> None:
    meter = CURRENT_METER.get()
    if meter is not None:
        meter.steps += units
        if meter.steps > meter.next_check:
            meter.checkpoint()


class _PromptEnvironment(SandboxedEnvironment):
    """The sandbox with every allocation sized and every operation metered (render_budget)."""

    code_generator_class = MeteredCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.finalize = self.checked_output
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}
        self.tests = {name: bounded_test(name, f) for name, f in self.tests.items()}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Return the attribute as the sandbox allows it, priced ATTR_STEPS."""
        meter = CURRENT_METER.get()
        if meter is not None:
            meter.steps += ATTR_STEPS
            if meter.steps > meter.next_check:
                meter.checkpoint()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Return the item as the sandbox allows it, priced ITEM_STEPS."""
        meter = CURRENT_METER.get()
        if meter is not None:
            meter.steps += ITEM_STEPS
            if meter.steps > meter.next_check:
                meter.checkpoint()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call as the sandbox allows it, priced in steps; recursive loops stay metered."""
        if isinstance(__obj, Macro):
            _tick(MACRO_STEPS)
        else:
            _tick(CLASS_CALL_STEPS if isinstance(__obj, type) else CALL_STEPS)
        if isinstance(__obj, LoopContext) and args:  # loop(children) iterates outside For
            args = (__self.metered_iter(args[0]), *args[1:])
        result = super().call(__context, __obj, *args, **kwargs)
        if __obj is dict:  # dict(mapping) copies it
            meter = current_meter()
            meter.charge(24 * len(result))
            meter.step(len(result))
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Return the operator's result, refusing results too large for a prompt."""
        if isinstance(left, int) and isinstance(right, int):
            _tick(OPERATOR_STEPS)
            if operator == "**" and right > 0:
                _check_int_bits(max(left.bit_length(), 1) * right)
            elif operator == "*":
                _check_int_bits(left.bit_length() + right.bit_length())
            return self.binop_table[operator](left, right)
        if operator == "**":
            _tick(OPERATOR_STEPS)
            return left**right
        if operator == "%" and isinstance(left, str):
            _check_percent_widths(left)
        return bounded_binop(current_meter(), operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., Any] | None:
        """Return a size-checking stand-in for an allocating method (str.format and kin)."""
        kind = type(value)
        if kind is not BuiltinMethodType and kind is not MethodType:
            return None  # the sandbox asks for every attribute value; most are data
        wrapped = bounded_str_format(self, value)
        if wrapped is not None:
            _check_format_spec(value.__self__)
            return wrapped
        return bounded_method(value)

    def checked_output(self, value: Any) -> Any:
        """Return ``value`` for output once the text it prints as is known to fit."""
        kind = type(value)
        if kind is not str and kind is not int and kind is not bool and kind is not float:
            meter = CURRENT_METER.get()
            if meter is not None:
                meter.output(text_size(value, meter.budget.max_output_chars, meter=meter))
        return value

    def concat(self, parts: Any) -> str:  # type: ignore[override]
        """Return the text of a block or macro buffer once its length is known to fit."""
        if not isinstance(parts, list):
            parts = list(parts)
        meter = CURRENT_METER.get()
        if meter is not None:
            meter.output(sum(map(len, parts)))
        return "".join(parts)

    def bounded_concat(self, join: Callable[[Any], str], parts: tuple[Any, ...]) -> str:
        """Return ``a ~ b ~ ...`` once the length of the result is known to fit."""
        meter = CURRENT_METER.get()
        if meter is not None:
            total = 0
            for part in parts:
                if type(part) is str:
                    total += len(part)
                else:
                    total += text_size(part, meter.max_value_len, meter=meter)
            meter.build(total * (ESCAPE_FACTOR if join is markup_join else 1), "a ~ string")
        return join(parts)

    def compared(self, value: Any) -> Any:
        """Return ``value`` after charging for comparing it (huge strings scan slowly)."""
        meter = CURRENT_METER.get()
        if meter is not None:
            kind = type(value)
            if kind is str:
                meter.steps += 1 + (len(value) >> 8)
            elif kind is int or kind is bool or value is None:
                meter.steps += 1
            else:
                meter.steps += 1 + data_weight(value, meter)
            if meter.steps > meter.next_check:
                meter.checkpoint()
        return value

    def slice_item(self, obj: Any, start: Any, stop: Any, step: Any) -> Any:
        """Return ``obj[start:stop:step]`` once the length of the copy is accounted for."""
        key = slice(start, stop, step)
        meter = CURRENT_METER.get()
        if meter is not None and isinstance(obj, str | bytes | list | tuple):
            try:
                meter.charge(len(range(*key.indices(len(obj)))))
            except (TypeError, ValueError):
                meter.step(1)  # a bad slice: Python raises below
        return obj[key]

    def metered_iter(self, iterable: Any) -> Any:
        """Return ``iterable`` so that each of its items costs a step of the budget."""
        meter = CURRENT_METER.get()
        return iterable if meter is None else metered(meter, iterable, LOOP_STEPS)


def _build_environment() -> _PromptEnvironment:
    env = _PromptEnvironment(
        undefined=StrictUndefined,
        autoescape=False,  # prompts are plain text, not HTML
        keep_trailing_newline=True,  # rendering must not silently change the text
    )
    # Helpers with no use in a prompt; fewer objects in reach, fewer gadgets.
    for name in ("lipsum", "cycler", "joiner"):
        env.globals.pop(name, None)
    return env


_ENV = _build_environment()


def _where(node: nodes.Node) -> str:
    return f"line {node.lineno}"


def _check_static_safety(ast: nodes.Template) -> None:
    """Raise TemplateSecurityError for constructs that reach outside the template."""
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        kind = type(node).__name__.lower()
        raise TemplateSecurityError(
            f"{_where(node)}: '{kind}' is not allowed; prompt templates are self-contained"
        )
    for node in ast.find_all(nodes.Getattr):
        if _is_unsafe_name(node.attr):
            raise TemplateSecurityError(
                f"{_where(node)}: access to attribute {node.attr!r} is not allowed"
            )
    for node in ast.find_all(nodes.Getitem):
        key = node.arg.value if isinstance(node.arg, nodes.Const) else None
        if isinstance(key, str) and _is_unsafe_name(key):
            raise TemplateSecurityError(f"{_where(node)}: access to item {key!r} is not allowed")
    for node in ast.find_all(nodes.Filter):
        if node.name == "attr":
            raise TemplateSecurityError(f"{_where(node)}: the 'attr' filter is not allowed")
    for node in ast.find_all(nodes.Const):
        value = node.value
        if not isinstance(value, str):
            continue
        if _PRIVATE_NAME.fullmatch(value):
            raise TemplateSecurityError(
                f"{_where(node)}: the constant {value!r} names a Python internal"
            )
        if _FORMAT_FIELD_REACH.search(value):
            raise TemplateSecurityError(
                f"{_where(node)}: format string {value!r} reaches into attributes"
            )


def _syntax_error(exc: TemplateSyntaxError) -> TemplateError:
    return TemplateError(f"line {exc.lineno}: {exc.message}")


@lru_cache(maxsize=_TEMPLATE_CACHE_SIZE)
def _parse(text: str) -> tuple[ParsedTemplate, Template]:
    try:
        ast = _ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc) from None
    _check_static_safety(ast)
    for loop in ast.find_all(nodes.For):
        loop.iter = _metered_iterable(loop.iter)
    try:
        # Both walk the compiler, which is where unknown filters and tests surface.
        variables = frozenset(meta.find_undeclared_variables(ast))
        compiled = _ENV.from_string(ast)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc) from None
    except SecurityError as exc:
        raise TemplateSecurityError(str(exc)) from None
    return ParsedTemplate(text=text, variables=variables), compiled


def parse_template(text: str) -> ParsedTemplate:
    """Return the parsed template with its undeclared variables, or raise TemplateError."""
    if not isinstance(text, str):
        raise TemplateError(f"a template is text, not {type(text).__name__}")
    return _parse(text)[0]


def template_variables(text: str) -> frozenset[str]:
    """Return the names a template reads from its caller (undeclared variables)."""
    return parse_template(text).variables


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")
_UNDEFINED_ATTR = re.compile(r"has no attribute '([^']+)'$")


def _missing_variable(exc: UndefinedError) -> TemplateError:
    message = str(exc)
    match = _UNDEFINED_NAME.match(message) or _UNDEFINED_ATTR.search(message)
    if match:
        return MissingVariableError(match.group(1), f"variable {match.group(1)!r} is undefined")
    return TemplateError(f"render failed: {message}")


def render_template(
    text: str,
    variables: Mapping[str, Any],
    *,
    budget: RenderBudget = DEFAULT_BUDGET,
    clock: Callable[[], float] | None = None,
) -> str:
    """Return the template rendered in the sandbox with strict undefined variables.

    The render stops with RenderBudgetExceeded as soon as it would cross ``budget``. With a
    ``clock`` (seconds; the daemon passes ``time.thread_time``) it also stops after
    ``budget.max_seconds`` of it, checked every few hundred steps.
    """
    if not isinstance(text, str):
        raise TemplateError(f"a template is text, not {type(text).__name__}")
    _parsed, compiled = _parse(text)
    meter = Meter(budget, clock)
    token = start_metering(meter)
    chunks = compiled.generate(dict(variables))
    try:
        parts: list[str] = []
        size = 0
        # generate() is lazy: stopping early also stops the loops that produce the output.
        for part in chunks:
            size += len(part)
            meter.steps += OUTPUT_STEPS
            if meter.steps > meter.next_check:
                meter.checkpoint()
            if size > budget.max_output_chars:
                meter.trip("max_output_chars", budget.max_output_chars, f"output of {size:,}")
            parts.append(part)
        return "".join(parts)
    except BudgetExceeded as exc:
        raise RenderBudgetExceeded(exc.limit, exc.value, f"render blocked: {exc}") from None
    except SecurityError as exc:  # subclass of the runtime error, so caught first
        raise TemplateSecurityError(f"render blocked by the sandbox: {exc}") from None
    except UndefinedError as exc:
        raise _missing_variable(exc) from None
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc) from None
    except RecursionError:
        raise TemplateSecurityError("render blocked: recursion too deep") from None
    except Exception as exc:  # a template is data: its runtime faults are the caller's input error
        raise TemplateError(f"render failed: {type(exc).__name__}: {exc}") from None
    finally:
        chunks.close()  # unwind the template's frames while the meter is still current
        stop_metering(token)


def template_tokens(text: str) -> list[tuple[str, str]]:
    """Return the lexer's (kind, value) tokens; kind "data" is literal text."""
    try:
        return [(kind, value) for _lineno, kind, value in _ENV.lex(text)]
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc) from None


def escape_literal(text: str) -> str:
    """Return template source that renders to exactly ``text`` (delimiters neutralised)."""
    # Only a '{' that opens a delimiter ('{{', '{%', '{#') can start template code;
    # printing that one brace as a string constant keeps the rest verbatim.
    return re.sub(r"\{(?=[{%#])", '{{ "{" }}', text)
