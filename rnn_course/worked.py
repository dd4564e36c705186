"""Worked examples of BPTT small enough to follow with a pencil (issue 26).

One sentence (N = 1) of T = 3 steps, D = 2 inputs, H = 2 hidden units, round numbers,
and the loss ``E = h_2[0]`` (the first unit of the last state: ``dh`` is zero except
``dh[:, 2] = [1, 0]``), for the three cells of the course:

* :func:`bptt_by_hand` (the ``bptt`` notebook) runs the student's ``rnn_forward`` and
  ``rnn_backward``;
* :func:`lstm_by_hand` (the ``lstm`` notebook) and :func:`gru_by_hand` (the ``gru``
  notebook) run the student's step functions, each from the expected numbers before the
  step (so a line that differs names the step), and the whole-sequence functions.

Each prints every forward value and every gradient step by step, beside the number
expected, with the one-step Jacobians whose product carries the gradient back, and marks
each line ``ok`` or ``<- differs``; a function that raises gets a few words on its lines,
not a traceback.  The expected numbers are stored here, rounded to 4 decimals: this
module holds no computation of a gradient (``tests/test_worked.py`` checks every number
against the grader's reference and against centred finite differences).

Notation of the ``bptt`` notebook: steps s = 0, 1, 2, ``h_{-1}`` the initial state,
``a_s = x_s Wx + h_{s-1} Wh + b``, ``h_s = tanh(a_s)``; ``g_s = dE/dh_s``,
``M_s = diag(1 - h_s^2) Wh^T`` the Jacobian that carries it one step back
(``g_{s-1} = g_s M_s``), ``delta_s = g_s * (1 - h_s^2)``.  The LSTM's state is the pair
``(h_s, c_s)`` and its Jacobian ``J_s = d(h_s, c_s)/d(h_(s-1), c_(s-1))`` (4 x 4); the
GRU's ``M_s = dh_s/dh_(s-1)`` holds the copy ``diag(z_s)`` and the paths through the gates.
"""

from __future__ import annotations

import numpy as np

__all__ = ["INPUTS", "UPSTREAM", "EXPECTED", "TOLERANCE", "bptt_by_hand",
           "LSTM_INPUTS", "LSTM_EXPECTED", "lstm_by_hand",
           "GRU_INPUTS", "GRU_EXPECTED", "gru_by_hand"]

