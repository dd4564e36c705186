"""Deterministic generators for long-range sequence tasks.

Four tasks, all with the answer needed only at the **last** time step, so that
a model has to carry information across the whole sequence:

* :class:`CountryLanguageTask` -- the language-like "France -> French" task.
  A sequence opens with a country token, then ``gap`` filler tokens, then the
  query token ``speak``; the model must answer with the matching language::

      France  and lived there for ... years  speak   ->  French

* :class:`AddingTask` -- Hochreiter & Schmidhuber's adding problem, in the
  formulation of Le et al. (2015) and Arjovsky et al. (2016): two input
  channels, random values and a marker channel with exactly two 1s (one in
  each half); the target is the sum of the two marked values.

* :class:`AddingTask1997` -- the adding problem exactly as Hochreiter &
  Schmidhuber (1997, experiment 4) define it: values in [-1, 1], markers
  1 / 0 / -1, random lengths, target ``0.5 + (X1 + X2) / 4``.

* :class:`TemporalOrderTask` -- their temporal-order task (experiment 6a): two
  relevant symbols X / Y among random distractors; the class is their order.

The two 1997 tasks have sequences of random lengths (T .. T + T/10).  A batch
holds them in one array: a shorter sequence is **padded at the start** with
all-zero input vectors (no symbol, no value), so that every sequence ends at
the last step, where the model's output is read.  Each sequence still opens
with its own start marker.

Dimension letters
-----------------
N  batch size            T  sequence length (time steps)
D  input dimension       K  number of classes (countries = languages)

Every batch is reproducible: ``task.batch(n, seed=s)`` returns identical
arrays for the same ``s`` and different ones for different ``s``;
``task.batches(n, seed=s)`` is an endless, equally reproducible stream.  A
``seed`` may be ``None`` (fresh entropy, not reproducible), an int, a
``numpy.random.SeedSequence`` or a ``numpy.random.Generator`` (used as is, and
advanced).

Every task exposes the same attributes, which :mod:`rnn_course.training` uses:
``kind`` ("classification" or "regression"), ``input_size`` (D),
``output_size`` (K classes, or 1), ``seq_len`` (T), ``chance`` (the accuracy of
a guess that ignores the input) and ``baseline_loss`` (the loss of the best
constant prediction).
"""

from __future__ import annotations

import numbers
import operator

import numpy as np

__all__ = [
    "COUNTRY_LANGUAGE",
    "FILLER_WORDS",
    "QUERY_TOKEN",
    "CountryLanguageTask",
    "AddingTask",
    "AddingTask1997",
    "TemporalOrderTask",
    "ORDER_CLASSES",
    "TASK_TITLES",
    "one_hot",
]

# the tasks of the lag study (rnn_course.experiments), by name, as their plots title them
TASK_TITLES = {"country": "France -> French", "adding": "adding problem (1997)",
               "order": "temporal order (1997)"}

# (country, language) pairs; the first K of them are the classes of a task.
COUNTRY_LANGUAGE = (
    ("France", "French"),
    ("Germany", "German"),
    ("Spain", "Spanish"),
    ("Italy", "Italian"),
    ("Portugal", "Portuguese"),
    ("Greece", "Greek"),
    ("Poland", "Polish"),
    ("Sweden", "Swedish"),
    ("Finland", "Finnish"),
    ("Turkey", "Turkish"),
    ("Japan", "Japanese"),
    ("China", "Chinese"),
)

# Words that fill the gap.  They carry no information about the answer.
FILLER_WORDS = (
    "and", "then", "lived", "there", "for", "many", "years", "before",
    "moving", "away", "to", "work",
)  # fmt: skip

# The last token of every sequence: "... I speak fluent ___".
QUERY_TOKEN = "speak"


