"""Kenyan mobile numbers: normalise to ``2547XXXXXXXX`` / ``2541XXXXXXXX`` and name the network.

Parsing and validity come from ``phonenumbers``; the network comes from prefix tables,
because M-Pesa only works on Safaricom lines and an allow-list is safer than a deny-list
(daraja.md §9).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import phonenumbers

from pesaswitch.errors import InvalidPhone, UnsupportedNetwork
from pesaswitch.kit.crypto import secrets_equal


def _ranges(*spans: tuple[int, int]) -> frozenset[str]:
    return frozenset(f"{n:03d}" for lo, hi in spans for n in range(lo, hi + 1))


# Three-digit prefixes of the national significant number (the digits after 0 / 254).
SAFARICOM = _ranges(
    (700, 729), (740, 749), (757, 759), (768, 769), (790, 799), (110, 115),
    (118, 119), (140, 143), (180, 182),
)  # fmt: skip
AIRTEL = _ranges((730, 739), (750, 756), (780, 789), (100, 102))
TELKOM = _ranges(
    (770, 779),
)
EQUITEL = _ranges(
    (763, 766),
)
NETWORKS = (("safaricom", SAFARICOM), ("airtel", AIRTEL), ("telkom", TELKOM), ("equitel", EQUITEL))

_SEPARATORS = re.compile(r"[\s\-().]")
_PLAUSIBLE = re.compile(r"^\+?\d{9,12}$")


@dataclass(frozen=True, slots=True)
class PhoneCheck:
    original: str
    normalized: str | None
    valid: bool
    network: str | None


def check_phone(raw: str) -> PhoneCheck:
    """Classify without raising: the validate endpoint reports, payments enforce."""
    compact = _SEPARATORS.sub("", raw.strip())
    if not _PLAUSIBLE.match(compact):
        return PhoneCheck(raw, None, False, None)
    # Bare national forms (7XXXXXXXX, 1XXXXXXXX) and 254… without "+" are read as Kenyan.
    if len(compact) == 9 and compact[0] in "17":
        compact = "0" + compact
    elif len(compact) == 12 and compact.startswith("254"):
        compact = "+" + compact
    try:
        parsed = phonenumbers.parse(compact, "KE")
    except phonenumbers.NumberParseException:
        return PhoneCheck(raw, None, False, None)
    national = str(parsed.national_number)
    # Kenyan mobile numbers are 9 national digits starting 7 or 1; 020… is a Nairobi landline.
    if (
        parsed.country_code != 254
        or len(national) != 9
        or national[0] not in "17"
        or not phonenumbers.is_valid_number(parsed)
    ):
        return PhoneCheck(raw, None, False, None)
    normalized = f"254{national}"
    network = next((name for name, prefixes in NETWORKS if national[:3] in prefixes), None)
    return PhoneCheck(raw, normalized, network == "safaricom", network or "unknown")


def normalize_mpesa_phone(raw: str) -> str:
    """Return ``254…`` for a Safaricom number or raise a 422 naming what is wrong."""
    result = check_phone(raw)
    if result.normalized is None:
        raise InvalidPhone(f"'{mask_phone(raw)}' is not a valid Kenyan mobile number")
    if not result.valid:
        raise UnsupportedNetwork(
            f"{mask_phone(result.normalized)} is on {result.network}, not Safaricom M-Pesa",
            network=result.network,
        )
    return result.normalized


def mask_phone(phone: str) -> str:
    """``254708374149`` → ``2547******149``: enough to recognise, not to dial."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:4] + "*" * (len(digits) - 7) + digits[-3:]


_MASKED = re.compile(r"^(\d{4})[\s*]+(\d{3})$")
_HASHED = re.compile(r"^[0-9a-fA-F]{64}$")


def payer_could_be(shown: str, phone: str) -> bool:
    """Whether the payer Daraja reports in a C2B notice can be ``phone`` (``2547…``):
    whole, masked as C2B v2 sends it (``2547 ***** 149``) or hashed as v1 does (SHA-256
    of the number). A payer left out or in a form not known contradicts nothing."""
    text = shown.strip()
    if not text:
        return True
    if _HASHED.match(text):
        return secrets_equal(text.lower(), hashlib.sha256(phone.encode()).hexdigest())
    masked = _MASKED.match(text)
    if masked:
        return phone.startswith(masked.group(1)) and phone.endswith(masked.group(2))
    digits = re.sub(r"\D", "", text)
    if len(digits) == 12:
        return digits == phone
    return True
