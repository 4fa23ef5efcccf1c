"""Each pack's law as people read it: the ``dnc-gateway law`` command's sections, built from the pack's own data.

Nothing here is law: every value is read from the pack (hours, holidays, caps, windows, lifetimes, legal list
ages, exemptions, states' rules, zones) or from the numbering module (emergency numbers), each with the
citation the pack gives and whether it was verified. The docs' law pages are this module's Markdown, so they
never drift from the code (tests/policy/test_law.py checks the committed pages).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from gateway.numbers import EMERGENCY, SHORT
from gateway.policy.jurisdiction import Cite, Hours, Jurisdiction
from gateway.policy.nanp import OVERLAYS, PROVINCES, STATES, ZONES

TITLES = {"FR": "France", "US": "United States", "CA": "Canada", "GB": "United Kingdom"}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class Item:
    """One rule: what it says, where it was read, whether it was read there, and the setting that changes it."""

    topic: str
    rule: str
    source: str = ""
    url: str = ""
    verified: bool = True
    setting: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "rule": self.rule, "source": self.source, "url": self.url,
                "verified": self.verified, "setting": self.setting}


@dataclass(frozen=True, slots=True)
class Summary:
    country: str
    title: str
    items: tuple[Item, ...]
    local: tuple[Item, ...] = ()  # states' or provinces' own rules
    zones: tuple[tuple[str, str], ...] = field(default=())  # (area codes, zones) spanning several zones
    sources: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"country": self.country, "title": self.title, "rules": [i.as_json() for i in self.items],
                "local_rules": [i.as_json() for i in self.local],
                "zones": [{"area_codes": a, "zones": z} for a, z in self.zones], "sources": list(self.sources)}


def _hm(t: time) -> str:
    return t.strftime("%H:%M")


def hours_text(hours: Hours | None) -> str:
    """"Monday-Friday 10:00-13:00 and 14:00-20:00; no calls Saturday, Sunday"."""
    if hours is None:
        return "no statutory calling hours"
    groups: list[tuple[list[int], str]] = []
    for d in range(1, 8):
        windows = hours.get(d)
        text = " and ".join(f"{_hm(lo)}-{_hm(hi)}" for lo, hi in windows) if windows else "no calls"
        if groups and groups[-1][1] == text and groups[-1][0][-1] == d - 1:
            groups[-1][0].append(d)
        else:
            groups.append(([d], text))
    parts = []
    for days, text in groups:
        span = _DAYS[days[0] - 1] if len(days) == 1 else f"{_DAYS[days[0] - 1]}-{_DAYS[days[-1] - 1]}"
        parts.append(f"every day {text}" if len(days) == 7 else f"{span} {text}")
    return "; ".join(parts)


def _item(topic: str, rule: str, cite: Cite | None, setting: str = "") -> Item:
    if cite is None:
        return Item(topic, rule, setting=setting)
    return Item(topic, rule, cite.text, cite.url, cite.verified, setting)


def summary(pack: Jurisdiction) -> Summary:
    """The pack's rules, in the order a compliance officer reads them."""
    c = pack.cites
    items: list[Item] = []
    hours_setting = "campaign check_hours" + (", industry_hours" if pack.industry_hours is not None else "")
    items.append(_item("calling hours", f"{hours_text(pack.hours)}, in the callee's local time (every zone the "
                       "number may be in)" if pack.hours is not None else hours_text(None), c.get("hours"),
                       hours_setting))
    if pack.industry_hours is not None:
        items.append(Item("industry hours", f"{hours_text(pack.industry_hours)} (a campaign option, off by default)",
                          c["hours"].text if "hours" in c else "", c["hours"].url if "hours" in c else "", False,
                          "campaign industry_hours"))
    if pack.regions:
        days = "no calls on public holidays of the callee's region (" + ", ".join(sorted(pack.regions)) + ")"
    elif any(r.holidays for r in pack.local_rules.values()):
        days = "no federal day ban; the states below ban their own holidays"
    else:
        days = "no day or holiday ban"
    items.append(_item("days and holidays", days, c.get("holidays"), "campaign check_holidays"
                       + ("; [gateway] alsace_moselle, overseas_holidays" if pack.country == "FR" else "")))
    if pack.max_attempts is not None and pack.window_days is not None:
        items.append(_item("attempt cap", f"at most {pack.max_attempts} calls or attempts per number and "
                           f"professional in {pack.window_days} calendar days", c.get("frequency_cap"),
                           "campaign max_attempts, window_days"))
    elif any(r.max_calls for r in pack.local_rules.values()):
        items.append(Item("attempt cap", "no federal cap; the states' caps below"))
    if pack.cooldown_days is not None:
        items.append(_item("after a refusal", f"no call or attempt for {pack.cooldown_days} full calendar days",
                           c.get("cooldown"), "campaign cooldown_days, consent_lifts_cooldown"))
    if pack.refusal_dnc is not None:
        life = pack.refusal_dnc
        items.append(_item("do-not-call requests", f"a refusal is a request not to be called by this caller, "
                           f"honoured {life} (the state store keeps it that long)", life.cite))
    if pack.opposition_regime_from is not None or pack.consent_regime_from is not None:
        if pack.opposition_regime_from is not None:
            until = f" until {(pack.consent_regime_from).isoformat()} (excluded)" if pack.consent_regime_from else ""
            items.append(_item("national list", f"opposition list from {pack.opposition_regime_from.isoformat()}"
                               f"{until}: no call to a listed consumer unless exempt", c.get("national_list"),
                               "campaign regime"))
        if pack.consent_regime_from is not None:
            items.append(_item("prior consent", f"from {pack.consent_regime_from.isoformat()}: no call without the "
                               "consumer's prior consent (its date, source and revocation kept)", c.get("consent"),
                               "campaign regime, consent"))
        if pack.consent_max_age_days is not None:
            items.append(_item("consent lifetime", f"{pack.consent_max_age_days} days from collection by default, no "
                               "tacit renewal; an undated consent is no proof", c.get("consent_lifetime"),
                               "campaign consent_max_age_days, undated_consent"))
        if pack.consent_proof_years is not None:
            items.append(_item("consent proof", f"a consent's proof (its date, source, withdrawal) and the decisions "
                               f"it allowed are kept {pack.consent_proof_years} years after the consent ends",
                               c.get("consent_proof"), "[gateway] consent_proof_years, [audit] retention_days"))
    else:
        items.append(_item("national list", "no call to a number on the national list unless exempt",
                           c.get("national_list"), "[lists.X] country"))
    if pack.list_max_age is not None:
        age = pack.list_max_age
        items.append(_item("national list age", f"the copy screened against is at most {age.days} days old: the "
                           "default for a list of this country, a shorter max_age_days wins, a longer one is an "
                           "error", age.cite, "[lists.X] max_age_days (shorter only)"))
    exempt = ", ".join(sorted(str(x) for x in pack.exempt_categories)) or "none"
    items.append(_item("exempt categories", f"{exempt} (from the national list, never from the caller's own)",
                       c.get("exempt_categories"), "campaign category"))
    if pack.not_telemarketing:
        items.append(_item("not telemarketing", ", ".join(sorted(str(x) for x in pack.not_telemarketing))
                           + ": neither the calling hours nor the internal list apply", c.get("not_telemarketing")))
    if pack.contract_exempts:
        if pack.relationship is not None:
            r = pack.relationship
            items.append(_item("business relationship", f"exempt for {r.purchase_months} calendar months after the "
                               f"last purchase or transaction (customers list) and {r.inquiry_months} after an "
                               "inquiry (inquiries list), dated rows (relationship-csv); a do-not-call request "
                               "still ends it", r.cite, "campaign customers, inquiries, undated_relationship"))
        else:
            items.append(Item("existing contract", "calls about a running contract are exempt while the number is "
                              "on the customers list", setting="campaign customers"))
    else:
        items.append(Item("existing contract", "no existing-customer exemption for calls"))
    if pack.consent_exempts:
        items.append(_item("consent to this caller", "exempts from the national list", c.get("consent"),
                           "campaign consent"))
    items.append(Item("calls to businesses", "exempt from the consumer rules" if pack.b2b_exempt else
                      "screened like any other (the national list protects businesses too)",
                      setting="campaign category = \"b2b\", [lists.X] kind = \"b2b\""))
    if pack.b2b_hours and pack.hours is not None:
        items[-1] = Item(items[-1].topic, items[-1].rule + "; the calling hours still apply", setting=items[-1].setting)
    caller = "the presented number must not be masked and must belong to the caller"
    if pack.caller_id.automated_prefixes:
        caller += f"; automated diallers present only verified numbers ({pack.caller_id.automated_text})"
    items.append(_item("caller ID", caller, c.get("caller_id"), "campaign check_caller_id, owned_caller_ids"))
    for sector, since in pack.sector_bans.items():
        when = f" from {since.isoformat()}" if since is not None else ""
        items.append(_item("sector ban", f"no consumer canvassing for {sector}{when}", c.get("sector_ban"),
                           "campaign sector"))
    emergency = ", ".join(sorted(EMERGENCY.get(pack.country, frozenset()), key=lambda s: (len(s), s)))
    short = ", ".join(sorted(SHORT.get(pack.country, frozenset()), key=lambda s: (len(s), s)))
    items.append(Item("emergency numbers", f"never blocked: {emergency}" + (f"; short service numbers too: {short}"
                                                                            if short else "")))
    local = tuple(
        Item(f"{rule.name} ({code})", _local_text(rule.hours, rule.max_calls, rule.per is not None, rule.holidays),
             rule.source if not rule.verified else rule.cite + (f"; cap: {rule.cap_cite}" if rule.cap_cite else ""),
             rule.url, rule.verified,
             f"[gateway] unverified_state_rules_off = [\"{code}\"]" if not rule.verified else "")
        for code, rule in sorted(pack.local_rules.items()))
    return Summary(pack.country, TITLES.get(pack.country, pack.name), tuple(items), local, _zones(pack),
                   pack.sources)


