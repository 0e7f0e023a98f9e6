"""Lays out an apology letter (Form 04, Circular 01/2018/TT-VPCP) as a PDF with fpdf2.

The font must cover Vietnamese: DejaVu Sans (Debian `fonts-dejavu-core`) is embedded as a subset.
`DOSSIER_APOLOGY_FONT_DIR` names another directory holding DejaVuSans.ttf and DejaVuSans-Bold.ttf.

fpdf2 parses the whole font file for every document, and DejaVu Sans has about 6,000 glyphs:
that parse was 55 % of a letter's time in a soak profile. So each process cuts the two faces
down once to the Latin and Vietnamese letters and punctuation (`LETTER_CHARACTERS`) and lays
out letters with those; a letter that needs a character outside them is laid out again with
the full faces, so no letter loses a glyph.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from datetime import UTC, datetime, time
from pathlib import Path

from fontTools import subset as font_subset
from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import TTFFont

from kit.deadlines.calendar import LOCAL_TIME
from services.dossier.domain.apology import FORM_LABEL, ApologyLetterContent

FONT_DIR_VARIABLE = "DOSSIER_APOLOGY_FONT_DIR"
DEFAULT_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
REGULAR, BOLD = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"
FAMILY = "DejaVu"
TITLE = "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
SIGNER_TITLE = "THỦ TRƯỞNG CƠ QUAN"
SIGNER_NOTE = "(Ký số bằng chữ ký số của cơ quan)"
# The issuing body's column is wide enough for "ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH" on one line.
LEFT_WIDTH, GAP = 84.0, 3.0
HEADER_SIZES = (10.0, 9.5, 9.0, 8.5, 8.0)
LINE = 6.0
# What Vietnamese writing and these letters use: Basic Latin, Latin-1, the Vietnamese letters
# outside them (Ă ă Đ đ Ĩ ĩ Ũ ũ Ơ ơ Ư ư and the precomposed tones, U+1EA0-U+1EF9), dashes, quotes,
# the ellipsis and the dong sign. Fewer glyphs, less to parse per letter; anything else is rare
# and gets the full faces.
LETTER_CHARACTERS = (
    *range(0x20, 0x7F),
    *range(0xA0, 0x100),
    *(ord(c) for c in "ĂăĐđĨĩŨũƠơƯư"),
    *range(0x1EA0, 0x1EFA),
    *range(0x2010, 0x2027),
    0x20AB,
)


class FontMissing(RuntimeError):
    """No Vietnamese-capable font: the service cannot write letters and says so at start-up."""


def font_dir() -> Path:
    configured = os.environ.get(FONT_DIR_VARIABLE)
    candidates = [Path(configured)] if configured else list(DEFAULT_FONT_DIRS)
    for directory in candidates:
        if (directory / REGULAR).is_file() and (directory / BOLD).is_file():
            return directory
    raise FontMissing(
        f"{REGULAR} and {BOLD} not found in {', '.join(map(str, candidates))}: install fonts-dejavu-core "
        f"or set {FONT_DIR_VARIABLE}"
    )


def render_apology_letter(content: ApologyLetterContent, fonts: Path | None = None) -> bytes:
    directory = fonts or font_dir()
    pdf = lay_out(content, _letter_faces(directory))
    if any(font.missing_glyphs for font in _embedded_fonts(pdf)):
        pdf = lay_out(content, directory)  # a character beyond the cut-down faces
    for font in _embedded_fonts(pdf):
        # A subset keeps each glyph's outline, so its stored bounding box holds; recomputing
        # them made fontTools decode and re-encode every glyph (half of a letter's time).
        font.ttfont.recalcBBoxes = False
    return bytes(pdf.output())


def _embedded_fonts(pdf: FPDF) -> list[TTFFont]:
    return [font for font in pdf.fonts.values() if isinstance(font, TTFFont)]


@functools.cache
def _letter_faces(directory: Path) -> Path:
    """The two faces cut down to LETTER_CHARACTERS, written once per process to a private folder."""
    target = Path(tempfile.mkdtemp(prefix="citydata-letter-fonts-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    options = font_subset.Options(notdef_outline=True, recommended_glyphs=True, glyph_names=True)
    options.name_IDs = ["*"]
    options.drop_tables += ["FFTM"]  # a FontForge time-stamp fontTools cannot subset
    for face in (REGULAR, BOLD):
        font = font_subset.load_font(str(directory / face), options)
        subsetter = font_subset.Subsetter(options)
        subsetter.populate(unicodes=LETTER_CHARACTERS)
        subsetter.subset(font)
        font_subset.save_font(font, str(target / face), options)
    return target


def lay_out(content: ApologyLetterContent, directory: Path) -> FPDF:
    """The letter laid out with the two faces found in `directory` (not yet written out)."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_margins(20, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_creation_date(datetime.combine(content.letter_date, time(0), tzinfo=LOCAL_TIME).astimezone(UTC))
    pdf.set_title(TITLE)
    pdf.set_author(content.agency_name)
    pdf.set_subject(f"{FORM_LABEL} - Số {content.number}" if content.number else FORM_LABEL)
    pdf.set_lang("vi")
    pdf.add_font(FAMILY, "", str(directory / REGULAR))
    pdf.add_font(FAMILY, "B", str(directory / BOLD))
    pdf.add_page()
    _header(pdf, content)
    _title(pdf, content)
    _body(pdf, content)
    _signature(pdf)
    return pdf


