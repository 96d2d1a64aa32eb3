"""README and `docs/`: short, every relative link lands, the design page matches the contract."""

import configparser
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]+`")


def _anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page):
    text = _FENCE.sub("", page.read_text())
    return {_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def _links(page):
    """(target, anchor) of every relative link of `page`, code blocks and spans left out."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", page.read_text()))
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        yield path, anchor


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file_and_heading(page):
    broken = []
    for path, anchor in _links(page):
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{path}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{path}#{anchor}: no such heading in {target.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) < 200


def _contract_layers():
    """The layers contract of setup.cfg, highest first, each a set of module names."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    lines = setup["importlinter:contract:layers"]["layers"].strip().splitlines()
    return [{name.strip() for name in line.split(":")} for line in lines]


def _design_floors():
    """The floors table of docs/design.md, highest first, each a set of module names."""
    text = (ROOT / "docs" / "design.md").read_text()
    table = text.split("<!-- floors:", 1)[1].split("<!-- /floors -->", 1)[0]
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    return [set(re.findall(r"`([\w.]+)`", row.split("|")[2])) for row in rows]


def test_the_design_pages_floors_are_the_import_contract():
    assert _design_floors() == _contract_layers(), (
        "docs/design.md's floors table differs from [importlinter:contract:layers] in setup.cfg: "
        "update the table (highest floor first, one row per layer)"
    )
