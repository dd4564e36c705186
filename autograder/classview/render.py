"""The class view as one static HTML page (no script) and as CSV files.

The pictures are drawn here with matplotlib and embedded as PNG ``data:`` images,
so the page is one file that needs nothing else: it carries no script at all,
and states a Content-Security-Policy (:data:`CSP`, also sent as a header by the
grading service) that allows none.  Every text from the gradebook (student ids,
messages, flag reasons) is escaped; in the CSV files a cell that a spreadsheet
would read as a formula (starting with ``= + - @``, a tab or a carriage return)
is prefixed with ``'`` (:func:`csv_cell`).
"""

from __future__ import annotations

import base64
import csv
import io
from datetime import datetime
from html import escape
from typing import Callable

from autograder.classview.data import ClassView, percentile

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
"""No script, no connection, no frame; images only inline; styles only the page's own."""
STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:80em}"
         "table{border-collapse:collapse;margin:.5em 0}"
         "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;vertical-align:top}"
         "th{background:#f4f4f4}code{white-space:pre-wrap}.num{text-align:right}"
         ".bar{display:inline-block;height:.8em}.full{background:#4a9}"
         ".partial{background:#ec6}.none{background:#d66}img{max-width:100%}"
         "pre{white-space:pre-wrap;background:#f8f8f8;padding:.4em;margin:0}"
         "mark{background:#fd8}")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXAMPLE_CHARS = 500
"""An example message is shown cut to this many characters."""


def e(value) -> str:
    """HTML-escaped text of ``value`` (quotes too: safe in an attribute)."""
    return escape("" if value is None else str(value), quote=True)


def head(title: str) -> str:
    """The page's head, with :data:`CSP` as a meta tag (the service also sends it)."""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<title>{e(title)}</title><style>{STYLE}</style></head><body>")


def csv_cell(value):
    """``value`` for a CSV cell: a text a spreadsheet would run as a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(rows, header) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


# --------------------------------------------------------------------------- #
# pictures
# --------------------------------------------------------------------------- #
def _figure(width=6.4, height=2.6):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(src: str, alt: str) -> str:
    return f"<img src='{src}' alt='{e(alt)}'>"


def score_histogram(view: ClassView) -> str:
    """The scores' histogram, with the median and the maximum marked (a PNG ``data:`` URL)."""
    fig = _figure()
    ax = fig.add_subplot()
    scores = view.scores
    top = max(view.max_score, max(scores, default=0.0), 1e-9)
    ax.hist(scores, bins=min(25, max(5, len(set(scores)))), range=(0, top), color="#69c",
            edgecolor="white")
    if scores:
        ax.axvline(view.median, color="#c33", linestyle="--",
                   label=f"median {view.median:.3g}")
    ax.axvline(view.max_score, color="#333", linestyle=":", label=f"maximum {view.max_score:g}")
    ax.set_xlabel("score (after late penalties)")
    ax.set_ylabel("students")
    ax.legend(loc="upper left")
    return _png(fig)


def function_bars(view: ClassView) -> str:
    """Per contract function, the share of students with full, partial and no points."""
    names = list(view.functions)
    fig = _figure(height=0.35 * max(len(names), 2) + 0.9)
    ax = fig.add_subplot()
    left = [0.0] * len(names)
    for i, (label, color) in enumerate((("full", "#4a9"), ("partial", "#ec6"),
                                        ("none", "#d66"))):
        shares = []
        for fn in names:
            total = sum(view.functions[fn]) or 1
            shares.append(view.functions[fn][i] / total)
        ax.barh(names, shares, left=left, color=color, label=label)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of students")
    fig.legend(loc="outside upper center", ncols=3)
    return _png(fig)


def submissions_over_time(view: ClassView) -> str:
    """The submissions' times, cumulative, with the due date marked."""
    times = sorted(s.timestamp for s in view.students if s.timestamp is not None)
    fig = _figure()
    ax = fig.add_subplot()
    if times:
        ax.step(times, range(1, len(times) + 1), where="post", color="#69c")
    if view.duedate is not None:
        ax.axvline(view.duedate, color="#c33", linestyle="--", label="due")
        ax.legend(loc="upper left")
    ax.set_ylabel("submissions so far")
    ax.set_xlabel("time (UTC)")
    fig.autofmt_xdate()
    return _png(fig)


# --------------------------------------------------------------------------- #
# the page
# --------------------------------------------------------------------------- #
def _share(n: int, total: int) -> str:
    return f"{n / total:.0%}" if total else "–"


def _seconds(value) -> str:
    if value is None:
        return "–"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value is not None else "–"


