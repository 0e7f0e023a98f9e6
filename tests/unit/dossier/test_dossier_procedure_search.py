"""Ranking of the procedure-name search: accents, case and "đ" ignored; exact, then phrase, then
words in order, then in any order; the more of the name the query covers, the higher."""

from __future__ import annotations

import pytest

from services.dossier.domain.procedure_search import rank, search_terms

NAMES = [
    "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
    "Cấp giấy phép xây dựng",
    "Xây dựng kế hoạch cấp giấy phép",
    "Đăng ký kết hôn",
    "Đăng ký kết hôn có yếu tố nước ngoài",
]


def ranked(query: str) -> list[str]:
    terms = search_terms(query)
    scored = [(rank(terms, name), name) for name in NAMES]
    return [name for score, name in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]


def test_accents_case_and_the_letter_d_are_ignored() -> None:
    assert ranked("DANG KY KET HON") == ranked("đăng ký kết hôn") == ["Đăng ký kết hôn", NAMES[4]]
    assert search_terms("Gi\u200bấy phép (cấp lại)") == ("giay", "phep", "cap", "lai")


def test_the_exact_name_beats_the_phrase_which_beats_scattered_words() -> None:
    assert ranked("cap giay phep xay dung") == [NAMES[1], NAMES[0], NAMES[2]]
    assert rank(search_terms("cap giay phep xay dung"), NAMES[1]) == 1.0


def test_a_shorter_name_holding_the_phrase_comes_first() -> None:
    assert ranked("giay phep xay") == [NAMES[1], NAMES[0], NAMES[2]]


@pytest.mark.parametrize("query", ["", "   ", "-- ()", "khai sinh", "giay phep lai xe"])
def test_a_query_with_a_word_no_name_starts_with_matches_nothing(query: str) -> None:
    assert ranked(query) == []


def test_every_score_is_between_zero_and_one_and_only_the_exact_name_scores_one() -> None:
    for query in ("cap", "giay phep", "xay dung cap", "dang ky ket hon", "phep giay"):
        for name in NAMES:
            score = rank(search_terms(query), name)
            assert 0.0 <= score <= 1.0
            assert (score == 1.0) == (search_terms(query) == search_terms(name))
