"""Apology letters laid out as PDFs: the dossier's renderer against fpdf2 used as documented.

    python -m bench.letters_bench [--seconds 5]

The baseline lays out the same letter with fpdf2 loading the full DejaVu Sans faces from their
files, as fpdf2's documentation shows and as the renderer did before; the renderer uses faces cut
down once per process to the Latin and Vietnamese letters (services/dossier/consumers/apology_pdf.py).
Figures are letters per second, one thread, measured alternately in rounds so that a busy
machine weighs on both alike; the ratio is renderer / baseline.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime

from kit.agencies import directory
from kit.deadlines.calendar import LOCAL_TIME
from kit.deadlines.loader import load_calendar
from services.dossier.consumers.apology_pdf import font_dir, lay_out, render_apology_letter
from services.dossier.domain.apology import ApologyLetterContent, LetterFacts, LetterPolicy, issuer_of, letter_content
from services.dossier.domain.applicants import Applicant, Gender
from services.dossier.domain.lifecycle import ApplicantKind, Channel, Dossier, State
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue

PROCEDURE_CODE = "1.000017"  # Gia hạn phiếu lý lịch tư pháp số 2 cho tổ chức, Sở Tư pháp
RECEIVED = datetime(2025, 3, 3, 9, 0, tzinfo=LOCAL_TIME)
DUE = datetime(2025, 3, 6, 17, 0, tzinfo=LOCAL_TIME)


def sample_letter() -> ApologyLetterContent:
    """A citizen's letter for a 3-working-day procedure of the shipped catalogue, a day late."""
    catalogue = read_catalogue(SHIPPED_CATALOGUE).procedures
    procedure = next(p for p in catalogue if p.code == PROCEDURE_CODE)
    dossier = Dossier(
        dossier_id="d-1",
        number="000.00.STP.H29-250303-0001",
        procedure_code=procedure.code,
        agency_code="STP",
        applicant_registry_id="cit-000123",
        applicant_kind=ApplicantKind.CITIZEN,
        channel=Channel.COUNTER,
        state=State.IN_PROGRESS,
        received_at=RECEIVED,
        updated_at=DUE,
        clock_started_at=RECEIVED,
        due_at=DUE,
        overdue_at=DUE,
        missed_deadlines=1,
    )
    facts = LetterFacts(
        number="12/PXL-STP",
        issuer=issuer_of("STP", procedure.agency_name, directory()),
        applicant=Applicant(ApplicantKind.CITIZEN, "Trần Thị Bình", "079190004321", Gender.FEMALE),
        reason="Hồ sơ phải lấy ý kiến Bộ Nội vụ, văn bản trả lời chưa đến.",
    )
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    return letter_content(dossier, procedure, load_calendar(), DUE, issued, LetterPolicy(), facts)


def letters_per_second(render: Callable[[], bytes], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - started < seconds:
        render()
        count += 1
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.letters_bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per figure (split in rounds)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    content, fonts = sample_letter(), font_dir()

    def plain_fpdf2() -> bytes:
        return bytes(lay_out(content, fonts).output())

    def renderer() -> bytes:
        return render_apology_letter(content, fonts)

    started = time.perf_counter()
    renderer()  # the one-off cut of the faces, reported apart
    first = time.perf_counter() - started
    plain_fpdf2()
    baseline, ours = [], []
    for _ in range(args.rounds):
        baseline.append(letters_per_second(plain_fpdf2, args.seconds / args.rounds))
        ours.append(letters_per_second(renderer, args.seconds / args.rounds))
    plain, cut = sum(baseline) / len(baseline), sum(ours) / len(ours)
    print(f"{'layout':<48} {'letters/s':>10} {'ratio':>7}")
    print(f"{'fpdf2 with the full faces (baseline)':<48} {plain:>10.1f} {1.0:>6.2f}x")
    print(f"{'renderer, faces cut once per process':<48} {cut:>10.1f} {cut / plain:>6.2f}x")
    print(f"cutting the faces once: {first:.2f} s; PDF sizes {len(plain_fpdf2()):,} and {len(renderer()):,} bytes")


if __name__ == "__main__":
    main()
