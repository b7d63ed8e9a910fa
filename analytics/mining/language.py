"""Which language a short text is in, from its function words (no model, no data files).

Corrections are short, so character-n-gram models guess poorly on them; the function words
("the", "der", "el", "le") of a handful of languages decide instead. Good enough to tell the
languages reviewers actually mix (English with German, Spanish, French, ...) and to say
"unknown" when a text has too few cues.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

UNKNOWN = ""

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def word_set(text: str) -> frozenset[str]:
    """Return the whitespace-separated words of a literal word list."""
    return frozenset(text.split())


# Frequent function words, chosen to overlap little across the languages listed.
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": word_set("""the a an is are was were be been of to in on for with and or not no
        it this that should must have has had do does did but by from at as which when what
        there they you your we our answer reply shows without"""),
    "de": word_set("""der die das den dem des ein eine einen einem einer ist sind war nicht
        kein keine mit und oder zu im auf für von bei sollte muss müssen hat haben wird
        wurde auch noch aber ohne immer bitte sie wir ich antwort"""),
    "es": word_set("""el la los las un una unos es son está están era no con y o de del en
        por para que al se debe debería tiene hay sin muy pero también siempre respuesta
        cliente lo su"""),
    "fr": word_set("""le la les un une des est sont était ne pas avec et ou de du en pour
        que qui au aux doit devrait il elle nous vous sans très mais toujours réponse
        client"""),
    "it": word_set("""il lo la gli le un una è sono era non con e o di del della in per che
        al deve dovrebbe ha hanno senza molto ma sempre risposta cliente"""),
    "pt": word_set("""o a os as um uma é são está estão não com e ou de do da em por para
        que ao deve deveria tem sem muito mas sempre resposta cliente"""),
    "nl": word_set("""de het een is zijn was niet geen met en of van te in op voor bij moet
        moeten heeft hebben wordt zonder altijd maar ook antwoord klant"""),
}
# English has many more short function words than any list above; sklearn's list (minus
# words that are function words elsewhere too: "a", "in", "no", "per", ...) lets short
# English complaints reach two cues.
FUNCTION_WORDS["en"] = FUNCTION_WORDS["en"] | (
    frozenset(ENGLISH_STOP_WORDS)
    - frozenset().union(*(v for k, v in FUNCTION_WORDS.items() if k != "en"))
)
# Letters that only some of the languages use settle ties between close relatives.
_MARKS: dict[str, str] = {"de": "äöüß", "es": "ñ¿¡", "fr": "çèêœ", "pt": "ãõ"}
_MIN_CUES = 2


def words_of(text: str) -> list[str]:
    """Return the lower-cased letter words of a text (NFKC-normalised)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return _WORD.findall(text.lower())


def detect_language(text: str) -> str:
    """Return the ISO 639-1 code of the text's language, or ``UNKNOWN`` with too few cues."""
    words = words_of(text)
    if not words:
        return UNKNOWN
    scores = Counter[str]()
    for language, vocabulary in FUNCTION_WORDS.items():
        scores[language] = sum(1 for w in words if w in vocabulary)
    lower = text.lower()
    for language, marks in _MARKS.items():
        if any(m in lower for m in marks):
            scores[language] += 1
    ranked = scores.most_common()
    best, score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    # One cue can be a loan word ("no", "de"); an even split says nothing either.
    if score < min(_MIN_CUES, len(words)) or score == runner_up:
        return UNKNOWN
    return best


def dominant_language(texts: Iterable[tuple[str, int]]) -> str:
    """Return the most common known language of (text, weight) pairs, or ``UNKNOWN``."""
    totals = Counter[str]()
    for text, weight in texts:
        language = detect_language(text)
        if language != UNKNOWN:
            totals[language] += weight
    if not totals:
        return UNKNOWN
    return min(totals.items(), key=lambda kv: (-kv[1], kv[0]))[0]