INPUTS = {
    "x": np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]),  # (N, T, D) = (1, 3, 2)
    "h0": np.zeros((1, 2)),
    "Wx": np.array([[0.5, -0.5], [0.5, 0.5]]),
    "Wh": np.array([[0.5, 0.5], [-0.5, 0.5]]),
    "b": np.zeros(2),
}
UPSTREAM = np.array([[[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]])  # dh: E = h_2[0]

# every number rounded to 4 decimals; s indexes the steps 0, 1, 2
EXPECTED = {
    "a": [[0.5, -0.5], [0.9621, 0.5], [1.1416, 0.6037]],
    "h": [[0.4621, -0.4621], [0.7452, 0.4621], [0.8149, 0.5397]],
    "M": [[[0.3932, -0.3932], [0.3932, 0.3932]],
          [[0.2223, -0.2223], [0.3932, 0.3932]],
          [[0.1679, -0.1679], [0.3544, 0.3544]]],
    "g": [[-0.0287, -0.1034], [0.1679, -0.1679], [1.0, 0.0]],
    "delta": [[-0.0226, -0.0813], [0.0747, -0.1321], [0.3359, 0.0]],
    "dx": [[0.0294, -0.0519], [0.1034, -0.0287], [0.1679, 0.1679]],
    "dh0": [-0.0519, -0.0294],
    "dWx": [[0.3133, -0.0813], [0.4106, -0.1321]],
    "dWh": [[0.2848, -0.0610], [0.1207, 0.0610]],
    "db": [0.3880, -0.2134],
}
TOLERANCE = 1e-4  # the expected numbers are rounded to 4 decimals
# a step of the gated cells starts from expected numbers, so its last digit may be off by one
ROUNDED_START = "(from the rounded numbers: the last digit may differ by 1)"


def _fmt(v) -> str:
    return np.array2string(np.asarray(v, dtype=float), precision=4, floatmode="fixed",
                           suppress_small=True, separator=", ", sign=" ").replace("\n", "")


def _yours(get):
    """Your value (an array), or a few words on why there is none: never a traceback."""
    try:
        return np.asarray(get(), dtype=float)
    except NotImplementedError:
        return "not implemented yet"
    except Exception as err:  # noqa: BLE001 - a student's function may raise anything
        return f"raised {type(err).__name__}"


def _line(label: str, yours, expected) -> str:
    """``label  yours  expected  ok`` (or ``<- differs``); ``yours`` may be a callable."""
    expected = np.asarray(expected, dtype=float)
    if callable(yours):
        yours = _yours(yours)
    if isinstance(yours, str):
        shown, same = yours, False
    elif yours.shape != expected.shape:
        shown, same = f"shape {yours.shape}", False
    else:
        shown, same = _fmt(yours), bool(np.allclose(yours, expected, atol=TOLERANCE, rtol=0))
    mark = "ok" if same else "<- differs"
    return f"  {label:<34}{shown:>20}  {_fmt(expected):>20}  {mark}"


def bptt_by_hand(rnn_forward, rnn_backward, file=None) -> bool:
    """Print the worked example with your functions beside the expected numbers.

    Inputs:
    - rnn_forward, rnn_backward: the layer (course contract)
    - file: where to print (default: standard output)

    Returns True when every value of yours matches the expected one (within TOLERANCE).
    """
    x, h0, Wx, Wh, b = (INPUTS[k] for k in ("x", "h0", "Wx", "Wh", "b"))
    T = x.shape[1]
    lines = ["N = 1, T = 3, D = 2, H = 2; h_{-1} = 0, b = 0",
             f"  x_0, x_1, x_2 = {_fmt(x[0, 0])}, {_fmt(x[0, 1])}, {_fmt(x[0, 2])}",
             f"  Wx = {_fmt(Wx)}   Wh = {_fmt(Wh)}",
             "  the loss E = h_2[0]: dh is zero except dh[:, 2] = [1, 0]", "",
             f"  {'forward: h_s = tanh(x_s Wx + h_(s-1) Wh + b)':<34}"
             f"{'yours':>20}  {'expected':>20}"]

    def forward():
        return rnn_forward(x, h0, Wx, Wh, b)

    def backward():
        return rnn_backward(UPSTREAM, forward()[1])

    checks = []
    for s in range(T):
        lines.append(f"  a_{s} = {_fmt(EXPECTED['a'][s])}")
        lines.append(_line(f"h_{s} = tanh(a_{s})", lambda s=s: forward()[0][0, s],
                           EXPECTED["h"][s]))
        checks.append(lines[-1])
    lines += ["", "  backward: g_s = dE/dh_s, carried one step back by g_(s-1) = g_s M_s,",
              "  with the Jacobian M_s = diag(1 - h_s^2) Wh^T:"]
    for s in reversed(range(T)):
        lines.append(f"  M_{s} = {_fmt(EXPECTED['M'][s])}")

    # g_s from your rnn_backward: the dh0 it returns for the steps after s, started at h_s
    def carried(s):
        start = forward()[0][:, s]
        _, tail = rnn_forward(x[:, s + 1:], start, Wx, Wh, b)
        return rnn_backward(UPSTREAM[:, s + 1:], tail)[1][0] + UPSTREAM[0, s]

    product = "g_2"
    for s in reversed(range(T)):
        if s == T - 1:
            lines.append(_line("g_2 = dh[:, 2]", UPSTREAM[0, s], EXPECTED["g"][s]))
        else:
            product += f" M_{s + 1}"
            lines.append(_line(f"g_{s} = {product}", lambda s=s: carried(s), EXPECTED["g"][s]))
        checks.append(lines[-1])
    lines.append(_line(f"dh0 = g_0 M_0 = {product} M_0", lambda: backward()[1][0],
                       EXPECTED["dh0"]))
    checks.append(lines[-1])
    lines += ["", "  delta_s = g_s * (1 - h_s^2), then dx_s = delta_s Wx^T:"]
    for s in range(T):
        lines.append(f"  delta_{s} = {_fmt(EXPECTED['delta'][s])}")
        lines.append(_line(f"dx_{s} = delta_{s} Wx^T", lambda s=s: backward()[0][0, s],
                           EXPECTED["dx"][s]))
        checks.append(lines[-1])
    lines += ["", "  the weights add up every step's contribution:"]
    for k, name, label in ((2, "dWx", "dWx = sum_s x_s^T delta_s"),
                           (3, "dWh", "dWh = sum_s h_(s-1)^T delta_s"),
                           (4, "db", "db = sum_s delta_s")):
        for row, e in enumerate(np.atleast_2d(EXPECTED[name])):
            lines.append(_line(label if row == 0 else "",
                               lambda k=k, row=row: np.atleast_2d(backward()[k])[row], e))
            checks.append(lines[-1])
    print("\n".join(lines), file=file)
    return all(line.endswith(" ok") for line in checks)


# --------------------------------------------------------------------------- #
# the gated cells: the same sentence and the same loss E = h_2[0]
# --------------------------------------------------------------------------- #
_A = [[0.5, -0.5], [0.5, 0.5]]
_B = [[0.5, 0.5], [-0.5, 0.5]]
_C = [[1.0, 0.5], [-0.5, 1.0]]
_D = [[-0.5, 1.0], [1.0, 0.5]]

LSTM_INPUTS = {  # blocks of 2 columns in the order i, f, o, g; forget bias 1
    "x": INPUTS["x"],
    "h0": np.zeros((1, 2)),
    "Wx": np.hstack([_A, _B, _C, _D]),
    "Wh": np.hstack([_B, _A, _D, _C]),
    "b": np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
}

# s indexes the steps 0, 1, 2.  J[s][k][l] = d state_s[k] / d state_(s-1)[l] with the state
# (h[0], h[1], c[0], c[1]); gh, gc: dE/dh_s and what the steps after s send to c_s (dnext_c);
# dc: the total gradient of c_s; dh0, dc0: the gradients of h_(-1) and c_(-1);
# cell_path: f_2 * f_1 * f_0, the product of forget gates along the cell alone
LSTM_EXPECTED = {
    "a": [[0.5, -0.5, 1.5, 1.5, 1.0, 0.5, -0.5, 1.0],
          [0.3106, 0.4848, 0.4848, 1.6894, -0.2235, 0.8824, 0.7082, 0.5719],
          [0.8579, 0.2185, 1.2185, 2.1421, 0.8224, 1.7567, 0.3961, 1.8988]],
    "i": [[0.6225, 0.3775], [0.577, 0.6189], [0.7022, 0.5544]],
    "f": [[0.8176, 0.8176], [0.6189, 0.8442], [0.7718, 0.8949]],
    "o": [[0.7311, 0.6225], [0.4444, 0.7073], [0.6947, 0.8528]],
    "g": [[-0.4621, 0.7616], [0.6096, 0.5167], [0.3766, 0.9561]],
    "c": [[-0.2876, 0.2875], [0.1737, 0.5625], [0.3985, 1.0335]],
    "h": [[-0.2047, 0.1742], [0.0764, 0.3606], [0.2631, 0.6612]],
    "J": [[[0.3208, -0.1834, 0.5508, 0.0], [0.1626, 0.1752, 0.0, 0.469],
           [0.4352, -0.1905, 0.8176, 0.0], [0.1688, 0.248, 0.0, 0.8176]],
          [[0.1526, -0.0824, 0.2669, 0.0], [0.2463, 0.332, 0.0, 0.4419],
           [0.4031, -0.2896, 0.6189, 0.0], [0.2688, 0.5335, 0.0, 0.8442]],
          [[0.351, -0.1133, 0.4593, 0.0], [0.1366, 0.114, 0.0, 0.3044],
           [0.6573, -0.3254, 0.7718, 0.0], [0.1154, 0.1921, 0.0, 0.8949]]],
    "gh": [[0.2108, -0.1996], [0.351, -0.1133], [1.0, 0.0]],
    "gc": [[0.3779, -0.0501], [0.4593, 0.0], [0.0, 0.0]],
    "dc": [[0.5199, -0.1646], [0.6107, -0.0593], [0.5951, 0.0]],
    "da": [[-0.0565, -0.0295, 0.0, 0.0, -0.0116, -0.0131, 0.2545, -0.0261],
           [0.0909, -0.0072, -0.0414, -0.0022, 0.0149, -0.012, 0.2214, -0.0269],
           [0.0469, 0.0, 0.0182, 0.0, 0.0803, 0.0, 0.3586, 0.0]],
    "dh0": [0.1912, -0.158],
    "dc0": [0.4251, -0.1346],
    "cell_path": [0.3905, 0.6176],
    "dx": [[-0.185, 0.1912], [-0.1015, 0.25], [-0.0665, 0.3328]],
    "dWx": [[-0.0096, -0.0295, 0.0182, 0.0, 0.0687, -0.0131, 0.6132, -0.0261],
            [0.1377, -0.0072, -0.0232, -0.0022, 0.0952, -0.012, 0.5801, -0.0269]],
    "dWh": [[-0.015, 0.0015, 0.0099, 0.0005, 0.0031, 0.0024, -0.0179, 0.0055],
            [0.0327, -0.0013, -0.0007, -0.0004, 0.0316, -0.0021, 0.1679, -0.0047]],
    "db": [0.0813, -0.0367, -0.0232, -0.0022, 0.0836, -0.0251, 0.8346, -0.053],
}

GRU_INPUTS = {  # blocks of 2 columns in the order r, z, n; update bias 1
    "x": INPUTS["x"],
    "h0": np.zeros((1, 2)),
    "Wx": np.hstack([_A, _B, _C]),
    "Wh": np.hstack([_B, _A, _D]),
    "b": np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0]),
}