def _local_text(hours: Hours | None, max_calls: int | None, rolling: bool, holidays: bool) -> str:
    parts = []
    if hours is not None:
        parts.append(hours_text(hours))
    if max_calls is not None:
        parts.append(f"at most {max_calls} calls to a number in 24 hours" if rolling else f"at most {max_calls}")
    if holidays:
        parts.append("no calls on the state's public holidays")
    return "; ".join(parts)


def _zones(pack: Jurisdiction) -> tuple[tuple[str, str], ...]:
    """The area codes the zones table knows (and their overlays), for a NANP pack."""
    table = STATES if pack.country == "US" else PROVINCES if pack.country == "CA" else None
    if table is None:
        return ()
    by_zones: dict[tuple[str, ...], list[str]] = {}
    for code, zones in ZONES.items():
        if code in table:
            by_zones.setdefault(tuple(zones), []).append(code + (f" (overlays {OVERLAYS[code]})"
                                                                 if code in OVERLAYS else ""))
    return tuple((", ".join(sorted(codes)), ", ".join(zones)) for zones, codes in
                 sorted(by_zones.items(), key=lambda kv: sorted(kv[1])[0]))


# -- formats ---------------------------------------------------------------------------------------------------

def _mark(item: Item) -> str:
    return "verified" if item.verified else "UNVERIFIED (stricter reading applied)"


