"""Fixtures for the signing service's crypto tests: one throwaway SoftHSM2 token per test run
(python-pkcs11 loads the module once per process, so the token must exist before that), a PKI
on it, and an engine. Tests move a ManualClock instead of sleeping."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit.clock import ManualClock
from services.signing.bootstrap import bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import Pkcs11Keystore, keystore_from_environment
from services.signing.crypto.pki import Pki
from services.signing.crypto.softhsm import SoftHsmToken, init_softhsm_token

TOOLS = {"softhsm": "softhsm2-util", "openssl": "openssl", "pdfsig": "pdfsig", "nss": "certutil"}


def pytest_configure(config: pytest.Config) -> None:
    for marker, tool in TOOLS.items():
        config.addinivalue_line("markers", f"{marker}: needs the {tool} command")


@pytest.fixture(autouse=True)
def _required_tools(request: pytest.FixtureRequest) -> None:
    # These tools are part of the dev/CI image: a missing one fails the test, never skips it.
    for marker, tool in TOOLS.items():
        if request.node.get_closest_marker(marker) and shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (Debian packages: see services/signing/README.md)")


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    token = init_softhsm_token(tmp_path_factory.mktemp("softhsm"), "citydata-test", "user-1234", "so-5678")
    saved = {key: os.environ.get(key) for key in token.environment()}
    os.environ.update(token.environment())
    yield token
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    # An hour in the past, so tests can move forward and still end before real "now".
    return ManualClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))


@pytest.fixture(scope="session")
def keystore(softhsm_token: SoftHsmToken, tmp_path_factory: pytest.TempPathFactory) -> Pkcs11Keystore:
    store = keystore_from_environment(os.environ, tmp_path_factory.mktemp("unused-file-keys"))
    assert isinstance(store, Pkcs11Keystore)
    return store


@pytest.fixture(scope="session")
def pki(keystore: Pkcs11Keystore, clock: ManualClock, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    state = tmp_path_factory.mktemp("signing-state")
    city_pki = Pki(keystore, state, clock)
    bootstrap_pki(city_pki, ["SXD", "STP"])
    return city_pki


@pytest.fixture(scope="session")
def engine(pki: Pki, clock: ManualClock) -> SignatureEngine:
    return SignatureEngine(pki, clock)


@pytest.fixture(scope="session")
def trust_dir(pki: Pki) -> Path:
    """ca/root.pem, ca/agency-*.pem and ca/tsa.pem as written for operators."""
    return pki.export_ca_certificates()
