"""The configuration reference (gateway/configdoc.py) and docs/configuration.md, which holds it.

The reference is generated from the config's dataclasses; these tests check that the committed page is that
output, that it names exactly the tables and keys the config reader accepts (asked the way an operator finds
out: an unknown key's error lists the expected ones), and that a key without a description is still listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from gateway import configdoc
from gateway.cli import main
from gateway.config import ConfigError, parse

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"
REGENERATE = ".venv/bin/dnc-gateway config reference --update docs/configuration.md"


def test_the_committed_page_is_the_generated_reference() -> None:
    committed = configdoc.generated_part(PAGE.read_text(encoding="utf-8"))
    assert committed, f"{PAGE} lost its marker lines {configdoc.BEGIN!r} ... {configdoc.END!r}"
    assert committed == configdoc.markdown(), (
        f"docs/configuration.md is out of date with the config's dataclasses (a key added, renamed, retyped, "
        f"re-defaulted or re-described): run `{REGENERATE}` and commit the result")


def _accepted(toml: str) -> set[str]:
    """The keys the reader accepts where ``toml`` puts an unknown key, from the error that names them."""
    with pytest.raises(ConfigError) as caught:
        parse(toml)
    for error in caught.value.errors:
        if "zz_probe" in error and (m := re.search(r"expected one of (.*)\)$", error)):
            return set(m.group(1).split(", "))
    raise AssertionError(f"no 'expected one of' in the errors of {toml!r}: {caught.value.errors}")


def test_the_reference_names_every_table_and_key_the_reader_accepts() -> None:
    tables = configdoc.tables()
    assert {t.header.removesuffix(".NAME") for t in tables} == _accepted("zz_probe = 1\n")
    for t in tables:
        header = t.header.replace("NAME", "probe")
        documented = {k.name for k in t.keys}
        accepted = _accepted(f"[{header}]\nzz_probe = 1\n")
        assert documented == accepted, (
            f"[{t.header}]: the reader accepts {sorted(accepted - documented)} that the reference does not list "
            f"(a key with no field of its own: describe it in its class's KEY_DOCS), and the reference lists "
            f"{sorted(documented - accepted)} that the reader refuses; then run `{REGENERATE}`")


@dataclass(frozen=True, slots=True)
class _Section:
    """``[extra]``: a section of a test."""

    KEY_DOCS: ClassVar[dict[str, str]] = {"described": "What it does.", "described_file": "Or read it from a file."}

    described: str = "x"
    undescribed: int = 3
    items: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class _Config:
    extra: _Section | None = None
    path: Path | None = None


def test_a_key_without_a_description_is_listed_with_its_type_and_default() -> None:
    (table,) = configdoc.tables(_Config)
    assert table.header == "extra" and table.optional and table.about == "A section of a test."
    assert [(k.name, k.type, k.default, k.description) for k in table.keys] == [
        ("described", "string", '`"x"`', "What it does."),
        ("described_file", "string", '`""`', "Or read it from a file."),
        ("undescribed", "integer", "`3`", ""),
        ("items", "list of strings", "`[]`", ""),
    ]
    assert "| `undescribed` | integer | `3` |   |" in configdoc.markdown((table,))


def test_config_reference_update_rewrites_only_the_generated_part(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text(f"# Configuration\n\nBy hand.\n\n{configdoc.BEGIN}\nold\n{configdoc.END}\n\nAfter.\n")
    assert main(["config", "reference", "--update", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# Configuration\n\nBy hand.\n\n") and text.endswith(f"{configdoc.END}\n\nAfter.\n")
    assert configdoc.generated_part(text) == configdoc.markdown()


def test_config_reference_update_without_markers_is_bad_input(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "configuration.md"
    page.write_text("# Configuration\n")
    assert main(["config", "reference", "--update", str(page)]) == 2
    assert "marker lines" in capsys.readouterr().err and page.read_text() == "# Configuration\n"


def test_config_reference_prints_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "reference"]) == 0
    out = capsys.readouterr().out
    assert out == configdoc.markdown() and "| `home_country` | string | `\"FR\"` |" in out
