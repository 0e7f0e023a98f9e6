import unicodedata

import pytest

from services.registry.domain import rank, search_key, search_terms


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Nguyễn Văn An", "nguyen van an"),
        ("TRẦN THỊ BÍCH NGỌC", "tran thi bich ngoc"),
        ("Lê Hữu Đức", "le huu duc"),
        ("Phạm Minh Chính", "pham minh chinh"),
        ("Hoàng Thị Thuỷ", "hoang thi thuy"),
        ("Huỳnh Tấn Phát", "huynh tan phat"),
        ("Đặng Thùy Trâm", "dang thuy tram"),
        ("ĐỖ MƯỜI", "do muoi"),
        ("Ưng Hoàng Phúc", "ung hoang phuc"),
    ],
)
def test_accents_case_and_d_stroke_are_folded(name: str, key: str) -> None:
    assert search_key(name) == key


def test_nfd_input_folds_like_nfc_input() -> None:
    nfd = unicodedata.normalize("NFD", "Nguyễn Đình Chiểu")
    assert search_key(nfd) == search_key("Nguyễn Đình Chiểu") == "nguyen dinh chieu"


def test_zero_width_characters_and_extra_spaces_do_not_matter() -> None:
    assert search_key("\ufeff Trần\u200b   Hưng\u200dĐạo ") == "tran hungdao"


def test_plain_d_matches_d_stroke() -> None:
    assert search_key("d") == search_key("đ") == search_key("Đ")


def test_search_terms_split_on_spaces_and_punctuation() -> None:
    assert search_terms("  Bà Rịa - Vũng Tàu ") == ["ba", "ria", "vung", "tau"]
    assert search_terms("H'Hen Niê") == ["h", "hen", "nie"]
    assert search_terms("   ") == []


NAME = "Nguyễn Văn An"


def test_unaccented_query_matches_exactly() -> None:
    assert rank(search_terms("nguyen van an"), NAME) == 1.0
    assert rank(search_terms("NGUYỄN VĂN AN"), NAME) == 1.0


def test_exact_beats_prefix_in_order_beats_any_order_beats_no_match() -> None:
    exact = rank(search_terms("nguyen van an"), NAME)
    in_order = rank(search_terms("nguyen an"), NAME)
    any_order = rank(search_terms("an nguyen"), NAME)
    none = rank(search_terms("nguyen binh"), NAME)
    assert exact > in_order > any_order > none == 0.0


def test_prefixes_of_words_match() -> None:
    assert rank(search_terms("ng v a"), NAME) > 0.0
    assert rank(search_terms("guyen"), NAME) == 0.0


def test_a_longer_name_ranks_below_the_exact_one() -> None:
    query = search_terms("nguyen van an")
    assert rank(query, "Nguyễn Văn An") > rank(query, "Nguyễn Văn An Bình") > 0.0


def test_a_tight_any_order_match_never_beats_a_loose_in_order_match() -> None:
    loose_in_order = rank(search_terms("n"), "Nguyễn Văn An Bình Minh Thành")
    full_any_order = rank(search_terms("an van nguyen"), NAME)
    assert loose_in_order > full_any_order


def test_each_query_word_needs_its_own_name_word() -> None:
    assert rank(search_terms("an an"), NAME) == 0.0
    assert rank(search_terms("an an"), "Lê An Anh") > 0.0


def test_any_order_matching_does_not_let_a_short_word_steal_a_long_words_match() -> None:
    # "t" could take "thanh" and leave only "tu" for "tha"; giving "tha" first pick works.
    score = rank(search_terms("t tha"), "Thanh Tú")
    assert 0.3 <= score < 0.6


def test_empty_query_or_name_matches_nothing() -> None:
    assert rank([], NAME) == 0.0
    assert rank(search_terms("an"), "   ") == 0.0
