"""Which recorded input variable tells a pattern's records apart from the rest.

For each categorical variable the agents send (few distinct values), a chi-square test of
independence on the 2 x L table (in the pattern or not, by value) measures how strongly the
variable separates the pattern; Cramér's V is the effect size, so variables with different
numbers of values compare fairly. The winner must be significant after Bonferroni over the
variables tried, strong, supported by enough records, and its over-represented values must
cover most of the pattern, or guidance shown only for them would miss the pattern's cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from analytics.mining.model import PatternContext

Variables = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ContextRules:
    """When a variable is allowed to condition a pattern's guidance."""

    max_levels: int = 12  # more distinct values than this: an identifier, not a category
    min_support: int = 10  # pattern records that carry the variable
    alpha: float = 1e-3  # family-wise, split over the variables tried
    min_association: float = 0.3  # Cramér's V
    min_coverage: float = 0.8  # share of the pattern's records the chosen values cover


@dataclass(frozen=True, slots=True, eq=False)
class _Coded:
    name: str
    codes: np.ndarray  # per record: value index, or -1 when the record lacks the variable
    values: tuple[str, ...]


def encode_variables(variables: Sequence[Variables], rules: ContextRules) -> list[_Coded]:
    """Return each low-cardinality variable as integer codes per record (names sorted)."""
    columns: dict[str, dict[int, str]] = {}
    for i, pairs in enumerate(variables):
        for name, value in pairs:
            columns.setdefault(str(name), {})[i] = str(value)
    coded = []
    for name in sorted(columns):
        present = columns[name]
        values = tuple(sorted(set(present.values())))
        if not 2 <= len(values) <= rules.max_levels:
            continue
        index = {v: j for j, v in enumerate(values)}
        codes = np.full(len(variables), -1, dtype=np.int64)
        for i, value in present.items():
            codes[i] = index[value]
        coded.append(_Coded(name, codes, values))
    return coded


def best_context(members: np.ndarray, coded: Sequence[_Coded],
                 rules: ContextRules) -> PatternContext | None:
    """Return the variable and values that best separate the records at ``members``, or None."""
    if not coded or len(members) < rules.min_support:
        return None
    inside = np.zeros(len(coded[0].codes), dtype=bool)
    inside[members] = True
    alpha = rules.alpha / len(coded)
    best: PatternContext | None = None
    for column in coded:
        found = _test(column, inside, alpha, rules)
        if found is not None and (best is None or found.association > best.association):
            best = found
    return best


def _test(column: _Coded, inside: np.ndarray, alpha: float,
          rules: ContextRules) -> PatternContext | None:
    known = column.codes >= 0
    levels = len(column.values)
    table = np.stack([np.bincount(column.codes[known & inside], minlength=levels),
                      np.bincount(column.codes[known & ~inside], minlength=levels)])
    table = table[:, table.sum(axis=0) > 0]
    n_in, n_out = int(table[0].sum()), int(table[1].sum())
    if n_in < rules.min_support or n_out == 0 or table.shape[1] < 2:
        return None
    n = n_in + n_out
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    statistic = float(((table - expected) ** 2 / expected).sum())
    p_value = float(chi2.sf(statistic, df=table.shape[1] - 1))
    association = math.sqrt(statistic / n)  # Cramér's V of a 2 x L table
    if p_value >= alpha or association < rules.min_association:
        return None
    # Values where the pattern is over-represented, most of its records first.
    seen = np.flatnonzero(np.bincount(column.codes[known], minlength=levels) > 0)
    share_in, share_out = table[0] / n_in, table[1] / n_out
    chosen = sorted((j for j in range(table.shape[1]) if share_in[j] > share_out[j]),
                    key=lambda j: (-table[0, j], j))
    coverage = float(share_in[chosen].sum()) if chosen else 0.0
    if coverage < rules.min_coverage:
        return None
    return PatternContext(
        variable=column.name,
        values=tuple(sorted(column.values[int(seen[j])] for j in chosen)),
        coverage=round(coverage, 6),
        association=round(association, 6),
        p_value=p_value,
        support=n_in,
    )
