"""Where private keys live: a PKCS#11 token (production, SoftHSM2 in dev/CI) or, only when no
PKCS#11 module is configured, password-encrypted PKCS#8 files.

Both sit behind `Keystore`, so the PKI, the TSA and the signing code never see key material:
they ask for a public key, a raw signature (certificates, CRLs) or a pyHanko `Signer`.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pkcs11
from asn1crypto import algos, keys, tsp, x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
from pkcs11.util.rsa import encode_rsa_public_key
from pyhanko.sign import attributes
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.pkcs11 import PKCS11Signer, select_pkcs11_signing_params
from pyhanko.sign.signers import Signer, SimpleSigner
from pyhanko_certvalidator.registry import CertificateStore, SimpleCertificateStore

from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from services.signing.domain.certificates import KeyAlgorithm, check_rsa_key_size

ENV_MODULE = "CITYDATA_PKCS11_MODULE"
ENV_TOKEN = "CITYDATA_PKCS11_TOKEN"
ENV_PIN = "CITYDATA_PKCS11_PIN"
ENV_KEYSTORE_PASSWORD = "CITYDATA_KEYSTORE_PASSWORD"

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class Keystore(Protocol):
    @property
    def description(self) -> str:
        """One line for the start-up log: which keystore, never a secret."""
        ...

    def has_key(self, label: str) -> bool: ...

    def generate_key(self, label: str, algorithm: KeyAlgorithm) -> keys.PublicKeyInfo: ...

    def public_key(self, label: str) -> keys.PublicKeyInfo: ...

    def sign_raw(self, label: str, data: bytes) -> tuple[bytes, algos.SignedDigestAlgorithm]:
        """Sign `data` (e.g. a TBSCertificate) with the key's own mechanism; returns (sig, mech)."""
        ...

    def signer_for(self, label: str, cert: x509.Certificate, chain: Sequence[x509.Certificate]) -> Signer: ...


def check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise InvalidArgument([FieldViolation("key_label", f"malformed key label {label!r}")])
    return label


def signature_mechanism(public_key: keys.PublicKeyInfo) -> algos.SignedDigestAlgorithm:
    """The mechanism we sign with for a key: ECDSA with its curve's hash, or RSASSA-PSS/SHA-256."""
    if public_key.algorithm == "ec":
        digest = "sha384" if public_key.curve[1] == "secp384r1" else "sha256"
        return algos.SignedDigestAlgorithm({"algorithm": f"{digest}_ecdsa"})
    if public_key.algorithm in ("rsa", "rsassa_pss"):
        check_rsa_key_size(public_key.bit_size)
        return algos.SignedDigestAlgorithm(
            {
                "algorithm": "rsassa_pss",
                "parameters": algos.RSASSAPSSParams(
                    {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "mask_gen_algorithm": {
                            "algorithm": "mgf1",
                            "parameters": {"algorithm": "sha256"},
                        },
                        "salt_length": 32,
                    }
                ),
            }
        )
    raise FailedPrecondition(f"keys of type {public_key.algorithm} are not allowed")


def digest_of(mechanism: algos.SignedDigestAlgorithm) -> str:
    if mechanism.signature_algo == "rsassa_pss":
        return str(mechanism["parameters"]["hash_algorithm"]["algorithm"].native)
    return str(mechanism.hash_algo)


def _hash_outside(mechanism: algos.SignedDigestAlgorithm) -> bool:
    # SoftHSM2 (and many HSMs) only offer plain CKM_ECDSA, so hash on our side for ECDSA.
    return mechanism.signature_algo == "ecdsa"


def _chain_store(chain: Sequence[x509.Certificate]) -> SimpleCertificateStore:
    """The issuer certificates a signer embeds. Never the signer's own: pyHanko adds that to
    SignedData.certificates itself, so registering it too would put it there twice."""
    return SimpleCertificateStore.from_certs(chain)


@functools.lru_cache(maxsize=4096)
def _signing_certificate_v2_der(certificate_der: bytes) -> bytes:
    return bytes(as_signing_certificate_v2(x509.Certificate.load(certificate_der)).dump())


class _PreparedSigningCertificateV2(attributes.SigningCertificateV2Provider):
    """The ESS signing-certificate-v2 attribute, a pure function of the certificate, built once.

    Profiling showed pyHanko spending most of a signature (and of each time-stamp token) building
    this value from Python objects and re-serialising it three times per CMS; a value loaded
    from its DER serialises as-is. Each call gets its own object, so nothing shared is mutated."""

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2.load(_signing_certificate_v2_der(self.signing_cert.dump()))