# --------------------------------------------------------------------------- #
# Argument checks (clear ValueErrors rather than numpy errors further down)
# --------------------------------------------------------------------------- #
def _check_int(name, value, minimum, maximum=None):
    """Return ``value`` as an int, or raise ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r}")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def _rng(seed):
    """A ``numpy.random.Generator`` from None, an int, a SeedSequence or a Generator."""
    if isinstance(seed, bool):
        raise ValueError(f"seed must be None, an int, a SeedSequence or a Generator, got {seed!r}")
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"seed must be None, an int, a SeedSequence or a Generator, got {seed!r}"
        ) from err


def one_hot(indices, depth):
    """One-hot encode integer indices.

    Inputs:
    - indices: integer array of any shape S, values in [0, depth)
    - depth: number of categories (int >= 1)

    Returns:
    - float64 array of shape S + (depth,) with a single 1.0 per index
    """
    indices = np.asarray(indices)
    depth = _check_int("depth", depth, 1)
    if indices.size and (indices.min() < 0 or indices.max() >= depth):
        raise ValueError(f"indices must lie in [0, {depth}), got range "
                         f"[{indices.min()}, {indices.max()}]")
    out = np.zeros(indices.shape + (depth,))
    np.put_along_axis(out, indices[..., None], 1.0, axis=-1)
    return out


class _Task:
    """Shared behaviour: reproducible batches and an endless stream of them."""

    def batch(self, n, seed=None):  # pragma: no cover - overridden
        raise NotImplementedError

    def batches(self, n, seed=None):
        """Endless reproducible stream of batches of ``n`` sequences.

        Inputs:
        - n: batch size N (int >= 1)
        - seed: None, int, SeedSequence or Generator (see the module docstring)

        Yields:
        - (x, y) tuples as returned by :meth:`batch`; the same seed gives the
          same stream.
        """
        n = _check_int("n", n, 1)
        rng = _rng(seed)
        while True:
            yield self.batch(n, seed=rng)


# --------------------------------------------------------------------------- #
# France -> French
# --------------------------------------------------------------------------- #
class CountryLanguageTask(_Task):
    """The "I grew up in France ... I speak fluent French" task.

    A sequence has ``T = gap + 2`` tokens::

        position 0            a country, uniformly among the first K countries
        positions 1 .. gap    filler words, i.i.d. uniform among n_fillers words
        position gap + 1      the query token "speak"

    and its target is the language of the opening country.  Only the first
    token matters; the filler words are random (not one repeated token) so
    that, as in real text, the model sees varying input it must learn to
    ignore -- this is Hochreiter & Schmidhuber's (1997) "long time lag with
    distractors" setting rather than their noise-free one.

    Input tokens (one-hot positions) are, in order: the K countries, the
    fillers, then the query token, so ``D = K + n_fillers + 1``.  Targets are
    class indices in [0, K): class k is the language of country k.  A model
    that ignores the input is right with probability ``chance = 1 / K``; the
    best constant prediction has cross-entropy ``baseline_loss = ln K``.

    Inputs:
    - gap: number of filler tokens between the country and the query (int >= 0)
    - n_countries: K, number of country/language pairs (2 .. 12, default 4)
    - n_fillers: number of distinct filler words (1 .. 12, default 4)
    """

    kind = "classification"

    def __init__(self, gap, n_countries=4, n_fillers=4):
        self.gap = _check_int("gap", gap, 0)
        self.n_countries = _check_int("n_countries", n_countries, 2, len(COUNTRY_LANGUAGE))
        self.n_fillers = _check_int("n_fillers", n_fillers, 1, len(FILLER_WORDS))
        pairs = COUNTRY_LANGUAGE[: self.n_countries]
        self.countries = tuple(c for c, _ in pairs)
        self.classes = tuple(lang for _, lang in pairs)  # class k -> language name
        self.fillers = FILLER_WORDS[: self.n_fillers]
        # index -> input token name; the one-hot position of each token
        self.tokens = self.countries + self.fillers + (QUERY_TOKEN,)
        self.query_index = len(self.tokens) - 1
        self.seq_len = self.gap + 2
        self.min_lag = self.gap + 1  # steps from the country to the query
        self.input_size = len(self.tokens)
        self.output_size = self.n_countries
        self.chance = 1.0 / self.n_countries
        self.baseline_loss = float(np.log(self.n_countries))

    def __repr__(self):
        return (f"CountryLanguageTask(gap={self.gap}, n_countries={self.n_countries}, "
                f"n_fillers={self.n_fillers})")

    def batch_indices(self, n, seed=None):
        """A batch as token indices (cheaper than one-hot, same random draws as :meth:`batch`).

        Inputs:
        - n: batch size N (int >= 1)
        - seed: None, int, SeedSequence or Generator

        Returns a tuple of:
        - tokens: int64 array of shape (N, T), indices into ``self.tokens``
        - y: int64 array of shape (N,), class indices into ``self.classes``
        """
        n = _check_int("n", n, 1)
        rng = _rng(seed)
        y = rng.integers(0, self.n_countries, size=n)
        tokens = np.empty((n, self.seq_len), dtype=np.int64)
        tokens[:, 0] = y  # country k has token index k
        tokens[:, 1:-1] = self.n_countries + rng.integers(0, self.n_fillers, size=(n, self.gap))
        tokens[:, -1] = self.query_index
        return tokens, y

    def batch(self, n, seed=None):
        """A batch of one-hot sequences and their target classes.

        Inputs:
        - n: batch size N (int >= 1)
        - seed: None, int, SeedSequence or Generator

        Returns a tuple of:
        - x: float64 one-hot inputs, of shape (N, T, D) with T = gap + 2
        - y: int64 target classes, of shape (N,), values in [0, K)
        """
        tokens, y = self.batch_indices(n, seed)
        return one_hot(tokens, self.input_size), y

    def decode(self, x):
        """Token names of one one-hot sequence.

        Inputs:
        - x: one sequence, of shape (T, D) (one-hot) or (T,) (indices)

        Returns:
        - list of T token names
        """
        x = np.asarray(x)
        idx = x.argmax(axis=-1) if x.ndim == 2 else x
        return [self.tokens[int(i)] for i in idx]

    def sentence(self, x, y=None, max_fillers=6):
        """A readable rendering of one sequence, e.g. ``"France and then ... speak -> French"``.

        Inputs:
        - x: one sequence, of shape (T, D) (one-hot) or (T,) (indices)
        - y: optional target class (int); appended as ``-> Language``
        - max_fillers: show at most this many filler words, eliding the middle

        Returns:
        - str
        """
        words = self.decode(x)
        fillers = words[1:-1]
        if len(fillers) > max_fillers:
            head = max_fillers // 2
            tail = max_fillers - head
            hidden = len(fillers) - max_fillers
            fillers = fillers[:head] + [f"... ({hidden} more) ..."] + fillers[len(fillers) - tail:]
        text = " ".join([words[0], *fillers, words[-1]])
        if y is not None:
            text += f" -> {self.classes[int(y)]}"
        return text


# --------------------------------------------------------------------------- #
# The adding problem
# --------------------------------------------------------------------------- #
class AddingTask(_Task):
    """Hochreiter & Schmidhuber's adding problem (formulation of Le et al., 2015).

    Each sequence has T steps and two input channels: channel 0 holds values
    drawn uniformly from [0, 1]; channel 1 is a marker, 1.0 at exactly two
    steps -- one uniformly in the first half ``[0, T // 2)``, one uniformly in
    the second half ``[T // 2, T)`` -- and 0.0 elsewhere.  The target is the
    sum of the two marked values, in [0, 2].

    Always predicting 1.0 (the mean target) gives a mean squared error of
    ``baseline_loss = 1/6 ~ 0.167`` (the variance of a sum of two independent
    U(0, 1)); a model must beat this to have learnt anything.  A prediction
    counts as correct when it is within ``tolerance = 0.04`` of the target (the
    success criterion of Hochreiter & Schmidhuber); predicting 1.0 is correct
    with probability ``chance = 2 * 0.04 - 0.04**2 ~ 0.078``.

    Inputs:
    - seq_len: T, number of time steps (int >= 2)
    """

    kind = "regression"
    tolerance = 0.04

    def __init__(self, seq_len):
        self.seq_len = _check_int("seq_len", seq_len, 2)
        self.input_size = 2
        self.output_size = 1
        self.baseline_loss = 1.0 / 6.0
        # P(|s - 1| < tol) for s = u1 + u2, whose density is triangular with peak 1 at s = 1
        self.chance = 2 * self.tolerance - self.tolerance**2

    def __repr__(self):
        return f"AddingTask(seq_len={self.seq_len})"

    def batch(self, n, seed=None):
        """A batch of adding-problem sequences and their targets.

        Inputs:
        - n: batch size N (int >= 1)
        - seed: None, int, SeedSequence or Generator

        Returns a tuple of:
        - x: float64 inputs, of shape (N, T, 2): values in channel 0, markers in channel 1
        - y: float64 targets, of shape (N,): the sum of the two marked values
        """
        n = _check_int("n", n, 1)
        rng = _rng(seed)
        T = self.seq_len
        half = T // 2
        x = np.zeros((n, T, 2))
        x[:, :, 0] = rng.uniform(0.0, 1.0, size=(n, T))
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, T, size=n)
        rows = np.arange(n)
        x[rows, first, 1] = 1.0
        x[rows, second, 1] = 1.0
        y = x[rows, first, 0] + x[rows, second, 0]
        return x, y


# --------------------------------------------------------------------------- #
# Hochreiter & Schmidhuber (1997): the adding problem and the temporal order
# --------------------------------------------------------------------------- #
def _lengths_and_pads(rng, n, T):
    """Per-sequence lengths uniform in [T, T + T // 10] and the left padding of each."""
    lengths = rng.integers(T, T + T // 10 + 1, size=n)
    return lengths, lengths.max() - lengths


class AddingTask1997(_Task):
    """The adding problem of Hochreiter & Schmidhuber (1997), experiment 4.

    Each element of a sequence is a pair: a value drawn uniformly from
    [-1, 1] and a marker in {1, 0, -1}.  The length is an integer drawn
    uniformly from [T, T + T/10].  Exactly two pairs are marked with 1: one
    of the first ten (its value is X1), then one of the first T/2 - 1 pairs
    still unmarked (X2).  The first and the last pair carry the marker -1
    unless marked; every other marker is 0.  When the first pair is marked,
    its value is set to 0 (the paper says so for X1; X2 may land there too).
    The target, at the end only, is
    ``0.5 + (X1 + X2) / 4`` (the sum scaled into [0, 1]), and a sequence is
    processed correctly when the absolute error is below ``tolerance = 0.04``.
    The minimal time lag (from X2 to the end) is T/2.

    In a batch, shorter sequences are padded at the start with zero pairs
    (see the module docstring), so x has ``T + T // 10`` steps at most.

    ``chance`` is the fraction a constant prediction of 0.5 gets right,
    P(|X1 + X2| < 0.16): ``0.16 - 0.16**2 / 4`` for two uniform values, ``0.16``
    when the first pair is marked (one value is 0), which happens with
    probability ``p0 = 1/10 + 9/10 / (T/2 - 1)``; about 0.154 at T = 100.
    ``baseline_loss`` is the target's variance, ``((1 - p0) 2/3 + p0 / 3) / 16``.

    Inputs:
    - seq_len: T, the minimal sequence length (int >= 20, so that X2 has a
      choice of at least 8 pairs; the paper uses 100, 500 and 1000)
    """

    kind = "regression"
    tolerance = 0.04
    n_first = 10  # X1 is one of the first ten pairs

    def __init__(self, seq_len):
        self.seq_len = _check_int("seq_len", seq_len, 20)
        self.max_len = self.seq_len + self.seq_len // 10
        self.min_lag = self.seq_len // 2
        self.input_size = 2
        self.output_size = 1
        a = 4 * self.tolerance  # |target - 0.5| < tol  <=>  |X1 + X2| < 4 tol
        # the first pair is marked by X1 (1 in 10), or else by X2 (1 in T/2 - 1)
        p0 = 1.0 / self.n_first + (1 - 1.0 / self.n_first) / (self.seq_len // 2 - 1)
        self.chance = (1 - p0) * (a - a * a / 4) + p0 * a
        self.baseline_loss = ((1 - p0) * 2 / 3 + p0 / 3) / 16

    def __repr__(self):
        return f"AddingTask1997(seq_len={self.seq_len})"

    def batch(self, n, seed=None):
        """A batch of sequences and their targets.

        Inputs:
        - n: batch size N (int >= 1)
        - seed: None, int, SeedSequence or Generator

        Returns a tuple of:
        - x: float64 inputs, of shape (N, L, 2) with L the longest length drawn:
          values in channel 0, markers in channel 1, zero rows before a shorter
          sequence starts
        - y: float64 targets, of shape (N,): 0.5 + (X1 + X2) / 4
        """
        n = _check_int("n", n, 1)
        rng = _rng(seed)
        T = self.seq_len
        lengths, pads = _lengths_and_pads(rng, n, T)
        L = int(lengths.max())
        rows = np.arange(n)
        values = rng.uniform(-1.0, 1.0, size=(n, L))
        marks = np.zeros((n, L))
        first = rng.integers(0, self.n_first, size=n)
        # X2: one of the first T/2 - 1 pairs other than X1's, uniformly
        second = rng.integers(0, T // 2 - 1, size=n)
        second += second >= first  # the r-th unmarked pair: skip X1's position
        start = pads
        marks[rows, start] = -1.0
        marks[rows, L - 1] = -1.0
        marks[rows, start + first] = 1.0
        marks[rows, start + second] = 1.0
        values[rows, start] = np.where(marks[rows, start] == 1.0, 0.0, values[rows, start])
        values[np.arange(L) < start[:, None]] = 0.0  # the padding is all zero
        x = np.stack([values, marks], axis=2)
        y = 0.5 + (values[rows, start + first] + values[rows, start + second]) / 4.0
        return x, y


# X, Y at the two relevant positions -> class: XX -> Q, XY -> R, YX -> S, YY -> U
ORDER_CLASSES = ("XX", "XY", "YX", "YY")


class TemporalOrderTask(_Task):
    """The temporal-order task of Hochreiter & Schmidhuber (1997), experiment 6a.

    Symbols are one-hot, in this order: ``E`` (start), ``B`` (end, the
    trigger), the distractors ``a b c d``, and ``X Y``, so D = 8.  A sequence
    of length L (uniform in [T, T + T/10]) starts with E, ends with B and
    otherwise holds random distractors, except at two positions t1 (uniform
    in [T/10, T/5]) and t2 (uniform in [T/2, T/2 + T/10]), which hold X or Y.
    The class is the order: XX, XY, YX, YY (the paper's Q, R, S, U), so
    ``chance = 1/4`` and ``baseline_loss = ln 4``.  With T = 100 this is the
    paper's task exactly (length 100..110, t1 in 10..20, t2 in 50..60).  The
    first relevant symbol is at least ``T - 1 - T/5`` steps before the end
    (79 at T = 100), the second at least ``min_lag = T - 1 - T/2 - T/10`` (39).

    In a batch, shorter sequences are padded at the start with zero vectors.

    Inputs:
    - seq_len: T, the minimal sequence length (int >= 10)
    """

    kind = "classification"
    symbols = ("E", "B", "a", "b", "c", "d", "X", "Y")

    def __init__(self, seq_len):
        self.seq_len = _check_int("seq_len", seq_len, 10)
        T = self.seq_len
        self.max_len = T + T // 10
        self.t1_range = (T // 10, T // 5)  # inclusive
        self.t2_range = (T // 2, T // 2 + T // 10)
        self.min_lag = T - 1 - self.t2_range[1]
        self.classes = ORDER_CLASSES
        self.input_size = len(self.symbols)
        self.output_size = len(ORDER_CLASSES)
        self.chance = 1.0 / len(ORDER_CLASSES)
        self.baseline_loss = float(np.log(len(ORDER_CLASSES)))

    def __repr__(self):
        return f"TemporalOrderTask(seq_len={self.seq_len})"

    def batch_indices(self, n, seed=None):
        """A batch as symbol indices (-1 for padding) and the classes.

        Returns a tuple of:
        - tokens: int64 array of shape (N, L), indices into ``self.symbols``, -1 before
          a shorter sequence starts
        - y: int64 array of shape (N,), indices into ``ORDER_CLASSES``
        """
        n = _check_int("n", n, 1)
        rng = _rng(seed)
        lengths, pads = _lengths_and_pads(rng, n, self.seq_len)
        L = int(lengths.max())
        rows = np.arange(n)
        sym = {s: i for i, s in enumerate(self.symbols)}
        tokens = sym["a"] + rng.integers(0, 4, size=(n, L))
        t1 = pads + rng.integers(self.t1_range[0], self.t1_range[1] + 1, size=n)
        t2 = pads + rng.integers(self.t2_range[0], self.t2_range[1] + 1, size=n)
        first_y, second_y = rng.integers(0, 2, size=n), rng.integers(0, 2, size=n)
        tokens[rows, t1] = sym["X"] + first_y
        tokens[rows, t2] = sym["X"] + second_y
        tokens[rows, pads] = sym["E"]
        tokens[:, L - 1] = sym["B"]
        tokens[np.arange(L) < pads[:, None]] = -1
        y = 2 * first_y + second_y  # XX 0, XY 1, YX 2, YY 3
        return tokens, y

    def batch(self, n, seed=None):
        """A batch of one-hot sequences and their classes.

        Returns a tuple of:
        - x: float64 one-hot inputs, of shape (N, L, 8), all zero before a shorter
          sequence starts
        - y: int64 classes, of shape (N,), values in [0, 4)
        """
        tokens, y = self.batch_indices(n, seed)
        x = one_hot(np.maximum(tokens, 0), self.input_size)
        x[tokens < 0] = 0.0
        return x, y
