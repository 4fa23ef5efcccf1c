"""The North American Numbering Plan's area codes: the state or province of each, and every time zone it spans.

Both are numbering facts the US and Canadian packs need: a state's own rules (Florida's 20:00 end and its
3-calls-in-24-hours cap) follow the callee's area code, and a call must be legal in every zone the callee may be
in. phonenumbers gives one zone for most area codes (its timezone data is the base: ``Number.zones``); the
table below (:data:`ZONES`) gives every zone of the codes that straddle a boundary or that phonenumbers gets
wrong, and replaces phonenumbers' zones for them; an overlay (:data:`OVERLAYS`) takes the zones of the code it
overlays.

Sources:
- area code -> state or province: NANPA's area code assignments (https://nationalnanpa.com/area_codes/), as
  carried by libphonenumber's geocoding data for the +1 area codes (tests/policy/test_nanp.py checks every
  geographic US and Canadian area code phonenumbers knows is here, and that each agrees with its geocoder);
- second zones: the US time zone boundaries of 49 CFR part 71 (https://www.ecfr.gov/current/title-49/subtitle-A/
  part-71) and the counties each area code serves (NANPA area code maps); Canada: the provinces' time acts
  (Newfoundland and Labrador Standard Time Act; Labrador on Atlantic time), and shared RULES.md's list
  (850, 812/219, 541, 208, 605, 701, 308, 785, 620, 270, 423, 931, 906, 928, 709).
"""

from __future__ import annotations

from types import MappingProxyType

from gateway.numbers import Number

# Two-letter USPS / Canada Post codes; NT stands for the three territories of 867 (Yukon, Northwest
# Territories, Nunavut) and NS for 902/782, which serve Nova Scotia and Prince Edward Island.
_US = {
    "AK": "907",
    "AL": "205 251 256 334 659 938",
    "AR": "327 479 501 870",
    "AZ": "480 520 602 623 928",
    "CA": ("209 213 279 310 323 341 350 369 408 415 424 442 510 530 559 562 619 626 628 "
           "650 657 661 669 707 714 738 747 760 805 818 820 831 840 858 909 916 925 949 951"),
    "CO": "303 719 720 748 970 983",
    "CT": "203 475 860 959",
    "DC": "202 771",
    "DE": "302",
    "FL": "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 850 863 904 941 954",
    "GA": "229 404 470 478 678 706 762 770 912 943",
    "HI": "808",
    "IA": "319 515 563 641 712",
    "ID": "208 986",
    "IL": "217 224 309 312 331 447 464 618 630 708 730 773 779 815 847 872",
    "IN": "219 260 317 463 574 765 812 930",
    "KS": "316 620 785 913",
    "KY": "270 364 502 606 859",
    "LA": "225 318 337 504 985",
    "MA": "339 351 413 508 617 774 781 857 978",
    "MD": "227 240 301 410 443 667",
    "ME": "207",
    "MI": "231 248 269 313 517 586 616 734 810 906 947 989",
    "MN": "218 320 507 612 651 763 952",
    "MO": "235 314 417 557 573 636 660 816 975",
    "MS": "228 601 662 769",
    "MT": "406",
    "NC": "252 336 472 704 743 828 910 919 980 984",
    "ND": "701",
    "NE": "308 402 531",
    "NH": "603",
    "NJ": "201 551 609 640 732 848 856 862 908 973",
    "NM": "505 575",
    "NV": "702 725 775",
    "NY": "212 315 329 332 347 363 516 518 585 607 631 646 680 716 718 838 845 914 917 929 934",
    "OH": "216 220 234 283 326 330 380 419 440 513 567 614 740 937",
    "OK": "405 539 572 580 918",
    "OR": "458 503 541 971",
    "PA": "215 223 267 272 412 445 484 570 582 610 717 724 814 835 878",
    "RI": "401",
    "SC": "803 821 839 843 854 864",
    "SD": "605",
    "TN": "423 615 629 731 865 901 931",
    "TX": ("210 214 254 281 325 346 361 409 430 432 469 512 682 713 "
           "726 737 806 817 830 832 903 915 936 940 945 956 972 979"),
    "UT": "385 435 801",
    "VA": "276 434 540 571 686 703 757 804 826 948",
    "VT": "802",
    "WA": "206 253 360 425 509 564",
    "WI": "262 274 353 414 534 608 715 920",
    "WV": "304 681",
    "WY": "307",
}
_CA = {
    "AB": "368 403 587 780 825",
    "BC": "236 250 257 604 672 778",
    "MB": "204 431 584",
    "NB": "428 506",
    "NL": "709 879",
    "NS": "782 902",
    "NT": "867",
    "ON": "226 249 289 343 365 382 416 437 519 548 613 647 683 705 742 753 807 905 942",
    "QC": "263 273 354 367 418 438 450 468 514 579 581 819 873",
    "SK": "306 474 639",
}
# US territories with area codes of their own: phonenumbers gives them their own region; US law applies there.
US_TERRITORIES = MappingProxyType({"PR": "787 939", "VI": "340", "GU": "671", "AS": "684", "MP": "670"})

