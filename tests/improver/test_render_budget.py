"""Render budgets: every path to a huge value is refused before it is built, loops that
print nothing are stopped, and legitimate templates render exactly as before."""

from __future__ import annotations

import itertools
import time
import tracemalloc
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from improver.render_budget import RenderBudget
from improver.templates import (
    RenderBudgetExceeded,
    TemplateSecurityError,
    render_template,
)

N = 300_000_000
BIG = "a" * 1_000_000

# name -> (template, variables, the RenderBudget field that refuses it). Unbounded, each
# builds at least ~300 MB (or loops for minutes).
ATTACKS: dict[str, tuple[str, dict[str, Any], str]] = {
    "percent_star_width": ("{{ '%*d' % (n, 1) }}", {"n": N}, "max_value_len"),
    "percent_star_precision": ("{{ '%.*f' % (n, 1.0) }}", {"n": N}, "max_value_len"),
    "percent_of_a_shared_list": ("{{ '%s' % ([big] * 300,) }}", {"big": BIG}, "max_value_len"),
    "bytes_percent": ("{{ ('%*d'.encode()) % (n, 1) }}", {"n": N}, "max_value_len"),
    "format_nested_width": ("{{ '{:>{}}'.format(1, n) }}", {"n": N}, "max_value_len"),
    "format_precision": ("{{ '{:.{}f}'.format(1.0, n) }}", {"n": N}, "max_value_len"),
    "format_repeated_field": ("{{ ('{0}' * 1000).format(big) }}", {"big": BIG}, "max_value_len"),
    "format_repr_conversion": ("{{ '{!r}'.format([big] * 300) }}", {"big": BIG}, "max_value_len"),
    "format_map_width": (
        "{{ '{x:>{w}}'.format_map({'x': 1, 'w': n}) }}", {"n": N}, "max_value_len"),
    "markup_format": ("{{ ('{:>{}}'|safe).format(1, n) }}", {"n": N}, "max_value_len"),
    "ljust": ("{{ 'a'.ljust(n) }}", {"n": N}, "max_value_len"),
    "rjust": ("{{ 'a'.rjust(n) }}", {"n": N}, "max_value_len"),
    "center_method": ("{{ 'a'.center(n) }}", {"n": N}, "max_value_len"),
    "zfill": ("{{ '1'.zfill(n) }}", {"n": N}, "max_value_len"),
    "expandtabs": ("{{ ('\t' * 1000000).expandtabs(300) }}", {}, "max_value_len"),
    "replace_method": ("{{ ('a' * 1000000).replace('a', 'b' * 300) }}", {}, "max_value_len"),
    "translate": ("{{ big.translate({97: 'b' * 300})|length }}", {"big": BIG}, "max_value_len"),
    "encode_escapes": ("{{ ('\U0001f600' * 900000).encode('unicode_escape')|length }}", {},
                       "max_value_len"),
    "int_to_bytes": ("{{ (1).to_bytes(n, 'big')|length }}", {"n": N}, "max_value_len"),
    "maketrans": ("{{ ''.maketrans(big, big)|length }}", {"big": BIG}, "max_alloc"),
    "repeat": ("{{ ('a' * 1000000) * 300 }}", {}, "max_value_len"),
    "join_method": ("{{ ''.join([big] * 300) }}", {"big": BIG}, "max_value_len"),
    "center_filter": ("{{ 'a'|center(n) }}", {"n": N}, "max_value_len"),
    "format_filter": ("{{ '%*d'|format(n, 1) }}", {"n": N}, "max_value_len"),
    "replace_filter": ("{{ ('a' * 1000000)|replace('a', 'b' * 300) }}", {}, "max_value_len"),
    "join_filter": ("{{ ([big] * 300)|join }}", {"big": BIG}, "max_value_len"),
    "indent_filter": ("{{ ('x\n' * 500000)|indent(300) }}", {}, "max_value_len"),
    "indent_width_itself": ("{{ 'x'|indent(n) }}", {"n": N}, "max_value_len"),
    "wordwrap_filter": ("{{ ('a ' * 400000)|wordwrap(1, wrapstring='x' * 300) }}", {},
                        "max_steps"),
    "string_filter_of_shared_list": ("{{ ([big] * 300)|string|length }}", {"big": BIG},
                                     "max_value_len"),
    "tojson_of_shared_list": ("{{ ([big] * 300)|tojson|length }}", {"big": BIG},
                              "max_value_len"),
    "batch_fill": ("{{ [1]|batch(n, 'x')|list|length }}", {"n": N}, "max_value_len"),
    "slice_count": ("{{ [1]|slice(n)|list|length }}", {"n": N}, "max_value_len"),
    "list_of_a_string": ("{{ ('\u0101' * 1000000)|list|length }}", {}, "max_alloc"),
    "sum_of_lists": ("{{ ([range(100000)|list] * 300)|sum(start=[])|length }}", {},
                     "max_value_len"),
    "range_product": ("{{ ((range(100000)|list) * 100000)|length }}", {}, "max_value_len"),
    "range_list_in_a_loop": (
        "{% set l = [] %}{% for i in range(100000) %}{{ l.append(range(100000)|list) }}"
        "{% endfor %}", {}, "max_steps"),
    "concat_doubling_in_a_loop": (
        "{% set ns = namespace(s=big) %}{% for i in range(9) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}", {"big": BIG}, "max_value_len"),
    "plus_doubling_in_a_loop": (
        "{% set ns = namespace(s=big) %}{% for i in range(9) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s|length }}", {"big": BIG}, "max_value_len"),
    "extend_doubling": (
        "{% set l = [big] %}{% for i in range(30) %}{{ l.extend(l) }}{% endfor %}{{ l|length }}",
        {"big": "ab"}, "max_value_len"),
    "update_growth": (
        "{% set d = {} %}{% for i in range(100) %}"
        "{{ d.update(dict.fromkeys(range(i * 100000, i * 100000 + 100000))) }}{% endfor %}", {},
        "max_steps"),
    "slices_kept_alive": (
        "{% set l = [] %}{% for i in range(300) %}{{ l.append(big[i:]) }}{% endfor %}"
        "{{ l|length }}", {"big": BIG}, "max_alloc"),
    "set_block_buffer": (
        "{% set x %}{% for i in range(300) %}{{ big }}{% endfor %}{% endset %}{{ x|length }}",
        {"big": BIG}, "max_output_chars"),
    "macro_output": (
        "{% macro m() %}{% for i in range(300) %}{{ big }}{% endfor %}{% endmacro %}"
        "{{ m()|length }}", {"big": BIG}, "max_output_chars"),
    "output_of_a_shared_list": ("{{ [big] * 300 }}", {"big": BIG}, "max_output_chars"),
    "loop_without_output": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", {},
        "max_steps"),
    "macro_recursion_tree": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}", {}, "max_steps"),
    "comparisons_of_huge_strings": (
        "{% for a in range(100000) %}{% if big == other %}{% endif %}{% endfor %}",
        {"big": BIG, "other": BIG[:-1] + "b"}, "max_steps"),
}

