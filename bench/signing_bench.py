"""Signing throughput: the engine (CAdES B-B, PAdES B-T) against raw ECDSA P-256 on this machine.

    python -m bench.signing_bench [--seconds 3]

The baseline is `cryptography` signing the same SHA-256 digests with an in-memory P-256 key: the
cost floor of one signature. The engine adds CMS assembly, certificate lookups and (B-T) a
time-stamp, which is itself one more ECDSA signature; PAdES adds a PDF incremental update. Each
engine figure is measured with both keystores (SoftHSM2 token, encrypted file keystore).
Figures are signatures per second, single thread; the ratio is raw / engine (how many raw
signatures one engine signature costs). The PKI is on a SQLite database in a scratch directory
(each signature reads its certificate's revocation from it, as the service does from PostgreSQL).

Comparing code before and after a change: run this benchmark from both checkouts back to back on
the same machine; under heavy load even the raw figure swings, so compare the engine figures pair
by pair.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PdfFileWriter

from kit.clock import ManualClock
from services.signing.crypto.bootstrap import bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import FileKeystore, Keystore, Pkcs11Keystore
from services.signing.crypto.pki import Pki
from services.signing.crypto.softhsm import init_softhsm_token
from services.signing.domain.certificates import CertificateKind, SignatureLevel


def rate(operation: Callable[[int], object], seconds: float, minimum: int = 5) -> float:
    """Operations per second of `operation(i)`, run for about `seconds` (at least `minimum` times)."""
    operation(-1)  # warm-up: imports, sessions, caches
    count, started = 0, time.perf_counter()
    while count < minimum or time.perf_counter() - started < seconds:
        operation(count)
        count += 1
    return count / (time.perf_counter() - started)


def digests(n: int = 4096) -> list[bytes]:
    return [hashlib.sha256(f"document {i}".encode()).digest() for i in range(n)]


def raw_ecdsa_rate(seconds: float) -> float:
    key = ec.generate_private_key(ec.SECP256R1())
    prepared = digests()
    algorithm = ec.ECDSA(utils.Prehashed(hashes.SHA256()))
    return rate(lambda i: key.sign(prepared[i % len(prepared)], algorithm), seconds, minimum=100)


def small_pdf() -> bytes:
    writer = PdfFileWriter()
    stream = generic.StreamObject(stream_data=b"BT /F1 18 Tf 72 720 Td (GIAY PHEP) Tj ET")
    writer.insert_page(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Page"),
                generic.pdf_name("/MediaBox"): generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))),
                generic.pdf_name("/Contents"): writer.add_object(stream),
            }
        )
    )
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def engine_rates(keystore: Keystore, state: Path, seconds: float) -> tuple[float, float]:
    clock = ManualClock(datetime.now(UTC))
    pki = Pki(keystore, state, clock)
    bootstrap_pki(pki, ["SXD"])
    engine = SignatureEngine(pki, clock)
    seal = pki.issue_signer_certificate("SXD", "Bench seal", CertificateKind.SEAL)
    prepared, pdf = digests(), small_pdf()
    cades = rate(
        lambda i: engine.sign_cades_digest(seal.serial, prepared[i % len(prepared)], SignatureLevel.B_B), seconds
    )
    pades = rate(lambda i: engine.sign_pades(seal.serial, pdf, SignatureLevel.B_T), seconds)
    return cades, pades


def softhsm_keystore(base: Path) -> Pkcs11Keystore:
    token = init_softhsm_token(base / "softhsm", "citydata-bench", "bench-user-pin", "bench-so-pin")
    os.environ.update(token.environment())  # SoftHSM reads SOFTHSM2_CONF when the module loads
    return Pkcs11Keystore(token.module_path, token.token_label, token.user_pin)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.signing_bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per figure")
    args = parser.parse_args(argv)
    raw = raw_ecdsa_rate(args.seconds)
    rows = [("raw cryptography ECDSA P-256 (digest)", "-", raw)]
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        keystores: list[tuple[str, Keystore]] = [
            ("SoftHSM2", softhsm_keystore(base)),
            ("file", FileKeystore(base / "file-keys", "bench-password")),
        ]
        for name, keystore in keystores:
            cades, pades = engine_rates(keystore, base / f"state-{name}", args.seconds)
            rows.append(("engine CAdES B-B (digest)", name, cades))
            rows.append(("engine PAdES B-T (small PDF)", name, pades))
    print(f"{'operation':<40} {'keystore':<9} {'sig/s':>10} {'raw/engine':>11}")
    for operation, keystore_name, per_second in rows:
        print(f"{operation:<40} {keystore_name:<9} {per_second:>10.1f} {raw / per_second:>10.1f}x")


if __name__ == "__main__":
    main()
