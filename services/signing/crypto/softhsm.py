"""SoftHSM2 tokens for development and tests: a token directory we own, never the system one.

Used by the test fixtures and by the dev bootstrap. SoftHSM reads SOFTHSM2_CONF when the
PKCS#11 library is first initialised in a process, so set the environment before any
keystore opens the module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SOFTHSM_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


class SoftHsmUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class SoftHsmToken:
    module_path: str
    conf_path: Path
    token_label: str
    user_pin: str

    def environment(self) -> dict[str, str]:
        """The variables that make `keystore_from_environment` open this token."""
        return {
            "SOFTHSM2_CONF": str(self.conf_path),
            "CITYDATA_PKCS11_MODULE": self.module_path,
            "CITYDATA_PKCS11_TOKEN": self.token_label,
            "CITYDATA_PKCS11_PIN": self.user_pin,
        }


def find_softhsm_module() -> str:
    for candidate in SOFTHSM_MODULE_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    raise SoftHsmUnavailableError("libsofthsm2.so not found; install the softhsm2 Debian package")


def write_softhsm_conf(base_dir: Path) -> Path:
    """A softhsm2.conf whose token directory is `base_dir/tokens`; returns the conf path."""
    token_dir = base_dir / "tokens"
    token_dir.mkdir(parents=True, exist_ok=True)
    conf_path = base_dir / "softhsm2.conf"
    conf_path.write_text(
        f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        encoding="utf-8",
    )
    return conf_path


def token_exists(conf_path: Path, token_label: str) -> bool:
    listing = _softhsm_util(conf_path, "--show-slots")
    return _label_listed(listing, token_label)


def init_softhsm_token(base_dir: Path, token_label: str, user_pin: str, so_pin: str) -> SoftHsmToken:
    """Create (or reuse) a token labelled `token_label` in `base_dir`; idempotent."""
    if len(user_pin) < 4 or len(so_pin) < 4:
        raise ValueError("SoftHSM PINs need at least 4 characters")
    module_path = find_softhsm_module()
    conf_path = write_softhsm_conf(base_dir)
    if not token_exists(conf_path, token_label):
        _softhsm_util(
            conf_path,
            "--init-token",
            "--free",
            "--label",
            token_label,
            "--pin",
            user_pin,
            "--so-pin",
            so_pin,
        )
    return SoftHsmToken(module_path, conf_path, token_label, user_pin)


def _label_listed(listing: str, token_label: str) -> bool:
    for line in listing.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Label" and value.strip() == token_label:
            return True
    return False


def _softhsm_util(conf_path: Path, *args: str) -> str:
    tool = shutil.which("softhsm2-util")
    if tool is None:
        raise SoftHsmUnavailableError("softhsm2-util not found; install the softhsm2 Debian package")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf_path)}
    completed = subprocess.run([tool, *args], env=env, capture_output=True, text=True, check=False, timeout=60)
    if completed.returncode != 0:
        # The PINs are arguments, not output, so the error text is safe to show.
        raise SoftHsmUnavailableError(f"softhsm2-util {args[0]} failed: {completed.stderr.strip()}")
    return completed.stdout
