"""Which reasons say something a model can act on, and how to state them cleanly.

Reviewers write "thx", "ok", "k -- as discussed in the weekly sync", rants and typos next to
real complaints. A pattern's statement is the reviewer feedback a prompt will carry, so it is
chosen for clarity (a complete sentence in the cluster's language, with words the cluster
shares, without filler) and a cluster with nothing concrete to say is marked as noise.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from analytics.mining.language import (
    FUNCTION_WORDS,
    UNKNOWN,
    detect_language,
    word_set,
    words_of,
)

# Acknowledgements and placeholders: a reason made only of these names no problem.
GENERIC_WORDS = word_set("""
    thanks thank thx tx ty tyvm cheers ok okay oki kk k fine good great nice cool perfect
    yes yep yeah no nope na none nothing null nil test testing asdf qwerty lol haha xd
    done noted ack acked ping bump see above same wrong bad incorrect error errors fail
    failed failure issue issues problem problems fix fixed fixes broken bug bugs answer
    answers reply replies response responses output outputs result results unsuccessful
    execution unknown misc other stuff thing things whatever meh hmm ugh huh wow pls plz
    please danke bitte gut super genau passt gracias vale bien bueno perfecto merci oui
    grazie bene obrigado obrigada
""")
# Meeting chatter and rants: words about the process or the mood, not about an answer.
CHATTER_WORDS = word_set("""
    discussed discuss discussion meeting meetings sync syncs weekly daily standup stand
    agenda sprint sprints backlog revisit later tomorrow monday friday jira ticket tickets
    quality review reviewed reviewing team lead cc fyi btw imo imho asap eod eta follow
    followup offline slack thread minutes notes useless terrible awful horrible garbage
    rubbish stupid dumb worst sucks crap nonsense ridiculous annoying annoyed frustrating
    seriously honestly literally bot again usual before today minor big urgent
