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
# Each home country's dialplan and endpoints; manager.conf and modules.conf are shared (at the top).
VARIANTS = {"fr": CONFIG, "nanp": CONFIG / "nanp", "gb": CONFIG / "gb"}


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


def read_conf(name: str, base: Path = CONFIG) -> list[Section]:
    sections: list[Section] = []
    for n, raw in enumerate((base / name).read_text().splitlines(), 1):
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


def dialplan(base: Path = CONFIG) -> dict[str, list[Priority]]:
    """Context -> priorities, with ``same =>`` attached to the extension before it."""
    contexts: dict[str, list[Priority]] = {}
    for sec in read_conf("extensions.conf", base):
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


def globals_(base: Path = CONFIG) -> dict[str, str]:
    sec = next(s for s in read_conf("extensions.conf", base) if s.name == "globals")
    return dict(sec.items)


def agi_urls(base: Path = CONFIG) -> list[str]:
    return [p.data for prios in dialplan(base).values() for p in prios if p.app == "AGI"]


@pytest.fixture(params=list(VARIANTS))
def variant(request: pytest.FixtureRequest) -> Path:
    """Each home country's folder: every check of the dialplan holds for all of them."""
    return VARIANTS[str(request.param)]


def test_every_agi_url_names_a_route_of_the_server(variant: Path) -> None:
    urls = agi_urls(variant)
    assert len(urls) >= 4
    for url in urls:
        m = re.fullmatch(r"agi://\$\{(DNC_GW_[AB])\}/([^,?]+)(\?[^,]*)?(,.*)?", url)
        assert m, f"unexpected AGI URL {url!r}"
        script = m.group(2)
        assert script == "${ARG1}" or routes.route_for(script) is not None, f"{script!r} is not a route"
    check = [u for u in urls if "/check" in u]
    assert check and all(u.endswith(",${ARG1},${ARG2},${ARG3}") for u in check)
    record = [u for u in urls if "/${ARG1}" in u]
    callers = [p.data for prios in dialplan(variant).values() for p in prios if p.data.startswith("dnc-record,")]
    assert {c.split("(")[1].split(",")[0] for c in callers} == {routes.Route.REFUSAL, routes.Route.OPTOUT}
    assert record


def test_two_gateways_tried_in_turn_and_fail_closed_by_default(variant: Path) -> None:
    g = globals_(variant)
    default_port = AgiSection().listen.port
    for key in ("DNC_GW_A", "DNC_GW_B"):
        host, port = g[key].rsplit(":", 1)
        assert host and int(port) > 0
    assert g["DNC_GW_A"].endswith(f":{default_port}")
    assert g["DNC_FAIL_OPEN"] == "0"
    screen = dialplan(variant)["dnc-screen"]
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


def test_only_an_explicit_allow_dials(variant: Path) -> None:
    outbound = dialplan(variant)["dnc-outbound"]
    dial = next(i for i, p in enumerate(outbound) if p.app == "Dial")
    assert "${DNC_TRUNK}" in outbound[dial].data
    goto = next(p for p in outbound if p.app == "GotoIf")
    assert goto.data == '$["${GOSUB_RETVAL}" = "ALLOW"]?dial'
    assert any(p.label == "dial" for p in outbound)
    refused = dialplan(variant)["dnc-refused"]
    assert refused[-1].app == "Hangup" and refused[-1].data == "21"
    assert any(p.app == "Playback" and p.data.endswith(",noanswer") for p in refused)


def test_labels_and_gosub_targets_exist(variant: Path) -> None:
    plan = dialplan(variant)
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


def test_variable_names_match_the_server(variant: Path) -> None:
    text = (variant / "extensions.conf").read_text()
    used = set(re.findall(r"\bDNC_[A-Z_]+\b", text))
    server_vars = {routes.DNC_VERDICT, routes.DNC_REASON, routes.DNC_DECISION_ID, routes.DNC_WOULD_BLOCK,
                   routes.DNC_RESULT, routes.DNC_CALLER_ID}
    assert server_vars <= used
    dialplan_only = {"DNC_GW_A", "DNC_GW_B", "DNC_FAIL_OPEN", "DNC_DEFAULT_CAMPAIGN", "DNC_TRUNK"}
    assert used - server_vars <= dialplan_only, f"unknown DNC_ variables: {used - server_vars - dialplan_only}"
    assert '"${DNC_RESULT}" = "OK"' in text and str(routes.Result.OK) == "OK"


def test_agents_screened_trunk_cannot_dial_out(variant: Path) -> None:
    pjsip = read_conf("pjsip.conf", variant)
    endpoints = {s.name: s for s in pjsip if "endpoint" in s.get("type")}
    template = next(s for s in pjsip if s.name == "agent-endpoint")
    assert template.get("context") == ["agents"]
    assert any(v.startswith("CAMPAIGN=") for v in template.get("set_var"))
    assert any(v.startswith("DNC_CALLER_ID=") for v in template.get("set_var"))
    trunk = endpoints[globals_(variant)["DNC_TRUNK"]]
    assert trunk.get("context") == ["from-trunk"]
    plan_sections = {s.name: s for s in read_conf("extensions.conf", variant)}
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


# -- one folder per home country --------------------------------------------------------------------

# The contexts that do the screening: the same text in every country's extensions.conf, so that a fix in one
# is made in all (only [outbound], [emergency] and the title differ).
SHARED_CONTEXTS = ("globals", "agents", "dnc-outbound", "dnc-screen", "dnc-refused", "dnc-features", "dnc-record",
                   "from-trunk")
