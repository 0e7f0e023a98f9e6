"""Free-text fields (person names, business names, street lines): how they are stored.

Stored text is NFC with zero-width characters removed and whitespace collapsed, so that
the same name typed on two keyboards (precomposed vs combining diacritics, a stray
zero-width joiner from a copy-paste) is stored, compared and indexed identically.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from services.registry.domain.checked import Checked, bad, good

CITIZEN_NAME_MAX_LENGTH = 100
BUSINESS_NAME_MAX_LENGTH = 300
STREET_MAX_LENGTH = 200

# U+200B ZERO WIDTH SPACE, U+200C ZWNJ, U+200D ZWJ, U+FEFF BYTE ORDER MARK / ZWNBSP.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"))
# In a str pattern \d is any Unicode decimal digit: category Nd.
_DIGIT = re.compile(r"\d")
# Names and street lines repeat (a city has a few thousand common full names): bulk imports check
# each distinct text once. The checks are pure and their results immutable. 8,192 entries cover
# the common names. At 65,536 entries the three caches (these two and search_key) took about
# 70 MiB once full, and ordinary registrations fill them: the registry's RSS grew 25 % in the
# one-hour soak.
CACHED_TEXTS = 1 << 13


def strip_zero_width(text: str) -> str:
    return text.translate(_ZERO_WIDTH)


def normalise_text(text: str) -> str:
    """Zero-width characters removed, NFC, runs of whitespace turned into one space, trimmed."""
    # Zero-width characters go first: one between a letter and its combining mark would
    # otherwise stop NFC from composing them.
    composed = unicodedata.normalize("NFC", strip_zero_width(text))
    return " ".join(composed.split())


def has_invisible_characters(text: str) -> bool:
    """Control, format, private-use, surrogate or unassigned code points (Unicode category C*)."""
    # str.isprintable() is False for every C* character (and for separators other than the
    # space): when it holds, no character need be looked at one by one.
    if text.isprintable():
        return False
    return any(unicodedata.category(ch).startswith("C") for ch in text)


def has_digits(text: str) -> bool:
    return _DIGIT.search(text) is not None


@functools.lru_cache(maxsize=CACHED_TEXTS)
def parse_citizen_name(raw: str, field: str = "full_name") -> Checked[str]:
    """A person's full name: required, no digits, at most 100 characters after normalising."""
    name = normalise_text(raw)
    problem = _text_problem(name, CITIZEN_NAME_MAX_LENGTH, what="full name")
    if problem is None and has_digits(name):
        problem = "a person's name cannot contain digits"
    return bad(field, problem) if problem else good(name)


def parse_business_name(raw: str, field: str = "name") -> Checked[str]:
    """A business name: required, digits allowed, at most 300 characters after normalising."""
    name = normalise_text(raw)
    problem = _text_problem(name, BUSINESS_NAME_MAX_LENGTH, what="business name")
    return bad(field, problem) if problem else good(name)


@functools.lru_cache(maxsize=CACHED_TEXTS)
def parse_street(raw: str, field: str = "address.street") -> Checked[str]:
    """A street line (house number, street, hamlet): required, at most 200 characters."""
    street = normalise_text(raw)
    problem = _text_problem(street, STREET_MAX_LENGTH, what="street line")
    return bad(field, problem) if problem else good(street)


def _text_problem(text: str, max_length: int, what: str) -> str | None:
    if not text:
        return f"{what} is required"
    if len(text) > max_length:
        return f"{what} is {len(text)} characters long; the limit is {max_length}"
    if has_invisible_characters(text):
        return f"{what} contains control or invisible characters"
    return None
