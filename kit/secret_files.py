"""Random secrets kept in 0600 files, created on first use: the development-mode service key and
the file keystore's password. Several processes may start at once; the first one writes."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_secret_file(path: Path) -> bool:
    """Creates `path` with a fresh random secret unless it exists; True when it was missing."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return True  # another process created it a moment ago: use theirs
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32))
    return True