class _PreparedAttributesMixin:
    def _signed_attr_providers(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        providers: Iterable[Any] = super()._signed_attr_providers(*args, **kwargs)  # type: ignore[misc]
        for provider in providers:
            if type(provider) is attributes.SigningCertificateV2Provider:
                yield _PreparedSigningCertificateV2(provider.signing_cert)
            else:
                yield provider


class _PreparedSimpleSigner(_PreparedAttributesMixin, SimpleSigner):
    pass


# One PKCS#11 session is shared per token (below), and a session runs one operation at a time: a
# second C_FindObjectsInit or C_SignInit while one is active fails (CKR_OPERATION_ACTIVE, raised as
# a bare GeneralError). Concurrent calls, and pyHanko's executor threads, take turns on it.
_TOKEN_LOCK = threading.RLock()


class _ChainOnlyPkcs11Signer(_PreparedAttributesMixin, PKCS11Signer):
    """PKCS11Signer registers the signing certificate in its registry, and pyHanko then adds it to
    the CMS a second time; validators (EU DSS among them) expect each certificate once."""

    _chain_only: CertificateStore | None = None

    async def ensure_objects_loaded(self) -> None:
        with _TOKEN_LOCK:
            await super().ensure_objects_loaded()

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        with _TOKEN_LOCK:
            return await super().async_sign_raw(data, digest_algorithm, dry_run)  # type: ignore[no-any-return]

    @property
    def cert_registry(self) -> CertificateStore:
        # Built once: pyHanko asks for it on every signature, and the chain of a signer never changes.
        if self._chain_only is None:
            own = self.signing_cert.dump()
            self._chain_only = SimpleCertificateStore.from_certs(c for c in super().cert_registry if c.dump() != own)
        return self._chain_only


# python-pkcs11 loads one module per process and a token allows one login, so sessions are
# shared by (module, token) rather than opened per keystore object.
_SESSIONS: dict[tuple[str, str], pkcs11.Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _open_session(module_path: str, token_label: str, user_pin: str) -> pkcs11.Session:
    with _SESSIONS_LOCK:
        key = (module_path, token_label)
        if key not in _SESSIONS:
            token = pkcs11.lib(module_path).get_token(token_label=token_label)
            _SESSIONS[key] = token.open(user_pin=user_pin, rw=True)
        return _SESSIONS[key]


class Pkcs11Keystore:
    """Keys generated inside a PKCS#11 token: sensitive, non-extractable, used in place."""

    def __init__(self, module_path: str, token_label: str, user_pin: str) -> None:
        self._module_path = module_path
        self._token_label = token_label
        self._user_pin = user_pin

    @property
    def description(self) -> str:
        return f"PKCS#11 token {self._token_label!r} via {self._module_path}"

    @property
    def session(self) -> pkcs11.Session:
        return _open_session(self._module_path, self._token_label, self._user_pin)

    def has_key(self, label: str) -> bool:
        return self._find(label, ObjectClass.PRIVATE_KEY) is not None

    def generate_key(self, label: str, algorithm: KeyAlgorithm) -> keys.PublicKeyInfo:
        with _TOKEN_LOCK:
            return self._generate_key(label, algorithm)

    def _generate_key(self, label: str, algorithm: KeyAlgorithm) -> keys.PublicKeyInfo:
        check_label(label)
        if self.has_key(label):
            raise FailedPrecondition(f"key {label!r} already exists in the token", "KEY_EXISTS")
        private_template: dict[Attribute, Any] = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.PRIVATE: True,
            Attribute.SIGN: True,
        }
        common: dict[str, Any] = {
            "id": label.encode(),
            "label": label,
            "store": True,
            "private_template": private_template,
            "public_template": {Attribute.VERIFY: True},
        }
        if algorithm.is_rsa:
            self.session.generate_keypair(KeyType.RSA, algorithm.rsa_bits, **common)
        else:
            params = self.session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(algorithm.curve)},
                local=True,
            )
            params.generate_keypair(**common)
        return self.public_key(label)

    def public_key(self, label: str) -> keys.PublicKeyInfo:
        with _TOKEN_LOCK:
            handle = self._find(label, ObjectClass.PUBLIC_KEY)
            if handle is None:
                raise NotFound("key", label)
            if handle[Attribute.KEY_TYPE] == KeyType.EC:
                return keys.PublicKeyInfo.load(encode_ec_public_key(handle))
            der = encode_rsa_public_key(handle)
        return keys.PublicKeyInfo({"algorithm": {"algorithm": "rsa"}, "public_key": keys.RSAPublicKey.load(der)})

    def sign_raw(self, label: str, data: bytes) -> tuple[bytes, algos.SignedDigestAlgorithm]:
        with _TOKEN_LOCK:
            return self._sign_raw(label, data)

    def _sign_raw(self, label: str, data: bytes) -> tuple[bytes, algos.SignedDigestAlgorithm]:
        mechanism = signature_mechanism(self.public_key(label))
        private = self._find(label, ObjectClass.PRIVATE_KEY)
        if private is None:
            raise NotFound("key", label)
        spec = select_pkcs11_signing_params(
            mechanism, digest_of(mechanism), use_raw_mechanism=_hash_outside(mechanism), sign_kwargs={}
        )
        if spec.pre_sign_transform is not None:
            data = spec.pre_sign_transform(data)
        signature = private.sign(data, **spec.sign_kwargs)
        if spec.post_sign_transform is not None:
            signature = spec.post_sign_transform(signature)
        return bytes(signature), mechanism

    def signer_for(self, label: str, cert: x509.Certificate, chain: Sequence[x509.Certificate]) -> Signer:
        if not self.has_key(label):
            raise NotFound("key", label)
        return _ChainOnlyPkcs11Signer(
            self.session,
            key_label=label,
            signing_cert=cert,
            ca_chain=list(chain),
            prefer_pss=cert.public_key.algorithm == "rsa",
            signature_mechanism=signature_mechanism(cert.public_key),
            use_raw_mechanism=_hash_outside(signature_mechanism(cert.public_key)),
        )

    def private_key_handle(self, label: str) -> pkcs11.PrivateKey:
        """The token's handle (not the key material) — for audits of the key's attributes."""
        handle = self._find(label, ObjectClass.PRIVATE_KEY)
        if handle is None:
            raise NotFound("key", label)
        assert isinstance(handle, pkcs11.PrivateKey)
        return handle

    def _find(self, label: str, object_class: ObjectClass) -> Any:
        with _TOKEN_LOCK:
            found = list(self.session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label}))
        return found[0] if found else None