# The home country each folder is for, and the numbers its [emergency] must send straight to the trunk.
HOME = {"fr": "FR", "nanp": "US", "gb": "GB"}
EMERGENCY = {"fr": {"15", "17", "18", "112", "114", "115", "119", "191", "196", "197"},
             "nanp": {"911", "988"}, "gb": {"999", "112"}}
# What agents dial, as they dial it: each must reach [dnc-outbound] (hence the gateway), in its home's forms.
DIALLED = {
    "fr": ["0612345678", "0162000000", "+33612345678", "0033612345678", "+12125550123"],
    "nanp": ["2125550123", "12125550123", "01133612345678", "+12125550123", "011442079460000"],
    "gb": ["02079460000", "01223123456", "0169772345", "07912345678", "0800123456", "00442079460000", "+442079460000",
           "0012125550123"],
}


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """An Asterisk extension (``_NXXNXXXXXX``, ``_011X.``, ``911``) as a regular expression of what it matches."""
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern))
    out, i, body = [], 0, pattern[1:]
    classes = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}
    while i < len(body):
        c = body[i]
        if c == "[":
            end = body.index("]", i)
            out.append(f"[{body[i + 1:end]}]")
            i = end + 1
            continue
        out.append(classes.get(c.upper(), re.escape(c)))
        i += 1
    return re.compile("".join(out))


def extensions(base: Path, context: str) -> list[str]:
    return [v.split(",", 1)[0] for s in read_conf("extensions.conf", base) if s.name == context
            for k, v in s.items if k == "exten"]


def test_each_country_folder_holds_the_two_files_that_differ() -> None:
    for name, base in VARIANTS.items():
        assert (base / "extensions.conf").is_file() and (base / "pjsip.conf").is_file(), name
    readme = (CONFIG / "README.md").read_text()
    for name in ("nanp/", "gb/"):
        assert name in readme, f"asterisk-config/README.md does not say when to copy {name}"


def test_the_screening_contexts_are_the_same_in_every_country() -> None:
    def shared(base: Path) -> dict[str, list[tuple[str, str]]]:
        return {s.name: s.items for s in read_conf("extensions.conf", base) if s.name in SHARED_CONTEXTS}

    fr = shared(CONFIG)
    assert set(fr) == set(SHARED_CONTEXTS)
    for name, base in VARIANTS.items():
        assert shared(base) == fr, f"{name}/extensions.conf: a screening context differs from the French one"
        fr_sip = [s for s in read_conf("pjsip.conf", CONFIG)]
        other = [s for s in read_conf("pjsip.conf", base)]
        # Only the presented caller ID differs (a number of the home country).
        assert [(s.name, [i for i in s.items if not i[1].startswith("DNC_CALLER_ID=")]) for s in other] == \
            [(s.name, [i for i in s.items if not i[1].startswith("DNC_CALLER_ID=")]) for s in fr_sip], name


@pytest.mark.parametrize("name", list(VARIANTS))
def test_emergency_numbers_are_never_screened(name: str) -> None:
    from gateway.numbers import EMERGENCY as GATEWAY_EMERGENCY

    base = VARIANTS[name]
    emergency = extensions(base, "emergency")
    assert set(emergency) == EMERGENCY[name]
    assert set(emergency) <= GATEWAY_EMERGENCY[HOME[name]], "the gateway would not know these as emergency numbers"
    plan = {s.name: s for s in read_conf("extensions.conf", base)}
    assert "emergency" in plan["agents"].get("include")
    for sec in read_conf("extensions.conf", base):
        if sec.name == "emergency":
            for _, value in sec.items:
                exten, _, rest = value.split(",", 2)
                assert rest == "Dial(PJSIP/${EXTEN}@${DNC_TRUNK})", f"{name}: {exten} must go straight to the trunk"
    # No outbound pattern may catch an emergency number: it would wait for a gateway, and fail closed without one.
    outbound = [pattern_regex(p) for p in extensions(base, "outbound")]
    for number in emergency:
        assert not any(r.fullmatch(number) for r in outbound), f"{name}: {number} matches an [outbound] pattern"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_way_an_agent_dials_out_is_screened(name: str) -> None:
    from gateway.numbers import Normaliser

    base = VARIANTS[name]
    outbound = extensions(base, "outbound")
    assert all(p.startswith("_") for p in outbound)
    plan = dialplan(base)
    assert all(p.app == "Goto" and p.data.startswith("dnc-outbound,") for p in plan["outbound"])
    normaliser = Normaliser(HOME[name])
    for number in DIALLED[name]:
        assert any(pattern_regex(p).fullmatch(number) for p in outbound), f"{name}: {number} reaches no pattern"
        assert normaliser.parse(number).is_valid, f"{name}: the gateway cannot read {number} (home {HOME[name]})"
    # The caller ID the agents present is a valid number of the home country.
    template = next(s for s in read_conf("pjsip.conf", base) if s.name == "agent-endpoint")
    caller_id = next(v.split("=", 1)[1] for v in template.get("set_var") if v.startswith("DNC_CALLER_ID="))
    parsed = normaliser.parse(caller_id)
    assert parsed.is_valid and parsed.region == HOME[name], f"{name}: caller ID {caller_id} is not of {HOME[name]}"
