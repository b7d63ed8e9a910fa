"""The simulated worlds: picked by name, v1 as it was, v2 messy and judged by meaning."""

from __future__ import annotations

import random

import pytest
from scipy.stats import binom

from analytics.mining import FailureRecord, mine_patterns
from improver import BaseVersion, propose_candidates, render_template
from service.simulation.world import (
    MODES,
    V2_MODES,
    V2_NOISE_REASONS,
    WORLDS,
    SupportV2World,
    World,
)

BASE = ("You are a customer support agent for ACME.\n"
        "Category: {{ category }}\nQuestion: {{ question }}\n"
        "Answer the customer's question helpfully.\n")


def _bounds(n: int, p: float, alpha: float = 1e-6) -> tuple[int, int]:
    return int(binom.ppf(alpha / 2, n, p)), int(binom.ppf(1 - alpha / 2, n, p))


def test_worlds_are_picked_by_name_and_an_unknown_name_lists_the_known_ones() -> None:
    assert set(WORLDS) == {"support-v1", "support-v2"}
    v1, v2 = World.named("support-v1", 3), World.named("support-v2", 3)
    assert type(v1) is World and v1.seed == 3
    assert isinstance(v2, SupportV2World) and v2.name == "support-v2"
    with pytest.raises(KeyError, match="support-v2"):
        World.named("support-v3")


def test_v1_by_name_behaves_exactly_like_the_default_world() -> None:
    a, b = World(5), World.named("support-v1", 5)
    ra, rb = random.Random(1), random.Random(1)
    for i in range(500):
        ta, tb = a.next_task(i), b.next_task(i)
        assert ta == tb and set(ta.variables) == {"question", "category"}
        assert a.outcome(BASE, ta, ra) == b.outcome(BASE, tb, rb)
    assert a.addressed("use ISO dates and cite the policy") == {"date_format",
                                                                 "missing_citation"}
    product = 1.0
    for m in MODES:
        product *= 1 - m.trigger_share * m.fail_without_guidance
    assert a.expected_success("plain") == pytest.approx(product * 0.95)


def test_v2_recognises_each_modes_guidance_by_meaning_and_its_oracle_covers_all() -> None:
    w = World.named("support-v2", 0)
    assert w.addressed(w.oracle_text(BASE)) == {m.name for m in V2_MODES}
    for mode in V2_MODES:
        assert w.addressed(f"- {mode.guidance}") == {mode.name}
    # Other words, same meaning: a model would act on these.
    assert w.addressed("Always mention which currency an amount is in.") == {"currency_code"}
    assert w.addressed("Answer in the same language as the customer.") == {"reply_language"}
    assert w.addressed("Hand threats of legal action over to counsel.") == {"legal_escalation"}


def test_v2_reads_avoid_before_an_instruction_as_its_opposite() -> None:
    w = World.named("support-v2", 0)
    assert w.addressed("- Avoid: always state the currency with every amount") == set()
    assert w.addressed("- Avoid: reply in the customer's language") == set()
    assert w.addressed("- Avoid: escalating legal threats to the legal team") == set()
    # ... while avoiding the failure itself, or a described lack, is guidance.
    assert w.addressed("- Avoid: amounts without a currency code") == {"currency_code"}
    assert w.addressed("- Avoid: inventing facts") == {"invented_facts"}
    assert w.addressed("- Never share personal data such as card numbers") == {"personal_data"}


def test_v2_gives_noise_labels_and_typos_no_credit() -> None:
    w = World.named("support-v2", 0)
    for noise in V2_NOISE_REASONS:
        assert w.addressed(f"- Avoid: {noise}") == set()
    assert w.addressed("- should have been ecaated to legal") == set()
    assert w.addressed("- Avoid: currency code eur (currency code eur)") == set()
    assert w.addressed("- Avoid: language customer english") == set()


def test_v2_corrections_are_messy_in_the_stated_proportions() -> None:
    w = World.named("support-v2", 1)
    rng = random.Random(2)
    n = 6_000
    corrections = [w.correction_for(V2_MODES[i % 5].name, rng) for i in range(n)]
    noise = sum(1 for _c, r, fixed in corrections if r in V2_NOISE_REASONS and fixed in
                ("ok", "thx", "fine"))
    reasonless = sum(1 for _c, r, _f in corrections if r == "")
    lo, hi = _bounds(n, 0.15)
    assert lo <= noise <= hi
    lo, hi = _bounds(n, 0.20)
    assert lo <= reasonless <= hi
    reasons = {r for _c, r, _f in corrections}
    assert any("Währung" in r for r in reasons) and any("moneda" in r for r in reasons)
    written = {r.split(" honestly")[0] for m in V2_MODES
               for r in (*m.reasons, *m.reasons_de, *m.reasons_es)}
    typos = [r for r in reasons if r and r not in V2_NOISE_REASONS
             and not any(r.startswith(x) for x in written)]
    assert len(typos) >= 20  # misspelt reasons exist, as in real data


def test_v2_language_failures_come_only_from_other_locales() -> None:
    w = World.named("support-v2", 4)
    tasks = [w.next_task(i) for i in range(4_000)]
    assert {t.variables["locale"] for t in tasks} == {"en", "de", "es"}
    language = [t for t in tasks if "reply_language" in t.modes]
    assert language and all(t.variables["locale"] in ("de", "es") for t in language)


def test_v2_expected_success_matches_simulated_outcomes() -> None:
    w = SupportV2World(7, harmful_share=0.0)
    rng = random.Random(3)
    n = 20_000
    wins = sum(w.outcome(render_template(BASE, t.variables), t, rng).success
               for t in (w.next_task(i) for i in range(n)))
    lo, hi = _bounds(n, w.expected_success(BASE))
    assert lo <= wins <= hi


def test_v2_corrections_mined_into_feedback_give_guidance_the_world_recognises() -> None:
    w = SupportV2World(1, harmful_share=0.0)
    rng = random.Random(1)
    now = 1_700_000_000.0
    records, recorded = [], []
    for i in range(12_000):
        task = w.next_task(i)
        out = w.outcome(render_template(BASE, task.variables), task, rng)
        recorded.append(task.variables)
        if out.failed_mode is None or rng.random() >= 0.6:
            continue
        category, reason, fixed = w.correction_for(out.failed_mode, rng)
        records.append(FailureRecord(f"c{i}", "correction", now - rng.uniform(0, 6e5), 1,
                                     reason=reason, category=category,
                                     input_text=task.question, output_text=out.output_text,
                                     corrected_output=fixed,
                                     variables=tuple(sorted(task.variables.items()))))
    patterns = mine_patterns(records, now=now, executions_in_window=0).patterns
    candidates, _ = propose_candidates(BaseVersion("support/answer", 1, BASE), patterns, k=7,
                                       recorded_variables=recorded[:50])
    by_strategy = {c.strategy: c for c in candidates}
    additive = by_strategy["additive"]
    assert len(w.addressed(additive.template)) >= 3
    assert w.expected_success(additive.template) > w.expected_success(BASE) + 0.1
    contextual = by_strategy["contextual"]
    assert "locale" in contextual.template  # the language feedback depends on locale