class FileKeystore:
    """Fallback for machines without a PKCS#11 module: one encrypted PKCS#8 PEM per key."""

    def __init__(self, directory: Path, password: str) -> None:
        if len(password) < 8:
            raise FailedPrecondition(
                f"{ENV_KEYSTORE_PASSWORD} must have at least 8 characters", "WEAK_KEYSTORE_PASSWORD"
            )
        self._directory = directory
        self._password = password.encode()

    @property
    def description(self) -> str:
        return f"encrypted PKCS#8 file keystore in {self._directory}"

    def has_key(self, label: str) -> bool:
        return self._path(label).exists()

    def generate_key(self, label: str, algorithm: KeyAlgorithm) -> keys.PublicKeyInfo:
        if self.has_key(label):
            raise FailedPrecondition(f"key {label!r} already exists in the keystore", "KEY_EXISTS")
        private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if algorithm.is_rsa:
            private = rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
        else:
            curve = ec.SECP384R1() if algorithm is KeyAlgorithm.ECDSA_P384 else ec.SECP256R1()
            private = ec.generate_private_key(curve)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._password),
        )
        self._directory.mkdir(parents=True, exist_ok=True)
        path = self._path(label)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        return self.public_key(label)

    def public_key(self, label: str) -> keys.PublicKeyInfo:
        der = (
            self._load(label)
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return keys.PublicKeyInfo.load(der)

    def sign_raw(self, label: str, data: bytes) -> tuple[bytes, algos.SignedDigestAlgorithm]:
        mechanism = signature_mechanism(self.public_key(label))
        signer = SimpleSigner(
            signing_cert=None,  # type: ignore[arg-type]  # not needed with an explicit mechanism
            signing_key=self._private_key_info(label),
            cert_registry=SimpleCertificateStore(),
            signature_mechanism=mechanism,
        )
        return signer.sign_raw(data, digest_of(mechanism)), mechanism

    def signer_for(self, label: str, cert: x509.Certificate, chain: Sequence[x509.Certificate]) -> Signer:
        return _PreparedSimpleSigner(
            signing_cert=cert,
            signing_key=self._private_key_info(label),
            cert_registry=_chain_store(chain),
            signature_mechanism=signature_mechanism(cert.public_key),
        )

    def _private_key_info(self, label: str) -> keys.PrivateKeyInfo:
        der = self._load(label).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return keys.PrivateKeyInfo.load(der)

    def _load(self, label: str) -> Any:
        path = self._path(label)
        if not path.exists():
            raise NotFound("key", label)
        return serialization.load_pem_private_key(path.read_bytes(), password=self._password)

    def _path(self, label: str) -> Path:
        return self._directory / f"{check_label(label)}.p8.pem"


def keystore_from_environment(environ: Mapping[str, str], file_keystore_dir: Path) -> Pkcs11Keystore | FileKeystore:
    """A PKCS#11 keystore when CITYDATA_PKCS11_MODULE is set, else the encrypted file keystore."""
    module_path = environ.get(ENV_MODULE, "").strip()
    if module_path:
        token_label = environ.get(ENV_TOKEN, "").strip()
        pin = environ.get(ENV_PIN, "")
        if not token_label or not pin:
            raise FailedPrecondition(
                f"{ENV_MODULE} is set, so {ENV_TOKEN} and {ENV_PIN} must be set too",
                "PKCS11_MISCONFIGURED",
            )
        return Pkcs11Keystore(module_path, token_label, pin)
    password = environ.get(ENV_KEYSTORE_PASSWORD, "")
    if not password:
        raise FailedPrecondition(
            f"no PKCS#11 module configured ({ENV_MODULE}) and no {ENV_KEYSTORE_PASSWORD} for the file keystore",
            "KEYSTORE_UNCONFIGURED",
        )
    return FileKeystore(file_keystore_dir, password)


def describe_keystore(keystore: Keystore) -> str:
    """The start-up log line naming the keystore in use."""
    return f"signing keystore: {keystore.description}"