STATES: MappingProxyType[str, str] = MappingProxyType(
    {ac: st for table in (_US, US_TERRITORIES) for st, acs in table.items() for ac in acs.split()})
PROVINCES: MappingProxyType[str, str] = MappingProxyType(
    {ac: pr for pr, acs in _CA.items() for ac in acs.split()})

_CENTRAL, _EASTERN, _MOUNTAIN, _PACIFIC = "America/Chicago", "America/New_York", "America/Denver", "America/Los_Angeles"

_PHOENIX, _BOISE = "America/Phoenix", "America/Boise"
_BC = ("America/Vancouver", "America/Edmonton", "America/Dawson_Creek")
_SK = ("America/Regina", "America/Edmonton")
_QC_EAST = ("America/Toronto", "America/Halifax", "America/Blanc-Sablon")
_NL = ("America/St_Johns", "America/Goose_Bay")

# Area code -> every zone it spans. Where this table knows a code, its zones REPLACE phonenumbers' (which gives
# one zone for most codes and a wrong one for some: 879 as Puerto Rico, 474 as Winnipeg); a call must be legal
# in all of them. Sources: the US time zone boundaries of 49 CFR part 71 (https://www.ecfr.gov/current/title-49/
# subtitle-A/part-71) and the counties each area code serves (NANPA's area code maps,
# https://nationalnanpa.com/area_codes/); Canada: the provinces' time acts and the CRTC's area code maps
# (https://crtc.gc.ca/eng/phone/numbering/). An overlay (below) takes its parent's zones.
ZONES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({
    # Florida: the panhandle west of the Apalachicola River is Central, Tallahassee and east Eastern.
    "850": (_CENTRAL, _EASTERN),
    # Indiana: the north-west (Lake, Porter, LaPorte, Jasper, Newton) and the south-west (Evansville) are
    # Central, the rest Eastern; Starke County (574) is Central (America/Indiana/Knox), Perry (812) too.
    "219": (_CENTRAL, _EASTERN), "574": (_CENTRAL, _EASTERN), "812": (_CENTRAL, _EASTERN),
    # Oregon: Malheur County (Ontario) is Mountain.
    "541": (_PACIFIC, _BOISE),
    # Idaho: the panhandle (north of the Salmon River) is Pacific, the south Mountain.
    "208": (_BOISE, _PACIFIC),
    # Nevada: West Wendover (Elko County) keeps Mountain time.
    "775": (_PACIFIC, _MOUNTAIN),
    # South Dakota, North Dakota, Nebraska, Kansas: their western counties are Mountain.
    "605": (_CENTRAL, _MOUNTAIN), "701": (_CENTRAL, _MOUNTAIN), "308": (_CENTRAL, _MOUNTAIN),
    "785": (_CENTRAL, _MOUNTAIN), "620": (_CENTRAL, _MOUNTAIN),
    # Texas: El Paso and Hudspeth counties (915) are Mountain; west Texas (432) Central and Mountain.
    "915": (_MOUNTAIN,), "432": (_CENTRAL, _MOUNTAIN),
    # Kentucky: the west (270) is Central, the east Eastern; Clinton County (606) is Central.
    "270": (_CENTRAL, _EASTERN), "606": (_CENTRAL, _EASTERN),
    # Tennessee: East Tennessee (423) is Eastern but for Marion and Bledsoe; Middle Tennessee's 931 is Central
    # but for counties on the Eastern side of the line.
    "423": (_CENTRAL, _EASTERN), "931": (_CENTRAL, _EASTERN),
    # Michigan's Upper Peninsula: the four counties bordering Wisconsin are Central.
    "906": (_CENTRAL, _EASTERN),
    # Arizona keeps standard time all year (America/Phoenix) but the Navajo Nation keeps daylight time.
    "928": (_PHOENIX, _MOUNTAIN),
    # Alaska: Alaska time, and the Aleutians west of 169°30' on Hawaii-Aleutian time.
    "907": ("America/Anchorage", "America/Adak"),
    # Newfoundland (UTC-3:30) and Labrador (UTC-4, Atlantic: America/Goose_Bay).
    "709": _NL,
    # North-western Ontario: Thunder Bay is Eastern, Kenora and the west Central.
    "807": ("America/Toronto", "America/Winnipeg"),
    # Saskatchewan keeps Central standard time (America/Regina); Lloydminster keeps Alberta's time.
    "306": _SK,
    # British Columbia: the East Kootenay is Mountain; the Peace River region keeps Mountain standard time.
    "250": _BC, "604": ("America/Vancouver",),
    # Yukon (UTC-7 all year), the Northwest Territories (Mountain) and Nunavut (Mountain to Eastern).
    "867": ("America/Whitehorse", "America/Edmonton", "America/Winnipeg", "America/Toronto"),
    # Quebec's 418 family: the Magdalen Islands keep Atlantic time, the Lower North Shore Atlantic standard time.
    "418": _QC_EAST,
})