# Templates a prompt author writes, touching every hook the budget adds: each must render
# exactly as the stock sandbox renders it.
LEGIT_VARIABLES: dict[str, Any] = {
    "name": "Ada Lovelace",
    "n": 7,
    "x": 3.14159,
    "tags": ["billing", "refund", "urgent"],
    "order": {
        "id": 1234, "total": 99.5, "items": [{"sku": "a1", "qty": 2}, {"sku": "b2", "qty": 1}]
    },
    "users": [{"name": "bo", "age": 31}, {"name": "al", "age": 25}, {"name": "cy", "age": 31}],
    "message": "I was charged twice for order 1234, see https://example.com/o/1234 please. " * 3,
    "tree": [{"title": "a", "children": [{"title": "b", "children": []}]}],
    "html": "<b>bold</b> & 'quoted'",
    "unicode": "Straße ß ﬁ ā 😀",
}
LEGIT_TEMPLATES = [
    "Hello {{ name }}! You have {{ n }} new messages ({{ x }}).\n",
    "{{ name|upper }} {{ name|lower }} {{ name|title }} {{ name|capitalize }} {{ name|length }}",
    "{{ unicode|upper }}|{{ unicode|lower }}|{{ unicode|title }}|{{ unicode|list|length }}",
    "{{ '%05.1f' % x }} {{ '%-6s|' % name[:3] }} {{ '%(a)s-%(b)d' % {'a': 'k', 'b': n} }}",
    "{{ '{:>8}'.format(n) }} {{ '{0:.2f} {1!r}'.format(x, name) }} "
    "{{ '{a}'.format_map({'a': n}) }}",
    "{{ '%s and %s'|format('a', 'b') }} {{ name|center(20) }}|{{ name.ljust(15) }}|",
    "{{ name.rjust(15, '.') }} {{ '42'.zfill(6) }} {{ 'a\tb'.expandtabs(4) }}",
    "{{ message.replace('order', 'ORDER', 1) }} {{ message|replace('1234', '#') }}",
    "{{ ', '.join(tags) }} {{ tags|join(' / ') }} {{ users|join(', ', attribute='name') }}",
    "{{ message.split()|length }} {{ message.splitlines()|length }} {{ name.split(' ')[1] }}",
    "{{ message|wordwrap(30) }}\n{{ message|indent(4, first=true) }}\n{{ message|truncate(40) }}",
    "{{ message|urlize }} {{ html|striptags }} {{ html|e }} {{ html|forceescape }}",
    "{{ order|tojson }} {{ order|pprint }} {{ order['items']|string }} "
    "{{ {'q': 'a b'}|urlencode }}",
    "{{ (tags + ['new'])|list }} {{ tags * 2 }} {{ '-' * 10 }} {{ n * 3 }} {{ 2 ** 10 }}",
    "{{ n + 1 }} {{ n - 1 }} {{ n / 2 }} {{ n // 2 }} {{ n % 3 }} {{ -n }} {{ name ~ '!' ~ n }}",
    "{{ name[1:4] }}{{ name[::-1] }}{{ tags[-2:] }}{{ name[:2] ~ name[-2:] }}"
    "{{ range(10)[2:8:2]|list }}",
    "{% if n > 5 and name == 'Ada Lovelace' %}big{% elif n < 0 %}neg{% else %}small{% endif %}",
    "{{ 1 < n < 10 }} {{ 'bill' in tags }} {{ 'billing' in tags }} {{ 'Ada' in name }} "
    "{{ n != 7 }}",
    "{% for t in tags %}{{ loop.index }}/{{ loop.length }}:{{ t }}"
    "{% if not loop.last %}, {% endif %}{% endfor %}",
    "{% for t in tags if t != 'refund' %}{{ loop.cycle('odd', 'even') }}-{{ t }} {% else %}none"
    "{% endfor %}{% for t in [] %}x{% else %}empty{% endfor %}",
    "{% for node in tree recursive %}<{{ node.title }}>{{ loop(node.children) }}{% endfor %}",
    "{% for k, v in order|dictsort %}{{ k }}={{ v }};{% endfor %}{% for k, v in order.items() %}"
    "{{ k }}{% endfor %}",
    "{% for g in users|groupby('age') %}{{ g.grouper }}:{{ g.list|map(attribute='name')|join }} "
    "{% endfor %}",
    "{{ users|sort(attribute='name')|map(attribute='name')|list }} {{ users|map(attribute='age')"
    "|unique|list }} {{ users|selectattr('age', 'gt', 30)|list|length }}",
    "{{ range(10)|select('odd')|list }} {{ range(10)|reject('divisibleby', 3)|sum }} "
    "{{ [3, 1, 2]|min }} {{ [3, 1, 2]|max }} {{ [1, 2, 3]|reverse|list }} {{ tags|first }}",
    "{{ range(7)|batch(3, 0)|list }} {{ range(7)|slice(3, 'x')|list }} "
    "{{ [[1], [2]]|sum(start=[]) }}",
    "{{ x|round(2) }} {{ '12'|int + 1 }} {{ 'x'|float }} {{ -3|abs }} "
    "{{ 123456789|filesizeformat }}",
    "{{ missing|default('fallback') }} {{ {'class': 'a', 'id': 1}|xmlattr }} {{ tags|count }}",
    "{% macro card(title, body='') %}[{{ title }}: {{ body }}"
    "{{ caller() if caller is defined else '' }}]{% endmacro %}{{ card('a', 'b') }}"
    "{% call card('c') %}inner {{ n }}{% endcall %}",
    "{% set greeting %}Dear {{ name }},{% endset %}{{ greeting|upper }} {% filter upper %}shout "
    "{{ n }}{% endfilter %}",
    "{% set ns = namespace(total=0) %}{% for i in order['items'] %}{% set ns.total = ns.total + "
    "i.qty %}{% endfor %}{{ ns.total }} {{ dict(a=1, b=2)|dictsort }}",
    "{{ html|safe }} {{ (html|safe).upper() }} {{ ('<p>{}</p>'|safe).format(html) }} "
    "{{ ('%s!'|safe) % html }} {{ (html|e) ~ '&' }}",
    "{% autoescape true %}{{ html }} {{ html ~ name }} {{ tags|join(html) }}{% endautoescape %}",
    "{{ 'abc'.translate({97: 'A'}) }} {{ 'ä'.encode('utf-8')|length }} {{ (255).to_bytes(2, 'big')"
    "|list }} {{ name.count('a') }} {{ name.startswith('Ada') }} {{ name.find('L') }}",
    "{% set l = [1] %}{{ l.append(2) }}{{ l.extend([3, 4]) }}{{ l }} {% set d = {'a': 1} %}"
    "{{ d.update({'b': 2}) }}{{ d|dictsort }} {{ l.copy()|length }} {{ {}.fromkeys('ab') }}",
    "  {%- for t in tags -%} [{{ t }}] {%- endfor -%}  {# a comment #}"
    "{% raw %}{{ raw }}{% endraw %}",
    "{{ order['items']|map(attribute='sku')|join(',') }} {{ order['items'][0]['qty'] }} "
    "{{ users|map(attribute='name')|map('upper')|list }} {{ 'x' if n is even else 'y' }}",
    "{{ n is divisibleby 7 }} {{ name is lower }} {{ name is upper }} {{ tags is sequence }} "
    "{{ n is in [1, 7] }} {{ name is eq 'Ada' }} {{ undefined_thing is defined }}",
]


