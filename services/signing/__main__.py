"""`python -m services.signing`: runs the signing service (settings: see services/signing/app.py)."""

from __future__ import annotations

from services.signing.app import main

if __name__ == "__main__":
    main()
