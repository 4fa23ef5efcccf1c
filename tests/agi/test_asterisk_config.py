"""asterisk-config/ agrees with the server: AGI URLs, routes, variable names, AMI rights, modules.

A small reader of Asterisk's .conf syntax (sections, templates, ``key = value``, ``exten =>``,
``same =>``, ``;`` comments) so that the files are checked as Asterisk would read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.agi import routes
from gateway.config import AgiSection

CONFIG = Path(__file__).parent.parent.parent / "asterisk-config"


@dataclass
class Section:
    name: str
    options: str = ""  # "(!)" or "(template)"
    items: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> list[str]:
        return [v for k, v in self.items if k == key]


def strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


def read_conf(name: str) -> list[Section]:
    sections: list[Section] = []
    for n, raw in enumerate((CONFIG / name).read_text().splitlines(), 1):
        line = strip_comment(raw)
        if not line:
            continue
        m = re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line)
        if m:
            sections.append(Section(m.group(1), m.group(2) or ""))
            continue
        m = re.fullmatch(r"([\w\-.]+)\s*=>?\s*(.*)", line)
        assert m, f"{name}:{n}: not a section, 'key = value' or 'key => value': {raw!r}"
        assert sections, f"{name}:{n}: option outside a section"
        sections[-1].items.append((m.group(1), m.group(2).strip()))
    return sections


@dataclass
class Priority:
    exten: str
    label: str
    app: str
    data: str


def dialplan() -> dict[str, list[Priority]]:
    """Context -> priorities, with ``same =>`` attached to the extension before it."""
    contexts: dict[str, list[Priority]] = {}
    for sec in read_conf("extensions.conf"):
        if sec.name == "globals":
            continue
        prios = contexts.setdefault(sec.name, [])
        exten = None
        for key, value in sec.items:
            if key == "include":
                continue
            if key == "exten":
                exten, prio, rest = value.split(",", 2)
            else:
                assert key == "same", f"[{sec.name}] unexpected {key}"
                assert exten is not None, f"[{sec.name}] 'same =>' before any 'exten =>'"
                prio, rest = value.split(",", 1)
            m = re.fullmatch(r"(\w+|n)(?:\((\w+)\))?", prio)
            assert m, f"[{sec.name}] bad priority {prio!r}"
            app, _, data = rest.partition("(")
            assert data.endswith(")"), f"[{sec.name}] {rest!r}: unbalanced application arguments"
            prios.append(Priority(exten, m.group(2) or "", app, data[:-1]))
    return contexts


def globals_() -> dict[str, str]:
    sec = next(s for s in read_conf("extensions.conf") if s.name == "globals")
    return dict(sec.items)


def agi_urls() -> list[str]:
    return [p.data for prios in dialplan().values() for p in prios if p.app == "AGI"]


def test_every_agi_url_names_a_route_of_the_server() -> None:
    urls = agi_urls()
    assert len(urls) >= 4
    for url in urls:
        m = re.fullmatch(r"agi://\$\{(DNC_GW_[AB])\}/([^,?]+)(\?[^,]*)?(,.*)?", url)
        assert m, f"unexpected AGI URL {url!r}"
        script = m.group(2)
        assert script == "${ARG1}" or routes.route_for(script) is not None, f"{script!r} is not a route"
    check = [u for u in urls if "/check" in u]
    assert check and all(u.endswith(",${ARG1},${ARG2},${ARG3}") for u in check)
    record = [u for u in urls if "/${ARG1}" in u]
    callers = [p.data for prios in dialplan().values() for p in prios if p.data.startswith("dnc-record,")]
    assert {c.split("(")[1].split(",")[0] for c in callers} == {routes.Route.REFUSAL, routes.Route.OPTOUT}
    assert record


def test_two_gateways_tried_in_turn_and_fail_closed_by_default() -> None:
    g = globals_()
    default_port = AgiSection().listen.port
    for key in ("DNC_GW_A", "DNC_GW_B"):
        host, port = g[key].rsplit(":", 1)
        assert host and int(port) > 0
    assert g["DNC_GW_A"].endswith(f":{default_port}")
    assert g["DNC_FAIL_OPEN"] == "0"
    screen = dialplan()["dnc-screen"]
    agis = [i for i, p in enumerate(screen) if p.app == "AGI"]
    assert [screen[i].data.split("/")[2].split("}")[0] for i in agis] == ["${DNC_GW_A", "${DNC_GW_B"]
    # After each AGI, the result is judged on AGISTATUS and the presence of a verdict.
    for i in agis:
        nxt = screen[i + 1]
        assert nxt.app == "GotoIf" and "AGISTATUS" in nxt.data and "SUCCESS" in nxt.data
        assert routes.DNC_VERDICT in nxt.data
    text = " ".join(p.data for p in screen)
    assert '$["${DNC_FAIL_OPEN}" = "1"]?failopen' in text
    returns = [p.data for p in screen if p.app == "Return"]
    assert returns.count("BLOCK") >= 2 and returns.count("ALLOW") == 2


def test_only_an_explicit_allow_dials() -> None:
    outbound = dialplan()["dnc-outbound"]
    dial = next(i for i, p in enumerate(outbound) if p.app == "Dial")
    assert "${DNC_TRUNK}" in outbound[dial].data
    goto = next(p for p in outbound if p.app == "GotoIf")
    assert goto.data == '$["${GOSUB_RETVAL}" = "ALLOW"]?dial'
    assert any(p.label == "dial" for p in outbound)
    refused = dialplan()["dnc-refused"]
    assert refused[-1].app == "Hangup" and refused[-1].data == "21"
    assert any(p.app == "Playback" and p.data.endswith(",noanswer") for p in refused)


def test_labels_and_gosub_targets_exist() -> None:
    plan = dialplan()
    for ctx, prios in plan.items():
        labels = {p.label for p in prios if p.label}
        for p in prios:
            if p.app == "GotoIf":
                targets = p.data.split("?", 1)[1].split(":")
                for t in targets:
                    if t and "," not in t:
                        assert t in labels, f"[{ctx}] GotoIf to unknown label {t!r}"
            if p.app in ("Gosub", "Goto"):
                target = p.data.split("(")[0].split(",")[0]
                assert target in plan, f"[{ctx}] {p.app} to unknown context {target!r}"


def test_variable_names_match_the_server() -> None:
    text = (CONFIG / "extensions.conf").read_text()
    used = set(re.findall(r"\bDNC_[A-Z_]+\b", text))
    server_vars = {routes.DNC_VERDICT, routes.DNC_REASON, routes.DNC_DECISION_ID, routes.DNC_WOULD_BLOCK,
                   routes.DNC_RESULT, routes.DNC_CALLER_ID}
    assert server_vars <= used
    dialplan_only = {"DNC_GW_A", "DNC_GW_B", "DNC_FAIL_OPEN", "DNC_DEFAULT_CAMPAIGN", "DNC_TRUNK"}
    assert used - server_vars <= dialplan_only, f"unknown DNC_ variables: {used - server_vars - dialplan_only}"
    assert '"${DNC_RESULT}" = "OK"' in text and str(routes.Result.OK) == "OK"


def test_agents_screened_trunk_cannot_dial_out() -> None:
    pjsip = read_conf("pjsip.conf")
    endpoints = {s.name: s for s in pjsip if "endpoint" in s.get("type")}
    template = next(s for s in pjsip if s.name == "agent-endpoint")
    assert template.get("context") == ["agents"]
    assert any(v.startswith("CAMPAIGN=") for v in template.get("set_var"))
    assert any(v.startswith("DNC_CALLER_ID=") for v in template.get("set_var"))
    trunk = endpoints[globals_()["DNC_TRUNK"]]
    assert trunk.get("context") == ["from-trunk"]
    plan_sections = {s.name: s for s in read_conf("extensions.conf")}
    assert "outbound" in plan_sections["agents"].get("include")
    assert "outbound" not in plan_sections["from-trunk"].get("include")
    agents = [s for s in pjsip if s.options == "(agent-endpoint)"]
    assert len(agents) >= 2


def test_ami_user_least_privilege() -> None:
    mgr = {s.name: s for s in read_conf("manager.conf")}
    user = mgr["dncgw"]
    assert user.get("read") == ["call,dialplan"]
    write = {w.strip() for w in user.get("write")[0].split(",") if w.strip()}
    assert write <= {"call"}
    assert user.get("deny") and user.get("permit")
    assert mgr["general"].get("bindaddr") == ["127.0.0.1"]


def test_modules_needed_are_loaded() -> None:
    mods = next(s for s in read_conf("modules.conf") if s.name == "modules")
    loaded = set(mods.get("load"))
    for m in ("res_agi.so", "chan_pjsip.so", "app_dial.so", "app_stack.so", "func_db.so", "app_playback.so"):
        assert m in loaded
    assert "res_agi.so" not in mods.get("noload")


@pytest.mark.parametrize("name", ["extensions.conf", "pjsip.conf", "manager.conf", "modules.conf"])
def test_files_parse(name: str) -> None:
    assert read_conf(name)
