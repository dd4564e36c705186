"""Precheck: look at a submission folder before nbgrader (or any student code) does.

The coordinator reads ``submitted/<student>/<assignment>/`` (:meth:`Precheck.gather`:
the files within the limits, never through a link, and their digest); the worker
prechecks what was read (:meth:`Precheck.finished`), which gives a
:class:`Submission`: the notebooks to grade (parsed, validated, with their
nbgrader metadata made safe for nbgrader's sanitize preprocessors), the other
files to put in the student's scratch folder, and a list of *flags*.  It never
raises for anything a student can put in the folder: every problem becomes a
flag with a one-line reason, and grading goes on with what is usable.

Flags come from the one vocabulary of :mod:`autograder.pipeline.flags`.
The precheck raises these:

``invalid_notebook``     not JSON, not a notebook, fails ``nbformat.validate``,
                         or not a regular file (graded as missing: 0 points)
``missing_notebook``     an expected notebook is absent (0 points)
``renamed_notebook``     the only other notebook was graded in its place
``duplicate_grade_id``   two cells share an nbgrader id: the first keeps it
``unknown_grade_id``     a cell claims an id the instructor's notebook lacks:
                         its nbgrader metadata is dropped (it runs as a plain cell)
``tampered_cells_restored``  nbgrader metadata that does not validate was
                         dropped (the worker restores the instructor's cell)
``shadowing_module``     a file or folder named like an importable module
                         (``numpy.py``, ``sitecustomize.py``, ``matplotlib/``...):
                         not copied to the scratch folder
``too_large``            a file, the whole submission, or the number of
                         files is over the limit: the file is not used; a
                         notebook over the structure caps (cells, JSON depth,
                         JSON values): not graded (0 points)
``unsafe_file``          a symlink, fifo or device: never read, not copied; a hard
                         link (a file with another name) in the submission, or the
                         submission's folder or the student's a symlink: nothing
                         read, not graded (0 points)

Why duplicates are resolved here: nbgrader's ``DeduplicateIds`` keeps the
*last* cell of a duplicated id and leaves ``{}`` as the metadata of the others,
which ``CheckCellMetadata`` then rejects (``SchemaTooOldError``), aborting the
whole submission.  The precheck keeps the *first* occurrence (the instructor's
position in the notebook) and removes the nbgrader metadata of the copies, so
``DeduplicateIds`` later finds nothing to do.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import importlib.metadata
import json
import os
import pkgutil
import stat
import sys
import sysconfig
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from traitlets import Integer, List, Unicode
from traitlets.config import LoggingConfigurable

from autograder.pipeline import flags as F
from autograder.pipeline.flags import Flagged

# Module names that a file in the kernel's working directory must never shadow,
# whatever else is installed (the working directory comes first on sys.path).
ALWAYS_SHADOWED = frozenset({
    "numpy", "rnn_course", "autograder", "matplotlib", "sitecustomize", "usercustomize",
    "IPython", "ipykernel", "ipywidgets", "nbgrader", "scipy", "pandas", "test",
})
TIMESTAMP_FILE = "timestamp.txt"
SECRET_FILE = "submission_secret.txt"  # nbgrader submit's: it names the released feedback
DEFAULT_IGNORE = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")


@dataclass
class Submission(Flagged):
    """What the precheck found in one submission folder (plain, picklable data)."""

    student: str
    assignment: str
    path: Path
    notebooks: dict[str, str | None] = field(default_factory=dict)
    """Expected notebook name -> notebook JSON to grade (None: missing or unusable)."""
    files: dict[str, bytes] = field(default_factory=dict)
    """Other files for the scratch folder: relative POSIX path -> content."""
    flags: list[tuple[str, str]] = field(default_factory=list)
    """(flag, one-line reason), in the order found."""
    timestamp: str | None = None
    """Contents of ``timestamp.txt`` (None when absent or empty)."""
    digest: str = ""
    """sha256 over the folder's names and contents: changes when anything is resubmitted."""
    raw: dict[str, bytes] = field(default_factory=dict)
    """Every regular file read (but ``timestamp.txt``), within the limits: what
    :meth:`Precheck.finished` works on, and what ``autograded/`` copies from."""
    entries: list[tuple[str, str, int]] = field(default_factory=list)
    """(relative path, kind, size) of everything in the folder (the scan)."""
    notebooks_found: list[str] = field(default_factory=list)
    """Relative paths of the ``.ipynb`` files found, shallowest first."""


