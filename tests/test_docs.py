"""README.md and the documentation under docs/: what a reader of a clone can follow.

``make test`` builds the site with ``mkdocs build --strict`` (every link between pages and every anchor
checked); these tests add what mkdocs does not see: the README's own links, its length, and that neither
the README nor a page points outside the repository or at an issue number its reader cannot open, and that
the README's production config is one the gateway accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import parse

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")
# What a clone does not hold: the project's design documents and the tracker.
OUTSIDE = re.compile(r"(?-i:DESIGN\.md|RULES\.md)|\.\./shared|\bissues? #?\d+|design card", re.IGNORECASE)


def _anchors(page: Path) -> set[str]:
    """The heading anchors of a Markdown page, as GitHub and mkdocs' toc both write them."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"#{1,6} (.*)", line):
            slug = re.sub(r"[^\w\s-]", "", m.group(1).lower()).strip()
            found.add(re.sub(r"[\s]+", "-", slug))
    return found


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 300, f"README.md has {lines} lines: move the detail into a page under docs/"


def test_the_readmes_links_lead_somewhere() -> None:
    for target in LINK.findall(README.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        page = ROOT / path if path else README
        assert page.exists(), f"README.md links to {target}, which is not in the repository"
        if anchor and page.suffix == ".md":
            assert anchor in _anchors(page), f"README.md links to {target}: no such heading in {path or 'README.md'}"


def test_the_readmes_production_config_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's minimal production config is one the gateway accepts (its paths moved under tmp_path)."""
    monkeypatch.delenv("DNC_GATEWAY_ADMIN_TOKEN", raising=False)
    (block,) = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    text = block.replace("/var/lib/dnc-gateway", str(tmp_path)).replace("/etc/dnc-gateway", str(tmp_path))
    (tmp_path / "admin-token").write_text("0" * 64)
    config = parse(text, "README.md")
    assert set(config.lists) == {"bloctel", "company-dnc", "consent"} and set(config.campaigns) == {"spring"}
    assert config.gateway.audit == tmp_path / "audit.db" and config.web.admin_token == "0" * 64


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_outside_the_repository(page: Path) -> None:
    found = [m.group(0) for m in OUTSIDE.finditer(page.read_text(encoding="utf-8"))]
    assert not found, f"{page.relative_to(ROOT)} points at what a clone does not hold: {found}"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_link_to_nowhere(page: Path) -> None:
    """``[text](#)`` passes ``mkdocs build --strict`` and leads nowhere: a link left behind by a move."""
    assert "](#)" not in page.read_text(encoding="utf-8"), f"{page.relative_to(ROOT)} has a link to '#'"