def _stock_render(text: str, variables: dict[str, Any]) -> str:
    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    return env.from_string(text).render(variables)


@pytest.mark.parametrize("text", LEGIT_TEMPLATES)
def test_legitimate_template_renders_byte_identical_to_the_stock_sandbox(text: str) -> None:
    assert render_template(text, LEGIT_VARIABLES) == _stock_render(text, LEGIT_VARIABLES)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_refused_before_it_is_built(name: str) -> None:
    text, variables, limit = ATTACKS[name]
    tracemalloc.start()
    try:
        with pytest.raises(RenderBudgetExceeded) as caught:
            render_template(text, variables)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.limit == limit
    # Unbounded, each attack builds >= 286 MB; refused from its arguments, it builds at
    # most a few values of max_value_len (1 M chars = 1-4 MB).
    assert peak < 16 * 2**20, f"{name} traced {peak / 2**20:.0f} MB before it was refused"


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_refused_quickly(name: str) -> None:
    text, variables, _limit = ATTACKS[name]
    started = time.thread_time()
    with pytest.raises(RenderBudgetExceeded):
        render_template(text, variables)
    # The default budget stops the slowest step patterns in ~25 ms of CPU here (see
    # test_render_budget_time.py); 0.5 s is room for a slow CI machine, not for a bomb.
    assert time.thread_time() - started < 0.5