@functools.lru_cache(maxsize=1)
def shadowed_module_names() -> frozenset[str]:
    """Top-level names importable here: stdlib, site-packages, editable installs."""
    names = set(ALWAYS_SHADOWED) | set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    paths = {sysconfig.get_paths()[key] for key in ("purelib", "platlib", "stdlib", "platstdlib")}
    for info in pkgutil.iter_modules([p for p in paths if os.path.isdir(p)]):
        names.add(info.name)
    for path in paths:
        try:
            entries = os.listdir(path)
        except OSError:
            continue
        for entry in entries:  # namespace packages have no __init__: iter_modules skips them
            if entry.isidentifier() and os.path.isdir(os.path.join(path, entry)):
                names.add(entry)
    try:
        names |= set(importlib.metadata.packages_distributions())
    except Exception:  # a broken distribution's metadata must not stop grading
        pass
    return frozenset(names)


def module_name_of(filename: str) -> str | None:
    """The top-level module a file or folder of this name would provide, if any.

    ``numpy.py`` -> numpy, ``numpy/`` -> numpy, ``numpy.cpython-311-x86_64-linux-gnu.so``
    -> numpy, ``numpy.pth`` -> numpy (harmless in a cwd, but never wanted).
    """
    base = filename.split(".", 1)[0] if "." in filename else filename
    return base if base.isidentifier() else None


OVER_CAPS = "over the grader's limits: "
MAX_CELLS = 1000
"""Most cells in a notebook that is graded (the course's notebooks have under 100)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of a notebook's JSON (the course's notebooks: under 10)."""
MAX_JSON_ITEMS = 200_000
"""Most JSON values (objects, lists, strings, numbers) in a notebook (the course's: a few
thousand).  With the cell cap, these bound what validating, restoring, judging and
rendering one notebook can cost the grader, whatever its size in bytes."""


def structure_problem(raw, max_cells: int = MAX_CELLS, max_depth: int = MAX_JSON_DEPTH,
                      max_items: int = MAX_JSON_ITEMS) -> str:
    """Why the parsed JSON ``raw`` is over the structure caps, or "" (one pass, no recursion)."""
    cells = raw.get("cells") if isinstance(raw, dict) else None
    if isinstance(cells, list) and len(cells) > max_cells:
        return f"{len(cells)} cells (limit {max_cells})"
    items = 0
    stack = [(raw, 1)]
    while stack:
        value, depth = stack.pop()
        items += 1
        if items > max_items:
            return f"more than {max_items} JSON values"
        if depth > max_depth:
            return f"JSON nested deeper than {max_depth} levels"
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return ""


