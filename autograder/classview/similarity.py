"""The similarity report: the most similar pairs of students' code, for a person to judge.

Each student's code is the code cells of their submitted notebooks, joined; the
release's code cells (starter code, provided and test cells) are subtracted: a
line as the release has it is dropped, and the release's fingerprints are taken
out of the rest, so two untouched submissions share nothing and the report shows
each student's own lines only.
``copydetect`` (winnowing over tokens: names become ``V``/``F``, comments and
blank lines are dropped) fingerprints them, which makes the comparison robust to
renamed variables, added comments and blank lines, and, as fingerprints are a
set, to functions put in another order.

A pair's similarity is the mean of copydetect's two shares (the part of each
one's fingerprinted code found in the other).  The report lists the pairs above
:data:`MIN_SIMILARITY`, most similar first, with the shared passages marked side
by side.  It never changes a grade.

For a class of hundreds, all pairs are first scored by the count of shared
fingerprints (an inverted index), and copydetect compares only the best
candidates in full.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np

CELL_CHARS = 20_000
"""A code cell is cut to this many characters (a huge cell is noted in the report)."""
SUBMISSION_CHARS = 100_000
"""A student's code, all cells together, is cut to this many characters."""
NOISE = 25
"""copydetect's noise threshold: the shortest run of filtered characters that counts."""
GUARANTEE = 30
"""copydetect's guarantee threshold: runs this long are always found."""
NOTEBOOK_BYTES = 32 << 20
"""A submitted notebook larger than this is left out (noted): its outputs, mostly."""
MIN_SIMILARITY = 0.3
"""Pairs below this similarity are not listed."""
TOP_PAIRS = 50
"""At most this many pairs are listed."""
CANDIDATES = 400
"""Pairs compared in full by copydetect, the best by shared fingerprints."""
COMMON_SHARE = 0.5
COMMON_MIN = 10
"""In the candidate search, a fingerprint held by more than this share of the class
(and more than COMMON_MIN students) is not counted: all write it."""


@dataclass
class Pair:
    a: str
    b: str
    similarity: float
    shares: tuple[float, float]
    html_a: str
    """a's code, escaped, shared passages in ``<mark>``."""
    html_b: str


@dataclass
class Report:
    assignment: str
    students: int
    pairs: list[Pair]
    notes: list[str] = field(default_factory=list)


def code_of(notebook_json: str, where: str, notes: list[str]) -> str:
    """The code cells of a notebook (JSON text), each cut to :data:`CELL_CHARS`."""
    try:
        nb = json.loads(notebook_json)
        cells = nb.get("cells", []) if isinstance(nb, dict) else []
    except ValueError:
        notes.append(f"{where}: not a readable notebook, left out")
        return ""
    out = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if len(source) > CELL_CHARS:
            notes.append(f"{where}: a code cell of {len(source)} characters was cut to "
                         f"{CELL_CHARS}")
            source = source[:CELL_CHARS]
        out.append(source)
    return "\n\n".join(out)


def submissions_of(course_root: Path, assignment: str, submitted: str = "submitted",
                   notes: list[str] | None = None) -> dict[str, str]:
    """student -> their code (every notebook of their submitted folder, by name), bounded."""
    notes = notes if notes is not None else []
    out = {}
    base = course_root / submitted
    if not base.is_dir():
        return out
    for student_dir in sorted(base.iterdir()):
        folder = student_dir / assignment
        if student_dir.is_symlink() or not folder.is_dir() or folder.is_symlink():
            continue
        code = []
        for path in sorted(folder.glob("*.ipynb")):
            if path.is_symlink() or not path.is_file():
                continue
            if path.stat().st_size > NOTEBOOK_BYTES:
                notes.append(f"{student_dir.name}/{path.name}: over {NOTEBOOK_BYTES >> 20} MiB,"
                             " left out")
                continue
            text = path.read_bytes().decode("utf-8", "replace")
            code.append(code_of(text, f"{student_dir.name}/{path.name}", notes))
        text = "\n\n".join(code)
        if len(text) > SUBMISSION_CHARS:
            notes.append(f"{student_dir.name}: code cut to {SUBMISSION_CHARS} characters")
            text = text[:SUBMISSION_CHARS]
        out[student_dir.name] = text
    return out


def starter_of(release_dir: Path) -> str:
    """The release's code cells (every notebook of the assignment's release folder)."""
    notes: list[str] = []
    return "\n\n".join(code_of(p.read_text("utf-8", "replace"), p.name, notes)
                       for p in sorted(release_dir.glob("*.ipynb")))


def own_code(code: str, starter_lines: set[str]) -> str:
    """``code`` without its blank lines and the lines it has as the starter code has them."""
    return "\n".join(line for line in code.splitlines()
                     if line.strip() and line.strip() not in starter_lines)


