"""A seeded generator of realistic correction corpora with known failure modes.

Shipped (like ``structlog.testing``) so that tests, benchmarks and demos of every room can
exercise mining on data whose truth is known, without mocks. Each mode is written in
several paraphrase families that share a key term or two but little else, decorated with
noise words shared across modes; unrelated one-off complaints are mixed in as noise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.mining.model import FailureRecord

NOISE_LABEL = -1


@dataclass(frozen=True, slots=True)
class FailureMode:
    """One known way a prompt fails: paraphrase families of templates and its key terms."""

    name: str
    key_terms: tuple[str, ...]
    families: tuple[tuple[str, ...], ...]  # each family: templates that say it the same way
    category: str | None = None
    kind: str = "correction"
    error_type: str | None = None
    severity: float = 1.0


@dataclass(frozen=True, slots=True)
class SyntheticCorpus:
    """Generated records with the index of each record's true mode (``NOISE_LABEL`` for noise)."""

    records: tuple[FailureRecord, ...]
    truth: tuple[int, ...]
    modes: tuple[FailureMode, ...]


_SLOTS: dict[str, tuple[str, ...]] = {
    "bad_date": ("03/04/2024", "4 March 2024", "March 4th", "04-03-24", "4.3.2024"),
    "good_date": ("2024-03-04", "ISO 8601"),
    "lang": ("Spanish", "German", "French", "Portuguese", "Italian"),
    "words": ("80", "100", "120", "150"),
    "sentences": ("two", "three", "four"),
    "order": ("A-1043", "#88211", "ORD-5590", "77-301", "B9X2"),
    "days": ("14", "30", "60"),
    "line": ("1", "2", "3", "7", "12"),
    "col": ("1", "5", "17", "42", "88"),
    "secs": ("10", "30", "60", "120"),
    "tool": ("search", "crm lookup", "billing", "inventory"),
}

DEFAULT_MODES: tuple[FailureMode, ...] = (
    FailureMode(
        name="date_format",
        key_terms=("date", "iso", "format"),
        category="formatting",
        families=(
            ("the date should be in ISO format like {good_date}",
             "dates must follow ISO 8601, e.g. {good_date}"),
            ("wrong date format, it wrote {bad_date} instead of {good_date}",
             "date format is wrong: {bad_date}"),
            ("use YYYY-MM-DD for every date, not {bad_date}",
             "write the date as YYYY-MM-DD please, got {bad_date}"),
        ),
    ),
    FailureMode(
        name="wrong_language",
        key_terms=("language", "english"),
        category="language",
        severity=2.0,
        families=(
            ("answered in English although the customer wrote in {lang}",
             "customer wrote in {lang} but the answer came back in English"),
            ("reply must be in the customer's language ({lang}), not English",
             "the reply language must match the customer: {lang}"),
            ("wrong language: a {lang} ticket got an English answer",
             "language mismatch, {lang} message answered in English"),
        ),
    ),
    FailureMode(
        name="too_long",
        key_terms=("long", "verbose", "concise", "words"),
        category="style",
        families=(
            ("response is way too long, keep it under {words} words",
             "answer far too long; under {words} words please"),
            ("too verbose and long-winded, the answer should be concise",
             "verbose answer, be concise and get to the point"),
            ("far too long an answer, cut it to {sentences} sentences",
             "the answer is too long, {sentences} sentences max"),
        ),
    ),
    FailureMode(
        name="invented_order",
        key_terms=("order", "invented", "hallucinated"),
        category="accuracy",
        severity=3.0,
        families=(
            ("invented an order number that does not exist ({order})",
             "made up order number {order}, it does not exist"),
            ("hallucinated order id {order}, there is no such order",
             "order id {order} is hallucinated"),
            ("the order {order} it quoted was invented, we never had it",
             "quoted order {order} was invented by the model"),
        ),
    ),
    FailureMode(
        name="refund_policy",
        key_terms=("refund", "policy"),
        category="accuracy",
        severity=3.0,
        families=(
            ("promised a refund outside the {days}-day refund window",
             "refund promised after the {days} day window"),
            ("refund policy misquoted: refunds only within {days} days",
             "misquoted our refund policy ({days} days)"),
            ("offered a full refund which our policy does not allow",
             "a full refund is against policy for this case"),
        ),
    ),
    FailureMode(
        name="rude_tone",
        key_terms=("tone", "rude", "polite"),
        category="style",
        families=(
            ("tone is rude and dismissive toward the customer",
             "rude, dismissive tone with the customer"),
            ("sounds condescending, the tone should be friendly and polite",
             "condescending tone, be polite and friendly"),
            ("rude reply: told the user to read the manual",
             "rude answer telling the user to go read the manual"),
        ),
    ),
    FailureMode(
        name="invalid_json",
        key_terms=("json", "delimiter", "line", "column"),
        kind="failure",
        error_type="JSONDecodeError",
        severity=2.0,
        families=(
            ("Expecting ',' delimiter: line {line} column {col}",
             "JSONDecodeError: Expecting ',' delimiter: line {line} column {col}"),
            ("output is not valid JSON: unterminated string at line {line} column {col}",
             "invalid JSON output, unterminated string starting at line {line}"),
            ("invalid JSON: extra data at line {line} column {col}",
             "could not parse JSON, extra data: line {line} column {col}"),
        ),
    ),
    FailureMode(
        name="tool_timeout",
        key_terms=("timeout", "timed", "tool"),
        kind="failure",
        error_type="TimeoutError",
        families=(
            ("upstream request to the {tool} tool timed out after {secs}s",
             "{tool} tool call timed out ({secs} s)"),
            ("TimeoutError: {tool} tool exceeded the {secs} second timeout",
             "tool timeout: {tool} took longer than {secs} seconds"),
            ("read timeout while calling the {tool} tool",
             "timeout reading from {tool} tool"),
        ),
    ),
)

