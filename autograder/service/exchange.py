"""A stricter ``nbgrader collect`` for a shared exchange (JupyterHub).

nbgrader's default collect copies each inbound submission with
``shutil.copytree``, which follows symbolic links with the grader account's
rights: a student who plants ``notes.txt -> <course>/source/...`` in the
exchange would have the hidden tests (or the grader's secret) copied into
their own submission.  And a submission owned by another user than the one it
claims to come from is only warned about.

:class:`SafeExchangeCollect` keeps links as links (the precheck then flags
them ``unsafe_file`` and never follows them), skips a submission whose
owner is not the student it names or whose name it cannot read, and copies
each submission into a temporary folder renamed into place once complete.
nbgrader_config.py installs it with
``c.ExchangeFactory.collect = "autograder.service.exchange.SafeExchangeCollect"``.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime

from nbgrader.exchange.abc.exchange import ExchangeError
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import ignore_patterns
from traitlets import Bool

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
        try:
            return super()._path_to_record(path)
        except (ExchangeError, ValueError, OverflowError) as exc:
            self.log.error("skipping %s: its name has no readable timestamp (%s)",
                           os.path.basename(path), str(exc).splitlines()[0] if str(exc) else "")
            # sorted last among its student's submissions, and never copied
            return {"username": os.path.basename(path).split("+")[0],
                    "filename": os.path.basename(path),
                    "timestamp": datetime.min, "unreadable": True}

    def copy_files(self):
        self.src_records = [rec for rec in self.src_records if not rec.get("unreadable")]
        if self.check_owner and self.skip_impersonation and pwd is not None:
            kept = []
            for rec in self.src_records:
                path = os.path.join(self.inbound_path, rec["filename"])
                try:
                    owner = pwd.getpwuid(os.lstat(path).st_uid).pw_name
                except KeyError:
                    owner = None
                # root owns everything when the whole exchange runs as root (tests,
                # single-user set-ups); that is not one student posing as another
                if owner in (rec["username"], "root"):
                    kept.append(rec)
                else:
                    self.log.error("skipping %s: it claims to be from %s but is owned by %s",
                                   rec["filename"], rec["username"], owner)
            self.src_records = kept
            # what is left is the student's own (or root's): nbgrader's warning would only
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