def _fingerprint(code: str, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint("code.py", NOISE, GUARANTEE - NOISE + 1, boilerplate,
                           language="python", fp=io.StringIO(code))


def compare(codes: dict[str, str], starter: str, *, top: int = TOP_PAIRS,
            min_similarity: float = MIN_SIMILARITY) -> list[Pair]:
    """The most similar pairs of ``codes`` (student -> code), ``starter`` subtracted."""
    from copydetect import compare_files
    from copydetect.utils import highlight_overlap

    starter_lines = {line.strip() for line in starter.splitlines()}
    codes = {s: own_code(code, starter_lines) for s, code in codes.items()}
    base = _fingerprint(starter, None)
    boilerplate = np.array(sorted(base.hashes)) if base.hashes else np.array([], dtype=int)
    prints = {s: _fingerprint(code, boilerplate) for s, code in codes.items()}
    students = [s for s in sorted(prints) if prints[s].hashes]
    sizes = [len(prints[s].hashes) for s in students]
    n = len(students)
    if n * (n - 1) // 2 <= CANDIDATES:
        candidates = [(i, j) for i in range(n) for j in range(i + 1, n)]
    else:
        # pairs by shared fingerprints (an inverted index), relative to the smaller one;
        # a fingerprint that most of the class has is no evidence and is not counted
        index: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(students):
            for h in prints[s].hashes:
                index[h].append(i)
        common = max(COMMON_MIN, int(COMMON_SHARE * n))
        shared: dict[tuple[int, int], int] = defaultdict(int)
        for members in index.values():
            if not 2 <= len(members) <= common:
                continue
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    shared[(members[x], members[y])] += 1
        candidates = sorted(shared, key=lambda ij: -shared[ij] / min(sizes[ij[0]],
                                                                     sizes[ij[1]]))
        candidates = candidates[:CANDIDATES]
    pairs = []
    for i, j in candidates:
        a, b = students[i], students[j]
        _, (s1, s2), (slices1, slices2) = compare_files(prints[a], prints[b])
        similarity = float((s1 + s2) / 2)
        if similarity < min_similarity:
            continue
        pairs.append(Pair(a, b, similarity, (float(s1), float(s2)), "", ""))
    pairs.sort(key=lambda p: (-p.similarity, p.a, p.b))
    pairs = pairs[:top]
    for p in pairs:  # the marked code, for the listed pairs only
        _, _, (slices1, slices2) = compare_files(prints[p.a], prints[p.b])
        p.html_a = _marked(prints[p.a].raw_code, slices1, highlight_overlap)
        p.html_b = _marked(prints[p.b].raw_code, slices2, highlight_overlap)
    return pairs


def _marked(code: str, slices, highlight_overlap) -> str:
    if len(slices) == 0 or slices.shape[-1] == 0:
        return escape(code)
    text, _ = highlight_overlap(code, slices, "<mark>", "</mark>", truncate=4,
                                escape_html=True)
    return text


def report(course_root: Path, assignment: str, release_dir: Path,
           submitted: str = "submitted") -> Report:
    """The similarity report of ``assignment`` in the course at ``course_root``."""
    notes: list[str] = []
    codes = submissions_of(course_root, assignment, submitted, notes)
    starter = starter_of(release_dir) if release_dir.is_dir() else ""
    if not starter:
        notes.append(f"no release notebook in {release_dir}: starter code not subtracted")
    pairs = compare(codes, starter) if len(codes) > 1 else []
    return Report(assignment, len(codes), pairs, notes)


def page(rep: Report, title_course: str = "") -> str:
    """The report as one HTML page (no script)."""
    from autograder.classview.render import e, head

    title = f"Similarity: {rep.assignment}" + (f" ({title_course})" if title_course else "")
    parts = [head(title), f"<h1>{e(title)}</h1>",
             f"<p id='summary'>{rep.students} submission(s) compared, starter code "
             f"subtracted; {len(rep.pairs)} pair(s) at or above {MIN_SIMILARITY:.0%} "
             "similarity. For a person to judge: this report changes no grade.</p>"]
    for note in rep.notes:
        parts.append(f"<p class='note'>{e(note)}</p>")
    if rep.pairs:
        parts.append("<table id='pairs'><tr><th>#</th><th>students</th><th>similarity</th>"
                     "<th>shares</th></tr>")
        for k, p in enumerate(rep.pairs, 1):
            parts.append(f"<tr><td><a href='#pair-{k}'>{k}</a></td><td>{e(p.a)} – {e(p.b)}"
                         f"</td><td class='num'>{p.similarity:.0%}</td><td class='num'>"
                         f"{p.shares[0]:.0%} / {p.shares[1]:.0%}</td></tr>")
        parts.append("</table>")
        for k, p in enumerate(rep.pairs, 1):
            parts.append(
                f"<h2 id='pair-{k}'>{k}. {e(p.a)} – {e(p.b)}: {p.similarity:.0%}</h2>"
                f"<table class='side'><tr><th>{e(p.a)}</th><th>{e(p.b)}</th></tr>"
                f"<tr><td><pre>{p.html_a}</pre></td><td><pre>{p.html_b}</pre></td></tr>"
                "</table>")
    parts.append("</body></html>")
    return "".join(parts)
