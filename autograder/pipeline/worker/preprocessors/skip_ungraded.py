"""``SkipUngraded``: cells no grade depends on are not executed; the student's own outputs shown.

Runs in the worker's sanitize step, after :class:`RestoreCells`.  A cell is
skipped when all of these hold:

* its grade id is one the instructor marked (:mod:`autograder.ungraded`) in
  the *source* notebook (:attr:`cells`, from the job's structure: never the
  submission's metadata);
* as the gradebook restored it, it is a locked instructor code cell, not a
  solution, test or task (:func:`~autograder.ungraded.may_skip`), and its
  source is the instructor's (its checksum is the gradebook's).

Everything else runs: a cell a student added, one whose id the gradebook
does not know, and every solution and test cell, whatever its metadata says
(a skip tag a submission carries is removed).  A skipped cell gets nbclient's
skip tag, and, in place of outputs, the outputs of the same cell in the
submission as it was handed in, reduced to text and images
(:data:`~autograder.pipeline.worker.preprocessors.sanitize_outputs.SAFE_MIME`; they go
through :class:`SanitizeOutputs` later, as every output does), followed by
:data:`~autograder.ungraded.NOT_RERUN_NOTE`.  A submission without outputs there
shows none.  The ids skipped are in ``resources["rnn_course"]["skipped_cells"]``.
"""

from __future__ import annotations

import re

import nbformat
from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_output
from nbgrader.utils import compute_checksum
from traitlets import Any, Bool, Set, Unicode

from autograder.ungraded import NOT_RERUN_NOTE, may_skip, skip_tag

from .sanitize_outputs import SAFE_MIME


class SkipUngraded(Preprocessor):
    """Tag the instructor's marked cells so that execution skips them (see the module)."""

    cells = Set(help="Grade ids the instructor marked in the source notebook.").tag(config=True)

    tag = Unicode("", help="The tag the execute preprocessor skips (empty: the one it is "
                           "configured with, else nbclient's default).").tag(config=True)
    enabled = Bool(True, help="Skip the marked cells (False: execute every cell, as stock "
                              "nbgrader does).").tag(config=True)
    submitted = Any(None, allow_none=True,
                    help="The submission's notebook as handed in (JSON text or a notebook): "
                         "where the student's own outputs of a skipped cell come from.")

    def preprocess(self, nb, resources):
        cells = set(self.cells) if self.enabled else set()
        own = self._submitted_outputs(cells) if cells else {}
        tag = self.tag or skip_tag(self.config)
        skipped = []
        for cell in nb.cells:
            tags = cell.get("metadata", {}).get("tags")
            if tags is not None and (not isinstance(tags, list) or tag in tags):
                # the submission's skip tag is never trusted (nor a string nbclient would
                # search for it as a substring)
                cell.metadata.tags = [t for t in tags if isinstance(t, str) and t != tag] \
                    if isinstance(tags, list) else []
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid not in cells or not may_skip(cell) or gid in skipped:
                continue
            if compute_checksum(cell) != cell.metadata.nbgrader.get("checksum"):
                continue
            cell.metadata.setdefault("tags", []).append(tag)
            outputs = [o for o in (_inert(o) for o in own.get(gid, [])) if o is not None]
            cell.outputs = outputs + [new_output("stream", name="stdout", text=NOT_RERUN_NOTE)] \
                if outputs else []
            cell.execution_count = None
            skipped.append(gid)
        resources.setdefault("rnn_course", {})["skipped_cells"] = skipped
        return nb, resources

    def _submitted_outputs(self, cells: set[str]) -> dict[str, list]:
        """grade id -> the outputs of the cell that carries that id in the submission as
        handed in (the first: the precheck leaves the id to the first cell only)."""
        if self.submitted is None:
            return {}
        try:
            nb = (nbformat.reads(self.submitted, as_version=4)
                  if isinstance(self.submitted, str) else self.submitted)
        except Exception:  # the precheck parsed it already; be sure anyway
            return {}
        found = {}
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if isinstance(gid, str) and gid in cells and cell.get("cell_type") == "code":
                found.setdefault(gid, cell.get("outputs", []) or [])
        return found


_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")
"""What an image's data may hold (its base64 text), nothing a page could read as markup."""


def _inert(output) -> nbformat.NotebookNode | None:
    """``output`` reduced to text and images (None: nothing of it is kept)."""
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind == "stream":
        text = output.get("text")
        if isinstance(text, list):
            text = "".join(t for t in text if isinstance(t, str))
        if not isinstance(text, str) or not text:
            return None
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return new_output("stream", name=name, text=text)
    if kind in ("display_data", "execute_result"):
        data = output.get("data")
        if not isinstance(data, dict):
            return None
        kept = {}
        for mime in SAFE_MIME:
            value = data.get(mime)
            if isinstance(value, list):
                value = "".join(v for v in value if isinstance(v, str))
            if isinstance(value, str) and value and (mime == "text/plain"
                                                     or _BASE64.fullmatch(value)):
                kept[mime] = value
        return new_output("display_data", data=kept) if kept else None
    return None
