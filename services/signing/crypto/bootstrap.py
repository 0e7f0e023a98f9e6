"""The city's PKI made complete: root CA, time-stamping unit and one issuing CA per signing agency,
each created if missing. The service runs this at start-up (and `ensure_issuing_ca` when an agency
listed since then asks for its first certificate); `python -m services.signing.cli.bootstrap` runs
it from a shell."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kit.agencies import directory
from services.signing.crypto.pki import TSA_ID, Pki
from services.signing.domain.certificates import ROOT_CA_ID, agency_ca_id, check_agency_code


@dataclass
class BootstrapResult:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created)

    def summary(self) -> str:
        if not self.changed:
            return f"nothing to do: {', '.join(self.existing)} already exist"
        return f"created {', '.join(self.created)}" + (
            f"; kept existing {', '.join(self.existing)}" if self.existing else ""
        )


def signing_agencies() -> list[str]:
    """Every agency of the directory that signs (has an issuing CA and a seal)."""
    return directory().signing_agencies()


def bootstrap_pki(pki: Pki, agencies: Sequence[str] | None = None) -> BootstrapResult:
    """Ensure root CA, TSA and each agency's issuing CA exist (by default every signing agency of
    the directory); report what was created."""
    codes = [check_agency_code(code) for code in (signing_agencies() if agencies is None else agencies)]
    result = BootstrapResult()
    steps: list[tuple[str, Callable[[], bool]]] = [
        (ROOT_CA_ID, pki.ensure_root_ca),
        (TSA_ID, pki.ensure_tsa),
    ]
    steps += [(agency_ca_id(code), _agency_step(pki, code)) for code in codes]
    for name, ensure in steps:
        (result.created if ensure() else result.existing).append(name)
    for ca_id in pki.ca_ids():
        pki.current_crl(ca_id)  # publish an initial CRL so the CRL endpoint has something to serve
    pki.export_ca_certificates()
    return result


def _agency_step(pki: Pki, code: str) -> Callable[[], bool]:
    return lambda: pki.ensure_agency_ca(code)


def ensure_issuing_ca(pki: Pki, code: str) -> bool:
    """The agency's issuing CA, created (with its first CRL and exported certificate) if missing."""
    if not pki.ensure_agency_ca(code):
        return False
    pki.current_crl(agency_ca_id(code))
    pki.export_ca_certificates()
    return True
