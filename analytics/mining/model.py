"""The data that failure mining takes and gives: plain frozen dataclasses.

This is the contract between ``analytics.mining`` (which produces patterns), ``improver``
(which consumes them) and ``service`` (which stores snapshots in the log as JSON via
``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

RecordKind = Literal["correction", "failure"]
PatternStatus = Literal["new", "growing", "stable", "shrinking", "resolved"]


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One correction or failed execution of a prompt, as mining sees it."""

    record_id: str
    kind: RecordKind
    occurred_at: float  # unix seconds; mining never reads the clock
    version: int
    reason: str = ""  # correction reason, or the failure's error message
    category: str | None = None
    error_type: str | None = None
    severity: float = 1.0
    input_text: str | None = None
    output_text: str | None = None
    corrected_output: str | None = None
    # Input variables of the execution behind the record (name, value), as the agent sent
    # them; the contextual strategy conditions guidance on the ones that separate a pattern.
    variables: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PatternContext:
    """The recorded input variable whose values tell a pattern's records from the rest."""

    variable: str
    values: tuple[str, ...]  # over-represented in the pattern, sorted
    coverage: float  # share of the pattern's records (with the variable) having these values
    association: float  # Cramér's V of pattern membership against the variable
    p_value: float  # chi-square test of independence
    support: int  # pattern records that carry the variable


@dataclass(frozen=True, slots=True)
class ShareWindow:
    """The window shares were computed on: the latest one that had any pattern-able record."""

    start: float  # unix seconds, exclusive
    end: float  # unix seconds, inclusive
    records: int  # corrections and failures with an error type recorded in it
    is_latest: bool  # False when the latest window was empty (traffic stopped)


@dataclass(frozen=True, slots=True)
class PatternExample:
    """A worked example of a pattern: what went in, what came out, what it should have been."""

    input_text: str | None
    output_text: str | None
    corrected_output: str | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Pattern:
    """A recurring failure: a cluster of corrections/failures with its evidence."""

    pattern_id: str
    label: str  # short, from the cluster's distinctive terms
    terms: tuple[str, ...]  # distinctive terms, most distinctive first
    representative_reason: str  # the cluster medoid's reason
    size: int  # records in the cluster (all windows)
    share: float  # records of the pattern / records in the share window (<= 1)
    severity_score: float  # severity-weighted size
    trend_counts: tuple[int, ...]  # records per window, oldest first
    trend_slope: float  # least-squares slope of trend_counts per window
    trend_z: float  # slope / its standard error (0 when undefined)
    status: PatternStatus
    first_seen: float
    last_seen: float
    versions: tuple[int, ...]
    categories: tuple[str, ...]
    error_types: tuple[str, ...] = ()
    examples: tuple[PatternExample, ...] = ()
    centroid: tuple[tuple[str, float], ...] = field(default=())  # sparse term weights
    recent_severity_score: float = 0.0  # severity-weighted size in the latest window (ranking)
    # Clean reviewer feedback to phrase guidance from: (language, reason) per language,
    # the cluster's dominant language first; empty when no reason states a problem.
    statements: tuple[tuple[str, str], ...] = ()
    language: str = ""  # ISO 639-1 code of the dominant language of the reasons ("" unknown)
    noise: str = ""  # why this cluster is noise and gives no guidance ("" when it is not)
    corrections: int = 0  # records that are reviewer corrections (the rest: runtime failures)
    window_records: int = 0  # records of the pattern in the share window
    context: PatternContext | None = None  # the input variable that separates the pattern

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pattern:
        """Rebuild a pattern from ``to_dict`` output (e.g. a ``patterns.mined`` payload)."""
        d = dict(data)
        d["terms"] = tuple(d.get("terms", ()))
        d["trend_counts"] = tuple(d.get("trend_counts", ()))
        d["versions"] = tuple(d.get("versions", ()))
        d["categories"] = tuple(d.get("categories", ()))
        d["error_types"] = tuple(d.get("error_types", ()))
        d["examples"] = tuple(PatternExample(**e) for e in d.get("examples", ()))
        d["centroid"] = tuple((str(t), float(w)) for t, w in d.get("centroid", ()))
        d["statements"] = tuple((str(lang), str(text)) for lang, text in d.get("statements", ()))
        context = d.get("context")
        if context is not None:
            d["context"] = PatternContext(**{**context, "values": tuple(context["values"])})
        return cls(**d)
