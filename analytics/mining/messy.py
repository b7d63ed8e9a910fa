"""A seeded messy corpus: what reviewers really send, with known truth, for tests and benches.

Three failure modes written by reviewers in English and a second language (German or
Spanish), with typos and fillers; ~15% noise corrections ("thx", "ok", meeting chatter,
rants) whose corrected output is a bare "ok"; ~20% corrections without a reason; failed
executions nobody corrected (the service's "unsuccessful execution" placeholder); and input
variables per record (``locale`` explains the language mode, ``channel`` and ``plan``
explain nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.mining.model import FailureRecord

NOISE = "noise"
REASONLESS = "reasonless"
FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class MessyMode:
    """A failure mode as reviewers describe it, in English and one other language."""

    name: str
    category: str
    reasons_en: tuple[str, ...]
    reasons_other: tuple[str, ...]
    fixed: str  # a corrected answer
    locales: tuple[str, ...] = ("en", "de", "es")  # locales whose inputs can hit it


MESSY_MODES: tuple[MessyMode, ...] = (
    MessyMode(
        "date_format", "format",
        ("please give the date in ISO format", "dates must be written as YYYY-MM-DD",
         "the date is not in ISO format", "wrong date format, expected ISO YYYY-MM-DD"),
        ("Datum bitte im ISO-Format angeben", "das Datum ist nicht im ISO-Format"),
        "Your payday is 2024-05-31."),
    MessyMode(
        "reply_language", "language",
        ("answered in English although the customer wrote in Spanish",
         "reply in the language the customer wrote in",
         "the customer wrote in German but got an English answer"),
        ("respondió en inglés aunque el cliente escribió en español",
         "hay que responder en el idioma del cliente"),
        "¡Hola! Su pedido ya está en camino.", locales=("de", "es")),
    MessyMode(
        "legal_escalation", "escalation",
        ("should have been escalated to legal", "a legal threat must be escalated to legal",
         "customer mentioned a lawyer, escalate to the legal team"),
        ("die Drohung mit dem Anwalt hätte an die Rechtsabteilung gehen müssen",),
        "I have forwarded your message to our legal team."),
)
NOISE_REASONS = (
    "thx", "ok", "k", "n/a", "thanks!", "k -- as discussed in the weekly quality sync, we'll "
    "revisit next sprint", "this bot is useless", "ok ok", "thx again",
)
FILLERS = ("honestly", "fyi", "btw", "as usual", "(ticket reviewed)")
_LOCALES = ("en", "de", "es")
_LOCALE_P = (0.5, 0.25, 0.25)


@dataclass(frozen=True, slots=True)
class MessyCorpus:
    """Generated records and, per record, its truth: a mode name, NOISE, REASONLESS or FAILURE."""

    records: tuple[FailureRecord, ...]
    truth: tuple[str, ...]


def generate_messy_corpus(
    *,
    seed: int,
    n_records: int,
    now: float,
    window_seconds: float = 86_400.0,
    n_windows: int = 7,
    noise_share: float = 0.15,
    reasonless_share: float = 0.20,
    failure_share: float = 0.25,
    typo_share: float = 0.15,
) -> MessyCorpus:
    """Return ``n_records`` messy records spread over the windows before ``now``."""
    rng = np.random.default_rng(seed)
    records: list[FailureRecord] = []
    truth: list[str] = []
    for i in range(n_records):
        at = float(now - rng.uniform(0.0, window_seconds * n_windows))
        locale = str(rng.choice(_LOCALES, p=_LOCALE_P))
        variables = (("channel", str(rng.choice(("chat", "email")))), ("locale", locale),
                     ("plan", str(rng.choice(("free", "pro")))), ("question", f"q{i}"))
        question = f"ticket {i}: When is payday?"
        output = f"answer to ticket {i}"
        x = rng.random()
        if x < failure_share:
            records.append(FailureRecord(f"f{i}", "failure", at, 1,
                                         reason="unsuccessful execution", input_text=question,
                                         output_text=output, variables=variables))
            truth.append(FAILURE)
            continue
        eligible = [m for m in MESSY_MODES if locale in m.locales]
        mode = eligible[int(rng.integers(len(eligible)))]
        y = rng.random()
        if y < noise_share:
            reason, fixed, label = str(rng.choice(NOISE_REASONS)), "ok", NOISE
            category = "other"
        elif y < noise_share + reasonless_share:
            reason, fixed, label, category = "", mode.fixed, REASONLESS, mode.category
        else:
            pool = mode.reasons_en if rng.random() < 0.7 else mode.reasons_other
            reason = str(pool[int(rng.integers(len(pool)))])
            if rng.random() < typo_share:
                reason = _typo(reason, rng)
            if rng.random() < 0.3:
                reason = f"{reason} {FILLERS[int(rng.integers(len(FILLERS)))]}"
            fixed, label, category = mode.fixed, mode.name, mode.category
        records.append(FailureRecord(f"c{i}", "correction", at, 1, reason=reason,
                                     category=category, input_text=question, output_text=output,
                                     corrected_output=fixed, variables=variables))
        truth.append(label if label in (NOISE, REASONLESS) else mode.name)
    return MessyCorpus(tuple(records), tuple(truth))


def _typo(text: str, rng: np.random.Generator) -> str:
    """Return the text with one word of 6+ letters misspelt (two inner letters dropped)."""
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long:
        return text
    i = long[int(rng.integers(len(long)))]
    w = words[i]
    j = int(rng.integers(1, len(w) - 2))
    words[i] = w[:j] + w[j + 2:]
    return " ".join(words)
