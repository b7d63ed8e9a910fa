"""Time: the step budget is a time budget. A step is priced so that no template can make
steps much slower than an empty loop's, and a render on one thread never keeps the GIL
from the others for long, because no single operation it may run is large."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

from improver.render_budget import RenderBudget
from improver.templates import RenderBudgetExceeded, parse_template, render_template
from tests.improver.test_render_budget import ATTACKS

TEXT = "lorem ipsum dolor sit amet, www.example.com consectetur <b>adipiscing</b> elit " * 40
VARIABLES: dict[str, Any] = {
    "d": {"x": 1},
    "big": "a" * 1_000_000,
    "other": "a" * 999_999 + "b",
    "text": TEXT,
    "dd": {str(i): i for i in range(1000)},
}
LOOP = "{% for a in range(100000) %}{% for b in range(100000) %}BODY{% endfor %}{% endfor %}"
EMPTY_LOOP = LOOP.replace("BODY", "")
# Bodies that make each step as slow as we could find: sandbox calls, exceptions inside
# attribute lookups, pure-Python filters, sorting with key functions, big comparisons.
SLOW_STEPS = {
    "dict attribute": LOOP.replace("BODY", "{% set y = d.x %}"),
    "method call": LOOP.replace("BODY", "{% set y = text.upper() %}"),
    "namespace()": LOOP.replace("BODY", "{% set ns = namespace(x=1) %}"),
    "set ns.x (no hook)": "{% set ns = namespace(x=1) %}"
    + LOOP.replace("BODY", "{% set ns.x = b %}"),
    "int arithmetic": LOOP.replace(  # many operators per iteration: the loop hides none
        "BODY", "{% set y = a * b + a * b + a * b + a * b + a * b + a * b - a %}"
    ),
    "macro call": "{% macro f() %}{% endmacro %}" + LOOP.replace("BODY", "{{ f() }}"),
    "str.format": LOOP.replace("BODY", "{% set y = '{}-{}'.format(a, b) %}"),
    "two filters": LOOP.replace("BODY", "{% set y = b|string|upper %}"),
    "wordwrap": LOOP.replace("BODY", "{% set y = text|wordwrap(5) %}"),
    "title": LOOP.replace("BODY", "{% set y = text|title %}"),
    "urlize": LOOP.replace("BODY", "{% set y = text|urlize %}"),
    "striptags": LOOP.replace("BODY", "{% set y = text|striptags %}"),
    "pprint": "{% set l = range(2000)|list %}" + LOOP.replace("BODY", "{% set y = l|pprint %}"),
    "tojson": "{% set l = range(2000)|list %}" + LOOP.replace("BODY", "{% set y = l|tojson %}"),
    "sort with key": "{% set l = range(1000)|map('string')|list %}"
    + LOOP.replace("BODY", "{% set y = l|sort %}"),
    "groupby": "{% set l = range(1000)|map('string')|list %}"
    + LOOP.replace("BODY", "{% set y = l|groupby('0')|list %}"),
    "dictsort": LOOP.replace("BODY", "{% set y = dd|dictsort %}"),
    "join": "{% set l = range(1000)|map('string')|list %}"
    + LOOP.replace("BODY", "{% set y = l|join(',') %}"),
    "huge compare": LOOP.replace("BODY", "{% set y = big == other %}"),
    "huge count": LOOP.replace("BODY", "{% set y = big.count('b') %}"),
    "macro recursion": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
    "{% endmacro %}{{ f(40) }}",
}
# Measured here: the slowest pattern takes ~4x the empty loop's time (~25 ms against
# ~6 ms at the default 100,000 steps). A price set too low by 3x or more fails.
MAX_SLOWDOWN = 12


def _cpu_to_refusal(text: str) -> float:
    parse_template(text)  # compile once, outside the measurement
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        with pytest.raises(RenderBudgetExceeded):
            render_template(text, VARIABLES)
        best = min(best, time.thread_time() - started)
    return best


@pytest.fixture(scope="module")
def empty_loop_seconds() -> float:
    """CPU seconds the default budget lets an empty nested loop run (best of three)."""
    return _cpu_to_refusal(EMPTY_LOOP)


@pytest.mark.parametrize("name", sorted(SLOW_STEPS))
def test_no_pattern_makes_steps_much_slower_than_an_empty_loop(
    name: str, empty_loop_seconds: float
) -> None:
    seconds = _cpu_to_refusal(SLOW_STEPS[name])
    assert seconds < MAX_SLOWDOWN * empty_loop_seconds, (
        f"{name}: {seconds * 1000:.1f} ms to refusal, the empty loop "
        f"{empty_loop_seconds * 1000:.1f} ms"
    )
    assert seconds < 0.5


# Attacks whose unbounded form is one long C call (memset, formatting, copying), which
# holds the GIL for its whole length, plus loops that only yield it every switch interval.
THREADED_ATTACKS = [
    "percent_star_width", "format_nested_width", "center_method", "zfill", "replace_method",
    "join_method", "repeat", "translate", "int_to_bytes", "indent_filter", "batch_fill",
    "extend_doubling", "loop_without_output", "macro_recursion_tree",
]


def test_a_hostile_render_on_a_thread_never_holds_other_threads_past_the_budget() -> None:
    # 0.1 s, not the 0.05 s default: this shared CI machine alone shows ~10-20 ms waits.
    budget = RenderBudget(max_seconds=0.1)
    finished: list[tuple[str, float]] = []

    def attacker() -> None:
        for name in THREADED_ATTACKS:
            text, variables, _limit = ATTACKS[name]
            started = time.perf_counter()
            try:
                render_template(text, variables, budget=budget, clock=time.thread_time)
            except RenderBudgetExceeded:
                finished.append((name, time.perf_counter() - started))

    for name in THREADED_ATTACKS:  # compile outside the measurement
        parse_template(ATTACKS[name][0])
    thread = threading.Thread(target=attacker)
    worst_gap = 0.0
    thread.start()
    last = time.perf_counter()
    while thread.is_alive():  # what resolve does between renders: short, GIL-bound work
        time.sleep(0.0005)
        render_template("Hi {{ name }}", {"name": "Ada"})
        now = time.perf_counter()
        worst_gap = max(worst_gap, now - last)
        last = now
    thread.join()
    assert [name for name, _ in finished] == THREADED_ATTACKS
    # Unbounded, '%*d' % (3e8, 1) alone holds the GIL for ~1 s. Bounded, the other thread
    # waits at most a switch interval (5 ms) plus the longest single operation.
    assert worst_gap < budget.max_seconds, f"another thread waited {worst_gap * 1000:.0f} ms"
    slowest = max(finished, key=lambda item: item[1])
    assert slowest[1] < 0.5, f"{slowest[0]} took {slowest[1] * 1000:.0f} ms on its thread"
    assert sys.getswitchinterval() <= 0.005  # the premise of the bound above
