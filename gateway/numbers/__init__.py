"""Normalisation of what a dialplan dials into a :class:`Number`.

The home country (France) has a hand-written fast path: a dialplan writes the
same number a dozen ways (``0612345678``, ``+33 6 12 34 56 78``,
``0033612345678``, an outside-line ``9`` in front) and every one must give the
same registry key, in about a microsecond. Overseas departments dialled
nationally (``0692…``) look like mainland numbers but belong to other country
codes (+262, +590, +594, +596), which phonenumbers cannot infer from a
``FR``-region parse: the table below does it.

NANP (+1) and UK (+44) numbers, and the national forms of a US, Canadian or UK
home country, have a fast path too: phonenumbers' answer (region, type, time
zones) depends on a number's first six digits only, so ``blocks.py`` asks it
once per class of numbers it cannot tell apart, the first time an area code is
seen, and reads every other number of the area code off a table. Everything
else goes through phonenumbers, cached.

The registry key of a number is its E.164 form as an integer
(``+33612345678`` -> ``33612345678``): it fits a 64-bit roaring bitmap and
is the same for every spelling.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import timezone as pn_timezone
from phonenumbers.phonemetadata import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.tzdata import TIMEZONE_DATA

from gateway.numbers.blocks import Plan, Unsupported

__all__ = [
    "EMERGENCY",
    "FR_EMERGENCY",
    "SHORT",
    "Kind",
    "Normaliser",
    "Number",
    "mask",
]


class Kind(enum.StrEnum):
    MOBILE = "mobile"
    FIXED = "fixed"
    VOIP = "voip"  # French 09 "multi-purpose" numbers
    SPECIAL = "special"  # premium / shared cost / toll free (08, 118XYZ)
    M2M = "m2m"
    EMERGENCY = "emergency"
    SHORT = "short"  # short service numbers (3xxx, 10xx): never canvassing targets
    OTHER = "other"  # a valid number whose type phonenumbers could not tell
    INVALID = "invalid"


# Emergency and public-interest short numbers in France (RULES.md): always allowed.
FR_EMERGENCY: frozenset[str] = frozenset(
    {"15", "17", "18", "112", "114", "115", "119", "191", "196", "197", "116000", "116006", "116111",
     "116117", "116123"}
)


# Emergency numbers of the other home countries with a jurisdiction pack, always allowed:
# - US: 911 (47 U.S.C. 251(e)(3)) and 988, the Suicide & Crisis Lifeline (National Suicide Hotline Designation
#   Act of 2020, FCC 20-100): a crisis line is life safety, so it is treated as an emergency number; and 112,
#   which mobile networks route to 911 (3GPP TS 22.101): blocking it as invalid could only do harm;
# - Canada: 911 and 988 (CRTC 2022-234, in service since 30 Nov 2023), and 112 likewise;
# - United Kingdom: 999 and 112 (Communications Act 2003 s. 46; Ofcom General Condition A3).
# Elsewhere: 112, 911 and 999, the numbers most networks route to emergency services.
EMERGENCY: dict[str, frozenset[str]] = {
    "FR": FR_EMERGENCY,
    "US": frozenset({"911", "988", "112"}),
    "CA": frozenset({"911", "988", "112"}),
    "GB": frozenset({"999", "112"}),
}
DEFAULT_EMERGENCY = frozenset({"112", "911", "999"})
# Short service numbers (never canvassing targets), allowed like France's 3xxx: the NANP's N11 codes (211
# community services, 311 city services, 411 directory, 511 traffic, 611 repairs, 711 relay for the deaf,
# 811 call before you dig) and the UK's 101 (police, non-emergency), 105 (power cut), 111 (NHS) and the EU
# harmonised 116 xxx numbers (116 000 missing children, 116 111 child helpline, 116 123 Samaritans).
_N11 = frozenset({"211", "311", "411", "511", "611", "711", "811"})
SHORT: dict[str, frozenset[str]] = {
    "US": _N11,
    "CA": _N11,
    "GB": frozenset({"101", "105", "111", "116000", "116111", "116117", "116123"}),
}


class Number(NamedTuple):
    """A dialled number, normalised. ``key`` is 0 when there is no E.164 form (short, invalid).

    A NamedTuple rather than a frozen dataclass: it is built on every call, and a tuple
    is built several times faster while staying immutable.
    """

    key: int
    e164: str
    region: str  # ISO region ("FR", "RE", "GP", ...), "" when unknown
    kind: Kind
    zones: tuple[str, ...]  # IANA time zones the callee may be in; the call must be legal in all
    short: str = ""  # the short number dialled, for EMERGENCY and SHORT

    @property
    def is_valid(self) -> bool:
        return self.kind is not Kind.INVALID

    @property
    def masked(self) -> str:
        return mask(self.e164 or self.short)


def mask(number: str) -> str:
    """Mask a number for INFO logs and the supervisor page: keep the prefix and the last two digits."""
    if len(number) <= 4:
        return number
    head = 5 if number.startswith("+") else 4
    return number[:head] + "•" * (len(number) - head - 2) + number[-2:]


_LONG_DIGITS = re.compile(r"(?<!\d)\+?\d{6,}")


def mask_digits(text: str) -> str:
    """Mask every run of six digits or more in free text (a channel name, a quoted bad line, an error)."""
    return _LONG_DIGITS.sub(lambda m: mask(m.group(0)), text)


INVALID = Number(0, "", "", Kind.INVALID, ())

_PARIS = ("Europe/Paris",)

# National (0-prefixed) overseas prefixes -> (country code, region, zones).
# Source: ARCEP numbering plan; see shared RULES.md "Numbering plan".
_OVERSEAS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "262": ("262", "RE", ("Indian/Reunion",)),
    "263": ("262", "RE", ("Indian/Reunion",)),
    "692": ("262", "RE", ("Indian/Reunion",)),
    "693": ("262", "RE", ("Indian/Reunion",)),
    "269": ("262", "YT", ("Indian/Mayotte",)),
    "639": ("262", "YT", ("Indian/Mayotte",)),
    "590": ("590", "GP", ("America/Guadeloupe",)),
    "690": ("590", "GP", ("America/Guadeloupe",)),
    "691": ("590", "GP", ("America/Guadeloupe",)),
    "594": ("594", "GF", ("America/Cayenne",)),
    "694": ("594", "GF", ("America/Cayenne",)),
    "596": ("596", "MQ", ("America/Martinique",)),
    "696": ("596", "MQ", ("America/Martinique",)),
    "697": ("596", "MQ", ("America/Martinique",)),
}
# The same, looked up by E.164 digits: "262692..." -> entry.
_OVERSEAS_BY_CC: dict[str, tuple[str, str, tuple[str, ...]]] = {
    cc + nsn: entry for nsn, entry in _OVERSEAS.items() for cc in (entry[0],)
}
_OVERSEAS_CCS = frozenset(e[0] for e in _OVERSEAS.values())

# Characters a dialplan or a spreadsheet puts between digits.
_STRIP = str.maketrans("", "", " .-()/\t\u00a0\u202f")


_FAST_KINDS = {"1": Kind.FIXED, "2": Kind.FIXED, "3": Kind.FIXED, "4": Kind.FIXED, "5": Kind.FIXED,
               "6": Kind.MOBILE, "7": Kind.MOBILE, "8": Kind.SPECIAL, "9": Kind.VOIP}


def _fr_kind(nsn: str) -> Kind:
    d = nsn[0]
    if d in "12345":
        return Kind.FIXED
    if d == "6":
        return Kind.MOBILE
    if d == "7":
        return Kind.M2M if nsn[1] == "0" else Kind.MOBILE
    if d == "8":
        return Kind.SPECIAL
    if d == "9":
        return Kind.VOIP
    return Kind.INVALID


def _from_fr_nsn(nsn: str) -> Number:
    """A French national significant number (9 digits, or 13 for 0700 M2M) -> Number."""
    n = len(nsn)
    if n == 9 and nsn.isdigit() and nsn[0] != "0":
        overseas = _OVERSEAS.get(nsn[:3])
        if overseas is not None:
            cc, region, zones = overseas
            e164 = "+" + cc + nsn
            return Number(int(cc + nsn), e164, region, Kind.MOBILE if nsn[0] == "6" else Kind.FIXED, zones)
        kind = _fr_kind(nsn)
        if kind is Kind.M2M:
            return INVALID  # 0700 numbers have 14 digits, not 10
        return Number(int("33" + nsn), "+33" + nsn, "FR", kind, _PARIS)
    if n == 13 and nsn.startswith("700") and nsn.isdigit():
        return Number(int("33" + nsn), "+33" + nsn, "FR", Kind.M2M, _PARIS)
    return INVALID


_PN_KINDS = {
    phonenumbers.PhoneNumberType.MOBILE: Kind.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE: Kind.FIXED,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: Kind.FIXED,
    phonenumbers.PhoneNumberType.VOIP: Kind.VOIP,
    phonenumbers.PhoneNumberType.TOLL_FREE: Kind.SPECIAL,
    phonenumbers.PhoneNumberType.PREMIUM_RATE: Kind.SPECIAL,
    phonenumbers.PhoneNumberType.SHARED_COST: Kind.SPECIAL,
    phonenumbers.PhoneNumberType.UAN: Kind.SPECIAL,
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: Kind.MOBILE,
    phonenumbers.PhoneNumberType.PAGER: Kind.OTHER,
    phonenumbers.PhoneNumberType.VOICEMAIL: Kind.OTHER,
}


@lru_cache(maxsize=4096)
def _zones_for(e164_prefix: str) -> tuple[str, ...]:
    """Time zones for a number prefix: phonenumbers' geocoder is prefix based, so cache by prefix."""
    try:
        parsed = phonenumbers.parse(e164_prefix.ljust(12, "0") if len(e164_prefix) < 12 else e164_prefix)
    except phonenumbers.NumberParseException:
        return ()
    zones = pn_timezone.time_zones_for_number(parsed)
    return tuple(sorted(z for z in zones if z != "Etc/Unknown"))


