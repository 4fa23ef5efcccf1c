"""Config: typed values, and errors that name the file, the line, the table and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import DEMO_CONFIG, ConfigError, load, parse
from gateway.registry.model import ListKind

from .conftest import SAMPLE_TOML


def test_sample_config(sample_config_path: Path) -> None:
    c = load(sample_config_path)
    assert c.gateway.professional == "acme" and c.gateway.home_country == "FR"
    assert c.lists["bloctel"].kind is ListKind.OPPOSITION and c.lists["bloctel"].max_age_days == 30
    assert c.lists["bloctel"].path == sample_config_path.parent / "bloctel.txt"
    assert c.campaigns["survey"].mode == "monitor" and c.campaigns["survey"].category == "polling"
    assert c.web.admin_token == "test-token" and c.agi.listen.port == 0


def test_demo_config_is_valid(tmp_path: Path) -> None:
    (tmp_path / "admin-token").write_text("t0k3n\n")
    c = load(DEMO_CONFIG, data_dir=tmp_path)
    assert c.web.admin_token == "t0k3n"
    assert c.gateway.state == f"sqlite://{tmp_path / 'state.db'}"
    assert {"prospect", "legacy", "renewals", "survey", "solar", "b2b"} <= set(c.campaigns)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (('mode = "monitor"', 'mode = "loud"'), r":\d+: \[campaigns.survey\] mode: 'loud' is not one of"),
        (('kind = "opposition"', 'kind = "oposition"'), r"\[lists.bloctel\] kind: 'oposition' is not one of"),
        (('max_age_days = 30', 'max_age_days = "30"'), r"\[lists.bloctel\] max_age_days: expected int, got str"),
        (('max_age_days = 30', 'max_age_days = -1'), r"max_age_days: must be positive"),
        (('as_of = "2026-11-20"\nmax', 'as_of = "20/11/2026"\nmax'), r"as_of: '20/11/2026' is not a date"),
        (('listen = "127.0.0.1:0"\nallow', 'listen = "localhost"\nallow'), r"\[agi\] listen: 'localhost' is not HOST"),
        (('allow = ["127.0.0.0/8", "::1"]', 'allow = ["10.0.0.300/8"]'), r"\[agi\] allow: '10.0.0.300/8'"),
        (('professional = "acme"', 'profesional = "acme"'), r"\[gateway\] profesional: unknown key"),
        (('lists = ["company-dnc"]', 'lists = ["company_dnc"]'), r"no list named 'company_dnc'"),
        (('consent = "consent"', 'consent = "customers"'), r"\[campaigns.prospect\] consent: no consent list named"),
        (('state = "memory://"', 'state = "mysql://x"'), r"\[gateway\] state: 'mysql://x'"),
        (('timezone = "Europe/Paris"', 'timezone = "Mars/Olympus"'), r"unknown time zone"),
        (('[lists.bloctel]\nkind', '[lists.bloctel]\nkindd'), r"\[lists.bloctel\] kindd: unknown key"),
        (("[campaigns.prospect]", "[campaigns.prospect"), r"invalid TOML"),
    ],
)
def test_errors_name_the_line_and_key(patch: tuple[str, str], message: str) -> None:
    assert patch[0] in SAMPLE_TOML
    text = SAMPLE_TOML.replace(patch[0], patch[1], 1)
    with pytest.raises(ConfigError, match=message):
        parse(text, "gw.toml")


def test_line_number_points_at_the_key() -> None:
    text = SAMPLE_TOML.replace('mode = "monitor"', 'mode = "loud"')
    with pytest.raises(ConfigError) as e:
        parse(text, "gw.toml")
    line = int(str(e.value).split(":")[1])
    assert text.splitlines()[line - 1].startswith("mode =")


def test_a_misspelt_table_names_its_line_and_the_right_name() -> None:
    """Issue 15 #5: [campaign.presse] was reported at line 1 as '[] campaign: unknown key'."""
    text = SAMPLE_TOML + '\n[campaign.presse]\ncategory = "press"\n'
    with pytest.raises(ConfigError) as e:
        parse(text, "gw.toml")
    msg = str(e.value)
    line = int(msg.split(":")[1])
    assert text.splitlines()[line - 1] == "[campaign.presse]"
    assert "campaign: unknown table (did you mean 'campaigns'?" in msg and "[]" not in msg


def test_a_misspelt_key_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"\[gateway\] profesional: unknown key \(did you mean 'professional'\?"):
        parse(SAMPLE_TOML.replace('professional = "acme"', 'profesional = "acme"'), "gw.toml")


def test_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load(tmp_path / "missing.toml")


