"""The stand-in for other accounts (``other_accounts``): they reach this clone's Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from other_accounts import NOBODY, as_account, blocking_folder


def test_blocking_folder_is_the_outermost_folder_others_cannot_enter():
    # not under tmp_path: pytest's own folder is private to its user
    base = Path(tempfile.mkdtemp(prefix="rnn-accounts-"))
    try:
        base.chmod(0o755)
        private = base / "home"
        (private / "me" / "clone").mkdir(parents=True)
        os.chmod(private, 0o700)
        os.chmod(private / "me", 0o700)
        assert blocking_folder(str(private / "me" / "clone" / ".venv")) == str(private)
        os.chmod(private, 0o755)
        assert blocking_folder(str(private / "me" / "clone" / ".venv")) == str(private / "me")
        os.chmod(private / "me", 0o755)
        assert blocking_folder(str(private / "me" / "clone" / ".venv")) is None
    finally:
        shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs commands as another uid")
def test_another_account_runs_this_python_with_its_packages():
    proc = subprocess.run(
        as_account([sys.executable, "-c", "import os, sys, numpy; print(os.getuid(), sys.prefix)"]),
        capture_output=True, text=True, timeout=60, cwd="/",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(NOBODY), sys.prefix]
