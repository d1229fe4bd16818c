"""The manual, README.md and the pages of docs/: every relative link reaches a file in the
repository (and the heading it names), and every page can be reached from the README.

Its examples run in tests/cli/test_readme.py."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.support.markdown import anchors, links
from tests.support.project import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ELSEWHERE = re.compile(r"[a-z][a-z0-9+.-]*:", flags=re.IGNORECASE)  # https:, mailto:…


def name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def broken(page: Path) -> list[str]:
    """The relative links of a page whose file, or heading, is not there."""
    found = []
    for target in links(page.read_text()):
        if ELSEWHERE.match(target):
            continue
        path, _, fragment = unquote(target).partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_relative_to(ROOT) or not file.exists():
            found.append(f"{target}: no such file")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file.read_text()):
            found.append(f"{target}: no heading #{fragment} in {name(file)}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_relative_link_reaches_its_file_and_heading(page: Path) -> None:
    assert broken(page) == []


def test_the_manual_has_its_pages() -> None:
    assert len(PAGES) > 10 and all(page.read_text().startswith("# ") for page in PAGES)


def test_every_page_of_the_manual_is_reached_from_the_readme() -> None:
    reached, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        for target in links(page.read_text()):
            path = unquote(target).partition("#")[0]
            if path.endswith(".md") and not ELSEWHERE.match(path):
                todo.append((page.parent / path).resolve())
    assert [name(page) for page in PAGES if page not in reached] == []
