"""Signed apology letters per second through the signing service, against its engine in-process.

    python -m bench signing_service [--seconds 20] [--clients 1 4]

The issue's goal is 20 signed PAdES B-T letters a second per signing replica. `bench signing`
measures the engine alone; this one measures what a dossier replica gets: `SignDocument` over
gRPC (caller assertion, agency check, idempotency record, revocation look-up and the audit and
outbox rows on PostgreSQL, a SoftHSM2 key), signing a real apology letter (bench.letters_bench).
It starts a PRIVATE PostgreSQL and Kafka (chaos.infra, never the shared 5432/9092) and one
signing process, and alternates the service and the baseline in rounds so both see the same
machine. The baseline is the same letter signed by the engine in this process (SoftHSM2 key,
SQLite PKI): the cost of the signature itself. Each call carries its own idempotency key, so no
answer comes from the idempotency cache.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from citydata.v1 import signing_pb2 as pb
from citydata.v1.signing_pb2_grpc import SigningServiceStub

from bench.letters_bench import sample_letter
from bench.signing_bench import softhsm_keystore
from chaos.infra import PrivateInfra
from chaos.services import signing_process
from kit.clock import ManualClock
from kit.service_identity import asserting_channel
from kit.tls import secure_channel_to
from services.dossier.clients.signing import AGENCY_METADATA, DOSSIER_SERVICE, SigningClient
from services.dossier.consumers.apology_pdf import render_apology_letter
from services.signing.crypto.bootstrap import bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.pki import Pki
from services.signing.domain.certificates import CertificateKind, SignatureLevel

AGENCY = "SXD"


def service_rate(address: str, serial: str, letter: bytes, clients: int, seconds: float) -> float:
    """Signed letters per second with `clients` threads calling back to back."""
    stub = SigningServiceStub(asserting_channel(secure_channel_to(address, service="dossier"), DOSSIER_SERVICE))
    done = [0] * clients
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        while time.perf_counter() < deadline:
            request = pb.SignDocumentRequest(
                serial=serial,
                document=letter,
                format=pb.SIGNATURE_FORMAT_PADES,
                level=pb.SIGNATURE_LEVEL_B_T,
                reason="bench",
                idempotency_key=f"bench-{uuid.uuid4()}",
            )
            stub.SignDocument(request, metadata=[(AGENCY_METADATA, AGENCY)], timeout=60)
            done[index] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def engine_signer(base: Path) -> tuple[SignatureEngine, int]:
    clock = ManualClock(datetime.now(UTC))
    pki = Pki(softhsm_keystore(base), base / "state", clock)
    bootstrap_pki(pki, [AGENCY])
    seal = pki.issue_signer_certificate(AGENCY, "Bench seal", CertificateKind.SEAL)
    return SignatureEngine(pki, clock), seal.serial


def engine_rate(engine: SignatureEngine, serial: int, letter: bytes, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - started < seconds:
        engine.sign_pades(serial, letter, SignatureLevel.B_T)
        count += 1
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench signing_service", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per figure (split in rounds)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    letter = render_apology_letter(sample_letter())
    # the bench calls as the dossier service does: a caller assertion under a key shared with the
    # signing process it starts (inherited through the environment), never the platform's own key
    os.environ["CITYDATA_SERVICE_KEY"] = secrets.token_hex(32)
    slice_seconds = args.seconds / args.rounds
    with tempfile.TemporaryDirectory(prefix="citydata-bench-signing-") as scratch:
        base = Path(scratch)
        infra = PrivateInfra.allocate(base / "infra")
        infra.up()
        service = signing_process(infra, base / "service")
        try:
            service.start()
            serial = SigningClient(service.address).issue_seal(AGENCY, "Sở Xây dựng")
            engine, engine_serial = engine_signer(base / "engine")
            engine.sign_pades(engine_serial, letter, SignatureLevel.B_T)  # warm-up
            service_rate(service.address, serial, letter, 1, 1.0)  # warm-up
            baseline: list[float] = []
            figures: dict[int, list[float]] = {clients: [] for clients in args.clients}
            for _ in range(args.rounds):
                baseline.append(engine_rate(engine, engine_serial, letter, slice_seconds))
                for clients in args.clients:
                    figures[clients].append(service_rate(service.address, serial, letter, clients, slice_seconds))
        finally:
            service.stop()
            infra.down()
            infra.remove()
    engine_mean = sum(baseline) / len(baseline)
    print(f"letter: {len(letter):,} bytes; load average {os.getloadavg()[0]:.1f}")
    print(f"{'signing a letter, PAdES B-T, SoftHSM2':<52} {'letters/s':>10} {'ratio':>7}")
    print(f"{'engine in this process (baseline)':<52} {engine_mean:>10.1f} {1.0:>6.2f}x")
    for clients, rates in figures.items():
        mean = sum(rates) / len(rates)
        label = f"signing service over gRPC, {clients} client{'s' if clients > 1 else ''}"
        print(f"{label:<52} {mean:>10.1f} {mean / engine_mean:>6.2f}x")


if __name__ == "__main__":
    main()
