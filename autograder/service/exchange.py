"""A stricter ``nbgrader collect`` for a shared exchange (JupyterHub).

nbgrader's default collect copies each inbound submission with
``shutil.copytree``, which follows symbolic links with the grader account's
rights: a student who plants ``notes.txt -> <course>/source/...`` in the
exchange would have the hidden tests (or the grader's secret) copied into
their own submission.  And a submission owned by another user than the one it
claims to come from is only warned about.

:class:`SafeExchangeCollect` keeps links as links (the precheck then flags
them ``unsafe_file`` and never follows them), skips an entry whose
owner is not the student it names, that names no valid student id, or whose
name it cannot read -- each decided before nbgrader picks a student's newest
entry, so a forged entry (another student's name, a timestamp in 2099) never
hides the genuine one -- and copies
each submission into a temporary folder renamed into place once complete.
nbgrader_config.py installs it with
``c.ExchangeFactory.collect = "autograder.service.exchange.SafeExchangeCollect"``.

:class:`PrivateReleaseAssignment` is the grader's ``release_assignment`` when
the exchange is served over HTTP (docs/exchange.md): it keeps the exchange's
folder private instead of making it world-writable as nbgrader's does.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime

from nbgrader.exchange.abc.exchange import ExchangeError
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.exchange.default.release_assignment import ExchangeReleaseAssignment
from nbgrader.utils import ignore_patterns
from traitlets import Bool

from autograder.course import student_id_problem

try:
    import pwd
except ImportError:  # pragma: no cover - not on Windows
    pwd = None


class SafeExchangeCollect(ExchangeCollect):
    """``nbgrader collect`` that never follows links and refuses impersonation."""

    skip_impersonation = Bool(
        True,
        help="Skip (instead of only warning about) an inbound submission whose owner is not "
             "the student it names.",
    ).tag(config=True)

    def _path_to_record(self, path):
        """nbgrader's record of an inbound entry, decided on before nbgrader picks each
        student's newest: an entry whose name has no readable timestamp, names no valid
        student id, or (``skip_impersonation``) is owned by another account than the
        student it names is logged and marked ``skip``; it sorts after every entry of
        the student's own (:meth:`_sort_by_timestamp`) and is never copied, so a forged
        entry never changes what happens to the genuine one."""
        name = os.path.basename(path)
        try:
            rec = super()._path_to_record(path)
        except (ExchangeError, ValueError, OverflowError) as exc:
            return self._skip(name, name.split("+")[0], "its name has no readable timestamp "
                              f"({str(exc).splitlines()[0] if str(exc) else ''})")
        problem = student_id_problem(rec["username"])
        if problem is not None:
            return self._skip(name, rec["username"], problem)
        if self.check_owner and self.skip_impersonation and pwd is not None:
            try:
                owner = pwd.getpwuid(os.lstat(path).st_uid).pw_name
            except (KeyError, OSError):
                owner = None
            # root owns everything when the whole exchange runs as root (tests,
            # single-user set-ups); that is not one student posing as another
            if owner not in (rec["username"], "root"):
                return self._skip(name, rec["username"], f"it claims to be from "
                                  f"{rec['username']} but is owned by {owner}")
        return rec

    def _skip(self, name: str, username: str, why: str) -> dict:
        self.log.error("skipping %s: %s", name[:200], why)
        # datetime.max: never "before the due date" either (collect --before-duedate)
        return {"username": username, "filename": name, "timestamp": datetime.max, "skip": True}

    def _sort_by_timestamp(self, records):
        """Newest first, the student's own entries before every skipped one."""
        return sorted(records, key=lambda rec: (not rec.get("skip"), rec["timestamp"]),
                      reverse=True)

    def copy_files(self):
        self.src_records = [rec for rec in self.src_records if not rec.get("skip")]
        if self.check_owner and self.skip_impersonation and pwd is not None:
            # each entry's owner was checked (_path_to_record): nbgrader's warning would only
            # repeat, on every collect, that root owns the files of a one-user exchange
            self.check_owner = False
            try:
                super().copy_files()
            finally:
                self.check_owner = True
            return
        super().copy_files()

    def do_copy(self, src, dest, log=None):
        """Copy ``src`` to ``dest`` keeping symbolic links as links (never following them)."""
        if os.path.islink(src):
            self.log.error("skipping %s: the submission folder is a symbolic link", src)
            return
        if self.get_size(src) > 1000 * self.coursedir.max_dir_size:
            raise RuntimeError(f"Directory size is too big: {src}")
        # whole or not at all: a folder at ``dest`` is always a complete copy
        partial = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.collecting")
        if os.path.lexists(partial):
            shutil.rmtree(partial)
        shutil.copytree(src, partial, symlinks=True,
                        ignore=ignore_patterns(exclude=self.coursedir.ignore,
                                               include=self.coursedir.include,
                                               max_file_size=self.coursedir.max_file_size,
                                               log=self.log))
        os.rename(partial, dest)
        if self.coursedir.groupshared:
            for dirname, dirs, files in os.walk(dest):
                for name in dirs + files:
                    path = os.path.join(dirname, name)
                    if os.path.islink(path):
                        continue  # chmod would change the link's target
                    mode = os.lstat(path).st_mode
                    want = 0o2770 if os.path.isdir(path) else 0o660
                    try:
                        os.chmod(path, (mode | want) & 0o2777)
                    except PermissionError:
                        self.log.warning("could not make %s group-shared", path)

    def get_size(self, root):
        """Total size of the regular files under ``root``, not following links."""
        total = 0
        for dirname, _, files in os.walk(root):
            for name in files:
                path = os.path.join(dirname, name)
                if not os.path.islink(path):
                    total += os.lstat(path).st_size
        return total


class PrivateReleaseAssignment(ExchangeReleaseAssignment):
    """``nbgrader release_assignment`` into the HTTP exchange's private folder.

    nbgrader's own makes the exchange root world-writable (0777) on every
    release; the HTTP exchange's root must stay the grader account's alone
    (0700, docs/exchange.md): a missing root is made 0700, an existing one is
    left as it is (the grading service checks it at start).
    nbgrader_config.py installs it in HTTP mode.
    """

    def ensure_root(self):
        if not os.path.isdir(self.root):
            try:
                os.makedirs(self.root, mode=0o700)
            except OSError as exc:
                self.fail(f"Could not create {self.root}: {exc.strerror}")
        if not os.access(self.root, os.W_OK | os.X_OK):
            self.fail(f"Unwritable exchange directory: {self.root}")
