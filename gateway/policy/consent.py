"""Is there a consent in force for this call? The consent regime's test (L223-1 as amended by loi 2025-594 art. 13).

A consent counts when it comes from the campaign's consent list (its file and the side store's entries) or was
recorded at a call or over the API (the state store: given to the professional, it counts for every campaign);
and when it is, on the call's day in the callee's calendar:

- not withdrawn: collected after the number's latest refusal (state store) and latest withdrawal (a revoked
  entry or a consent file's ``revoked_at``); a consent collected after them restores it;
- not expired: collected less than ``consent_max_age_days`` days ago (décret n° 2026-662 of 23 Jul 2026,
  art. R223-1, as reported and NOT verified from the Journal officiel: one year at most, no tacit renewal).
  A consent collected on day D is in force up to D + max - 1 and expired from D + max, counted in the callee's
  days (an instant with an offset is first read on the callee's calendar);
- dated: a consent with no known collection date is not proof; the campaign's ``undated_consent`` says
  whether it still lets the call through (with a warning, counted) or not.

Pure: everything comes from the call's context; ``assess`` is asked twice for an allowed call (the rule, then
the decision's basis), which costs less than carrying its answer in every context.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from gateway.policy.campaign import UndatedConsent
from gateway.policy.decision import Basis, Block, Reason

if TYPE_CHECKING:  # the engine imports this module for the basis of an ALLOW
    from gateway.policy.engine import Context

ConsentDate = date | datetime
_NO_CONSENT = Reason.NO_CONSENT
_BLOCK = UndatedConsent.BLOCK
LIVE = "recorded at a call or over the API"


class Found(NamedTuple):
    """The consent a call rests on."""

    where: str  # "on the list 'x'", or LIVE
    collected: date | None  # its day in the callee's calendar; None: undated
    expires: date | None  # first day it no longer counts; None: no limit (or undated)


def _day(ctx: Context, d: ConsentDate) -> date:
    return ctx.local_date(d) if isinstance(d, datetime) else d


def _after(ctx: Context, a: ConsentDate, b: ConsentDate) -> bool:
    """``a`` after ``b``: instants as instants, else by the callee's day (a same-day mix counts as not after)."""
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a > b
    return _day(ctx, a) > _day(ctx, b)


def assess(ctx: Context) -> Found | Block:
    """The consent in force for this call, or why there is none."""
    key = ctx.key
    history = ctx.history
    candidates: list[tuple[str, ConsentDate | None]] = []
    if history.consent_at is not None:
        candidates.append((LIVE, history.consent_at))
    named = ctx.plan.consent
    if named is not None and named[1] is not None and key in named[1]:
        candidates.append((f"on the list {named[0]!r}", ctx.regs.consent_date(named[0], key)))
    withdrawn = ctx.regs.withdrawals.get(key) if ctx.regs.withdrawals else None
    if not candidates:
        # A consent file's revoked row (or a revoked entry) leaves the number off the list: the call is refused
        # for that withdrawal, named with its date, at any time after it.
        if withdrawn is not None and _day(ctx, withdrawn) <= max(ctx.dates):
            return Block(_NO_CONSENT, "no_consent.withdrawn",
                         f"consent withdrawn on {_day(ctx, withdrawn).isoformat()}: no consent in force since")
        return Block(_NO_CONSENT, "no_consent", "no recorded prior consent")
    refused = history.last_refusal
    ended: ConsentDate | None = refused
    what = "a refusal"
    if withdrawn is not None and (ended is None or _after(ctx, withdrawn, ended)):
        ended, what = withdrawn, "a withdrawal"
    if ended is not None:
        candidates = [(w, c) for w, c in candidates if c is not None and _after(ctx, c, ended)]
        if not candidates:
            return Block(_NO_CONSENT, "no_consent.withdrawn",
                         f"consent ended by {what} on {_day(ctx, ended).isoformat()}")
    campaign = ctx.campaign
    limit = campaign.consent_max_age_days
    dates = ctx.dates
    first, last = min(dates), max(dates)
    best: Found | None = None
    undated: str | None = None
    expired: Found | None = None
    future: Found | None = None
    for where, when in candidates:
        if when is None:
            undated = undated or where
            continue
        day = _day(ctx, when)
        expires = day + timedelta(days=limit) if limit else None
        found = Found(where, day, expires)
        if day > first:  # collected after the call: a wrong date is no proof
            future = future or found
        elif expires is not None and last >= expires:  # the stricter zone when the number has several
            if expired is None or day > (expired.collected or day):
                expired = found
        elif best is None or day > (best.collected or day):
            best = found
    if best is not None:
        return best
    if undated is not None:
        if campaign.undated_consent is _BLOCK:
            return Block(_NO_CONSENT, "no_consent.undated",
                         f"the consent {undated} has no collection date, which is no proof (undated_consent = block)")
        return Found(undated, None, None)
    if expired is not None and expired.expires is not None and expired.collected is not None:
        return Block(_NO_CONSENT, "no_consent.expired",
                     f"the consent {expired.where} collected on {expired.collected.isoformat()} expired on "
                     f"{expired.expires.isoformat()} (consent_max_age_days = {limit})")
    assert future is not None and future.collected is not None
    return Block(_NO_CONSENT, "no_consent.future",
                 f"the consent {future.where} is dated {future.collected.isoformat()}, after the call")


# The warning an ALLOW on an undated consent carries; a call another rule blocks never carries it (the engine
# drops it there): a BLOCK saying "allowed on ..." would contradict its own verdict.
UNDATED_ALLOWED = "allowed on an undated consent"


def consent_rule(ctx: Context) -> Block | None:
    """The regime_list rule under the consent regime: a Block, or None with a warning on an undated consent."""
    found = assess(ctx)
    if isinstance(found, Block):
        return found
    if found.collected is None:
        ctx.warnings += (f"{UNDATED_ALLOWED} {found.where} (undated_consent = allow): "
                         f"no collection date, no proof",)
    return None


def basis(ctx: Context) -> tuple[Basis, str]:
    """What an allowed call under the consent regime rests on, in a sentence."""
    found = assess(ctx)
    if isinstance(found, Block):  # cannot happen for an allowed call; said plainly rather than asserted
        return Basis.CONSENT, "prior consent"
    if found.collected is None:
        return Basis.CONSENT_UNDATED, f"prior consent {found.where}, undated"
    until = f", valid until {(found.expires - timedelta(days=1)).isoformat()}" if found.expires else ""
    return Basis.CONSENT, f"prior consent {found.where}, given on {found.collected.isoformat()}{until}"
