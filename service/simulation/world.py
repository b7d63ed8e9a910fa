"""The simulated worlds: tasks, hidden failure modes, and what a prompt's text changes.

Pure and seeded: given a prompt text and an input, ``outcome`` says whether the simulated
LLM call succeeded, how long it took and what it cost. A failure mode hurts the inputs that
trigger it unless the prompt carries guidance addressing it; some edits are harmful
(``HARM_MARKERS``, and a seeded share of all texts), so rollback has something to catch.

Two worlds, picked by name with ``World.named(name, seed)`` (``WORLDS`` lists them):

- ``support-v1`` (``World``): four modes (dates, citations, tone, length), English
  corrections from a few paraphrases; guidance is present when one of a mode's
  ``fix_terms`` occurs in the prompt.
- ``support-v2`` (``SupportV2World``): five other modes (currency codes, reply language by
  locale, invented facts, leaked personal data, legal escalation) with messy multilingual
  corrections (English, German, Spanish), typos, ~15% noise and ~20% without a reason.
  Guidance is decided by meaning, as a model would read it: a line must name the mode's
  concept (synonym sets, not the correctors' sentences), and a line that puts an
  instruction behind "Avoid:"/"Never" ("Avoid: always state the currency") says the
  opposite and does not count.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

SIMULATION_TAG = "[simulation]"


@dataclass(frozen=True)
class FailureMode:
    """A hidden way the agent fails, who triggers it, and what fixes it."""

    name: str
    category: str
    trigger_share: float  # share of inputs that can hit this mode
    fail_without_guidance: float
    fail_with_guidance: float
    fix_terms: tuple[str, ...]  # any of these in the prompt (case-insensitive) is guidance
    reasons: tuple[str, ...]  # how correctors describe it, in varied paraphrases
    topic_words: tuple[str, ...]  # words that appear in triggering inputs


MODES: tuple[FailureMode, ...] = (
    FailureMode(
        "date_format", "format", 0.22, 0.55, 0.05, ("iso", "yyyy-mm-dd"),
        ("the date is not in ISO format", "dates must be written in ISO 8601 format",
         "wrong date format, expected ISO YYYY-MM-DD", "please give the date in ISO format",
         "date format is wrong: use ISO"),
        ("deadline", "date", "when", "schedule")),
    FailureMode(
        "missing_citation", "citation", 0.22, 0.55, 0.05, ("citation", "cite"),
        ("the answer is missing a citation of the policy", "no citation to the policy document",
         "cite the policy section you rely on", "missing citation: which policy says so?",
         "answers about policy need a citation"),
        ("policy", "refund", "warranty", "allowed")),
    FailureMode(
        "complaint_tone", "tone", 0.18, 0.6, 0.06, ("apolog", "empath"),
        ("tone too curt for an upset customer; apologise first",
         "the reply should apologise and show empathy for the complaint",
         "no apology to an angry customer", "cold tone on a complaint, needs an apology",
         "be empathetic and apologise when the customer complains"),
        ("angry", "complaint", "unacceptable", "disappointed")),
    FailureMode(
        "too_long", "length", 0.2, 0.5, 0.05, ("concise", "too long"),
        ("the answer is too long for a simple question", "far too long; keep it concise",
         "reply is too long, the customer wanted one line", "too long and rambling, be concise",
         "answer too long for a yes/no question"),
        ("quick", "simple", "yes or no", "short")),
)

# Text an admin might add that hurts every answer (the demo's hand-deployed bad version).
HARM_MARKERS: dict[str, float] = {"answer in one word": 0.30, "never ask questions": 0.12}
BASE_FAILURE = 0.05
NOISE_WORDS = ("honestly", "again", "as usual", "FYI", "btw", "imo", "(ticket reviewed)")


@dataclass(frozen=True)
class Task:
    """One simulated request: its text, variables and which modes it triggers."""

    task_id: int
    subject: str
    question: str
    category: str
    modes: tuple[str, ...]
    extra: tuple[tuple[str, str], ...] = ()  # further input variables (locale, channel, ...)

    @property
    def variables(self) -> dict[str, str]:
        """Return the variables an agent renders the prompt with."""
        return {"question": self.question, "category": self.category, **dict(self.extra)}


@dataclass(frozen=True)
class Outcome:
    """What the simulated LLM call did."""

    success: bool
    failed_mode: str | None
    latency_ms: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    output_text: str


class World:
    """A seeded population of tasks and the rules that decide their outcomes (support-v1)."""

    name = "support-v1"
    modes: tuple[FailureMode, ...] = MODES

    def __init__(self, seed: int = 0, *, harmful_share: float = 0.15,
                 subjects: int = 5_000) -> None:
        self.seed = seed
        self.harmful_share = harmful_share
        self.subjects = subjects
        self._rng = random.Random(seed)
        self._harm_cache: dict[str, float] = {}

    def next_task(self, task_id: int) -> Task:
        """Return a new task; which modes it triggers is drawn from the seeded generator."""
        rng = self._rng
        modes = tuple(m.name for m in MODES if rng.random() < m.trigger_share)
        words = [rng.choice(m.topic_words) for m in MODES if m.name in modes]
        category = next((m.category for m in MODES if m.name in modes), "general")
        topic = " ".join(words) or rng.choice(("account", "login", "invoice", "shipping"))
        question = f"customer question #{task_id} about {topic}"
        return Task(task_id, f"user-{rng.randrange(self.subjects)}", question, category, modes)

    @classmethod
    def named(cls, name: str, seed: int = 0, **options: object) -> World:
        """Return the world registered as ``name`` (see ``WORLDS``), seeded."""
        try:
            factory = WORLDS[name]
        except KeyError:
            raise KeyError(f"no world named {name!r}; known: {', '.join(WORLDS)}") from None
        return factory(seed, **options)

    def addressed(self, prompt_text: str) -> frozenset[str]:
        """Return the modes a (rendered) prompt carries guidance for."""
        lower = prompt_text.lower()
        return frozenset(m.name for m in MODES if any(t in lower for t in m.fix_terms))

    def severity_for(self, mode_name: str) -> str:
        """Return the severity a corrector gives a failure of this mode."""
        return "high" if mode_name == "complaint_tone" else "medium"

    def trigger_probability(self, mode: FailureMode) -> float:
        """Return the share of all tasks that can hit ``mode``."""
        return mode.trigger_share

    def harm(self, template: str) -> float:
        """Return the success penalty of a prompt version (by its template), cached."""
        penalty = self._harm_cache.get(template)
        if penalty is None:
            lower = template.lower()
            penalty = sum(p for marker, p in HARM_MARKERS.items() if marker in lower)
            # A seeded share of machine edits is harmful in a way no keyword reveals: the
            # canary, not the text, has to catch it. Versions without a learned section
            # (the base, hand-written ones) carry only the visible markers.
            if "## " in template:
                digest = hashlib.sha256(f"{self.seed}:{template}".encode()).digest()
                penalty += 0.15 if digest[0] / 256 < self.harmful_share else 0.0
            self._harm_cache[template] = penalty
        return penalty

    def is_harmful(self, template: str) -> bool:
        """Return whether a version carries a harm penalty (the benchmark's bookkeeping)."""
        return self.harm(template) > 0

    def outcome(self, rendered: str, task: Task, rng: random.Random,
                template: str | None = None) -> Outcome:
        """Return the outcome of ``task`` with this rendered prompt of version ``template``."""
        addressed, penalty = self.addressed(rendered), self.harm(template or rendered)
        failed_mode = None
        for mode in self.modes:
            if mode.name in task.modes:
                guided = mode.name in addressed
                p = mode.fail_with_guidance if guided else mode.fail_without_guidance
                if rng.random() < p:
                    failed_mode = mode.name
                    break
        success = failed_mode is None and rng.random() >= BASE_FAILURE + penalty
        # Longer prompts cost more and take longer: guidance is not free.
        # The agent sends context with every call (history, retrieved documents), so the
        # prompt is a part of the input, as in real deployments.
        input_tokens = len(rendered) // 4 + 600
        output_tokens = int(rng.lognormvariate(4.5, 0.4))
        latency = rng.lognormvariate(math.log(400 + 0.6 * input_tokens + 8 * output_tokens), 0.25)
        cost = input_tokens * 0.15e-6 + output_tokens * 0.6e-6
        output = f"{SIMULATION_TAG} answer to {task.question}"
        return Outcome(success, failed_mode, latency, input_tokens, output_tokens, cost, output)

    def oracle_text(self, base: str) -> str:
        """Return the base prompt plus guidance for every hidden mode (the benchmark's ceiling)."""
        rules = "\n".join(f"- {m.reasons[0]} ({' '.join(m.fix_terms)})" for m in MODES)
        return f"{base}\nRules:\n{rules}\n"

    def correction_for(self, mode_name: str, rng: random.Random) -> tuple[str, str, str]:
        """Return (category, reason, corrected output) as a simulated corrector writes them."""
        mode = next(m for m in MODES if m.name == mode_name)
        reason = rng.choice(mode.reasons)
        if rng.random() < 0.5:
            reason = f"{reason} {rng.choice(NOISE_WORDS)}"
        return mode.category, reason, f"{SIMULATION_TAG} corrected answer ({mode.name} fixed)"

    def expected_success(self, prompt_text: str) -> float:
        """Return the success probability of a version over the task population.

        Exact for guidance outside Jinja conditionals; a conditional's guidance is counted as
        always present, so contextual versions come out slightly optimistic.
        """
        addressed, penalty = self.addressed(prompt_text), self.harm(prompt_text)
        # Modes are drawn independently; the first triggered mode that fires fails the task.
        p_no_mode_failure = 1.0
        for m in self.modes:
            fail = m.fail_with_guidance if m.name in addressed else m.fail_without_guidance
            p_no_mode_failure *= 1 - self.trigger_probability(m) * fail
        return p_no_mode_failure * max(0.0, 1 - BASE_FAILURE - penalty)


# --- support-v2: other failure modes, multilingual and messy corrections, meaning-level ---

@dataclass(frozen=True)
class MeaningMode(FailureMode):
    """A v2 mode: guidance is recognised by meaning (concept patterns), not by keywords."""

    good: str = ""  # regex: a line naming the right behaviour ("state the currency code")
    bad: str = ""  # regex: a line naming the failure itself ("invented a delivery date")
    reasons_de: tuple[str, ...] = ()
    reasons_es: tuple[str, ...] = ()
    input_category: str | None = None  # the input category tasks of this mode come with
    locales: tuple[str, ...] | None = None  # only inputs in these locales can trigger it
    severity: str = "medium"
    fixed_answer: str = ""  # what a corrected answer says
    guidance: str = ""  # how a careful prompt engineer would instruct it (the oracle)


_LEGAL = (r"(legal|lawyer|attorney|counsel|recht|jurist|anwalt|klage|abogad|jur[ií]dic|"
          r"demanda)")
_ESCALATE = (r"(escalat|hand(ed|s)?\b.{0,30}\bover|forward|route|transfer|refer|weiterleit|"
             r"eskalier|[üu]bergeb|escalar|escal[oó]|deriv|remit|an die rechtsabteilung)")
_PERSONAL = (r"(personal|private|pii|e-?mail|phone|card number|iban|home address|"
             r"pers[öo]nlich|personenbezogen|telefon|kartennummer|datos personales|tarjeta|"
             r"correo|tel[ée]fono)")
_DISCLOSE = (r"(leak|expos|reveal|disclos|repeat|echo|shar(e|ed|ing)|print|verr[äa]t|"
             r"preisgeg|wiederholt|filtr|revel|mostr|repiti)")
_MASK = r"(mask|redact|anonymi|hide|withh[eo]ld|schw[äa]rz|maskier|ocult|enmascar|omit)"

V2_MODES: tuple[MeaningMode, ...] = (
    MeaningMode(
        "currency_code", "format", 0.22, 0.55, 0.05, (), (
            "the amount has no currency code", "price shown as 49.90 without saying EUR or USD",
            "state the currency with every amount please", "which currency is this total in??",
            "totals must carry the ISO currency code"),
        ("invoice", "price", "subscription", "refund amount"),
        good=r"(currenc|iso 4217|w[äa]hrung|moneda|divisa)",
        reasons_de=("Betrag ohne Währung angegeben", "bitte immer die Währung zum Preis nennen",
                    "Währungscode fehlt beim Gesamtbetrag"),
        reasons_es=("falta la moneda en el importe", "indica siempre la moneda del precio",
                    "el total no dice si son EUR o USD"),
        input_category="billing", fixed_answer="The total is 49.90 EUR.",
        guidance="State the ISO 4217 currency code next to every amount."),
    MeaningMode(
        "reply_language", "language", 0.5, 0.6, 0.05, (), (
            "answered in English although the customer wrote in German",
            "reply must be in the customer's language", "wrong language, customer writes Spanish",
            "why is this in English??", "please answer in the language the customer used"),
        ("order status", "delivery", "account"),
        good=(r"((language|sprache|idioma|lengua)\b.{0,60}\b(customer|user|their|same|wrote|"
              r"used|locale|kunde|kunden|cliente)|(customer|user|their|same|kunde|cliente)\b"
              r".{0,60}\b(language|sprache|idioma|lengua)|(english|englisch|ingl[ée]s).{0,60}"
              r"(german|deutsch|spanish|spanisch|espa[ñn]ol|alem[áa]n))"),
        reasons_de=("Antwort auf Englisch, obwohl der Kunde Deutsch schreibt",
                    "bitte in der Sprache des Kunden antworten", "falsche Sprache"),
        reasons_es=("respondió en inglés aunque el cliente escribió en español",
                    "hay que responder en el idioma del cliente", "idioma equivocado"),
        locales=("de", "es"), fixed_answer="Hallo! Ihre Bestellung ist unterwegs.",
        guidance="Reply in the language the customer wrote in (their locale)."),
    MeaningMode(
        "invented_facts", "accuracy", 0.18, 0.5, 0.05, (), (
            "the bot invented a delivery date we never gave",
            "made up a discount that does not exist", "hallucinated a policy clause",
            "do not make things up, only say what the order data shows",
            "stated a tracking number that is fake"),
        ("discount", "delivery date", "policy", "tracking"),
        bad=(r"(invent|made[- ]up|make (things |stuff )?up|making up|fabricat|hallucinat|"
             r"erfunden|erfind|inventad|invent[óo])"),
        good=(r"((only|nur|solo|s[óo]lo)\b.{0,50}\b(facts?|information|data|fakten|daten|datos|"
              r"hechos|sources?|shows?)|verif|if (you are )?unsure|do not know|say so)"),
        reasons_de=("Lieferdatum frei erfunden", "Rabatt erfunden, den es nicht gibt",
                    "nur Fakten aus den Bestelldaten nennen"),
        reasons_es=("se inventó una fecha de entrega", "inventó un descuento que no existe",
                    "dijo un número de seguimiento falso"),
        input_category="orders", fixed_answer="I cannot see a delivery date yet; I will check.",
        guidance="Only state facts found in the order data; if unsure, say so instead of "
                 "inventing."),
    MeaningMode(
        "personal_data", "privacy", 0.15, 0.5, 0.04, (), (
            "the reply repeated the customer's card number",
            "leaked another customer's email address", "phone number shown in full, mask it",
            "never echo personal data back", "exposed the home address in the answer"),
        ("card", "email change", "address", "phone"),
        bad=rf"({_DISCLOSE}.{{0,60}}{_PERSONAL}|{_PERSONAL}.{{0,60}}{_DISCLOSE})",
        good=rf"({_MASK}.{{0,60}}{_PERSONAL}|{_PERSONAL}.{{0,60}}{_MASK})",
        reasons_de=("Kartennummer in der Antwort wiederholt", "persönliche Daten preisgegeben",
                    "Telefonnummer bitte maskieren"),
        reasons_es=("repitió el número de tarjeta del cliente", "mostró datos personales",
                    "filtró el correo de otro cliente"),
        input_category="account", severity="high",
        fixed_answer="Your card ending in •••• 4242 was charged.",
        guidance="Never repeat or reveal personal data (e-mail, phone, card numbers); mask "
                 "them."),
    MeaningMode(
        "legal_escalation", "escalation", 0.12, 0.6, 0.05, (), (
            "a legal threat must be escalated to the legal team",
            "customer mentioned a lawyer, should have been escalated to legal",
            "threat to sue was not forwarded to legal", "hand legal complaints over to counsel",
            "this needed legal escalation, not a canned reply"),
        ("lawyer", "sue", "court", "legal action"),
        good=rf"({_ESCALATE}.{{0,60}}{_LEGAL}|{_LEGAL}.{{0,60}}{_ESCALATE})",
        reasons_de=("Drohung mit Anwalt hätte an die Rechtsabteilung gehen müssen",
                    "rechtliche Beschwerde bitte eskalieren", "Klage angedroht, nicht eskaliert"),
        reasons_es=("el cliente mencionó un abogado, había que escalar a legal",
                    "amenaza de demanda sin escalar", "escalar reclamaciones legales"),
        input_category="legal", severity="critical",
        fixed_answer="I have forwarded your message to our legal team, who will reply.",
        guidance="Escalate any legal threat or mention of a lawyer to the legal team."),
)

V2_NOISE_REASONS = (
    "thx", "ok", "k", "n/a", "+1", "danke", "gracias", "fine", "see ticket",
    "k -- as discussed in the weekly quality sync, we'll revisit next sprint",
    "this bot is useless", "ugh, again", "lol", "meh",
)
_NEGATED_FRAME = re.compile(r"^\s*(?:[-*•]\s*)?(?:avoid|don'?t|do not|never)\b[:\s]*", re.I)
_PROBLEM_MARKERS = re.compile(
    r"\b(no|not|without|missing|lack\w*|wrong|instead|ohne|fehl\w*|nicht|kein\w*|falsch\w*|"
    r"sin|falta|incorrect\w*)\b|n't\b", re.I)
_LOCALES = (("en", 0.55), ("de", 0.25), ("es", 0.20))
_CORRECTOR_LANGUAGES = (("en", 0.6), ("de", 0.25), ("es", 0.15))
_QUESTION = {"en": "customer question #{n} about {topic}", "de": "Kundenfrage #{n} zu {topic}",
             "es": "pregunta del cliente #{n} sobre {topic}"}


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x, total = rng.random(), 0.0
    for value, weight in weighted:
        total += weight
        if x < total:
            return value
    return weighted[-1][0]


def _typo(text: str, rng: random.Random) -> str:
    """Return the text with one longer word misspelt (letters dropped or swapped)."""
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long:
        return text
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 2:] if rng.random() < 0.5 else w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