def parse_notebook(data: bytes, **caps) -> tuple[nbformat.NotebookNode | None, str]:
    """Parse and validate notebook bytes: (nb, "") or (None, one-line reason); never raises.

    A notebook over the structure caps (``caps``: :func:`structure_problem`'s
    limits) gets a reason that starts with :data:`OVER_CAPS`.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    if not text.strip():
        return None, "empty file"
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return None, f"not valid JSON ({str(exc).splitlines()[0][:80]})"
    if not isinstance(raw, dict):
        return None, f"not a notebook (a JSON {type(raw).__name__})"
    version = raw.get("nbformat")
    if not isinstance(version, int) or isinstance(version, bool):
        return None, "not a notebook (no nbformat version)"
    if version not in (3, 4):  # Jupyter writes 4; nbformat still converts 3
        return None, f"unsupported nbformat version {version}"
    if version == 4 and not isinstance(raw.get("cells"), list):
        return None, "not a notebook (no list of cells)"
    over = structure_problem(raw, **caps)
    if over:
        return None, f"{OVER_CAPS}{over}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4, capture_validation_error={})
            nbformat.validate(nb)
    except Exception as exc:  # NBFormatError, ValidationError, KeyError, TypeError...
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"not a valid notebook: {message[:120]}"
    return nb, ""


class Precheck(LoggingConfigurable):
    """Checks a submission folder (configurable from ``nbgrader_config.py`` as ``c.Precheck``)."""

    max_file_bytes = Integer(
        20 * 1024 * 1024, help="Largest file (notebook or other) that is used, in bytes."
    ).tag(config=True)
    max_submission_bytes = Integer(
        100 * 1024 * 1024, help="Largest total size of the files used from one submission."
    ).tag(config=True)
    max_files = Integer(
        1000, help="Most files read from one submission folder (the rest are not used)."
    ).tag(config=True)
    max_cells = Integer(
        MAX_CELLS, help="Most cells in a notebook that is graded (more: not graded, too_large)."
    ).tag(config=True)
    max_json_depth = Integer(
        MAX_JSON_DEPTH, help="Deepest JSON nesting of a notebook that is graded."
    ).tag(config=True)
    max_json_items = Integer(
        MAX_JSON_ITEMS, help="Most JSON values in a notebook that is graded."
    ).tag(config=True)
    extra_shadowed_names = List(
        Unicode(), help="More module names that a submitted file must not shadow."
    ).tag(config=True)
    ignore = List(
        Unicode(), list(DEFAULT_IGNORE),
        help="File name globs skipped everywhere (nbgrader's CourseDirectory.ignore).",
    ).tag(config=True)

    # ------------------------------------------------------------------ #
    def check(self, folder, student: str, assignment: str,
              expected: dict[str, set[str]]) -> Submission:
        """Check ``folder`` against the expected notebooks (name -> known grade ids).

        :meth:`gather` then :meth:`finished`.  Never raises for the folder's
        contents; an unexpected error in the precheck itself becomes a
        ``grader_error`` flag.
        """
        sub = self.gather(folder, student, assignment, expected)
        if F.GRADER_ERROR not in sub.flag_names:
            return self.finished(sub, expected)
        return sub

    def gather(self, folder, student: str, assignment: str,
               expected: dict[str, set[str]]) -> Submission:
        """Read the folder within the limits: files, timestamp, digest (the coordinator's
        intake: reading and hashing is all it does per submission).

        The files are kept as bytes in :attr:`Submission.raw`; the precheck proper,
        :meth:`finished`, runs in the worker on what was read.
        """
        sub = Submission(student=student, assignment=assignment, path=Path(folder))
        try:
            self._gather(sub, expected)
        except Exception as exc:  # the precheck must never abort a batch
            self.log.exception("precheck of %s failed", folder)
            sub.flag(F.GRADER_ERROR, f"precheck failed: {type(exc).__name__}: {exc}")
        return sub

    def finished(self, gathered: Submission, expected: dict[str, set[str]]) -> Submission:
        """A copy of ``gathered`` with the notebooks chosen, parsed and validated and the
        other files that are safe kept (``gathered`` is left as it is).

        Works on what :meth:`gather` read, never on the folder.  Never raises;
        an unexpected error becomes a ``grader_error`` flag.
        """
        sub = dataclasses.replace(gathered, notebooks={}, files={}, flags=list(gathered.flags))
        try:
            self._finish(sub, expected)
        except Exception as exc:
            self.log.exception("precheck of %s failed", sub.path)
            sub.flag(F.GRADER_ERROR, f"precheck failed: {type(exc).__name__}: {exc}")
        return sub

    def _gather(self, sub: Submission, expected: dict[str, set[str]]) -> None:
        refused = folder_link_problem(sub.path)
        entries, notebooks_found = ([], []) if refused else self._scan(sub)
        refused = refused or hard_link_problem(entries)
        if refused:  # never followed: nothing is read, the notebook counts as missing (0)
            sub.flag(F.UNSAFE_FILE, f"{refused}: not graded")
            sub.digest = hashlib.sha256(f"refused\0{refused}\0{entries}".encode(
                "utf-8", "surrogateescape")).hexdigest()
            sub.entries = entries
            return
        total = 0
        digest = hashlib.sha256()
        regular: dict[str, bytes] = {}
        wanted = expected_files(expected)
        # notebooks first: when the submission is over its size limit, they are what counts
        order = sorted(entries, key=lambda e: (e[0] not in wanted,
                                              not e[0].lower().endswith(".ipynb"), e[0]))
        for rel, kind, size in order:
            digest.update(f"{rel}\0{kind}\0{size}\0".encode("utf-8", "surrogateescape"))
            if kind != "file":
                if kind != "dir":
                    sub.flag(F.UNSAFE_FILE, f"{rel} is a {kind}: not used")
                continue
            if size > self.max_file_bytes:
                sub.flag(F.TOO_LARGE, f"{rel} is {size} bytes (limit {self.max_file_bytes})")
                continue
            if total + size > self.max_submission_bytes:
                sub.flag(F.TOO_LARGE, f"submission over {self.max_submission_bytes} bytes: "
                                      f"{rel} not used")
                continue
            data = self._read(sub.path / rel)
            if data is None:
                sub.flag(F.UNSAFE_FILE, f"{rel} could not be read as a regular file")
                continue
            if len(data) > self.max_file_bytes:  # grew since the scan
                sub.flag(F.TOO_LARGE, f"{rel} is over {self.max_file_bytes} bytes")
                continue
            total += len(data)
            digest.update(hashlib.sha256(data).digest())
            regular[rel] = data
        sub.digest = digest.hexdigest()

        stamp = regular.pop(TIMESTAMP_FILE, None)
        if stamp is not None:
            text = stamp.decode("utf-8", "replace").strip()
            sub.timestamp = text or None
        sub.raw = regular
        sub.entries = entries
        sub.notebooks_found = notebooks_found

    def _finish(self, sub: Submission, expected: dict[str, set[str]]) -> None:
        regular, entries, notebooks_found = sub.raw, sub.entries, sub.notebooks_found

        # which file is which expected notebook
        top_notebooks = [rel for rel in notebooks_found if "/" not in rel]
        chosen: dict[str, str | None] = {}
        used: set[str] = set()
        for name in expected:
            exact = f"{name}.ipynb"
            if exact in regular:
                chosen[name] = exact
                used.add(exact)
        for name in expected:
            if name in chosen:
                continue
            exact = f"{name}.ipynb"
            if exact in notebooks_found:  # there, but too large or unreadable: flagged already
                chosen[name] = None
                continue
            pool = [r for r in top_notebooks if r not in used and r not in expected_files(expected)]
            if not pool:  # an uploaded folder: look one level down
                pool = [r for r in notebooks_found if r not in used
                        and r not in expected_files(expected)]
            pool = [r for r in pool if r in regular]
            if pool:
                pick = self._best_candidate(pool, regular, expected[name])
                chosen[name] = pick
                used.add(pick)
                sub.flag(F.RENAMED_NOTEBOOK, f"graded {pick} as {exact}")
            else:
                chosen[name] = None
                kind = dict((r, k) for r, k, _ in entries).get(exact)
                if kind is not None and kind != "file":
                    sub.flag(F.INVALID_NOTEBOOK, f"{exact} is a {kind}, not a notebook file")
                else:
                    sub.flag(F.MISSING_NOTEBOOK, f"{exact} was not submitted")

        for name, rel in chosen.items():
            if rel is None:
                sub.notebooks[name] = None
                continue
            nb, problem = parse_notebook(regular[rel], max_cells=self.max_cells,
                                         max_depth=self.max_json_depth,
                                         max_items=self.max_json_items)
            if nb is None:
                over = problem.startswith(OVER_CAPS)
                sub.flag(F.TOO_LARGE if over else F.INVALID_NOTEBOOK, f"{rel}: {problem}"
                         + (": not graded" if over else ""))
                sub.notebooks[name] = None
                continue
            self._sanitize_metadata(sub, rel, nb, expected[name])
            sub.notebooks[name] = nbformat.writes(nb)

        # other files: never notebooks (nbgrader does not copy them either)
        for rel, data in regular.items():
            if rel.endswith(".ipynb"):
                continue
            top = rel.split("/", 1)[0]
            module = module_name_of(top)
            # the list of importable names costs 0.5 s to build, once per process: only a
            # submission with files besides its notebooks needs it
            if module is not None and (module in self.extra_shadowed_names
                                       or module in shadowed_module_names()):
                what = "folder" if "/" in rel else "file"
                sub.flag(F.SHADOWING_MODULE,
                         f"{top}{'/' if what == 'folder' else ''} would shadow module "
                         f"{module!r}: not copied")
                continue
            sub.files[rel] = data

    # ------------------------------------------------------------------ #
    def _scan(self, sub: Submission):
        """(relative path, kind, size) of every entry, without following links; notebooks."""
        entries = []
        notebooks = []
        root = sub.path
        count = 0
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            try:
                names = sorted(os.listdir(root / rel_dir if rel_dir else root))
            except OSError as exc:
                sub.flag(F.UNSAFE_FILE, f"{rel_dir or '.'} cannot be listed ({exc.strerror})")
                continue
            for name in names:
                if any(fnmatch.fnmatch(name, pat) for pat in self.ignore):
                    continue
                rel = f"{rel_dir}/{name}" if rel_dir else name
                try:
                    st = os.lstat(root / rel)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    kind = "dir"
                elif stat.S_ISREG(st.st_mode):
                    kind = HARD_LINK if is_hard_link(st) else "file"
                elif stat.S_ISLNK(st.st_mode):
                    kind = "symlink"
                else:
                    kind = "special file"
                count += 1
                if count > self.max_files:
                    sub.flag(F.TOO_LARGE, f"more than {self.max_files} files: the rest not used")
                    return entries, notebooks
                entries.append((rel, kind, st.st_size if kind == "file" else 0))
                if kind == "dir":
                    if rel.count("/") < 8:  # deeper is not a course submission
                        stack.append(rel)
                elif name.lower().endswith(".ipynb") and kind == "file":
                    notebooks.append(rel)
        entries.sort()
        return entries, sorted(notebooks, key=lambda r: (r.count("/"), r))

    def _read(self, path: Path) -> bytes | None:
        """Read a regular file (at most the size limit + 1 bytes), never through a link.

        ``O_NOFOLLOW`` and the ``fstat`` check keep a symlink or fifo swapped
        in since the scan from being read (a fifo would block forever).
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or is_hard_link(st):
                return None
            with os.fdopen(fd, "rb") as fh:
                fd = None
                return fh.read(self.max_file_bytes + 1)
        except OSError:
            return None
        finally:
            if fd is not None:
                os.close(fd)

    @staticmethod
    def _best_candidate(pool: list[str], regular: dict[str, bytes], known: set[str]) -> str:
        """The candidate notebook sharing most grade ids with the expected one."""
        def overlap(rel):
            try:
                cells = json.loads(regular[rel].decode("utf-8-sig")).get("cells", [])
                ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                       for c in cells if isinstance(c, dict)}
            except Exception:
                ids = set()
            return len(ids & known)

        return max(pool, key=lambda rel: (overlap(rel), -pool.index(rel)))

    def _sanitize_metadata(self, sub: Submission, rel: str, nb, known: set[str]) -> None:
        """Make nbgrader metadata safe for nbgrader's sanitize preprocessors (module doc)."""
        from autograder.pipeline.worker.preprocessors.cell_metadata import metadata_validator

        validator = metadata_validator()
        seen: set[str] = set()
        for index, cell in enumerate(nb.cells):
            if "nbgrader" not in cell.get("metadata", {}):
                continue
            meta = cell.metadata.nbgrader
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            label = f"{rel} cell {index}" + (f" ({gid})" if isinstance(gid, str) else "")
            try:
                validator.upgrade_cell_metadata(cell)
                validator.validate_cell(cell)
            except Exception as exc:
                del cell.metadata["nbgrader"]
                sub.flag(F.TAMPERED_CELLS_RESTORED,
                         f"{label}: invalid nbgrader metadata dropped "
                         f"({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})")
                continue
            meta = cell.metadata.nbgrader
            if not (meta.get("grade") or meta.get("solution") or meta.get("locked")
                    or meta.get("task")):
                continue
            gid = meta.get("grade_id")
            if gid not in known:
                del cell.metadata["nbgrader"]
                sub.flag(F.UNKNOWN_GRADE_ID, f"{label}: id not in the assignment, runs as "
                                             "a plain cell")
            elif gid in seen:
                del cell.metadata["nbgrader"]
                sub.flag(F.DUPLICATE_GRADE_ID, f"{label}: repeats id {gid!r}, the first "
                                               "occurrence is graded")
            else:
                seen.add(gid)