@lru_cache(maxsize=65536)
def _international(digits: str) -> Number:
    """A number written with its country code, without '+': the slow, cached path."""
    cc_entry = None
    if digits[:3] in _OVERSEAS_CCS:
        cc_entry = _OVERSEAS_BY_CC.get(digits[:6])
    if cc_entry is not None and len(digits) == 12:
        _cc, region, zones = cc_entry
        nsn = digits[3:]
        return Number(int(digits), "+" + digits, region, Kind.MOBILE if nsn[0] == "6" else Kind.FIXED, zones)
    if digits.startswith("33"):
        return _from_fr_nsn(digits[2:])
    return parse_e164(digits)


def parse_e164(digits: str) -> Number:
    """phonenumbers' reading of a number written with its country code, without '+' (uncached): the reference
    every fast path must agree with."""
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return INVALID
    if not phonenumbers.is_valid_number(parsed):
        return INVALID
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    kind = _PN_KINDS.get(phonenumbers.number_type(parsed), Kind.OTHER)
    region = phonenumbers.region_code_for_number(parsed) or ""
    zones = tuple(sorted(z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown"))
    return Number(int(e164[1:]), e164, region, kind, zones)


def _plan(cc: str) -> Plan[Number] | None:
    """The block plan of a country code from phonenumbers' metadata (None: its patterns were not understood).

    Ten-digit national significant numbers (NSN), in blocks of a three-digit area code (NANP) or prefix (UK),
    split by the next three digits (the NXX). A UK NSN of 7 or 9 digits (0800 1111, 016977 2345) and whatever
    the metadata reads deeper than six digits keep the full parse."""
    regions = COUNTRY_CODE_TO_REGION_CODE[int(cc)]
    full: list[str] = []
    prefixes: list[str] = []
    for region in regions:
        meta = PhoneMetadata.metadata_for_region(region)
        if meta is None:
            continue
        for desc in (meta.general_desc, meta.fixed_line, meta.mobile, meta.toll_free, meta.premium_rate,
                     meta.shared_cost, meta.personal_number, meta.voip, meta.pager, meta.uan, meta.voicemail):
            if desc is not None and desc.national_number_pattern:
                full.append(desc.national_number_pattern)
        if meta.leading_digits:
            prefixes.append(meta.leading_digits)
    prefixes += [k[len(cc):] for k in TIMEZONE_DATA if k.startswith(cc) and len(k) > len(cc)]
    # A number is parsed with the metadata of its country code's main region, national prefix included.
    main = PhoneMetadata.metadata_for_region(regions[0])
    fallback = [main.national_prefix_for_parsing] if main is not None and main.national_prefix_for_parsing else []
    try:
        return Plan(10, 6, 3, full, prefixes, fallback, lambda nsn: parse_e164(cc + nsn))
    except Unsupported:
        return None


_PLANS: dict[str, Plan[Number] | None] = {}


def _no_table(nsn: str) -> None:
    return None


# Country code -> its plan's look-up (lazy: the plan is built on the first number of the country code).
_LOOKUPS: dict[str, Callable[[str], Number | None]] = {}


def _lookup(cc: str) -> Callable[[str], Number | None]:
    plan = _PLANS[cc] = _plan(cc)
    found = _LOOKUPS[cc] = _no_table if plan is None else plan.lookup
    return found


def fast_e164(digits: str) -> Number | None:
    """A NANP or UK number with its country code, without '+', read off the block tables (None: not one the
    tables cover; parse it in full). Same Number as :func:`parse_e164`, field by field."""
    n = len(digits)
    if not (digits.isdigit() and digits.isascii()):  # the tables index ASCII digits ("٣" is a digit too)
        return None
    if n == 11 and digits[0] == "1":
        rep = (_LOOKUPS.get("1") or _lookup("1"))(digits[1:])
    elif n == 12 and digits[0] == "4" and digits[1] == "4":
        rep = (_LOOKUPS.get("44") or _lookup("44"))(digits[2:])
    else:
        return None
    if rep is None:
        return None
    if not rep.key:
        return INVALID
    return Number(int(digits), "+" + digits, rep.region, rep.kind, rep.zones)


def _fr_prefixes(nsn: str) -> tuple[str, ...]:
    """E.164 digit prefixes of the French numbers whose national significant number starts with ``nsn``."""
    entry = _OVERSEAS.get(nsn[:3])
    if entry is not None:
        return (entry[0] + nsn,)
    return ("33" + nsn, *(cc + o for o, (cc, _, _) in _OVERSEAS.items() if o.startswith(nsn)))


class Normaliser:
    """Turns dialled strings into Numbers for one home country.

    ``outside_line`` lists prefixes a PBX puts before external numbers
    (``"9"``, ``"0"``); they are removed only when what follows is a complete number,
    so that ``0612345678`` is never read as outside-line ``0`` + ``612345678``.
    """

    __slots__ = ("_emergency", "_fr", "_home", "_nanp", "_outside", "_short")

    def __init__(
        self,
        home_country: str = "FR",
        outside_line: tuple[str, ...] = (),
        emergency: frozenset[str] | None = None,
    ) -> None:
        self._home = home_country.upper()
        self._fr = self._home == "FR"
        self._nanp = self._home in ("US", "CA")
        self._outside = tuple(p for p in outside_line if p)
        self._emergency = emergency if emergency is not None else EMERGENCY.get(self._home, DEFAULT_EMERGENCY)
        self._short = SHORT.get(self._home, frozenset())

    @property
    def home_country(self) -> str:
        return self._home

    def parse(self, dialled: str) -> Number:
        # Fast path: ten national digits, the way nearly every French dialplan writes a number.
        if self._fr and len(dialled) == 10 and dialled[0] == "0" and dialled.isdigit() and dialled.isascii():
            d1 = dialled[1]
            kind = _FAST_KINDS.get(d1)
            if kind is not None and dialled[1:4] not in _OVERSEAS and dialled[1:3] != "70":
                return Number(33_000_000_000 + int(dialled), "+33" + dialled[1:], "FR", kind, _PARIS)
        if dialled[:1] == "+":  # +1 and +44 numbers as a dialplan writes them: straight to the block tables
            fast = fast_e164(dialled[1:])
            if fast is not None and fast.key:
                return fast
        s = dialled.translate(_STRIP)
        if not s.isascii():
            # Only ASCII digits are digits: str.isdigit() also says yes to "６", "٦" or "²", which int() reads
            # as 6 (or refuses, "²"): "34６٦" must not become the short number 3466, nor "06²…" a traceback.
            return INVALID
        num = self._parse_clean(s)
        if num.kind is Kind.INVALID and self._outside:
            for prefix in self._outside:
                if s.startswith(prefix) and len(s) > len(prefix):
                    num = self._parse_clean(s[len(prefix):])
                    if num.kind is not Kind.INVALID:
                        return num
        return num

    def prefix(self, text: str) -> tuple[str, ...] | None:
        """The E.164 digit prefixes that a written prefix covers, read the way numbers are (None: not one).

        A national prefix covers the numbers that start with it, wherever they normalise: ``0590`` is
        +590 590 (Guadeloupe), not +33 590; ``06`` covers the mainland's +33 6 and the overseas mobiles
        dialled 0639 and 069x (+262, +590, +594, +596).
        """
        s = text.strip().rstrip("*xX").translate(_STRIP)
        if not s.isascii():  # "０６" is not the prefix 06 (see parse)
            return None
        if s.startswith("+"):
            digits = s[1:]
        elif s.startswith("00"):
            digits = s[2:]
        elif s.startswith("0") and self._fr:
            digits = "33" + s[1:]
        else:
            digits = s
        # +33 followed by an overseas national prefix is that overseas number, as parse() reads it.
        found = _fr_prefixes(digits[2:]) if digits.startswith("33") else (digits,)
        if not all(d.isdigit() and 1 <= len(d) <= 15 and d[0] != "0" for d in found):
            return None
        return found

    def _parse_clean(self, s: str) -> Number:
        if not s:
            return INVALID
        if s[0] == "+":
            digits = s[1:]
            if not (digits.isdigit() and 4 <= len(digits) <= 15):
                return INVALID
            return fast_e164(digits) or _international(digits)  # a Number is never falsy: None falls through
        if not s.isdigit():
            return INVALID
        n = len(s)
        if n <= 6:
            if s in self._emergency:
                return Number(0, "", self._home, Kind.EMERGENCY, (), short=s)
            if self._fr and ((n == 4 and s[0] == "3") or (n == 4 and s.startswith("10"))
                             or (n == 6 and s.startswith("118"))):
                return Number(0, "", "FR", Kind.SHORT, (), short=s)
            if s in self._short:
                return Number(0, "", self._home, Kind.SHORT, (), short=s)
            return INVALID
        if s.startswith("00"):
            digits = s[2:]
            return (fast_e164(digits) or _international(digits)) if 4 <= len(digits) <= 15 else INVALID
        if self._fr:
            if s[0] == "0":
                return _from_fr_nsn(s[1:])
            if n == 11 and s.startswith("33"):
                return _from_fr_nsn(s[2:])
            if n == 12 and s[:3] in _OVERSEAS_CCS:
                return _international(s)
            return INVALID
        return self._national_other(s)

    def _national_other(self, s: str) -> Number:
        n = len(s)
        fast = None
        if self._nanp:  # 2125550123, 12125550123: the +1 number phonenumbers reads them as
            if n == 10:
                fast = fast_e164("1" + s)
            elif n == 11 and s[0] == "1":
                fast = fast_e164(s)
        elif self._home == "GB" and n == 11 and s[0] == "0":  # 02079460000: +44 2079460000
            fast = fast_e164("44" + s[1:])
        if fast is not None and fast.kind is not Kind.INVALID:
            return fast
        return _national(s, self._home)


@lru_cache(maxsize=65536)
def _national(s: str, home: str) -> Number:
    """A number in another home country's national form (US: ``2125550123``, ``12125550123``): cached, as the
    international path is, since phonenumbers parses in tens of microseconds."""
    try:
        parsed = phonenumbers.parse(s, home)
    except phonenumbers.NumberParseException:
        return INVALID
    if not phonenumbers.is_valid_number(parsed):
        return INVALID
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return _international(e164[1:])
