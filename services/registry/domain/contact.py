"""Optional contact details: Vietnamese phone numbers and e-mail addresses."""

from __future__ import annotations

import re

from services.registry.domain.checked import Checked, bad, good

# National numbers since the 2018 renumbering: mobile 0 + {3,5,7,8,9} + 8 digits,
# landline 02 + area code and subscriber number, 11 digits in all (e.g. 028 3829 1234).
_MOBILE = re.compile(r"0[35789][0-9]{8}")
_LANDLINE = re.compile(r"02[0-9]{9}")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")

EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit less the angle brackets
EMAIL_LOCAL_MAX_LENGTH = 64
_EMAIL_LOCAL = re.compile(r"[^\s@\x00-\x1f\x7f]+")
_DOMAIN_LABEL = re.compile(r"[^\W_]+(?:-+[^\W_]+)*")  # letters/digits, inner hyphens
_DOMAIN_LABEL_MAX_LENGTH = 63


def parse_phone(raw: str | None, field: str = "phone") -> Checked[str | None]:
    """E.164 ("+84283829...") for a Vietnamese mobile or landline number; blank means none."""
    if raw is None or not raw.strip():
        return good(None)
    compact = _PHONE_SEPARATORS.sub("", raw)
    national = "0" + compact[3:] if compact.startswith("+84") else compact
    if _MOBILE.fullmatch(national) or _LANDLINE.fullmatch(national):
        return good("+84" + national[1:])
    return bad(
        field,
        "not a Vietnamese phone number: expected a mobile number 03x/05x/07x/08x/09x "
        "(10 digits) or a landline 02x (11 digits), starting with 0 or +84",
    )


def parse_email(raw: str | None, field: str = "email") -> Checked[str | None]:
    """A plausible address with its domain lower-cased; blank means none.

    Only the shape is checked; whether the mailbox exists is not this registry's business.
    """
    if raw is None or not raw.strip():
        return good(None)
    email = raw.strip()
    problem = _email_problem(email)
    if problem:
        return bad(field, problem)
    local, domain = email.split("@")
    return good(f"{local}@{domain.lower()}")


def _email_problem(email: str) -> str | None:
    if len(email) > EMAIL_MAX_LENGTH:
        return f"an e-mail address is at most {EMAIL_MAX_LENGTH} characters"
    if email.count("@") != 1:
        return "an e-mail address has exactly one @"
    local, domain = email.split("@")
    if not _EMAIL_LOCAL.fullmatch(local) or len(local) > EMAIL_LOCAL_MAX_LENGTH:
        return "the part before @ must be 1-64 characters without spaces"
    labels = domain.split(".")
    if len(labels) < 2 or not all(map(_is_domain_label, labels)):
        return "the domain after @ must be a name with a dot, such as example.vn"
    return None


def _is_domain_label(label: str) -> bool:
    return len(label) <= _DOMAIN_LABEL_MAX_LENGTH and _DOMAIN_LABEL.fullmatch(label) is not None
