"""Accent- and case-insensitive name search for Vietnamese text.

Users type names without diacritics ("nguyen van an") or with a plain "d" for "đ"; the
registry folds both the stored names and the query to the same search key.

Ranking rule (`rank`), highest first; every score is in [0, 1]:

* 1.0 — exact: the query's words are the candidate's words, in order.
* [0.6, 0.8) — in order: each query word is the prefix of a different candidate word, and
  those candidate words appear in the query's order ("ng an" → "Nguyễn Văn An").
* [0.3, 0.5] — any order: each query word is the prefix of a different candidate word
  ("an nguyen" → "Nguyễn Văn An").
* 0.0 — no match: some query word prefixes no (remaining) candidate word, or the query is empty.

Within a band, the score grows with the share of the candidate's letters the query
covers, so "nguyen van an" puts "Nguyễn Văn An" above "Nguyễn Văn An Bình". That share
is below 1 for any in-order match that is not exact, so bands never overlap: a tighter
match of a lower band never outranks a looser match of a higher one.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

from services.registry.domain.names import CACHED_TEXTS, strip_zero_width

EXACT_SCORE = 1.0
IN_ORDER_BASE = 0.6
ANY_ORDER_BASE = 0.3
COVERAGE_WEIGHT = 0.2  # no larger than the gap between two bands

_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=CACHED_TEXTS)  # names repeat; bulk imports fold each distinct one once
def search_key(text: str) -> str:
    """`text` folded for matching: no accents, "đ" → "d", lower case, single spaces."""
    decomposed = unicodedata.normalize("NFD", strip_zero_width(text))
    # "đ" is a letter of its own, not "d" plus a mark, so NFD leaves it alone.
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = bare.casefold().replace("đ", "d")
    return " ".join(folded.split())


def search_terms(query: str) -> list[str]:
    """The folded words of `query`; punctuation such as "-" or "'" separates words."""
    return _WORD.findall(search_key(query))


def rank(query_terms: Sequence[str], candidate_name: str) -> float:
    """How well `candidate_name` matches `query_terms` (from `search_terms`); see the module doc."""
    candidate_terms = search_terms(candidate_name)
    if not query_terms or not candidate_terms:
        return 0.0
    if list(query_terms) == candidate_terms:
        return EXACT_SCORE
    coverage = sum(map(len, query_terms)) / sum(map(len, candidate_terms))
    if _prefixes_in_order(query_terms, candidate_terms):
        return IN_ORDER_BASE + COVERAGE_WEIGHT * coverage
    if _prefixes_any_order(query_terms, candidate_terms):
        return ANY_ORDER_BASE + COVERAGE_WEIGHT * coverage
    return 0.0


def _prefixes_in_order(query_terms: Sequence[str], candidate_terms: Sequence[str]) -> bool:
    # Matching each query word to the earliest fitting candidate word is optimal: an
    # earlier pick leaves at least as many candidate words for the rest.
    remaining = iter(candidate_terms)
    return all(any(word.startswith(term) for word in remaining) for term in query_terms)


def _prefixes_any_order(query_terms: Sequence[str], candidate_terms: Sequence[str]) -> bool:
    # Two query words that both prefix one candidate word are prefixes of each other, so
    # the sets of words each query word can take are nested or disjoint. Serving the
    # longest (most constrained) query words first is then always a perfect matching.
    free = list(candidate_terms)
    for term in sorted(query_terms, key=len, reverse=True):
        match = next((i for i, word in enumerate(free) if word.startswith(term)), None)
        if match is None:
            return False
        free.pop(match)
    return True
