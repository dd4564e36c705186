"""rnn_course.widgets: the static drawing every widget cell shows as one PNG (issue 26).

In a kernel, both paths of ``slider_plot`` end in one output holding the PNG: alone
without a front end (the graded copy, the feedback), beside the live widget in the same
display bundle otherwise.  Headless runs of the real notebooks are in
test_notebook_claims.py.
"""

from __future__ import annotations

import base64
import struct

import matplotlib
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from test_notebooks import run_env

from rnn_course.widgets import STATIC_ENV, static_png

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _size(png: str) -> tuple[int, int]:
    raw = base64.b64decode(png)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", raw[16:24])  # IHDR: width, height


def _draw(width):
    plt.figure(figsize=(width, 2), dpi=100)
    plt.plot([0, 1])


def test_static_png_stacks_every_figure_drawn_and_closes_them():
    plt.figure()  # a figure left open by an earlier cell is neither drawn nor closed
    before = plt.get_fignums()
    png = static_png(_draw, [{"width": 4}, {"width": 3}])
    assert _size(png) == (400, 400)  # the widest, and both heights
    assert plt.get_fignums() == before
    plt.close("all")


def test_static_png_refuses_a_drawing_without_figure():
    with pytest.raises(ValueError, match="no figure"):
        static_png(lambda: None, [{}])


CELL = """
import matplotlib.pyplot as plt
from rnn_course.widgets import Slider, slider_plot

def draw(width):
    plt.figure(figsize=(width, 2), dpi=100)
    plt.plot([0, width])

slider_plot(draw, static_values=[{"width": 3}, {"width": 4}], width=Slider(3, 1, 5))
"""


@pytest.mark.slow
@pytest.mark.parametrize("static", [True, False], ids=["graded", "live"])
def test_a_widget_cell_shows_one_image(static, monkeypatch):
    from nbclient import NotebookClient

    env = run_env()
    if not static:
        env.pop(STATIC_ENV)
        env.pop("MPLBACKEND")
    for key in (STATIC_ENV, "MPLBACKEND"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = new_notebook(cells=[new_code_cell(CELL)])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                              "language": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"], outputs
    data = outputs[0].data
    assert _size(data["image/png"]) == (400, 400)
    assert (WIDGET_VIEW in data) == (not static)
    nbformat.validate(nb)