# Words a busy reviewer sprinkles everywhere: shared across modes so they must not drive
# the clustering.
_FILLERS = (
    "again", "please fix", "fyi", "hmm", "as usual", "urgent", "see ticket", "ugh",
    "customer complained", "noticed today", "same as before", "btw", "!!", "seriously",
    "cc support lead", "per QA review", "minor", "big problem",
)

# Vocabulary for unrelated one-off complaints: everyday words that no mode is about.
_NOISE_WORDS = (
    "weather", "widget", "flicker", "banner", "logo", "colour", "font", "spacing", "avatar",
    "sidebar", "footer", "header", "cookie", "consent", "popup", "newsletter", "coupon",
    "loyalty", "points", "birthday", "greeting", "emoji", "sticker", "podcast", "playlist",
    "volume", "shuffle", "lyrics", "karaoke", "camera", "flash", "tripod", "lens", "zoom",
    "sunset", "garden", "tomato", "basil", "compost", "shovel", "ladder", "roof", "gutter",
    "chimney", "brick", "fence", "paint", "brush", "bicycle", "helmet", "saddle", "pedal",
    "chain", "gear", "tyre", "pump", "marathon", "stretch", "yoga", "mat", "towel", "bottle",
    "piano", "violin", "guitar", "chord", "tempo", "rhythm", "melody", "drum", "orchestra",
    "concert", "stage", "recipe", "oven", "flour", "sugar", "butter", "cinnamon",
    "pancake", "waffle", "syrup", "breakfast", "lunch", "dinner", "train", "platform", "delay",
    "carriage", "luggage", "passport", "visa", "airport", "runway", "pilot", "cabin",
    "umbrella", "raincoat", "boots", "scarf", "gloves", "jacket", "button", "zipper", "pocket",
    "sleeve", "kitten", "puppy", "leash", "collar", "treat", "vet", "aquarium",
    "goldfish", "hamster", "parrot", "cage", "feather", "chess", "knight", "bishop", "castle",
    "pawn", "checkmate", "puzzle", "crossword", "riddle", "sudoku", "trivia", "quiz", "galaxy",
    "comet", "orbit", "telescope", "planet", "asteroid", "nebula", "meteor", "eclipse",
    "satellite", "rocket",
)


