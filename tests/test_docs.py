"""The documentation stays true to the repository: links, paths and names that exist.

README.md and docs/*.md are read as text: every relative link must reach a file
(and its anchor, if any) inside the repository; every repository path and every
``autograder.`` / ``rnn_course.`` / ``rnn_exchange.`` name they quote in backticks must exist; and
the README stays short enough for a newcomer.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 150
# Top-level folders of the repository whose files the documentation may name.
TRACKED = ("autograder", "rnn_course", "rnn_exchange", "tests", "bench", "tools", "docs", "source",
           "release")
PLACEHOLDER = re.compile(r"[<>*{}$\s]|\.\.\.")

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|^\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
CODE = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _ids(doc: Path) -> set[str]:
    """The anchors of a markdown file: GitHub's heading slugs and explicit ``<a id>``."""
    text = FENCE.sub("", doc.read_text())
    ids = set(re.findall(r'<a id="([^"]+)"', text))
    for heading in re.findall(r"^#+\s+(.*)$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        ids.add(slug)
    return ids


def _links(doc: Path) -> list[str]:
    text = FENCE.sub("", doc.read_text())
    return [a or b for a, b in LINK.findall(text)]


def _quoted(doc: Path) -> list[str]:
    """Every backticked token of a document, fenced blocks included (one token per line)."""
    text = doc.read_text()
    tokens = CODE.findall(FENCE.sub("", text))
    for block in FENCE.findall(text):
        tokens += [word for line in block.splitlines()[1:-1] for word in line.split()]
    return tokens


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_reach_a_file_and_its_anchor(doc):
    broken = []
    for target in _links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.is_relative_to(REPO):
            broken.append(f"{target} (outside the repository)")
        elif not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _ids(dest):
            broken.append(f"{target} (no such anchor)")
    assert broken == [], f"{doc.name}: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_quoted_paths_and_names_exist(doc):
    missing = []
    for token in _quoted(doc):
        token = token.strip("()[],;:.")
        path, _, test_name = token.partition("::")
        if path.split("/")[0] in TRACKED and "/" in path and not PLACEHOLDER.search(path):
            if not (REPO / path).exists():
                missing.append(path)
            elif test_name and not re.search(rf"def {re.escape(test_name)}\(",
                                             (REPO / path).read_text()):
                missing.append(token)
        elif (re.fullmatch(r"(autograder|rnn_course|rnn_exchange)(\.\w+)+", token)
              and not _names_exist(token)):
            missing.append(token)
    assert missing == [], f"{doc.name} names what the repository lacks: {missing}"


def _names_exist(dotted: str) -> bool:
    """``a.b.c.Name``: the longest prefix that is a module file, then names defined in it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:cut])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module.is_file():
            text = module.read_text()
            return all(re.search(rf"\b{re.escape(name)}\b", text) for name in parts[cut:])
    return False


def test_nothing_points_outside_the_repository():
    for doc in DOCS:
        text = doc.read_text()
        assert "../shared" not in text and "DESIGN.md" not in text, doc.name


def test_readme_is_short():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