def text(s: Summary) -> str:
    out = [f"{s.title} ({s.country}): the rules the gateway applies", ""]
    width = max(len(i.topic) for i in (*s.items, *s.local))
    for i in s.items:
        out.append(f"  {i.topic.ljust(width)}  {i.rule}")
        if i.source:
            out.append(f"  {''.ljust(width)}  source: {i.source} [{_mark(i)}]")
        if i.setting:
            out.append(f"  {''.ljust(width)}  setting: {i.setting}")
    if s.local:
        out += ["", "  States' and provinces' own rules (by the callee's area code):"]
        for i in s.local:
            out.append(f"  {i.topic.ljust(width)}  {i.rule}")
            out.append(f"  {''.ljust(width)}  source: {i.source} [{_mark(i)}]")
            if i.setting:
                out.append(f"  {''.ljust(width)}  switch off: {i.setting}")
    if s.zones:
        out += ["", "  Area codes whose zones the table gives (a call must be legal in all of them):"]
        out += [f"    {codes}: {zones}" for codes, zones in s.zones]
    out += ["", "  Sources: " + " · ".join(s.sources)]
    return "\n".join(out)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def markdown(s: Summary) -> str:
    out = [f"# {s.title} ({s.country})", "",
           "<!-- generated by `dnc-gateway law " + s.country + " --format md`: do not edit by hand -->", "",
           "What the gateway applies to a call whose callee is in this country, read from the pack's own data. "
           "An unverified point is applied in its stricter reading by default; its setting switches it off.", "",
           "| rule | what the gateway does | source | verified | setting |", "|---|---|---|---|---|"]
    for i in s.items:
        src = f"[{_md_escape(i.source)}]({i.url})" if i.url and i.source else _md_escape(i.source)
        out.append(f"| {i.topic} | {_md_escape(i.rule)} | {src} | {'yes' if i.verified else 'no'} | "
                   f"{_md_escape(i.setting)} |")
    if s.local:
        out += ["", "## States' and provinces' own rules", "",
                "By the callee's area code; they replace the national hours there.", "",
                "| where | rule | source | verified | switch off |", "|---|---|---|---|---|"]
        for i in s.local:
            src = f"[{_md_escape(i.source)}]({i.url})" if i.url else _md_escape(i.source)
            out.append(f"| {i.topic} | {_md_escape(i.rule)} | {src} | {'yes' if i.verified else 'no'} | "
                       f"{_md_escape(i.setting)} |")
    if s.zones:
        out += ["", "## Area codes whose time zones the table gives", "",
                "A call must be legal in every zone its area code spans; an overlay takes the zones of the code it "
                "overlays, and these zones replace the phone-number library's for the codes listed. Sources: the "
                "US time zone boundaries (49 CFR part 71), NANPA's and the CRTC's area code maps.", "",
                "| area codes | zones |", "|---|---|"]
        out += [f"| {codes} | {zones} |" for codes, zones in s.zones]
    out += ["", "## Sources", ""] + [f"- <{u}>" for u in s.sources]
    return "\n".join(out) + "\n"


