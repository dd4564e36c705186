"""Apply (or check) the marks of the cells no grade depends on, in the source notebooks.

    .venv/bin/python tools/mark_ungraded.py           # write the marks (metadata only)
    .venv/bin/python tools/mark_ungraded.py --check   # exit 1 if a notebook differs

:data:`MARKED` is the one list of marked cells (by grade id); the mark itself is
:data:`autograder.ungraded.MARK_KEY` / ``MARK_FIELD``.  Only cells after an
assignment's last graded cell are marked: a skipped cell placed before a test
could hold a global name that a student's function reads by mistake, and then
the score would depend on skipping.  ``python -m autograder release`` checks
that the marking is safe; rebuild ``release/`` after applying.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from autograder.ungraded import set_marks

ROOT = Path(__file__).resolve().parents[1]

MARKED = {
    "rnn_cell": ["memory_run"],
    "bptt": ["measure_run", "widget_run", "france_run"],
    "clipping": ["clipping_direction", "clipping_train", "clipping_widget"],
    "lstm": ["lstm_widget", "lstm_experiment"],
    "gru": ["gru_widget", "gru_experiment", "gru_lag_study", "gru_gradient_lag",
            "gru_truncation", "gru_look_inside"],
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report differences")
    parser.add_argument("--course-dir", default=str(ROOT))
    args = parser.parse_args(argv)
    status = 0
    for assignment, ids in MARKED.items():
        path = Path(args.course_dir) / "source" / assignment / f"{assignment}.ipynb"
        before = path.read_text(encoding="utf-8")
        nb = nbformat.reads(before, as_version=4)
        missing = set_marks(nb, ids)
        if missing:
            print(f"{path}: no cell {', '.join(missing)}", file=sys.stderr)
            status = 1
        after = nbformat.writes(nb) + "\n"
        if after == before:
            continue
        if args.check:
            print(f"{path}: marks differ from tools/mark_ungraded.py", file=sys.stderr)
            status = 1
        else:
            path.write_text(after, encoding="utf-8")
            print(f"marked {len(ids)} cell(s) in {path.relative_to(args.course_dir)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