HARD_LINK = "hard link"
"""The kind of a regular file with other names (``st_nlink > 1``): never read, not copied."""


def is_hard_link(st: os.stat_result) -> bool:
    """Whether a regular file has another name somewhere: a name in a submission for a
    file of the course (``source/``, the secret...) reads as that file, so none is read."""
    return stat.S_ISREG(st.st_mode) and st.st_nlink > 1


def hard_link_problem(entries: list[tuple[str, str, int]]) -> str:
    """Why a submission whose scan found ``entries`` is not graded at all, or "": a hard
    link in it (nothing a student's upload makes; a name given to a file of someone else's
    by an account of the host) refuses the whole submission, not only that file."""
    linked = [rel for rel, kind, _ in entries if kind == HARD_LINK]
    if not linked:
        return ""
    more = f" (and {len(linked) - 1} more)" if len(linked) > 1 else ""
    return f"{linked[0]}{more} is a hard link, a file with another name"


def folder_link_problem(folder) -> str:
    """Why ``submitted/<student>/<assignment>`` may not be read at all, or "".

    A link at either level (the student's folder or the assignment's) would
    have the folder it leads to, another student's say, graded under this
    name: it is refused, never followed.  Also refused: either level not a
    folder.  Checked with ``lstat``, never following a link.
    """
    folder = Path(folder)
    for path, what in ((folder.parent, "student folder"), (folder, "submission folder")):
        try:
            mode = os.lstat(path).st_mode
        except OSError as exc:
            return f"the {what} {path.name} cannot be read ({exc.strerror})"
        if stat.S_ISLNK(mode):
            return f"the {what} {path.name} is a symbolic link"
        if not stat.S_ISDIR(mode):
            return f"the {what} {path.name} is not a folder"
    return ""


def with_source_files(kept: dict[str, bytes], source: dict[str, bytes]) -> dict[str, bytes]:
    """The submission's files the precheck kept, with the instructor's source files over
    them (as nbgrader's autograde does): what the scratch folder and ``autograded/`` hold,
    each path written once."""
    return {**kept, **source}


def expected_files(expected) -> set[str]:
    """The exact file names of the expected notebooks."""
    return {f"{name}.ipynb" for name in expected}