# a[s]: the pre-activations r | z | n, the n block with (r_s * h_(s-1)) Wh_n;
# M[s][k][l] = d h_s[k] / d h_(s-1)[l]; g[s] = dE/dh_s; copy_path: z_2 * z_1 * z_0
GRU_EXPECTED = {
    "a": [[0.5, -0.5, 1.5, 1.5, 1.0, 0.5],
          [0.5273, 0.6116, 0.6116, 1.4727, -0.489, 1.1147],
          [0.8559, 0.0747, 1.0747, 2.1441, 0.6379, 1.5081]],
    "r": [[0.6225, 0.3775], [0.6289, 0.6483], [0.7018, 0.5187]],
    "z": [[0.8176, 0.8176], [0.6483, 0.8135], [0.7455, 0.8951]],
    "n": [[0.7616, 0.4621], [-0.4534, 0.8057], [0.5635, 0.9066]],
    "h": [[0.1389, 0.0843], [-0.0694, 0.2189], [0.0917, 0.291]],
    "M": [[[0.7369, -0.0279], [0.1238, 0.8102]],
          [[0.6284, 0.2536], [0.0973, 0.7792]],
          [[0.6299, 0.0342], [0.0455, 0.8681]]],
    "g": [[0.3992, 0.1864], [0.6299, 0.0342], [1.0, 0.0]],
    "da": [[0.0, 0.0, -0.0453, -0.0128, 0.0306, 0.0267],
           [-0.0028, 0.0034, 0.0851, -0.0037, 0.176, 0.0022],
           [0.0013, 0.0095, -0.1201, 0.0, 0.1737, 0.0]],
    "dh0": [0.3172, 0.1399],
    "copy_path": [0.3951, 0.5953],
    "dx": [[0.0149, 0.0277], [0.2147, -0.1298], [0.1096, -0.0214]],
    "dWx": [[0.0013, 0.0095, -0.1654, -0.0128, 0.2043, 0.0267],
            [-0.0015, 0.0129, -0.035, -0.0037, 0.3497, 0.0022]],
    "dWh": [[-0.0005, -0.0002, 0.0202, -0.0005, 0.0069, 0.0002],
            [0.0, 0.0024, -0.0191, -0.0003, 0.0293, 0.0001]],
    "db": [-0.0015, 0.0129, -0.0803, -0.0166, 0.3803, 0.029],
}


