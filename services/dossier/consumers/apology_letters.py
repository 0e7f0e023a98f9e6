"""Kafka handlers of the dossier service: the apology letter of every overdue dossier.

`dossier.apology_required` → Form 04 letter (PDF) → PAdES B-T signature with the agency's SEAL
certificate (signing service) → the `apology_letters` row and `dossier.apology_issued` in the
consumer's transaction, which also records the event id (kit.consumer).

The letter's content: the agency and its parent body from the agency directory (kit/agencies.toml),
the applicant's name, gender and national id or tax code from the registry (an outage is retried
like the signing service's: the letter waits rather than go out without them), the reason an
officer recorded (RecordDelayReason), and the letter's number, taken from the agency's yearly
series in this same transaction (the counter row stays locked until commit, so the agency's
letters are numbered one after the other, and a letter that does not commit returns its number).

Exactly one letter per dossier: the letter is signed before anything is written, so a crash
after signing but before commit only means the redelivery signs again; the unique `dossier_id`
and the processed event ids let one letter, and one `dossier.apology_issued`, commit. A signing
outage is retried without limit (the letter is late, never lost); a refusal (the agency has no
CA, …) parks the event on the DLQ, and GetApologyCoverage lists the dossier as missing a letter.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from uuid import uuid4

from citydata.v1 import dossier_pb2 as pb
from sqlalchemy.orm import Session

from kit.agencies import AgencyDirectory, directory
from kit.clock import Clock
from kit.db import Outbox
from kit.deadlines.calendar import LOCAL_TIME, WorkingCalendar
from kit.events import InboundEvent
from kit.proto_time import to_datetime
from services.dossier.clients.signing import SigningClient
from services.dossier.consumers.apology_pdf import render_apology_letter
from services.dossier.domain.apology import (
    SIGNATURE_REASON,
    LetterFacts,
    LetterPolicy,
    issuer_of,
    letter_content,
    letter_number,
)
from services.dossier.domain.applicants import ApplicantDirectory, TrustingApplicantDirectory
from services.dossier.domain.lifecycle import APOLOGY_REQUIRED
from services.dossier.store import dossiers as dossier_store
from services.dossier.store import letters as letter_store
from services.dossier.store import procedures as procedure_store
from services.dossier.store.events import apology_issued

log = logging.getLogger(__name__)

APOLOGY_CONSUMER = "dossier-apology-letters"


class ApologyLetterIssuer:
    def __init__(
        self,
        signing: SigningClient,
        calendar: WorkingCalendar,
        clock: Clock,
        outbox: Outbox,
        policy: LetterPolicy,
        fonts: Path,
        applicants: ApplicantDirectory | None = None,
        agencies: AgencyDirectory | None = None,
    ) -> None:
        self._signing = signing
        self._calendar = calendar
        self._clock = clock
        self._outbox = outbox
        self._policy = policy
        self._fonts = fonts
        self._applicants = applicants or TrustingApplicantDirectory()
        self._agencies = agencies or directory()

    def handle(self, session: Session, event: InboundEvent) -> None:
        if event.type != APOLOGY_REQUIRED:
            return
        required = event.parse(pb.DossierApologyRequired)
        dossier_id = required.header.dossier_id
        letter_store.lock_letter(session, dossier_id)
        if letter_store.letter_exists(session, dossier_id):
            log.info("apology letter already issued", extra={"dossier_id": dossier_id, "event_id": event.id})
            return
        dossier = dossier_store.get_dossier(session, dossier_id)
        if dossier is None:
            # Only this service publishes on the topic, in the dossier's own transaction: an
            # unknown id comes from another deployment sharing the broker, not from ours.
            log.warning("apology required for a dossier of another database", extra={"dossier_id": dossier_id})
            return
        procedure = procedure_store.get_procedure(session, dossier.procedure_code)
        if procedure is None:
            raise LookupError(f"procedure {dossier.procedure_code} of dossier {dossier_id} is not in the catalogue")
        issuer = issuer_of(dossier.agency_code, procedure.agency_name, self._agencies)
        applicant = self._applicants.applicant(dossier.applicant_kind, dossier.applicant_registry_id)
        serial = self._seal_serial(session, dossier.agency_code, procedure.agency_name)
        issued_at = self._clock.now()
        year = issued_at.astimezone(LOCAL_TIME).year
        # Taken last, right before signing: the agency's counter stays locked until commit.
        sequence = letter_store.next_letter_sequence(session, dossier.agency_code, year)
        facts = LetterFacts(
            number=letter_number(sequence, dossier.agency_code),
            issuer=issuer,
            applicant=applicant,
            reason=letter_store.delay_reason(session, dossier_id),
        )
        missed_due_at = to_datetime(required.missed_due_at)
        content = letter_content(dossier, procedure, self._calendar, missed_due_at, issued_at, self._policy, facts)
        unsigned = render_apology_letter(content, self._fonts)
        signed = self._signing.sign_pdf(dossier.agency_code, serial, unsigned, SIGNATURE_REASON)
        letter = letter_store.StoredLetter(
            letter_id=str(uuid4()),
            dossier_id=dossier_id,
            agency_code=dossier.agency_code,
            pdf=signed.pdf,
            sha256=hashlib.sha256(signed.pdf).hexdigest(),
            issued_at=issued_at,
            signed_at=signed.signed_at,
            new_appointment_at=content.new_appointment,
            reason=content.reason,
            signer_serial=signed.serial,
            letter_number=content.number,
            number_year=year,
            number_sequence=sequence,
        )
        letter_store.add_letter(session, letter)
        self._publish(session, letter, required)
        log.info(
            "apology letter issued",
            extra={"dossier_id": dossier_id, "letter_id": letter.letter_id, "letter_number": letter.letter_number},
        )

    def _seal_serial(self, session: Session, agency: str, agency_name: str) -> str:
        serial = letter_store.signer_serial(session, agency)
        if serial is not None:
            return serial
        issued = self._signing.issue_seal(agency, agency_name)
        letter_store.remember_signer(session, agency, issued, self._clock.now())
        return letter_store.signer_serial(session, agency) or issued

    def _publish(
        self, session: Session, letter: letter_store.StoredLetter, required: pb.DossierApologyRequired
    ) -> None:
        self._outbox.publish(session, [apology_issued(letter, required)])