def generate_corpus(
    *,
    seed: int,
    n_records: int,
    now: float,
    window_seconds: float = 86_400.0,
    n_windows: int = 7,
    noise_fraction: float = 0.1,
    modes: Sequence[FailureMode] = DEFAULT_MODES,
    mode_weights: Sequence[float] | None = None,
    versions: Sequence[int] = (1, 2),
    id_prefix: str = "r",
    rare_words: int = 0,
) -> SyntheticCorpus:
    """Return ``n_records`` records spread over the windows before ``now``, with their truth.

    ``rare_words``: size of a vocabulary of made-up words (names, product codes, typos) of
    which each reason gets 0-3, Zipf-distributed, as real text has; 0 adds none.
    """
    if n_records < 0:
        raise ValueError(f"n_records must be >= 0, got {n_records}")
    if not 0.0 <= noise_fraction <= 1.0:
        raise ValueError(f"noise_fraction must be in [0, 1], got {noise_fraction}")
    rng = np.random.default_rng(seed)
    weights = np.ones(len(modes)) if mode_weights is None else np.asarray(mode_weights, float)
    weights = weights / weights.sum()
    n_noise = round(n_records * noise_fraction)
    truth = np.concatenate(
        [rng.choice(len(modes), size=n_records - n_noise, p=weights),
         np.full(n_noise, NOISE_LABEL)]
    ).astype(int)
    rng.shuffle(truth)
    horizon = window_seconds * n_windows
    times = now - rng.uniform(0.0, horizon, size=n_records)
    lexicon = _made_up_words(rng, rare_words)
    records = []
    for i, label in enumerate(truth):
        rid = f"{id_prefix}{i}"
        version = int(versions[rng.integers(len(versions))])
        if label == NOISE_LABEL:
            records.append(_noise_record(rng, rid, float(times[i]), version, modes))
        else:
            records.append(_mode_record(rng, modes[label], rid, float(times[i]), version))
        if lexicon:
            extra = np.minimum(rng.zipf(1.3, size=int(rng.integers(0, 4))), len(lexicon)) - 1
            words = records[-1].reason.split()
            for j in extra:
                words.insert(int(rng.integers(0, len(words) + 1)), lexicon[j])
            records[-1] = dataclasses.replace(records[-1], reason=" ".join(words))
    return SyntheticCorpus(records=tuple(records), truth=tuple(int(t) for t in truth),
                           modes=tuple(modes))


def _mode_record(
    rng: np.random.Generator, mode: FailureMode, rid: str, at: float, version: int
) -> FailureRecord:
    family = mode.families[rng.integers(len(mode.families))]
    text = family[rng.integers(len(family))]
    for slot, options in _SLOTS.items():
        token = "{" + slot + "}"
        while token in text:
            text = text.replace(token, options[rng.integers(len(options))], 1)
    text = _decorate(rng, text)
    is_failure = mode.kind == "failure"
    return FailureRecord(
        record_id=rid,
        kind="failure" if is_failure else "correction",
        occurred_at=at,
        version=version,
        reason=text,
        category=mode.category,
        error_type=mode.error_type,
        severity=mode.severity,
        input_text=f"ticket {rid}: customer message",
        output_text=None if is_failure else f"agent answer to {rid}",
        corrected_output=None if is_failure else f"corrected answer to {rid}",
    )


def _noise_record(
    rng: np.random.Generator, rid: str, at: float, version: int, modes: Sequence[FailureMode]
) -> FailureRecord:
    n_words = int(rng.integers(5, 10))
    words = [_NOISE_WORDS[j] for j in rng.choice(len(_NOISE_WORDS), n_words, replace=False)]
    categories = [m.category for m in modes] + [None, "other"]
    return FailureRecord(
        record_id=rid,
        kind="correction",
        occurred_at=at,
        version=version,
        reason=_decorate(rng, " ".join(words)),
        category=categories[rng.integers(len(categories))],
        severity=1.0,
        input_text=f"ticket {rid}",
        output_text=f"agent answer to {rid}",
        corrected_output=f"corrected answer to {rid}",
    )


def _made_up_words(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=int(rng.integers(4, 10)))) for _ in range(n)]


def _decorate(rng: np.random.Generator, text: str) -> str:
    """Add 0-3 filler phrases at random places and sometimes shout, like real reviewers."""
    words = text.split()
    for _ in range(int(rng.integers(0, 4))):
        words.insert(int(rng.integers(0, len(words) + 1)), _FILLERS[rng.integers(len(_FILLERS))])
    out = " ".join(words)
    if rng.random() < 0.1:
        out = out.upper()
    elif rng.random() < 0.3:
        out = out[:1].upper() + out[1:]
    return out