def _blocks(v, H: int = 2) -> str:
    """A row of gate blocks, ``[ 0.5000, -0.5000 |  1.5000, ...]``."""
    v = np.asarray(v, dtype=float)
    return "[" + " |".join(_fmt(v[k:k + H])[1:-1] for k in range(0, v.size, H)) + "]"


def _header(kind: str, inputs: dict, gates) -> list[str]:
    x = inputs["x"]
    names = " | ".join(gates)
    lines = [f"N = 1, T = 3, D = 2, H = 2; the {kind} of this notebook, h_(-1) = 0"
             + (", c_(-1) = 0" if kind == "LSTM" else ""),
             f"  x_0, x_1, x_2 = {_fmt(x[0, 0])}, {_fmt(x[0, 1])}, {_fmt(x[0, 2])}"]
    lines.append(f"  the weights by rows, in blocks of H = 2 columns: {names}")
    for name in ("Wx", "Wh"):
        for row in range(inputs[name].shape[0]):
            lines.append(f"  {name}[{row}] = {_blocks(inputs[name][row])}")
    lines += [f"  b     = {_blocks(inputs['b'])}",
              "  the loss E = h_2[0]: dh is zero except dh[:, 2] = [1, 0]"]
    return lines


def _whole_sentence(lines, checks, name, backward, expected, gates, product, path, file,
                    dWh_rule=None) -> bool:
    """The lines of the student's ``name`` (the layer's backward) on the whole sentence:
    ``dh0`` as the product of Jacobians, the path the gates keep, ``dx`` per step, then
    dWx, dWh and db block by block and row by row (each a pair of numbers).  ``dWh_rule``:
    a line on how dWh sums, where it is not ``sum_s h_(s-1)^T da_s`` in every block.
    Prints them all; True when every checked line is ok."""
    lines += ["", f"  your {name} on the whole sentence: the product of Jacobians,",
              "  and every step's da_s times the weights"]
    lines.append(_line(product, lambda: backward()[1][0], expected["dh0"]))
    checks.append(lines[-1])
    lines.append(f"  {path}")
    for s in range(expected["dx"].shape[0]):
        lines.append(_line(f"dx_{s} = da_{s} Wx^T", lambda s=s: backward()[0][0, s],
                           expected["dx"][s]))
        checks.append(lines[-1])
    labels = {"dWx": "sum_s x_s^T da_s", "dWh": "sum_s h_(s-1)^T da_s", "db": "sum_s da_s"}
    if dWh_rule:
        labels["dWh"] = ""
    for k, weight in ((2, "dWx"), (3, "dWh"), (4, "db")):
        if weight == "dWh" and dWh_rule:
            lines.append(f"  {dWh_rule}")
        rows = np.atleast_2d(expected[weight])
        for j, gate in enumerate(gates):
            for row in range(rows.shape[0]):
                where = f"[{row}, {gate}]" if rows.shape[0] > 1 else f"[{gate}]"
                label = f"{weight}{where}" + (
                    f" = {labels[weight]}" if j == row == 0 and labels[weight] else "")
                lines.append(_line(label, lambda k=k, row=row, j=j: np.atleast_2d(
                    backward()[k])[row, 2 * j:2 * j + 2], rows[row, 2 * j:2 * j + 2]))
                checks.append(lines[-1])
    print("\n".join(lines), file=file)
    return all(line.endswith(" ok") for line in checks)