def test_group_commit_ms_is_an_optional_wait_zero_by_default() -> None:
    """Issue 16 #1: the key stays (0: no fixed wait, leader/follower group commit); a negative wait is refused."""
    assert parse(SAMPLE_TOML, "gw.toml").audit.group_commit_ms == 0.0
    assert parse(SAMPLE_TOML + "\n[audit]\ngroup_commit_ms = 0\n", "gw.toml").audit.group_commit_ms == 0.0
    assert parse(SAMPLE_TOML + "\n[audit]\ngroup_commit_ms = 2\n", "gw.toml").audit.group_commit_ms == 2.0
    with pytest.raises(ConfigError, match=r"\[audit\] group_commit_ms: must be 0 or more"):
        parse(SAMPLE_TOML + "\n[audit]\ngroup_commit_ms = -1\n", "gw.toml")


def test_consent_settings_and_the_audit_keeping_the_proof(tmp_path: Path) -> None:
    """Issue 13: consent_max_age_days, undated_consent, consent_proof_years; the audit keeps decisions as long."""
    from gateway.config import ConfigError, parse

    base = '[gateway]\naudit = "a.db"\nconsent_proof_years = 3\n[campaigns.c]\nconsent_max_age_days = 0\n' \
           'undated_consent = "block"\n'
    c = parse(base, base=tmp_path)
    assert (c.campaigns["c"].consent_max_age_days, c.campaigns["c"].undated_consent) == (0, "block")
    assert c.campaigns["c"].consent_lifts_cooldown is False  # the conservative default
    assert parse(base + "consent_lifts_cooldown = true\n", base=tmp_path).campaigns["c"].consent_lifts_cooldown
    assert c.gateway.consent_proof_years == 3
    with pytest.raises(ConfigError, match="retention_days"):
        parse(base.replace("consent_max_age_days = 0", "consent_max_age_days = 365") +
              "[audit]\nretention_days = 400\n", base=tmp_path)
    with pytest.raises(ConfigError, match="undated_consent"):
        parse('[campaigns.c]\nundated_consent = "maybe"\n', base=tmp_path)


def test_list_country_is_an_iso_code_and_optional(tmp_path: Path) -> None:
    text = """
[lists.dnc]
kind = "internal_dnc"
path = "dnc.txt"
[lists.us_dnc]
kind = "opposition"
path = "us.txt"
country = "us"
"""
    cfg = parse(text, base=tmp_path)
    assert cfg.lists["dnc"].country is None
    assert cfg.lists["us_dnc"].country == "US"
    with pytest.raises(ConfigError) as e:
        parse(text.replace('"us"', '"UK"'), base=tmp_path)
    assert "[lists.us_dnc] country" in str(e.value) and '"GB"' in str(e.value)


def test_campaign_jurisdiction_keys(tmp_path: Path) -> None:
    text = """
[campaigns.a]
[campaigns.b]
jurisdiction = "us"
unsupported_country = "allow"
industry_hours = true
[gateway]
unverified_state_rules = ["la"]
"""
    cfg = parse(text, base=tmp_path)
    a, b = cfg.campaigns["a"], cfg.campaigns["b"]
    assert (a.jurisdiction, a.unsupported_country, a.industry_hours) == ("auto", "block", False)
    assert (b.jurisdiction, b.unsupported_country, b.industry_hours) == ("US", "allow", True)
    assert cfg.gateway.unverified_state_rules == ("LA",)
    with pytest.raises(ConfigError) as e:
        parse(text.replace('"us"', '"UK"').replace('"allow"', '"maybe"'), base=tmp_path)
    message = str(e.value)
    assert "[campaigns.b] jurisdiction" in message and '"GB"' in message
    assert "[campaigns.b] unsupported_country" in message


@pytest.mark.parametrize(("text", "message"), [
    ('[gateway]\nhome_country = "FR"\n\n[lists.a]\nkind = "opposition"\npath = "a.txt"\nkind = "internal_dnc"\n',
     "c.toml:7: kind is set twice in [lists.a] (first at line 5): a key may appear once in a table"),
    ('audit = 1\nstate = 2\naudit = 3\n',
     "c.toml:3: audit is set twice at the top level (before any [table]) (first at line 1)"),
    ('[lists.a]\nkind = "opposition"\n[ lists . a ]\npath = "a.txt"\n',
     "c.toml:3: table [lists.a] is declared twice (first at line 1): merge the two into one"),
    ('[gateway]\nstate = { a = 1, a = 2 }\n', "c.toml:2: invalid TOML in [gateway]: Duplicate inline table key 'a'"),
])
def test_a_duplicated_toml_key_names_the_key_and_its_table(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(text, "c.toml", base=tmp_path)
    assert message in str(e.value)