""")
# Discourse fillers. Phrases and interjections go wherever they are; single words that can
# carry meaning mid-sentence ("asked again") only at either end.
_FILLER_PHRASES = (
    "as usual", "as discussed", "please fix", "see ticket", "per qa review", "ticket reviewed",
    "cc support lead", "same as before", "noticed today", "customer complained",
    "big problem", "fyi", "btw", "imo", "imho", "hmm", "ugh", "lol", "!!",
)
_FILLER_EDGE_WORDS = ("honestly", "again", "urgent", "seriously", "minor", "k", "ok", "thx")
_FILLER_ANYWHERE = re.compile(
    r"(?:(?<=\s)|^)(?:" + "|".join(re.escape(p) for p in _FILLER_PHRASES) + r")(?=[\s,.;:!?]|$)",
    re.IGNORECASE,
)
_FILLER_EDGE = re.compile(
    r"^(?:\W*\b(?:" + "|".join(_FILLER_EDGE_WORDS) + r")\b)+\W*|"
    r"(?:\W*\b(?:" + "|".join(_FILLER_EDGE_WORDS) + r")\b)+\W*$",
    re.IGNORECASE,
)
_ASIDE = re.compile(r"\s*[\(\[][^()\[\]]{0,40}[\)\]]\s*$")  # "(ticket reviewed)" at the end
_STOP = frozenset(ENGLISH_STOP_WORDS).union(*FUNCTION_WORDS.values())
_ACKNOWLEDGEMENTS = GENERIC_WORDS | {"n/a", "-", ".", "?", "+1", "👍"}
_MIN_WORDS = 3
_TOKEN = re.compile(r"\w+")


def is_substantive_word(word: str) -> bool:
    """Return whether a lower-cased word names something: no function, generic, chatter word."""
    return len(word) > 1 and word not in _STOP and word not in GENERIC_WORDS \
        and word not in CHATTER_WORDS


def substantive_words(text: str) -> list[str]:
    """Return the words of a text that name something: no function, generic or chatter word."""
    # A contraction counts as its first part: "we'll" is "we", "customer's" is "customer".
    return [w for w in (w.split("'")[0] for w in words_of(text)) if is_substantive_word(w)]


@lru_cache(maxsize=8_192)  # pure; the same reasons are judged several times
def is_substantive(text: str) -> bool:
    """Return whether a reason states a concrete problem (enough words that name things)."""
    found = substantive_words(text)
    return len(found) >= 2 or (len(found) == 1 and len(words_of(text)) >= _MIN_WORDS)


@lru_cache(maxsize=8_192)  # pure; the same reasons are judged several times
def clean_statement(text: str) -> str:
    """Return a reason as one clean sentence: filler and asides trimmed, capitalised, ended."""
    s = " ".join(_FILLER_ANYWHERE.sub(" ", " ".join(text.split())).split())
    for _ in range(4):  # fillers stack ("again ... (ticket reviewed) honestly")
        trimmed = _ASIDE.sub("", _FILLER_EDGE.sub("", s)).strip(" -–—,;:")
        if trimmed == s:
            break
        s = trimmed
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    if not s:
        return ""
    letters = [c for c in s if c.isalpha()]
    if len(letters) > 3 and all(c.isupper() for c in letters):
        s = s.lower()  # a shouted reason reads as a sentence once lower-cased
    s = s[0].upper() + s[1:]
    return s if s[-1] in ".!?…" else s + "."


@lru_cache(maxsize=8_192)  # pure; the same reasons are judged several times
def filler_count(text: str) -> int:
    """Return how many filler phrases or filler words a reason carries, wherever they are."""
    words = words_of(text)
    return len(_FILLER_ANYWHERE.findall(text)) + sum(w in _FILLER_EDGE_WORDS for w in words)


def meaningful_correction(output: str | None, corrected: str | None) -> bool:
    """Return whether a corrected output teaches something: present, not an ack, different."""
    fixed = " ".join((corrected or "").split())
    if not fixed or fixed.lower().strip(" .!") in _ACKNOWLEDGEMENTS:
        return False
    tokens = _TOKEN.findall(fixed.lower())
    if not tokens or all(t in GENERIC_WORDS for t in tokens):
        return False
    before, after = " ".join(_TOKEN.findall((output or "").lower())), " ".join(tokens)
    if not before:
        return True
    # Punctuation and case are not a correction; a changed word or number is.
    if before == after:
        return False
    return difflib.SequenceMatcher(None, before, after, autojunk=False).ratio() < 0.97


@dataclass(frozen=True, slots=True)
class Reason:
    """One distinct reason of a cluster, with what clarity is judged on."""

    text: str
    weight: int  # records with this reason
    similarity: float  # to the cluster centroid
    known_share: tuple[float, ...]  # per content word: share of the cluster's records using it


def _commonness(reason: Reason) -> float:
    # Cosine-like: the words the cluster shares, per square root of the words used, so a
    # reason neither gains by rambling nor loses by saying the complaint in full.
    if not reason.known_share:
        return 0.0
    return sum(reason.known_share) / len(reason.known_share) ** 0.5


@lru_cache(maxsize=8_192)  # pure; the same reasons are judged several times
def statement_language(text: str) -> str:
    """Return the language of a reason once fillers are gone ("per QA review" is not Italian)."""
    return detect_language(clean_statement(text))


_VARIANT_RATIO = 0.9
_VARIANT_PEERS = 10


def _variants(reasons: Sequence[Reason]) -> set[int]:
    """Return the indices of reasons that are a near-copy of a more frequent reason.

    Several reviewers typing one complaint identically do not repeat one's typo, so a
    near-copy of a heavier text is most likely that text misspelt ("that" for "threat").
    """
    heaviest = sorted(range(len(reasons)), key=lambda i: -reasons[i].weight)[:_VARIANT_PEERS]
    lowered = [" ".join(r.text.lower().split()) for r in reasons]
    out = set()
    for i, reason in enumerate(reasons):
        for j in heaviest:
            if reasons[j].weight <= reason.weight or i == j:
                continue
            matcher = difflib.SequenceMatcher(None, lowered[i], lowered[j], autojunk=False)
            if matcher.real_quick_ratio() >= _VARIANT_RATIO and \
                    matcher.quick_ratio() >= _VARIANT_RATIO and matcher.ratio() >= _VARIANT_RATIO:
                out.add(i)
                break
    return out


def _rank_key(reason: Reason, language: str, index: int, variant: bool) -> tuple[float, ...]:
    detected = statement_language(reason.text)
    language_rank = 0 if detected == language else (1 if detected == UNKNOWN else 2)
    rare_words = sum(1 for s in reason.known_share if s == 0.0)
    fillers = filler_count(reason.text)
    shouted = reason.text.upper() == reason.text and any(c.isalpha() for c in reason.text)
    # A text several reviewers wrote identically carries no one's idiosyncratic typo (even a
    # typo that makes another word, "threat" -> "that", which the rare-word test misses).
    return (float(not is_substantive(reason.text)), float(language_rank),
            float(rare_words > 0 or variant), float(reason.weight < 2),
            float(max(fillers, 0)), float(shouted),
            -round(_commonness(reason), 6), -round(reason.similarity, 6), float(index))


def choose_statements(reasons: Sequence[Reason], language: str) -> tuple[tuple[str, str], ...]:
    """Return (language, reason) of the clearest substantive reason per language, uncleaned.

    The cluster's dominant ``language`` comes first, then others by weight; reasons whose
    language is unknown compete (after the ones known to match) in the dominant language's
    group. Within a group the order of preference is: no word the cluster never repeats (a
    typo or a one-off name) and no near-copy of a more frequent text (a typo that makes
    another word) when another phrasing exists, written identically by several
    reviewers, fewer fillers, not shouted, words shared across the cluster, centrality.
    """
    groups: dict[str, list[tuple[int, Reason]]] = {}
    for i, reason in enumerate(reasons):
        if reason.text.strip() and is_substantive(reason.text):
            groups.setdefault(statement_language(reason.text), []).append((i, reason))
    variants = _variants(reasons)
    unknown = groups.pop(UNKNOWN, [])
    if unknown:
        groups.setdefault(language, []).extend(unknown)
    weight = {lang: sum(r.weight for _, r in items) for lang, items in groups.items()}
    order = sorted(groups, key=lambda lang: (lang != language, -weight[lang], lang))
    out = []
    for lang in order:
        best = min(groups[lang],
                   key=lambda item: _rank_key(item[1], lang, item[0], item[0] in variants))
        out.append((lang, best[1].text))
    return tuple(out)


def coherence(reasons: Sequence[Reason]) -> float:
    """Return the share of the main language's substantive reasons using its most shared word.

    Measured within one language (a cluster of English and German phrasings of one complaint
    shares no word across them) and over substantive reasons only (noise and reason-less
    records inside a real cluster are judged elsewhere), weighted by records.
    """
    groups: dict[str, list[Reason]] = {}
    for r in reasons:
        if r.text.strip() and is_substantive(r.text):
            groups.setdefault(statement_language(r.text), []).append(r)
    if not groups:
        return 0.0
    main = max(groups.values(), key=lambda rs: (sum(r.weight for r in rs), len(rs)))
    total = sum(r.weight for r in main)
    uses: dict[str, int] = {}
    for r in main:
        for word in set(substantive_words(r.text)):
            uses[word] = uses.get(word, 0) + r.weight
    return max(uses.values(), default=0) / total


def noise_verdict(reasons: Sequence[Reason], coherence: float, similarity: float, *,
                  min_substantive_share: float, min_coherence: float,
                  min_similarity: float) -> str:
    """Return why a cluster is noise ("" when it states a problem a model can act on).

    Reason-less records do not count either way: a cluster of them (grouped by category)
    has nothing to phrase a rule from, but its corrected outputs may still be examples.
    """
    given = [r for r in reasons if r.text.strip()]
    total = sum(r.weight for r in given)
    if total == 0:
        return ""
    substantive = sum(r.weight for r in given if is_substantive(r.text))
    if substantive / total < min_substantive_share:
        top = sorted(given, key=lambda r: (-r.weight, r.text))[:2]
        quoted = ", ".join(repr(" ".join(r.text.split())[:40]) for r in top)
        words = [w for r in given for w in words_of(r.text)]
        generic = sum(w in GENERIC_WORDS for w in words)
        if words and generic >= sum(w in CHATTER_WORDS for w in words):
            kind = "generic acknowledgements"
        elif words and max(len(words_of(r.text)) for r in given) >= _MIN_WORDS:
            kind = "chatter or rants without a concrete problem"
        else:
            kind = "too short to state a problem"
        return f"{kind} ({quoted}): {substantive}/{total} reasons name a problem"
    # Synonyms ("invented", "made up", "hallucinated") make one complaint share few words, so
    # only a cluster weak on both counts, words and features, is judged incoherent.
    if coherence < min_coherence and similarity < min_similarity:
        return (f"incoherent: its reasons share no word that names a problem (the most shared "
                f"is in {coherence:.0%} of them) and sit far from their centroid (mean "
                f"similarity {similarity:.2f})")
    return ""
