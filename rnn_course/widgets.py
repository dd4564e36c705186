"""Sliders over a plot, that fall back to a static plot when nobody can move them.

Every widget of the course is made with :func:`slider_plot`: a drawing
function of keyword parameters plus one control per parameter.  In Jupyter
with a front end the figure redraws as the sliders move.  Without one
(headless execution, autograding, plain Python, ipywidgets missing, or
``RNN_COURSE_STATIC_WIDGETS=1``) the function is drawn once at the default
values (or at each of a few given values) and nothing waits for input.

Either way the cell's output holds one PNG of the static drawing: as the cell's
only output without a front end (so the graded copy and the feedback show it,
whatever matplotlib backend the kernel uses), and beside the live widget, as
the ``image/png`` of the same display bundle, with one (a front end that runs
widgets shows the widget; a static viewer, nbconvert or CI shows the image).
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from typing import Callable, Sequence

from rnn_course.grading import GRADING_DIR_ENV

STATIC_ENV = "RNN_COURSE_STATIC_WIDGETS"


@dataclass(frozen=True)
class Slider:
    """A numeric control: ``Slider(default, low, high, step)``; ``log=True`` for a log scale."""

    default: float
    low: float
    high: float
    step: float | None = None
    log: bool = False
    description: str = ""


@dataclass(frozen=True)
class Choice:
    """A drop-down control over a few options; the first is the default."""

    options: Sequence
    description: str = ""

    @property
    def default(self):
        return self.options[0]


def interactive_available() -> bool:
    """True when running in an IPython kernel with ipywidgets and no static override."""
    if os.environ.get(STATIC_ENV, "") not in ("", "0"):
        return False
    if os.environ.get(GRADING_DIR_ENV):  # grading: nothing is interactive
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return _in_kernel()


def _to_widget(name: str, control):
    import ipywidgets as w

    label = control.description or name
    if isinstance(control, Choice):
        return w.Dropdown(options=list(control.options), value=control.default,
                          description=label)
    if control.log:
        return w.FloatLogSlider(value=control.default, min=_log10(control.low),
                                max=_log10(control.high), step=control.step or 0.05,
                                description=label, continuous_update=False)
    if all(float(v).is_integer() for v in (control.default, control.low, control.high)) and (
        control.step is None or float(control.step).is_integer()
    ):
        return w.IntSlider(value=int(control.default), min=int(control.low),
                           max=int(control.high), step=int(control.step or 1),
                           description=label, continuous_update=False)
    return w.FloatSlider(value=control.default, min=control.low, max=control.high,
                         step=control.step or (control.high - control.low) / 100,
                         description=label, continuous_update=False)


def _log10(x: float) -> float:
    import math

    return math.log10(x)


def slider_plot(draw: Callable[..., None], static_values: Sequence[dict] | None = None,
                **controls):
    """Show ``draw(**params)`` under one slider per parameter, or draw it statically.

    Inputs:
    - draw: function of keyword parameters that draws on the current matplotlib
      figure (it may call ``plt.figure``; :func:`slider_plot` shows it).
    - static_values: optional list of parameter dicts drawn in turn when there
      is no front end (for instance one value below and one above a threshold);
      parameters left out take their defaults.  By default, the defaults alone.
    - controls: name -> :class:`Slider` or :class:`Choice`.

    Returns None: the widget is already displayed, and returning it would make
    a cell that ends with this call display it a second time.
    """
    import matplotlib.pyplot as plt

    defaults = {name: c.default for name, c in controls.items()}
    if interactive_available():
        import ipywidgets as w
        from IPython.display import display

        png = static_png(draw, [{**defaults, **values} for values in static_values or [{}]])

        def redraw(**params):
            draw(**params)
            plt.show()

        widget = w.interactive(redraw, **{n: _to_widget(n, c) for n, c in controls.items()})
        bundle = {**widget._repr_mimebundle_(), "image/png": png}
        bundle["text/plain"] = "(the widget's static drawing; run the notebook to move it)"
        display(bundle, raw=True)
        return None
    png = static_png(draw, [{**defaults, **values} for values in static_values or [{}]])
    if _in_kernel():
        from IPython.display import Image, display

        display(Image(data=base64.b64decode(png), format="png"))
    else:  # plain Python: whatever the backend shows
        _show_png(png)
    return None


def static_png(draw: Callable[..., None], param_sets: Sequence[dict]) -> str:
    """Draw ``draw(**params)`` for each dict of ``param_sets``; one base64 PNG of them all.

    Each drawing may open figures of its own; every figure opened is rendered with
    matplotlib's Agg canvas (whatever the backend), the images are stacked top to
    bottom, and the figures are closed, so no backend shows them a second time.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    before = set(plt.get_fignums())
    images = []
    try:
        for params in param_sets:
            draw(**params)
            for num in sorted(set(plt.get_fignums()) - before):
                canvas = FigureCanvasAgg(plt.figure(num))
                canvas.draw()
                images.append(np.asarray(canvas.buffer_rgba()))
                plt.close(num)
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
    if not images:
        raise ValueError("the drawing function drew no figure")
    width = max(img.shape[1] for img in images)
    padded = [np.pad(img, ((0, 0), (0, width - img.shape[1]), (0, 0)), constant_values=255)
              for img in images]
    buffer = io.BytesIO()
    plt.imsave(buffer, np.concatenate(padded, axis=0), format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _in_kernel() -> bool:
    """True inside an IPython kernel (Jupyter, nbclient, the grader's sandbox)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _show_png(png: str) -> None:
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    image = mpimg.imread(io.BytesIO(base64.b64decode(png)), format="png")
    fig = plt.figure(figsize=(image.shape[1] / 100, image.shape[0] / 100), dpi=100)
    fig.figimage(image)
    plt.show()