def page(view: ClassView, feedback_href: Callable[[str], str | None] = lambda s: None,
         similarity_href: str | None = None) -> str:
    """The class view as HTML; ``feedback_href(student)``: the link to their feedback (or None)."""
    n = len(view.students)
    title = f"Class view: {view.assignment} ({view.course_id})"

    def who(student: str) -> str:
        href = feedback_href(student)
        return f"<a href='{e(href)}'>{e(student)}</a>" if href else e(student)

    parts = [head(title), f"<h1>{e(title)}</h1>"]
    scored = view.scores
    parts.append(
        f"<p id='summary'>{n} submission(s) of {view.enrolled} student(s) in the gradebook; "
        f"{len(scored)} with a score; median {e(f'{view.median:.3g}' if scored else '–')} "
        f"of {view.max_score:g}; due {e(_when(view.duedate))} UTC.")
    if similarity_href:
        parts.append(f" <a href='{e(similarity_href)}'>Similarity report</a>.")
    parts.append("</p>")
    for note in view.notes:
        parts.append(f"<p class='note'>{e(note)}</p>")
    if not n:
        parts.append("<p id='empty'>No submissions yet: nothing to show.</p></body></html>")
        return "".join(parts)

    parts.append("<h2>Scores</h2>" + _img(score_histogram(view), "histogram of the scores"))
    parts.append(f"<h2>Named bugs ({len(view.bugs)})</h2><p>Failed checks grouped by "
                 "the bug their message names (numbers and arrays taken out).</p>"
                 "<table id='bugs'><tr><th>students</th><th>share</th><th>function</th>"
                 "<th>bug (message template)</th><th>example</th><th>checks</th>"
                 "<th>who</th></tr>")
    for b in view.bugs:
        example = b.example if len(b.example) <= EXAMPLE_CHARS else \
            b.example[:EXAMPLE_CHARS] + " …"
        parts.append(
            f"<tr class='bug'><td class='num'>{len(b.students)}</td>"
            f"<td class='num'>{_share(len(b.students), n)}</td><td>{e(b.function)}</td>"
            f"<td><code>{e(b.template)}</code></td><td><code>{e(example)}</code></td>"
            f"<td>{e(', '.join(b.checks))}</td>"
            f"<td>{', '.join(who(s) for s in b.students)}</td></tr>")
    parts.append("</table>")

    parts.append("<h2>Per function</h2>" + _img(function_bars(view), "full, partial and no "
                                                  "points per function"))
    rows = "".join(
        f"<tr><td>{e(fn)}</td><td class='num'>{_share(f, sum(c))}</td>"
        f"<td class='num'>{_share(p, sum(c))}</td><td class='num'>{_share(z, sum(c))}</td></tr>"
        for fn, c in view.functions.items() for f, p, z in [c])
    parts.append("<table id='functions'><tr><th>function</th><th>full</th><th>partial</th>"
                 f"<th>none</th></tr>{rows}</table>")

    parts.append("<h2>Checks</h2><table id='checks'><tr><th>check</th><th>function</th>"
                 "<th>points</th><th>pass rate</th><th>partial</th><th>none</th></tr>")
    for c in view.checks:
        parts.append(f"<tr><td>{e(c.grade_id)}</td><td>{e(c.function)}</td>"
                     f"<td class='num'>{c.max_score:g}</td>"
                     f"<td class='num'>{_share(c.full, c.graded)}</td>"
                     f"<td class='num'>{_share(c.partial, c.graded)}</td>"
                     f"<td class='num'>{_share(c.none, c.graded)}</td></tr>")
    parts.append("</table>")

    waits = view.feedback_seconds()
    late = view.late
    parts.append("<h2>Time</h2>" + _img(submissions_over_time(view),
                                         "submissions over time against the due date"))
    parts.append(
        f"<p id='feedback-time'>Submission to feedback ({e(view.feedback_source or 'unknown')}"
        f"): median {_seconds(percentile(waits, 0.5))}, p95 {_seconds(percentile(waits, 0.95))}"
        f" over {len(waits)} submission(s).</p>")
    parts.append(f"<p id='late'>Late: {len(late)} submission(s), penalties "
                 f"{sum(s.late_penalty for s in late):g} point(s) in all.</p>")
    if late:
        parts.append("<table><tr><th>student</th><th>late by</th><th>penalty</th></tr>"
                     + "".join(f"<tr><td>{who(s.student)}</td><td>{_seconds(s.seconds_late)}"
                               f"</td><td class='num'>{s.late_penalty:g}</td></tr>"
                               for s in late) + "</table>")
    parts.append("<h2>Flags</h2><table id='flags'><tr><th>flag</th><th>students</th></tr>"
                 + "".join(f"<tr><td>{e(k)}</td><td class='num'>{v}</td></tr>"
                           for k, v in view.flags.items()) + "</table>")

    parts.append("<h2>Students</h2><table id='students'><tr><th>student</th><th>score</th>"
                 "<th>submitted</th><th>late penalty</th><th>flags</th><th>bugs</th></tr>")
    for s in view.students:
        score = "no score" if s.score is None else f"{s.score:g}/{s.max_score:g}"
        parts.append(
            f"<tr><td>{who(s.student)}</td><td class='num'>{e(score)}</td>"
            f"<td>{e(_when(s.timestamp))}</td><td class='num'>{s.late_penalty:g}</td>"
            f"<td>{e(' '.join(sorted({f for f, _ in s.flags})))}</td>"
            f"<td class='num'>{len(s.bugs)}</td></tr>")
    parts.append("</table></body></html>")
    return "".join(parts)


# --------------------------------------------------------------------------- #
# CSV
# --------------------------------------------------------------------------- #
STUDENT_HEADER = ("student", "score", "max_score", "late_penalty", "seconds_late",
                  "timestamp", "flags", "bugs")
BUG_HEADER = ("students", "share", "function", "template", "example", "checks", "who")


def students_csv(view: ClassView) -> str:
    """One row per submission (bugs: their templates, joined with `` | ``)."""
    return write_csv(([s.student, "" if s.score is None else s.score, s.max_score,
                       s.late_penalty, s.seconds_late, _when(s.timestamp),
                       " ".join(sorted({f for f, _ in s.flags})), " | ".join(s.bugs)]
                      for s in view.students), STUDENT_HEADER)


def bugs_csv(view: ClassView) -> str:
    """One row per named bug."""
    n = len(view.students) or 1
    return write_csv(([len(b.students), round(len(b.students) / n, 4), b.function, b.template,
                       b.example, " ".join(b.checks), " ".join(b.students)]
                      for b in view.bugs), BUG_HEADER)