def index_markdown(summaries: Mapping[str, Summary]) -> str:
    out = ["# The law, by country", "",
           "<!-- generated by `dnc-gateway law --format md`: do not edit by hand -->", "",
           "The callee's country decides which law applies. Each page below is printed from the jurisdiction "
           "pack's own data (`dnc-gateway law COUNTRY`), with each value's source and whether it was verified.", "",
           "| country | calling hours | national list age | page |", "|---|---|---|---|"]
    for code, s in summaries.items():
        hours = next((i.rule for i in s.items if i.topic == "calling hours"), "")
        age = next((i.rule.split(":")[0] for i in s.items if i.topic == "national list age"), "set per list")
        out.append(f"| {s.title} | {_md_escape(hours)} | {_md_escape(age)} | [{code}]({code.lower()}.md) |")
    out += ["", _SETTINGS]
    return "\n".join(out) + "\n"


_SETTINGS = """## What the configuration changes

- **Dated business relationships.** A `customers` or `inquiries` list (`[lists.X] kind = "customers"` or
  `"inquiries"`) exempts a number from the national list only for the pack's window in calendar months after its
  date (the last purchase or transaction, or the inquiry), in the callee's calendar: give the file in the
  `relationship-csv` format (header `number,date,source`) or date numbers with
  `dnc-gateway registry entries add NUMBER --list X --date YYYY-MM-DD --source ...`. A do-not-call request still
  ends the exemption. A row with no date follows the campaign's `undated_relationship = "allow"` (the default: the
  call goes through with a warning, counted in `dnc_undated_relationship_allowed`, its basis
  `exempt_contract_undated`) or `"block"` (no exemption). `config check` warns for a list without dates.
- **Legal list ages.** A national list with `country = "US"`, `"CA"` or `"GB"` must be at most as old as that
  country's law says, without any `max_age_days`: a shorter `max_age_days` wins, a longer one is a `config check`
  error naming the law. `config check` prints each list's effective age; a stale list's `registry_stale` detail
  names the law.
- **Do-not-call requests.** A refusal recorded for a US, Canadian or UK number is honoured as long as that law
  says (5 years; 3 years and 14 days; until withdrawn) and the call history keeps it that long. `POST
  /api/refusals` answers 400 for a refusal older than the history keeps, rather than acknowledging it.
- **Reported state rules.** Rules that were reported but whose statute was not read are applied by default
  (the stricter reading); `[gateway] unverified_state_rules_off = ["LA"]` switches off a state's. Every block a
  state's or the law's rule caused names it, e.g. `after 20:00, Florida's end: Fla. Stat. 501.616(6)(a)`.
- **Withdrawn consents.** A consent file's row with a `revoked_at` date blocks with `no_consent` and the rule
  `no_consent.withdrawn` (the dialplan's `DNC_REASON` stays `no_consent`), naming the date, at any time after it.
"""
