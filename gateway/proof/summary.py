"""The dossier's summary in plain words, in English and in French (pure).

A few sentences a person reads before the tables: how many calls, between which days, on what each allowed
call rested (the consent of which day, collected by whom, valid until when), how many were blocked and why,
the refusal and opt-out, and whether the audit records check against the hash chain. Reason codes stay as the
gateway writes them (``opposition_list``): they are the names the tables and the audit trail use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from gateway.proof.dossier import Dossier, Ground, RecordLine

UNDATED_RELATIONSHIP = "(undated_relationship = allow)"  # what the decision's detail says (policy/engine.py)

_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
_MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
              "novembre", "décembre")


def day_en(d: date) -> str:
    return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}"


def day_fr(d: date) -> str:
    return f"{'1er' if d.day == 1 else d.day} {_MONTHS_FR[d.month - 1]} {d.year}"


def _given(entry: Mapping[str, object]) -> date | None:
    """An entry's collection day; None for an undated consent (a plain list or a CSV row with no date)."""
    raw = entry.get("given_on")
    return date.fromisoformat(str(raw)) if raw else None


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _codes(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {code}" for code, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _local_day(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


class _Text:
    """One language's phrases; the sentences are built the same way for both."""

    def __init__(self, lang: str) -> None:
        self.fr = lang == "fr"
        self.day: Callable[[date], str] = day_fr if self.fr else day_en

    def quote(self, s: str) -> str:
        return f"« {s} »" if self.fr else f"“{s}”"


def _consent_phrase(t: _Text, rec: RecordLine, until: date | None, lifetime: int | None) -> str:
    e = rec.entry
    given = _given(e)
    source = t.quote(str(e.get("source") or "?"))
    channel = str(e.get("channel") or "")
    evidence = str(e.get("evidence") or "")
    if t.fr:
        text = (f"sur le consentement du {t.day(given)}" if given else "sur un consentement non daté") + \
            f" recueilli par {source}"
        text += f" ({channel})" if channel else ""
        text += f", preuve {t.quote(evidence)}" if evidence else ", sans référence de preuve"
        if until is not None:
            text += f", valable jusqu'au {t.day(until)}"
        elif lifetime == 0:
            text += ", sans limite de durée (réglage de la campagne)"
        else:
            text += ", durée de validité non configurée"
        return text
    text = (f"on the consent of {t.day(given)}" if given else "on an undated consent") + f" collected by {source}"
    text += f" ({channel})" if channel else ""
    text += f", evidence {t.quote(evidence)}" if evidence else ", with no evidence reference"
    if until is not None:
        text += f", valid until {t.day(until)}"
    elif lifetime == 0:
        text += ", with no time limit (campaign setting)"
    else:
        text += ", consent lifetime not configured"
    return text


def _sentences(d: Dossier, t: _Text) -> list[str]:
    out: list[str] = []
    calls = d.calls
    number = d.number
    period = ""
    if d.since or d.until:
        a = t.day(_local_day(d.since, d.zone)) if d.since else None
        b = t.day(_local_day(d.until, d.zone)) if d.until else None
        if t.fr:
            period = f" (période {'du ' + a if a else ''}{' ' if a and b else ''}{'au ' + b + ' exclu' if b else ''})"
        else:
            period = f" (period{' from ' + a if a else ''}{' until ' + b + ', excluded' if b else ''})"
    if not calls:
        out.append(f"Aucun appel vers {number} dans la piste d'audit{period}." if t.fr
                   else f"No call to {number} in the audit trail{period}.")
    else:
        first, last = min(c.at for c in calls), max(c.at for c in calls)
        zone = ZoneInfo(d.zone)
        a, b = (t.day(datetime.fromtimestamp(x, zone).date()) for x in (first, last))
        campaigns = sorted({c.campaign for c in calls})
        allowed = sum(c.verdict == "ALLOW" for c in calls)
        blocked = len(calls) - allowed
        if t.fr:
            span = f"le {a}" if a == b else f"entre le {a} et le {b}"
            out.append(f"{_n(len(calls), 'appel', 'appels')} vers {number} {span}{period} "
                       f"({_n(len(campaigns), 'campagne', 'campagnes')} : {', '.join(campaigns)}) : "
                       f"{_n(allowed, 'autorisé', 'autorisés')}, {_n(blocked, 'bloqué', 'bloqués')}.")
        else:
            span = f"on {a}" if a == b else f"between {a} and {b}"
            out.append(f"{_n(len(calls), 'call', 'calls')} to {number} {span}{period} "
                       f"({_n(len(campaigns), 'campaign', 'campaigns')}: {', '.join(campaigns)}): "
                       f"{allowed} allowed, {blocked} blocked.")
    out += _allowed(d, t)
    blocked_by = Counter(c.reason or "?" for c in calls if c.verdict == "BLOCK")
    if blocked_by:
        count = sum(blocked_by.values())
        out.append(f"{_n(count, 'appel bloqué', 'appels bloqués')} : {_codes(blocked_by)}." if t.fr
                   else f"{_n(count, 'call', 'calls')} blocked: {_codes(blocked_by)}.")
    out += _history(d, t)
    out += _chain(d, t)
    return out


def _allowed(d: Dossier, t: _Text) -> list[str]:
    out: list[str] = []
    allowed = [c for c in d.calls if c.verdict == "ALLOW"]
    every = len(allowed)
    records = {int(str(r.entry["id"])): r for r in d.consents}
    facts = {c.name: c for c in d.campaigns}
    by_consent: dict[int, list[date | None]] = {}
    for c in allowed:
        if c.ground is Ground.CONSENT and c.consent_id is not None:
            by_consent.setdefault(c.consent_id, []).append(c.valid_until)
    for cid, untils in sorted(by_consent.items()):
        rec = records.get(cid)
        if rec is None:
            continue
        lifetimes = {facts[c.campaign].consent_max_age_days for c in allowed if c.consent_id == cid
                     and c.campaign in facts}
        lifetime = lifetimes.pop() if len(lifetimes) == 1 else None
        until = max((u for u in untils if u is not None), default=None)
        n = len(untils)
        lead = ("Chacun autorisé" if n == every and n > 1 else "Autorisé" if n == 1 and every == 1 else
                f"{_n(n, 'appel autorisé', 'appels autorisés')}") if t.fr else (
            "Each allowed" if n == every and n > 1 else "Allowed" if n == 1 and every == 1 else
            f"{n} allowed")
        out.append(f"{lead} {_consent_phrase(t, rec, until, lifetime)}.")
    grounds = Counter(c.ground for c in allowed)
    n = grounds.get(Ground.CONSENT_LIST, 0)
    if n:
        names = sorted({f"{k}@{v}" for c in allowed if c.ground is Ground.CONSENT_LIST
                        and isinstance(c.lists, Mapping) for k, v in c.lists.items()
                        if k in {f.consent_list for f in d.campaigns}})
        where = ", ".join(names) or "?"
        out.append(f"{_n(n, 'appel autorisé', 'appels autorisés')} sur la seule présence dans la liste de "
                   f"consentement ({where}), sans consentement daté enregistré pour ce jour : la liste ne prouve "
                   "ni quand ni comment il a été donné." if t.fr else
                   f"{n} allowed on the consent list alone ({where}), with no dated consent recorded for that day: "
                   "the list does not prove when or how consent was given.")
    exempt = Counter(c.reason or "?" for c in allowed if c.ground is Ground.EXEMPT)
    if exempt:
        out.append(f"{_n(sum(exempt.values()), 'appel autorisé', 'appels autorisés')} par exemption : "
                   f"{_codes(exempt)}." if t.fr else f"{sum(exempt.values())} allowed as exempt: {_codes(exempt)}.")
    undated = sum(1 for c in allowed if c.ground is Ground.EXEMPT and UNDATED_RELATIONSHIP in c.detail)
    if undated:  # a customers or inquiries row with no date: nothing proves the relationship was recent
        out.append(f"Dont {undated} sur une relation commerciale non datée (undated_relationship = allow) : rien "
                   "ne prouve qu'elle était récente." if t.fr else f"{undated} of them on an undated business "
                   "relationship (undated_relationship = allow): nothing proves it was recent.")
    monitor = Counter(c.reason or "?" for c in allowed if c.ground is Ground.MONITOR)
    if monitor:
        out.append(f"{_n(sum(monitor.values()), 'appel autorisé', 'appels autorisés')} en mode observation alors "
                   f"que les règles auraient bloqué : {_codes(monitor)}." if t.fr else
                   f"{sum(monitor.values())} allowed in monitor mode although the rules would have blocked "
                   f"{'it' if sum(monitor.values()) == 1 else 'them'}: "
                   f"{_codes(monitor)}.")
    for ground, fr, en in ((Ground.NOT_LISTED, "absent des listes d'opposition consultées",
                            "on none of the opposition lists consulted"),
                           (Ground.NO_LIST, "aucun régime de liste ce jour-là", "no list regime on that date")):
        if grounds.get(ground):
            k = grounds[ground]
            out.append(f"{_n(k, 'appel autorisé', 'appels autorisés')} : {fr}." if t.fr
                       else f"{k} allowed: {en}.")
    return out


def _history(d: Dossier, t: _Text) -> list[str]:
    out: list[str] = []
    h = d.history
    revoked = [r for r in d.consents if not r.active]
    for r in revoked:
        e = r.entry
        on = date.fromisoformat(str(e["revoked_on"]))
        given = _given(e)
        by = t.quote(str(e.get("revoked_source") or "?"))
        of_fr, of_en = (f"du {t.day(given)}", f"of {t.day(given)}") if given else ("non daté", "(undated)")
        out.append(f"Le consentement {of_fr} a été retiré le {t.day(on)} ({by})." if t.fr
                   else f"The consent {of_en} was withdrawn on {t.day(on)} ({by}).")
    if h is not None and h.last_refusal is not None:
        day = t.day(_local_day(h.last_refusal, d.zone))
        out.append(f"Dernier refus enregistré le {day} : il met fin au consentement donné avant." if t.fr
                   else f"Last refusal recorded on {day}: it ends any consent given before it.")
    optouts = [g for g in (_given(r.entry) for r in d.optouts if r.active) if g is not None]
    if h is not None and h.opted_out_at is not None:
        optouts.append(_local_day(h.opted_out_at, d.zone))
    if optouts:
        day = t.day(min(optouts))
        out.append(f"Opposition (ne plus appeler) enregistrée le {day}." if t.fr
                   else f"Opted out (do not call again) on {day}.")
    if h is not None:
        n = len(d.attempts())
        out.append(f"{_n(n, 'tentative comptée', 'tentatives comptées')} pour les plafonds d'appels dans la période "
                   "(le magasin d'état ne garde les tentatives que le temps de la plus longue fenêtre de plafond)."
                   if t.fr else
                   f"{_n(n, 'attempt', 'attempts')} counted against the call caps in the period (the state store keeps "
                   "attempts only as long as the longest cap window).")
    return out


def _chain(d: Dossier, t: _Text) -> list[str]:
    if d.audit is None:
        return ["Pas de piste d'audit configurée : aucune décision ne peut être prouvée." if t.fr
                else "No audit trail configured: no decision can be proved."]
    n, broken = len(d.decisions), d.broken
    whole = d.audit.whole
    out: list[str] = []
    if whole is not None and not whole.ok:
        out.append(f"ATTENTION : la piste d'audit entière est rompue ({whole.message})." if t.fr
                   else f"WARNING: the whole audit trail is broken ({whole.message}).")
    if not n:
        return out
    if not broken:
        if t.fr:
            out.append(f"Les {n} enregistrements d'audit de ce numéro sont intacts dans la chaîne de hachage."
                       if n > 1 else "L'enregistrement d'audit de ce numéro est intact dans la chaîne de hachage.")
        else:
            out.append(f"All {n} audit records of this number check against the hash chain." if n > 1
                       else "The audit record of this number checks against the hash chain.")
        return out
    seqs = ", ".join(f"seq {b.seq} ({b.link})" for b in broken[:5]) + (" …" if len(broken) > 5 else "")
    out.append(f"ATTENTION : {len(broken)} enregistrement(s) d'audit sur {n} ne correspondent plus à la chaîne de "
               f"hachage ({seqs}) : eux ou leurs voisins ont été modifiés ou supprimés après écriture ; ils ne "
               "prouvent plus rien." if t.fr else
               f"WARNING: {len(broken)} of {n} audit records do not check against the hash chain ({seqs}): they, "
               "or the records next to them, were changed or removed after they were written, and prove nothing.")
    return out


def summarise(d: Dossier) -> dict[str, str]:
    """``{"en": ..., "fr": ...}``: the same sentences in each language, one paragraph each."""
    return {lang: " ".join(_sentences(d, _Text(lang))) for lang in ("en", "fr")}


def paragraphs(d: Dossier) -> dict[str, Sequence[str]]:
    """The same summary, one sentence per item (for renderers that set them as a list)."""
    return {lang: _sentences(d, _Text(lang)) for lang in ("en", "fr")}
