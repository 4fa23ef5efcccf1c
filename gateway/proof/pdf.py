"""The dossier as a PDF (fpdf2, the optional ``pdf`` extra: ``pip install 'dnc-gateway[pdf]'``).

fpdf2 is pure Python and writes the PDF itself (no browser, no system library). The page holds what the HTML
page holds, in the same order. The PDF's own fonts (Helvetica) are used, so nothing is embedded and the file opens
anywhere; they cover Windows-1252, which holds French and the rest of Western Europe's letters: any other
character (a campaign name in another script) prints as "?" and the JSON form keeps it exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fpdf import FPDF
from fpdf.enums import TableCellFillMode, XPos, YPos
from fpdf.fonts import FontFace

from gateway.audit import Link
from gateway.proof.dossier import NOT_CONFIGURED, NUMBER_NOTICE, Dossier, RecordLine
from gateway.proof.summary import paragraphs

ENCODING = "windows-1252"
_RED = (179, 38, 30)
_GREY = (89, 99, 110)


def _t(value: object) -> str:
    """Text the core fonts can set: dashes and quotes typographic, anything outside Windows-1252 as "?"."""
    text = "-" if value is None or value == "" else str(value)
    return text.encode(ENCODING, "replace").decode(ENCODING)


class _Doc(FPDF):
    def __init__(self, number: str, generated: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.core_fonts_encoding = ENCODING
        self._footer_text = _t(f"Proof dossier {number} - generated {generated}")
        self.set_margins(12, 12, 12)
        self.set_auto_page_break(True, margin=14)
        self.set_title(_t(f"Proof dossier {number}"))
        self.set_creator("dnc-gateway")

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("helvetica", size=7)
        self.set_text_color(*_GREY)
        self.cell(0, 4, f"{self._footer_text} - page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0)

    def h2(self, text: str) -> None:
        if self.get_y() > self.h - 45:  # a heading never alone at the foot of a page
            self.add_page()
        self.ln(3)
        self.set_font("helvetica", "B", 11)
        self.cell(0, 6, _t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, border="B")
        self.ln(1.5)
        self.set_font("helvetica", size=8.5)

    def para(self, text: str, *, size: float = 8.5, style: str = "", color: tuple[int, int, int] | None = None) -> None:
        self.set_font("helvetica", style, size)
        if color:
            self.set_text_color(*color)
        self.multi_cell(0, size * 0.48, _t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)

    def grid(self, head: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float], *,
             size: float = 7, bad: Sequence[bool] = ()) -> None:
        self.set_font("helvetica", size=size)
        heading = FontFace(emphasis="BOLD", fill_color=(243, 245, 247))
        with self.table(col_widths=tuple(widths), text_align="LEFT", line_height=size * 0.5, padding=0.8,
                        headings_style=heading, cell_fill_mode=TableCellFillMode.NONE, v_align="TOP") as table:
            row = table.row()
            for h in head:
                row.cell(_t(h))
            for i, values in enumerate(rows):
                style = FontFace(color=_RED, emphasis="BOLD") if i < len(bad) and bad[i] else None
                row = table.row(style=style)
                for v in values:
                    row.cell(_t(v))
        self.ln(1)


def _entries(doc: _Doc, records: tuple[RecordLine, ...], empty: str, retention: bool) -> None:
    if not records:
        doc.para(empty, style="I", color=_GREY)
        return
    head = ["record", "list", "given on", "collected by / source", "evidence", "status", "revoked on / by",
            "calls"] + (["purged after"] if retention else [])
    rows = []
    extra: list[str] = []
    for r in records:
        j = r.as_json()
        rows.append([str(j["id"]), str(j["list"]), str(j["given_on"]), str(j["source"]), str(j["evidence"] or "-"),
                     str(j["status"]), f"{j['revoked_on']} ({j['revoked_source']})" if j["revoked_on"] else "-",
                     str(j["allowed_calls"])] + ([str(j["purge_after"] or "-")] if retention else []))
        known = {"id", "list", "number", "kind", "given_on", "source", "evidence", "recorded_at", "revoked_on",
                 "revoked_source", "status", "allowed_calls", "purge_after"}
        more = {k: v for k, v in j.items() if k not in known and v not in (None, "")}
        if more:
            extra.append(f"record {j['id']}: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in more.items()))
    widths = [8, 14, 14, 30, 26, 12, 30, 8] + ([16] if retention else [])
    doc.grid(head, rows, widths)
    for line in extra:
        doc.para(line, size=7)


def render(d: Dossier) -> bytes:
    """The dossier as PDF bytes."""
    j = d.as_json()
    doc = _Doc(d.number, j["generated_at"])
    doc.add_page()
    doc.set_font("helvetica", "B", 15)
    doc.cell(0, 8, _t(f"Proof dossier - {d.number}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    period = j["period"]
    span = ("whole audit trail" if not (period["since"] or period["until"])
            else f"from {period['since'] or 'the start'} until {period['until'] or 'now'} (excluded)")
    doc.para(f"Generated {j['generated_at']} - period: {span} - times in the callee's zone {d.zone}", color=_GREY)
    doc.para(NUMBER_NOTICE, size=8, style="I")
    if d.broken:
        doc.ln(1)
        doc.para(f"{len(d.broken)} audit record(s) of this number do not check against the hash chain: they were "
                 "changed after they were written (see the chain column).", size=9, style="B", color=_RED)
    paras = paragraphs(d)
    doc.h2("Summary")
    for s in paras["en"]:
        doc.para(f"- {s}")
    doc.h2("Résumé")
    for s in paras["fr"]:
        doc.para(f"- {s}")
    c = j["counts"]
    doc.para(f"Calls {c['calls']}, allowed {c['allowed']}, blocked {c['blocked']}, would block (monitor) "
             f"{c['would_block']}, dry runs {c['dry_runs']}, attempts counted {c['attempts_counted']}.", size=8)
    doc.h2("Consents and revocations")
    _entries(doc, d.consents, "No consent recorded in the side store for this number.", d.retention_configured)
    doc.h2("Opt-outs recorded")
    _entries(doc, d.optouts, "No opt-out recorded in the side store.", d.retention_configured)
    doc.para(f"Side store: {d.side_store} - "
             f"{'retention: purge dates above' if d.retention_configured else NOT_CONFIGURED}", size=7.5,
             color=_GREY)
    doc.h2("Lists holding the number (now)")
    doc.grid(["list", "kind", "version", "as of", "holds the number"],
             [[s.name, s.kind, s.version, s.as_of or "-",
               "not loaded" if s.member is None else "yes" if s.member else "no"] for s in d.lists],
             [36, 30, 60, 30, 30])
    doc.h2("Decisions (audit trail)")
    if d.audit is None:
        doc.para("No audit trail configured ([gateway] audit): decisions cannot be shown.", style="I", color=_GREY)
    elif not d.decisions:
        doc.para("No decision on this number in the period.", style="I", color=_GREY)
    else:
        rows, bad = [], []
        for x in d.decisions:
            lists = ("\n".join(f"{k}@{v}" for k, v in x.lists.items()) if isinstance(x.lists, Mapping)
                     else x.lists)
            why = x.reason or str(x.ground)
            if x.verdict == "ALLOW" and x.would_block:
                why = f"would block: {why} (monitor)"
            if x.consent_id is not None:
                why += f" #{x.consent_id}"
            if x.valid_until is not None:
                why += f", valid until {x.valid_until.isoformat()}"
            chain = "intact" if x.link is Link.INTACT else f"{str(x.link).upper()}: {x.problem}"
            when = x.local_time.replace("T", " ")
            if x.written_local:
                when += f"\nwritten {x.written_local.replace('T', ' ')}"
            rows.append([when, x.campaign, x.verdict, why, x.rule, lists,
                         f"{x.decision_id} seq {x.seq}" + ("" if x.call else " (dry run)"), chain])
            bad.append(x.link is not Link.INTACT)
        doc.grid(["time", "campaign", "verdict", "reason / allowed on", "rule", "lists consulted", "decision id",
                  "chain"], rows, [20, 14, 11, 27, 20, 41, 25, 28], size=6.3, bad=bad)
        chain = j["chain"]
        doc.para(f"Audit database {chain['database']}: {chain['checked']} records checked, {chain['intact']} intact; "
                 f"head seq {chain['head_seq']}, hash {chain['head_hash']}; whole trail: "
                 f"{chain['whole_trail']['message'] if chain['whole_trail'] else 'not walked here (audit verify)'}.",
                 size=7)
    doc.h2("Refusals, opt-outs and attempts (state store)")
    st = j["state"]
    if st is None:
        doc.para("State store not read.", style="I", color=_GREY)
    else:
        doc.para(f"Store {st['store']}: opted out {st['opted_out_at'] or 'never'}; last refusal "
                 f"{st['last_refusal'] or 'none'}; {len(st['attempts'])} attempt(s) counted in the period"
                 + (f": {', '.join(st['attempts'])}" if st["attempts"] else "") + ".")
    doc.h2("Campaign settings")
    doc.grid(["campaign", "consent list", "cap", "cooldown after a refusal", "consent lifetime"],
             [[x.name, x.consent_list or "-", x.cap_text, x.cooldown_text,
               "not configured" if x.consent_max_age_days is None else "no limit" if x.consent_max_age_days == 0
               else f"{x.consent_max_age_days} days"] for x in d.campaigns], [36, 30, 40, 40, 40])
    return bytes(doc.output())
