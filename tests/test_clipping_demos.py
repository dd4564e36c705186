"""rnn_course.demos.clipping: the summary line and the figure of runs that overflow."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from test_notebook_claims import FINISHED, OVERFLOWED  # noqa: E402

from rnn_course.demos import clipping as demos  # noqa: E402
from rnn_course.training import History  # noqa: E402


def _overflowed():
    # the last step of a real overflow: the loss still finite, the norm's squares not
    return History(loss=[4.1, 2e3, 1.6e306], grad_norm=[38.0, 1e150, math.inf],
                   eval_step=[0], eval_loss=[4.1], eval_accuracy=[0.0], steps=3,
                   diverged=True, chance=0.08)


def _finished():
    return History(loss=[4.1, 0.5, 0.06], grad_norm=[38.0, 3.0, 0.5], eval_step=[0, 3],
                   eval_loss=[4.08, 0.063], eval_accuracy=[0.0, 0.1], steps=3, chance=0.08)


def test_run_summary_says_where_a_run_overflowed_or_how_it_ended():
    line = demos.run_summary("no clipping", _overflowed(), 1 / 6)
    assert line.endswith("loss 2e+03 at step 2, then loss 1.6e+306 and gradient norm inf: "
                         "overflow at step 3, training stopped")
    m = OVERFLOWED.fullmatch(line)
    assert m and m[1] == "no clipping" and float(m[3]) == 1e150 and m[8] == "3"
    line = demos.run_summary("clipping", _finished(), 1 / 6)
    assert line == ("clipping: first gradient norm 38, largest 38; held-out loss 4.08 -> "
                    "0.063 (best constant answer 0.167) after 3 steps")
    assert FINISHED.fullmatch(line) and not OVERFLOWED.fullmatch(line)


def test_plot_runs_marks_the_overflow_and_draws_values_near_the_float64_limit():
    ax_loss, ax_norm = demos.plot_runs({"no clipping": _overflowed(), "clipping": _finished()},
                                       max_norm=1.0, best_constant=1 / 6)
    fig = ax_loss.figure
    fig.canvas.draw()  # ticks near 1e306 must not overflow matplotlib's formatter
    for ax, last_finite in ((ax_loss, 1.6e306), (ax_norm, 1e150)):
        crosses = [ln for ln in ax.lines if ln.get_marker() == "x"]
        assert len(crosses) == 1  # only the run that overflowed
        assert crosses[0].get_xdata()[0] == 3 - (last_finite == 1e150)
        assert crosses[0].get_ydata()[0] == pytest.approx(math.log10(last_finite))
        assert any(list(ln.get_xdata()) == [3, 3] for ln in ax.lines)  # the dotted line
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert "no clipping: overflow at step 3" in labels
    assert "clipping (held-out loss 0.063)" in labels
    plt.close(fig)