class SupportV2World(World):
    """support-v2: five other modes, multilingual messy corrections, guidance by meaning."""

    name = "support-v2"
    modes: tuple[FailureMode, ...] = V2_MODES
    noise_share = 0.15
    reasonless_share = 0.20
    typo_share = 0.12

    def next_task(self, task_id: int) -> Task:
        """Return a new task with its locale and channel; modes drawn from the seeded generator."""
        rng = self._rng
        locale = _pick(rng, _LOCALES)
        channel = "email" if rng.random() < 0.4 else "chat"
        modes = tuple(m.name for m in V2_MODES if (m.locales is None or locale in m.locales)
                      and rng.random() < m.trigger_share)
        words = [rng.choice(m.topic_words) for m in V2_MODES if m.name in modes]
        category = next((m.input_category for m in V2_MODES
                         if m.name in modes and m.input_category), None)
        category = category or rng.choice(("general", "account", "shipping"))
        topic = " ".join(words) or rng.choice(("login", "newsletter", "opening hours"))
        question = _QUESTION[locale].format(n=task_id, topic=topic)
        return Task(task_id, f"user-{rng.randrange(self.subjects)}", question, category, modes,
                    extra=(("locale", locale), ("channel", channel)))

    def addressed(self, prompt_text: str) -> frozenset[str]:
        """Return the modes a (rendered) prompt carries guidance for, read by meaning."""
        found: set[str] = set()
        for line in prompt_text.splitlines():
            negated = _NEGATED_FRAME.match(line)
            body = line[negated.end():] if negated else line
            for m in V2_MODES:
                assert isinstance(m, MeaningMode)
                if m.name in found:
                    continue
                good = bool(m.good) and re.search(m.good, body, re.I) is not None
                bad = bool(m.bad) and re.search(m.bad, body, re.I) is not None
                if not negated:
                    hit = good or bad
                else:
                    # "Avoid: <the failure>" is guidance; "Avoid: <the right behaviour>"
                    # tells the model the opposite, unless it describes it as missing.
                    hit = bad or (good and _PROBLEM_MARKERS.search(body) is not None)
                if hit:
                    found.add(m.name)
        return frozenset(found)

    def severity_for(self, mode_name: str) -> str:
        """Return the severity a corrector gives a failure of this mode."""
        mode = next(m for m in V2_MODES if m.name == mode_name)
        return mode.severity

    def trigger_probability(self, mode: FailureMode) -> float:
        """Return the share of all tasks that can hit ``mode`` (locale-bound ones included)."""
        assert isinstance(mode, MeaningMode)
        if mode.locales is None:
            return mode.trigger_share
        eligible = sum(w for loc, w in _LOCALES if loc in mode.locales)
        return eligible * mode.trigger_share

    def oracle_text(self, base: str) -> str:
        """Return the base prompt plus a careful instruction for every hidden mode."""
        rules = "\n".join(f"- {m.guidance}" for m in V2_MODES)
        return f"{base}\nRules:\n{rules}\n"

    def correction_for(self, mode_name: str, rng: random.Random) -> tuple[str, str, str]:
        """Return (category, reason, corrected output): messy, multilingual, sometimes noise."""
        mode = next(m for m in V2_MODES if m.name == mode_name)
        x = rng.random()
        if x < self.noise_share:
            return "other", rng.choice(V2_NOISE_REASONS), rng.choice(("ok", "thx", "fine"))
        fixed = f"{SIMULATION_TAG} corrected answer: {mode.fixed_answer}"
        if x < self.noise_share + self.reasonless_share:
            return mode.category, "", fixed
        language = _pick(rng, _CORRECTOR_LANGUAGES)
        pool = {"en": mode.reasons, "de": mode.reasons_de, "es": mode.reasons_es}[language]
        reason = rng.choice(pool)
        if rng.random() < self.typo_share:
            reason = _typo(reason, rng)
        if rng.random() < 0.3:
            reason = f"{reason} {rng.choice(NOISE_WORDS)}"
        return mode.category, reason, fixed


WORLDS: Mapping[str, Callable[..., World]] = MappingProxyType({
    "support-v1": World,
    "support-v2": SupportV2World,
})
DEFAULT_WORLD = "support-v1"
