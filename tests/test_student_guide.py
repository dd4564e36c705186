"""The student guide (docs/student-guide.md) is true: what it tells students to run works.

Fast: JupyterLab is a direct, pinned dependency of this project (the version
installed is the pin), the guide names every assignment's release notebook and
the kernel this venv installs, and the README links it.  Slow: the guide's
command, ``jupyter lab`` of this venv, opens a release notebook in chromium
with that kernel (its screenshot is ``docs/img/jupyterlab.png``).
"""

from __future__ import annotations

import html
import shutil
from importlib import metadata
from pathlib import Path

import nbformat
import pytest

from autograder.course import Course

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "student-guide.md"
FIRST = Course(REPO).assignments[0]


def _kernel_display_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager().get_kernel_spec("python3").display_name


def test_jupyterlab_is_a_pinned_direct_dependency():
    pins = [r for r in metadata.requires("rnn-course") or [] if r.startswith("jupyterlab")]
    assert pins == [f"jupyterlab=={metadata.version('jupyterlab')}"], pins


def test_the_guide_names_every_release_and_the_kernel():
    text = GUIDE.read_text()
    for assignment in Course(REPO).assignments:
        assert f"`release/{assignment}/{assignment}.ipynb`" in text, assignment
    assert f"*{_kernel_display_name()}*" in text
    assert f".venv/bin/jupyter lab ~/rnn-work/{FIRST}.ipynb" in text


def test_the_readme_links_the_guide():
    assert "(docs/student-guide.md)" in (REPO / "README.md").read_text()


@pytest.mark.slow
def test_jupyter_lab_of_this_venv_opens_a_release_with_the_course_kernel(tmp_path):
    from browser import browse, jupyter, keep_for_docs, screenshot

    work = tmp_path / "rnn-work"
    work.mkdir()
    shutil.copy(Course(REPO).release_notebook(FIRST), work)
    with jupyter("lab", work, tmp_path) as url:
        page = url(f"/lab/tree/{FIRST}.ipynb")
        dom = browse(page, tmp_path, budget_ms=30000)
        png = screenshot(page, tmp_path / "jupyterlab.png", tmp_path, 1200, 900,
                         budget_ms=30000)
    title = nbformat.read(work / f"{FIRST}.ipynb", as_version=4).cells[0].source.splitlines()[0]
    assert 'class="jp-Notebook' in dom
    assert html.unescape(title.lstrip("# ")) in dom  # the notebook, rendered
    assert _kernel_display_name() in dom  # the kernel the guide names, started
    keep_for_docs(png, "jupyterlab.png")