def lstm_by_hand(lstm_gates, lstm_step_forward, lstm_step_backward, lstm_forward,
                 lstm_backward, file=None) -> bool:
    """Print the LSTM's worked example, your functions beside the expected numbers.

    Forward: your ``lstm_gates`` on each step's pre-activations, your
    ``lstm_step_forward`` for each cell state (from the expected previous state), your
    ``lstm_forward`` for the hidden states.  Backward: one step at a time, your
    ``lstm_step_backward`` fed the expected gradients of the step's outputs (so a line
    that differs names the step, not the ones after it), then your ``lstm_backward``
    on the whole sentence.

    Inputs:
    - lstm_gates, lstm_step_forward, lstm_step_backward, lstm_forward, lstm_backward:
      the layer (course contract)
    - file: where to print (default: standard output)

    Returns True when every value of yours matches the expected one (within TOLERANCE).
    """
    x, h0, Wx, Wh, b = (LSTM_INPUTS[k] for k in ("x", "h0", "Wx", "Wh", "b"))
    E = {k: np.asarray(v, dtype=float) for k, v in LSTM_EXPECTED.items()}
    T, gates = x.shape[1], ("i", "f", "o", "g")
    prev_h = [h0[0], *E["h"][:-1]]
    prev_c = [np.zeros(2), *E["c"][:-1]]

    def step(s):  # your step forward from the expected state before step s
        return lstm_step_forward(x[:, s], prev_h[s][None], prev_c[s][None], Wx, Wh, b)

    def backward():
        return lstm_backward(UPSTREAM, lstm_forward(x, h0, Wx, Wh, b)[1])

    lines = _header("LSTM", LSTM_INPUTS, gates)
    lines += ["", f"  {'forward, step s':<34}{'yours':>20}  {'expected':>20}",
              "  a_s = x_s Wx + h_(s-1) Wh + b, then your lstm_gates(a_s); your"
              " lstm_step_forward",
              "  from the expected h_(s-1), c_(s-1) for c_s; your lstm_forward for h_s",
              f"  {ROUNDED_START}:"]
    checks = []
    for s in range(T):
        lines.append(f"  a_{s} = {_blocks(E['a'][s])}")
        for j, (gate, fn) in enumerate(zip(gates, ("sigmoid",) * 3 + ("tanh",), strict=True)):
            lines.append(_line(f"{gate}_{s} = {fn}(a_{s}[{gate}])",
                               lambda s=s, j=j: lstm_gates(E["a"][s][None])[j][0], E[gate][s]))
            checks.append(lines[-1])
        lines.append(_line(f"c_{s} = f_{s} c_({s - 1}) + i_{s} g_{s}",
                           lambda s=s: step(s)[1][0], E["c"][s]))
        lines.append(_line(f"h_{s} = o_{s} tanh(c_{s})",
                           lambda s=s: lstm_forward(x, h0, Wx, Wh, b)[0][0, s], E["h"][s]))
        checks += lines[-2:]

    lines += ["", "  backward: the state of step s is (h_s, c_s), and g_s = (gh_s | gc_s) with",
              "  gh_s = dE/dh_s and gc_s what the steps after s send to c_s (your dnext_c).",
              "  One step back is one Jacobian, J_s = d(h_s, c_s)/d(h_(s-1), c_(s-1)):",
              "  g_(s-1) = g_s J_s.  Your numbers: your lstm_step_backward of step s, fed the",
              f"  expected gh_s and gc_s {ROUNDED_START}.",
              "  delta c_s = gc_s + gh_s o_s (1 - tanh(c_s)^2) is the total gradient of c_s,",
              "  and da_s the gradient of a_s (blocks i | f | o | g).",
              f"  gh_2 = dh[:, 2] = {_fmt(E['gh'][2])},  gc_2 = {_fmt(E['gc'][2])}"
              " (no loss reads c_2)"]
    for s in reversed(range(T)):
        before = f"{s - 1}" if s else "(-1)"
        lines += ["", f"  J_{s}, rows h_{s}[0], h_{s}[1], c_{s}[0], c_{s}[1]; columns"
                  f" h_{before}[0], h_{before}[1], c_{before}[0], c_{before}[1]:"]
        lines += [f"      {_blocks(row)}" for row in E["J"][s]]
        lines += [f"  its c-to-c block is diag(f_{s}) = diag({_fmt(E['f'][s])}): no Wh,"
                  " no tanh' on the cell path",
                  f"  delta c_{s} = {_fmt(E['dc'][s])}", f"  da_{s} = {_blocks(E['da'][s])}"]
        for k, part in ((1, "h"), (2, "c")):
            label = (f"g{part}_{s - 1} = (g_{s} J_{s})[{part}]" if s
                     else f"d{part}0 = (g_0 J_0)[{part}]")
            lines.append(_line(label, lambda s=s, k=k: lstm_step_backward(
                E["gh"][s][None], E["gc"][s][None], step(s)[2])[k][0],
                E[f"g{part}"][s - 1] if s else E[f"d{part}0"]))
            checks.append(lines[-1])

    return _whole_sentence(lines, checks, "lstm_backward", backward, E, gates,
                           "dh0 = (g_2 J_2 J_1 J_0)[h]",
                           f"along the cell alone: dc_2/dc_(-1) = diag(f_2 f_1 f_0)"
                           f" = diag({_fmt(E['cell_path'])})", file)