def test_budget_refusal_names_the_limit_and_its_value() -> None:
    with pytest.raises(RenderBudgetExceeded) as caught:
        render_template("{{ 'a'.center(n) }}", {"n": 5_000_000})
    assert isinstance(caught.value, TemplateSecurityError)  # callers that map it keep working
    assert caught.value.limit == "max_value_len"
    assert caught.value.value == 1_000_000
    assert "max_value_len=1,000,000" in str(caught.value)
    assert "5,000,000" in str(caught.value)


@pytest.mark.parametrize(
    ("limit", "text"),
    [
        ("max_output_chars", "{% for i in range(60) %}{{ name }}{% endfor %}"),
        ("max_value_len", "{{ name.center(600) }}"),
        ("max_alloc", "{% for i in range(20) %}{% set s = name.center(500) %}{% endfor %}"),
        ("max_steps", "{% for i in range(1000) %}{% endfor %}"),
    ],
)
def test_each_limit_is_the_callers_to_set(limit: str, text: str) -> None:
    tight = RenderBudget(
        max_output_chars=500, max_value_len=500, max_alloc=5000, max_steps=1000
    )
    variables = {"name": "Ada Lovelace"}
    render_template(text, variables)  # fits the default budget
    with pytest.raises(RenderBudgetExceeded) as caught:
        render_template(text, variables, budget=tight)
    assert caught.value.limit == limit


