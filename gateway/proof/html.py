"""The dossier as one HTML page a person reads on screen and prints (pure: a Dossier in, a string out).

Self-contained: the style is inline and nothing is fetched (no font, script or image), so the file can be
mailed, archived and opened offline years later; the API serves it with a CSP that forbids everything else.
Every value from the records is escaped: a campaign name, a source or a tampered row cannot inject markup.
The print style sets A4 pages, repeats the table headers, keeps a row on one page and drops the screen colours
for borders and words (a tampered record reads "MODIFIED" in black and white too).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.audit import Link
from gateway.proof.dossier import NOT_CONFIGURED, NUMBER_NOTICE, DecisionLine, Dossier, Ground, RecordLine
from gateway.proof.summary import paragraphs

STYLE = """
:root { --ink: #1b1f24; --muted: #59636e; --line: #d0d7de; --bad: #b3261e; --bad-bg: #fdecea; --ok: #1a7f37;
        --head: #f3f5f7; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
.meta { color: var(--muted); margin: 0; }
.number { font: 600 20px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; }
.notice { border-left: 4px solid var(--muted); padding: 6px 10px; margin: 12px 0; background: var(--head); }
.alert { border-left: 4px solid var(--bad); background: var(--bad-bg); padding: 8px 12px; margin: 12px 0;
         font-weight: 600; }
.summary { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.summary section { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
.summary h3 { margin: 0 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: .04em;
              color: var(--muted); }
.summary ul { margin: 0; padding-left: 18px; }
.summary li { margin: 3px 0; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
/* Long instants and references may wrap anywhere: the page never grows wider than paper (words elsewhere don't). */
td.wrap { overflow-wrap: anywhere; }
th { background: var(--head); font-weight: 600; }
td.lists { font-size: 11px; }
td.mono, span.mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 11.5px;
                     word-break: break-all; }
tr.bad td { background: var(--bad-bg); }
.verdict-BLOCK { font-weight: 700; }
.chain-intact { color: var(--ok); }
.chain-bad { color: var(--bad); font-weight: 700; }
.empty { color: var(--muted); font-style: italic; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 12px 0 0; }
dt { color: var(--muted); }
dd { margin: 0; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media (max-width: 800px) { .summary { grid-template-columns: 1fr; } }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  table { font-size: 8.5pt; }
  td.lists { font-size: 11px; }
td.mono, span.mono { font-size: 7.5pt; }
  thead { display: table-header-group; }
  tr, .summary section, .alert { break-inside: avoid; }
  h2 { break-after: avoid; }
  .summary { grid-template-columns: 1fr 1fr; }
  tr.bad td { background: none; }
  .chain-intact { color: inherit; }
}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(head: Iterable[str], rows: Iterable[str], empty: str) -> str:
    body = "".join(rows)
    if not body:
        return f'<p class="empty">{esc(empty)}</p>'
    cells = "".join(f"<th>{esc(h)}</th>" for h in head)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


# The side store's fields, in reading order; fields it gains later (consent-csv columns) follow these.
_ENTRY_LABELS = {"id": "record", "list": "list", "given_on": "given on", "source": "collected by / source",
                 "evidence": "evidence", "recorded_at": "recorded", "status": "status", "revoked_on": "revoked on",
                 "revoked_source": "revoked by", "allowed_calls": "allowed calls", "purge_after": "purged after"}
_ENTRY_SKIP = {"number", "kind"}
_LONG = {"source", "evidence", "recorded_at", "revoked_source"}  # free text and instants: may wrap anywhere
_WRAP = ' class="wrap"'


def _retention(d: Dossier) -> str:
    if not d.retention_configured:
        return NOT_CONFIGURED
    return "retention: " + (d.retention_text + "; " if d.retention_text else "") + "purge dates above"


def _entry_table(records: tuple[RecordLine, ...], empty: str, retention: bool) -> str:
    if not records:
        return f'<p class="empty">{esc(empty)}</p>'
    rows_json = [r.as_json() for r in records]
    keys = [k for k in _ENTRY_LABELS if k != "purge_after" or retention]
    # Every other field the side store holds (collection instant, wording, channel, revocation channel, origin,
    # unknown CSV columns, ...) goes in one "proof details" cell, a line each: all shown, and the page stays
    # as wide as the window whatever fields a store adds.
    extra = [k for k in dict.fromkeys(k for j in rows_json for k in j) if k not in _ENTRY_LABELS
             and k not in _ENTRY_SKIP]
    rows = []
    for j in rows_json:
        cls = ' class="revoked"' if j.get("status") == "revoked" else ""
        details = "<br>".join(f"{esc(k.replace('_', ' '))}: {esc(_plain(j.get(k)))}" for k in extra
                              if j.get(k) not in (None, "", {}))
        rows.append(f"<tr{cls}>" + "".join(f"<td{_WRAP if k in _LONG else ''}>{esc(_plain(j.get(k)))}</td>"
                                           for k in keys)
                    + (f"<td{_WRAP}>{details or '—'}</td>" if extra else "") + "</tr>")
    labels = [_ENTRY_LABELS[k] for k in keys] + (["proof details"] if extra else [])
    return _table(labels, rows, empty)


def _plain(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


_GROUND_TEXT = {Ground.CONSENT: "consent #{id}", Ground.CONSENT_LIST: "consent list only (no dated record)",
                Ground.EXEMPT: "exempt", Ground.MONITOR: "monitor mode", Ground.NOT_LISTED: "not listed",
                Ground.NO_LIST: "no list regime", Ground.BLOCKED: ""}


def _decision_row(d: DecisionLine) -> str:
    lists = ("<br>".join(f"{esc(k)} @ {esc(v)}" for k, v in d.lists.items()) if isinstance(d.lists, Mapping)
             else esc(d.lists))
    ground = "" if d.ground is Ground.EXEMPT else _GROUND_TEXT[d.ground].format(id=d.consent_id)
    if d.valid_until is not None:
        ground += f", valid until {d.valid_until.isoformat()}"
    why = d.reason or ""
    if d.verdict == "ALLOW" and d.would_block:
        why = f"would block: {why}"
    chain = ('<span class="chain-intact">intact</span>' if d.link is Link.INTACT else
             f'<span class="chain-bad">{esc(str(d.link).upper())}</span><br>{esc(d.problem)}')
    cls = ' class="bad"' if d.link is not Link.INTACT else ""
    source = "" if d.call else " (dry run)"
    written = f"<br>written {esc(d.written_local.replace('T', ' '))}" if d.written_local else ""
    return (f"<tr{cls}><td>{esc(d.local_time.replace('T', ' '))}{written}</td><td>{esc(d.campaign)}</td>"
            f'<td class="verdict-{esc(d.verdict)}">{esc(d.verdict)}</td><td>{esc(why or ground)}'
            f"{'<br>' + esc(ground) if why and ground else ''}</td><td>{esc(d.rule)}<br>"
            f'<span class="detail">{esc(d.detail)}</span></td><td class="lists">{lists}</td>'
            f'<td class="mono">{esc(d.decision_id)}<br>seq {d.seq}{esc(source)}</td><td>{chain}</td></tr>')


def _dl(items: Iterable[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(_plain(v))}</dd>" for k, v in items) + "</dl>"


def render(d: Dossier) -> str:
    """The whole page (UTF-8 text)."""
    j = d.as_json()
    counts = j["counts"]
    period = j["period"]
    span = ("whole audit trail" if not (period["since"] or period["until"])
            else f"from {period['since'] or 'the start'} until {period['until'] or 'now'} (excluded)")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Proof dossier {esc(d.number)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<header>",
        f'<h1>Proof dossier — <span class="number">{esc(d.number)}</span></h1>',
        f'<p class="meta">Generated {esc(j["generated_at"])} · period: {esc(span)} · times in the callee\'s zone '
        f"{esc(d.zone)}</p>",
        f'<p class="notice">{esc(NUMBER_NOTICE)}</p>',
        "</header>",
    ]
    if d.broken:
        parts.append(f'<p class="alert">{len(d.broken)} audit record(s) of this number do not check against the '
                     "hash chain: they were changed after they were written (see the Chain column).</p>")
    paras = paragraphs(d)
    parts.append('<h2>Summary / Résumé</h2><div class="summary">')
    for lang, title in (("en", "English"), ("fr", "Français")):
        items = "".join(f"<li>{esc(s)}</li>" for s in paras[lang])
        parts.append(f'<section lang="{lang}"><h3>{title}</h3><ul>{items}</ul></section>')
    parts.append("</div>")
    parts.append(_dl((("calls", counts["calls"]), ("allowed", counts["allowed"]), ("blocked", counts["blocked"]),
                      ("would block (monitor)", counts["would_block"]), ("dry runs (not calls)", counts["dry_runs"]),
                      ("by campaign", counts["by_campaign"]), ("blocked by reason", counts["blocked_by_reason"]),
                      ("attempts counted", counts["attempts_counted"]))))
    parts.append("<h2>Consents and revocations</h2>")
    parts.append(_entry_table(d.consents, "No consent recorded in the side store for this number.",
                              d.retention_configured))
    parts.append("<h2>Opt-outs recorded</h2>")
    parts.append(_entry_table(d.optouts, "No opt-out recorded in the side store.", d.retention_configured))
    parts.append(f'<p class="meta">Side store: {esc(d.side_store)} · '
                 f"{esc(_retention(d))}</p>")
    parts.append("<h2>Lists holding the number (now)</h2>")
    parts.append(_table(("list", "kind", "version", "as of", "holds the number"),
                        (f"<tr><td>{esc(s.name)}</td><td>{esc(s.kind)}</td><td class=\"mono\">{esc(s.version)}</td>"
                         f"<td>{esc(s.as_of or '—')}</td><td>"
                         f"{esc('not loaded' if s.member is None else 'yes' if s.member else 'no')}</td></tr>"
                         for s in d.lists), "No list configured."))
    parts.append("<h2>Decisions (audit trail)</h2>")
    if d.audit is None:
        parts.append('<p class="empty">No audit trail configured ([gateway] audit): decisions cannot be shown.</p>')
    else:
        parts.append(_table(("time", "campaign", "verdict", "reason / allowed on", "rule", "lists consulted",
                             "decision id", "chain"), (_decision_row(x) for x in d.decisions),
                            "No decision on this number in the period."))
        chain = j["chain"]
        whole = chain["whole_trail"]
        parts.append(_dl((("audit database", chain["database"]),
                          ("records checked", f"{chain['checked']} ({chain['intact']} intact)"),
                          ("head", f"seq {chain['head_seq']}, hash {chain['head_hash']}"),
                          ("purged by retention", f"seq 1..{chain['anchor_seq']} (up to {chain['anchor_at']})"
                           if chain["anchor_seq"] else "nothing"),
                          ("whole trail", whole["message"] if whole else "not walked here (dnc-gateway audit "
                                                                         "verify)"))))
    parts.append("<h2>Refusals, opt-outs and attempts (state store)</h2>")
    st = j["state"]
    if st is None:
        parts.append('<p class="empty">State store not read.</p>')
    else:
        parts.append(_dl((("store", st["store"]), ("opted out", st["opted_out_at"] or "never"),
                          ("last refusal", st["last_refusal"] or "none"),
                          ("attempts counted in the period", len(st["attempts"])),
                          ("attempts kept by the store", st["attempts_kept"]))))
        if st["attempts"]:
            parts.append(f'<p class="meta">Attempts: {esc(", ".join(st["attempts"]))}</p>')
    now = j["now"]
    parts.append(f"<h2>If called now ({esc(now['at'])})</h2>")
    parts.append(_table(("campaign", "verdict", "reason / basis", "rule", "detail"),
                        (f"<tr><td>{esc(name)}</td><td class=\"verdict-{esc(x.get('verdict'))}\">"
                         f"{esc(x.get('verdict'))}</td><td>{esc(x.get('reason') or x.get('basis'))}</td>"
                         f"<td>{esc(x.get('rule'))}</td>"
                         f"<td>{esc(x.get('detail'))}</td></tr>" for name, x in now["decisions"].items()),
                        "No campaign configured."))
    parts.append("<h2>Campaign settings</h2>")
    parts.append(_table(("campaign", "consent list", "cap", "cooldown after a refusal", "consent lifetime"),
                        (f"<tr><td>{esc(c.name)}</td><td>{esc(c.consent_list or '—')}</td>"
                         f"<td>{esc(c.cap_text)}</td>"
                         f"<td>{esc(c.cooldown_text)}</td><td>{esc(_lifetime(c.consent_max_age_days))}</td></tr>"
                         for c in d.campaigns), "No campaign configured."))
    parts.append(f"<footer>dnc-gateway proof dossier · schema {esc(j['schema'])} · decision ids and hashes as "
                 "stored in the audit trail</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _lifetime(days: int | None) -> str:
    if days is None:
        return "not configured"
    return "no limit" if days == 0 else f"{days} days from collection"
