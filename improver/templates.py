"""Prompt templates: Jinja2 parsed and rendered only inside a hardened sandbox.

A prompt template is data written by users and by LLMs, never code. Every template goes
through ``SandboxedEnvironment`` with ``StrictUndefined``; on top of the sandbox's run-time
checks, ``parse_template`` rejects statically anything that reaches for Python internals
(underscore attributes, ``attr``, format-string field access, includes), so such a template
fails before a single line of it runs.
"""

from __future__ import annotations

import operator
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_FUNCTION_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_METHOD_ATTRIBUTES,
    SandboxedEnvironment,
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
# Sizes no prompt needs; the bounds stop memory/CPU bombs such as "{{ 'a' * 10**9 }}".
MAX_SEQUENCE_LENGTH = 1_000_000
MAX_INT_BITS = 100_000
MAX_FIELD_WIDTH = 10_000
MAX_OUTPUT_CHARS = 2_000_000  # rendering stops here, so loops cannot fill memory with output
_TEMPLATE_CACHE_SIZE = 512


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; the message names the line when known."""


class TemplateSecurityError(TemplateError):
    """A template that reaches outside the sandbox (Python internals, includes, bombs)."""


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


def _bounded_mul(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int):
        _check_int_bits(left.bit_length() + right.bit_length())
    for seq, count in ((left, right), (right, left)):
        if (
            isinstance(seq, str | bytes | list | tuple)
            and isinstance(count, int)
            and len(seq) * max(count, 0) > MAX_SEQUENCE_LENGTH
        ):
            raise SecurityError(f"repetition would exceed {MAX_SEQUENCE_LENGTH} items")
    return operator.mul(left, right)


def _bounded_pow(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and right > 0:
        _check_int_bits(max(left.bit_length(), 1) * right)
    return operator.pow(left, right)


def _bounded_mod(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        for width, precision in _PERCENT_WIDTH.findall(left):
            for digits in (width, precision):
                if digits and int(digits) > MAX_FIELD_WIDTH:
                    raise SecurityError(f"format width {digits} exceeds {MAX_FIELD_WIDTH}")
    return operator.mod(left, right)


class _PromptEnvironment(SandboxedEnvironment):
    """The sandbox with resource bounds on the operators that can allocate without limit."""

    intercepted_binops = frozenset({"*", "**", "%"})
    _bounded: Mapping[str, Callable[[Any, Any], Any]] = {
        "*": _bounded_mul,
        "**": _bounded_pow,
        "%": _bounded_mod,
    }

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Return the operator's result, refusing results too large for a prompt."""
        return self._bounded[operator](left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Return the sandbox's str.format wrapper, refusing oversized field widths."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__
        _check_format_spec(fmt)
        return wrapped


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


def render_template(text: str, variables: Mapping[str, Any]) -> str:
    """Return the template rendered in the sandbox with strict undefined variables."""
    if not isinstance(text, str):
        raise TemplateError(f"a template is text, not {type(text).__name__}")
    _parsed, compiled = _parse(text)
    try:
        parts: list[str] = []
        size = 0
        # generate() is lazy: stopping early also stops the loops that produce the output.
        for part in compiled.generate(dict(variables)):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise SecurityError(f"output exceeds {MAX_OUTPUT_CHARS:,} chars")
            parts.append(part)
        return "".join(parts)
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