def test_a_clock_stops_a_render_at_max_seconds() -> None:
    ticks = itertools.count(0.0, 0.001)  # each reading: one more millisecond passed
    budget = RenderBudget(max_seconds=0.05, max_steps=10**9)
    with pytest.raises(RenderBudgetExceeded) as caught:
        render_template(
            ATTACKS["loop_without_output"][0], {}, budget=budget, clock=lambda: next(ticks)
        )
    assert caught.value.limit == "max_seconds"
    assert 50 <= next(ticks) * 1000 <= 52  # stopped at the first reading past the deadline


def test_without_a_clock_the_verdict_is_the_same_on_any_machine() -> None:
    # Steps are counted, not timed: the same template is refused at the same point.
    budget = RenderBudget(max_steps=5000)
    text = "{% for i in range(100000) %}{{ i }},{% endfor %}"
    outcomes = set()
    for _ in range(3):
        with pytest.raises(RenderBudgetExceeded) as caught:
            render_template(text, {}, budget=budget)
        assert caught.value.limit == "max_steps"
        outcomes.add(str(caught.value))  # names the step count it stopped at
    assert len(outcomes) == 1


def test_a_loop_that_prints_nothing_is_stopped_within_the_budget() -> None:
    started = time.thread_time()
    with pytest.raises(RenderBudgetExceeded) as caught:
        render_template(ATTACKS["loop_without_output"][0], {})
    elapsed = time.thread_time() - started
    assert caught.value.limit == "max_steps"
    # 10^10 iterations unbounded (3e8 took 35 s); the budget allows 50,000 (~4 ms here).
    assert elapsed < 0.25, f"stopped after {elapsed * 1000:.0f} ms"


def test_a_refusal_swallowed_on_the_way_is_raised_again_at_the_next_step() -> None:
    # A caller's function that catches everything must not let the render carry on.
    swallowed = []

    def careless(method: Any) -> str:
        try:
            return method(10**7)
        except Exception as exc:
            swallowed.append(exc)
            return "ok"

    with pytest.raises(RenderBudgetExceeded) as caught:
        render_template("{% for i in range(3) %}{{ f(s.center) }}{% endfor %}",
                        {"f": careless, "s": "x"})
    assert len(swallowed) == 1
    assert caught.value.limit == "max_value_len"


def test_a_10kb_prompt_with_20_variables_uses_under_5_percent_of_the_budget() -> None:
    paragraph = "Follow the policy carefully, cite sources and be concise. " * 3
    text = (
        "".join(f"{paragraph}\nSection {i}: {{{{ v{i % 10} }}}} ({{{{ v{i % 10}|upper }}}})\n"
                for i in range(45))
        + "Customer {{ customer.name|title }} <{{ customer.email|lower }}> "
        "{{ tier|default('b') }}\n"
        "{% for e in examples %}{{ loop.index }}. {{ e.q|trim }} -> {{ e.a }}\n{% endfor %}"
        "{{ tags|join(', ') }} {{ message|wordwrap(60)|indent(2) }} {{ '%04d' % since }}"
        "{{ '{:.1f}'.format(discount) }} {{ (message ~ category)[:80] }} {{ agent }}{{ company }}"
    )
    variables = {f"v{i}": f"value {i}" for i in range(10)} | {
        "customer": {"name": "ada", "email": "ADA@X.COM"}, "tier": "gold", "since": 1843,
        "examples": [{"q": f" q{i} ", "a": f"a{i}"} for i in range(5)], "discount": 1.5,
        "tags": ["a", "b"], "message": "charged twice " * 20, "category": "billing",
        "agent": "Sam", "company": "ACME",
    }
    assert len(variables) == 20 and 9_000 < len(text) < 11_000
    share = RenderBudget(max_steps=RenderBudget().max_steps // 20)
    assert render_template(text, variables, budget=share) == _stock_render(text, variables)
