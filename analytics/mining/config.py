"""Knobs of failure mining, with defaults tuned on the synthetic corpus."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MiningConfig:
    """How records are windowed, featurised, clustered, matched and judged."""

    window_seconds: float = 86_400.0
    n_windows: int = 7
    # Clusters are discovered on at most this many records, then every record is assigned.
    max_fit_sample: int = 5_000
    min_cluster_size: int = 2
    # Cosine distance at which average-linkage stops merging. On the synthetic corpus
    # (8 modes x 3 paraphrase families, filler words, 10% noise; 3 seeds) the adjusted Rand
    # index is >= 0.85 from 0.85 to 0.925 and falls off on both sides (0.8: paraphrase
    # families stay apart, ~0.57; 0.95: different complaints merge, ~0.75).
    distance_threshold: float = 0.9
    # A record joins the nearest cluster only if its centroid is at most this far away
    # (members sit at similarity ~0.35-0.6 from their centroid; ARI flat from 0.65 to 0.8).
    assign_distance: float = 0.7
    max_reason_chars: int = 2_000
    max_example_chars: int = 2_000
    max_examples: int = 3
    n_components: int = 100
    min_df: int = 2
    # Relative weight of the word, char n-gram and category/error-type blocks.
    word_weight: float = 1.0
    char_weight: float = 0.5
    meta_weight: float = 0.25
    label_max_words: int = 4
    n_terms: int = 10
    centroid_terms: int = 50
    # A new cluster inherits a previous pattern's id when their centroids are this similar.
    match_similarity: float = 0.5
    trend_z_threshold: float = 2.0
    anomaly_z_threshold: float = 3.0
    anomaly_min_trailing: int = 3
    # A cluster is noise when fewer of its reasons than this name a concrete problem
    # ("thx", "ok", rants, meeting chatter), or when it is incoherent: no word naming a
    # problem is shared by ``min_coherence`` of the substantive reasons of its main language
    # AND its members' mean similarity to the centroid is below ``min_similarity``. Measured
    # on the support-v2 world: real multilingual clusters >= 0.27 shared / >= 0.48 similar
    # (synonyms keep shared words low), so both must fail.
    min_substantive_share: float = 0.5
    min_coherence: float = 0.25
    min_similarity: float = 0.45
    # Context: a recorded input variable conditions a pattern's guidance when it has at most
    # ``context_max_levels`` values, ``context_min_support`` pattern records carry it, the
    # chi-square test is significant at ``context_alpha`` (Bonferroni over the variables),
    # Cramér's V >= ``context_min_association`` and the chosen values cover
    # ``context_min_coverage`` of the pattern's records.
    context_max_levels: int = 12
    context_min_support: int = 10
    context_alpha: float = 1e-3
    context_min_association: float = 0.3
    context_min_coverage: float = 0.8
    seed: int = 0
    # BLAS threads while mining (None: leave the process setting alone).
    blas_threads: int | None = 1

    def __post_init__(self) -> None:
        positive = {
            "window_seconds": self.window_seconds,
            "n_windows": self.n_windows,
            "max_fit_sample": self.max_fit_sample,
            "min_cluster_size": self.min_cluster_size,
            "max_reason_chars": self.max_reason_chars,
            "max_example_chars": self.max_example_chars,
            "n_components": self.n_components,
            "min_df": self.min_df,
            "label_max_words": self.label_max_words,
            "n_terms": self.n_terms,
            "centroid_terms": self.centroid_terms,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"MiningConfig.{name} must be > 0, got {value!r}")
        for name in ("distance_threshold", "assign_distance"):
            value = getattr(self, name)
            if not 0.0 < value <= 2.0:
                raise ValueError(f"MiningConfig.{name} must be in (0, 2], got {value!r}")
        if not 0.0 < self.match_similarity <= 1.0:
            raise ValueError(f"MiningConfig.match_similarity must be in (0, 1], "
                             f"got {self.match_similarity!r}")
        if self.max_examples < 0 or self.anomaly_min_trailing < 1:
            raise ValueError("MiningConfig.max_examples must be >= 0 and "
                             "anomaly_min_trailing >= 1")
        if self.blas_threads is not None and self.blas_threads < 1:
            raise ValueError(f"MiningConfig.blas_threads must be >= 1 or None, "
                             f"got {self.blas_threads!r}")
        unit = {"min_substantive_share": self.min_substantive_share,
                "min_coherence": self.min_coherence, "min_similarity": self.min_similarity,
                "context_alpha": self.context_alpha,
                "context_min_association": self.context_min_association,
                "context_min_coverage": self.context_min_coverage}
        for name, value in unit.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MiningConfig.{name} must be in [0, 1], got {value!r}")
        if self.context_max_levels < 2 or self.context_min_support < 1:
            raise ValueError("MiningConfig.context_max_levels must be >= 2 and "
                             "context_min_support >= 1")
        if min(self.word_weight, self.char_weight, self.meta_weight) < 0:
            raise ValueError("MiningConfig block weights must be >= 0")

    @property
    def block_weights(self) -> tuple[float, float, float]:
        """Return the (word, char, meta) block weights."""
        return (self.word_weight, self.char_weight, self.meta_weight)

    @property
    def horizon_seconds(self) -> float:
        """Return the span covered by all windows."""
        return self.window_seconds * self.n_windows