def gru_by_hand(gru_step_forward, gru_step_backward, gru_forward, gru_backward,
                file=None) -> bool:
    """Print the GRU's worked example, your functions beside the expected numbers.

    Forward: your ``gru_step_forward`` for each step (from the expected previous state)
    and your ``gru_forward`` on the whole sentence; the gates are printed for you to
    check with a pencil.  Backward: one step at a time, your ``gru_step_backward`` fed
    the expected gradient of the step's output, then your ``gru_backward`` on the
    whole sentence.

    Inputs:
    - gru_step_forward, gru_step_backward, gru_forward, gru_backward: the layer
      (course contract)
    - file: where to print (default: standard output)

    Returns True when every value of yours matches the expected one (within TOLERANCE).
    """
    x, h0, Wx, Wh, b = (GRU_INPUTS[k] for k in ("x", "h0", "Wx", "Wh", "b"))
    E = {k: np.asarray(v, dtype=float) for k, v in GRU_EXPECTED.items()}
    T, gates = x.shape[1], ("r", "z", "n")
    prev_h = [h0[0], *E["h"][:-1]]

    def step(s):  # your step forward from the expected state before step s
        return gru_step_forward(x[:, s], prev_h[s][None], Wx, Wh, b)

    def backward():
        return gru_backward(UPSTREAM, gru_forward(x, h0, Wx, Wh, b)[1])

    lines = _header("GRU", GRU_INPUTS, gates)
    lines += ["", f"  {'forward, step s':<34}{'yours':>20}  {'expected':>20}",
              "  r_s, z_s, n_s as in section 1 (a_s: the three pre-activations r | z | n,",
              "  with (r_s * h_(s-1)) Wh_n in the n block); your gru_step_forward from the",
              f"  expected h_(s-1) for h_s {ROUNDED_START}:"]
    checks = []
    for s in range(T):
        lines += [f"  a_{s} = {_blocks(E['a'][s])}",
                  f"  r_{s} = {_fmt(E['r'][s])}   z_{s} = {_fmt(E['z'][s])}"
                  f"   n_{s} = {_fmt(E['n'][s])}"]
        lines.append(_line(f"h_{s} = (1 - z_{s}) n_{s} + z_{s} h_({s - 1})",
                           lambda s=s: step(s)[0][0], E["h"][s]))
        checks.append(lines[-1])
    for s in range(T):
        lines.append(_line(f"h_{s}, your gru_forward",
                           lambda s=s: gru_forward(x, h0, Wx, Wh, b)[0][0, s], E["h"][s]))
        checks.append(lines[-1])

    lines += ["", "  backward: g_s = dE/dh_s, one step back g_(s-1) = g_s M_s with the Jacobian",
              "  M_s = dh_s/dh_(s-1): the copy diag(z_s) plus the paths through r, z and n.",
              "  Your numbers: your gru_step_backward of step s, fed the expected g_s",
              f"  {ROUNDED_START}.",
              "  da_s is the gradient of a_s (blocks r | z | n).",
              f"  g_2 = dh[:, 2] = {_fmt(E['g'][2])}"]
    for s in reversed(range(T)):
        lines += ["", f"  M_{s} = {_fmt(E['M'][s])}",
                  f"  its copy part diag(z_{s}) = diag({_fmt(E['z'][s])})",
                  f"  da_{s} = {_blocks(E['da'][s])}"]
        label = f"g_{s - 1} = g_{s} M_{s}" if s else "dh0 = g_0 M_0"
        lines.append(_line(label, lambda s=s: gru_step_backward(
            E["g"][s][None], step(s)[1])[1][0], E["g"][s - 1] if s else E["dh0"]))
        checks.append(lines[-1])

    return _whole_sentence(lines, checks, "gru_backward", backward, E, gates,
                           "dh0 = g_2 M_2 M_1 M_0",
                           f"along the copy alone: dh_2/dh_(-1) = diag(z_2 z_1 z_0)"
                           f" = diag({_fmt(E['copy_path'])})", file,
                           "dWh sums h_(s-1)^T da_s in the r and z blocks, (r_s h_(s-1))^T da_s"
                           " in the n block:")
