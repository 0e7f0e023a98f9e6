"""Accent- and case-insensitive search of procedure names, the registry's rules adapted to long names.

People type procedure names without diacritics ("giay phep xay dung"), with a plain "d" for
"đ", and often only the words that matter. Both the names and the query are folded to the same
key (NFD, marks dropped, "đ" → "d", case-folded), as the registry folds citizen names.

Ranking (`rank`), highest first; every score is in [0, 1]:

* 1.0 — exact: the query's words are the name's words.
* [0.8, 1.0) — phrase: the query's words start consecutive words of the name, in order
  ("giay phep xay dung" → "Cấp giấy phép xây dựng mới ...").
* [0.6, 0.8) — in order: each query word starts a different word of the name, in the query's order.
* [0.3, 0.5] — any order: each query word starts a different word of the name.
* 0.0 — no match: some query word starts no (remaining) word of the name.

Within a band the score grows with the share of the name's letters the query covers, so of two
names holding the phrase the shorter (more specific) one comes first. The share is below 1 unless
the match is exact, so bands never overlap.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

EXACT_SCORE = 1.0
PHRASE_BASE = 0.8
IN_ORDER_BASE = 0.6
ANY_ORDER_BASE = 0.3
COVERAGE_WEIGHT = 0.2  # no larger than the gap between two bands

_WORD = re.compile(r"\w+")
# Characters that render as nothing; a name or query holding them must still match.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def fold(text: str) -> str:
    """`text` folded for matching: no accents, "đ" → "d", case-folded, single spaces."""
    decomposed = unicodedata.normalize("NFD", text.translate(_INVISIBLE))
    # "đ" is a letter of its own, not "d" plus a mark, so NFD leaves it alone.
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().replace("đ", "d").split())


def search_terms(text: str) -> tuple[str, ...]:
    """The folded words of `text`; punctuation such as "-", "(" or "/" separates words."""
    return tuple(_WORD.findall(fold(text)))


@lru_cache(maxsize=8192)
def _name_terms(name: str) -> tuple[tuple[str, ...], str]:
    """The folded words of a name, and " word word ..." for a quick substring pre-check. The
    catalogue holds a few thousand names: each is folded once, not once per search."""
    terms = search_terms(name)
    return terms, " " + " ".join(terms)


def rank(query_terms: Sequence[str], name: str) -> float:
    """How well the procedure `name` matches `query_terms` (from `search_terms`); see the module doc."""
    name_terms, spaced = _name_terms(name)
    query = tuple(query_terms)
    # Every query word must start some word of the name: most names fail this cheap test.
    if not query or not name_terms or not all(" " + term in spaced for term in query):
        return 0.0
    if query == name_terms:
        return EXACT_SCORE
    coverage = sum(map(len, query)) / sum(map(len, name_terms))
    if _phrase(query, name_terms):
        return PHRASE_BASE + COVERAGE_WEIGHT * min(coverage, 0.999)
    if _prefixes_in_order(query, name_terms):
        return IN_ORDER_BASE + COVERAGE_WEIGHT * min(coverage, 0.999)
    if _prefixes_any_order(query, name_terms):
        return ANY_ORDER_BASE + COVERAGE_WEIGHT * coverage
    return 0.0


def _phrase(query: Sequence[str], name: Sequence[str]) -> bool:
    width = len(query)
    return any(
        all(word.startswith(term) for word, term in zip(name[start : start + width], query, strict=True))
        for start in range(len(name) - width + 1)
    )


def _prefixes_in_order(query: Sequence[str], name: Sequence[str]) -> bool:
    # Matching each query word to the earliest fitting name word is optimal: an earlier pick
    # leaves at least as many name words for the rest.
    remaining = iter(name)
    return all(any(word.startswith(term) for word in remaining) for term in query)


def _prefixes_any_order(query: Sequence[str], name: Sequence[str]) -> bool:
    # Two query words that both start one name word are prefixes of each other, so serving the
    # longest query words first always finds a perfect matching when there is one.
    free = list(name)
    for term in sorted(query, key=len, reverse=True):
        match = next((i for i, word in enumerate(free) if word.startswith(term)), None)
        if match is None:
            return False
        free.pop(match)
    return True