def _header(pdf: FPDF, content: ApologyLetterContent) -> None:
    """The form's label top right; below it the issuing body on the left (its parent body on
    the line above, plain; its own name bold; a short rule; the letter number) and the national
    header with the dateline on the right, both starting on the same line."""
    pdf.set_font(FAMILY, "B", 10)
    pdf.cell(0, 5, FORM_LABEL, align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    top = pdf.get_y()
    right_x = pdf.l_margin + LEFT_WIDTH + GAP
    right_width = pdf.w - pdf.r_margin - right_x
    if content.issuer.parent_name:
        _header_line(pdf, content.issuer.parent_name.upper(), "")
    _header_line(pdf, content.agency_name.upper(), "B")
    rule_y = pdf.get_y() + 0.5
    left_middle = pdf.l_margin + LEFT_WIDTH / 2
    pdf.line(left_middle - 12, rule_y, left_middle + 12, rule_y)
    pdf.set_y(rule_y + 2)
    pdf.set_font(FAMILY, "", 10)
    number = f"Số: {content.number}" if content.number else "Số: ....../PXL"
    pdf.cell(LEFT_WIDTH, 5, number, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    left_bottom = pdf.get_y()
    pdf.set_xy(right_x, top)
    pdf.set_font(FAMILY, "B", 10)
    pdf.cell(right_width, 5, NATION, align=Align.C, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.cell(right_width, 5, MOTTO, align=Align.C, new_x=XPos.LEFT, new_y=YPos.NEXT)
    underline_y = pdf.get_y() + 0.5
    middle = right_x + right_width / 2
    pdf.line(middle - 25, underline_y, middle + 25, underline_y)
    pdf.set_y(underline_y + 2)
    pdf.set_x(right_x)
    pdf.set_font(FAMILY, "", 10)
    pdf.cell(right_width, 5, content.dateline(), align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 8)


def _header_line(pdf: FPDF, text: str, style: str) -> None:
    """One name of the header, in the largest size that keeps it on one line (wrapped if none)."""
    for size in HEADER_SIZES:
        pdf.set_font(FAMILY, style, size)
        if pdf.get_string_width(text) <= LEFT_WIDTH - 2:
            break
    pdf.multi_cell(LEFT_WIDTH, 5, text, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _title(pdf: FPDF, content: ApologyLetterContent) -> None:
    pdf.set_font(FAMILY, "B", 13)
    pdf.cell(0, 8, TITLE, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font(FAMILY, "", 11)
    pdf.multi_cell(0, LINE, f"Kính gửi: {content.addressee.line}.", align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)


def _body(pdf: FPDF, content: ApologyLetterContent) -> None:
    pdf.set_font(FAMILY, "", 11)
    for paragraph in content.body():
        pdf.set_x(pdf.l_margin)
        pdf.multi_cell(0, LINE, paragraph, align=Align.J, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)


def _signature(pdf: FPDF) -> None:
    pdf.ln(6)
    block_x = pdf.l_margin + LEFT_WIDTH + GAP
    width = pdf.w - pdf.r_margin - block_x
    pdf.set_x(block_x)
    pdf.set_font(FAMILY, "B", 11)
    pdf.cell(width, LINE, SIGNER_TITLE, align=Align.C, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, "", 9)
    pdf.cell(width, LINE, SIGNER_NOTE, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