# Overlay -> the code it overlays (NANPA's and the CRTC's overlay plans): it serves the same place, so it spans
# the same zones. Every overlay of a code in ZONES is here (tests/policy/test_nanp.py sweeps every area code);
# British Columbia's 778, 236, 672 and 257 overlay both 604 and 250: the wider (250) is named.
OVERLAYS: MappingProxyType[str, str] = MappingProxyType({
    "448": "850", "930": "812", "458": "541", "986": "208", "364": "270", "879": "709",
    "639": "306", "474": "306", "778": "250", "236": "250", "672": "250", "257": "250",
    "581": "418", "367": "418",
})
ZONES = MappingProxyType({**ZONES, **{o: ZONES[p] for o, p in OVERLAYS.items()}})


def area_code(number: Number) -> str:
    """The NANP area code of a +1 number ("" for any other)."""
    e164 = number.e164
    return e164[2:5] if e164.startswith("+1") and len(e164) == 12 else ""


def state_of(number: Number) -> str:
    """The US state or territory of a +1 number from its area code ("" when not a US geographic one)."""
    return STATES.get(area_code(number), "")


def province_of(number: Number) -> str:
    """The Canadian province or territory of a +1 number from its area code ("" when not a Canadian one)."""
    return PROVINCES.get(area_code(number), "")


def zones_of(number: Number) -> tuple[str, ...]:
    """Every zone the callee may be in: the table's zones for its area code where it knows them (an overlay's
    are its parent's), else phonenumbers'."""
    zones = _SORTED.get(area_code(number))
    return number.zones if zones is None else zones


_SORTED = {code: tuple(sorted(set(zones))) for code, zones in ZONES.items()}
