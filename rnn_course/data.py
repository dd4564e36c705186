"""Deterministic generators for long-range sequence tasks.

Two tasks, both with the answer needed only at the **last** time step, so that
a model has to carry information across the whole sequence:

* :class:`CountryLanguageTask` -- the language-like "France -> French" task.
  A sequence opens with a country token, then ``gap`` filler tokens, then the
  query token ``speak``; the model must answer with the matching language::

      France  and lived there for ... years  speak   ->  French

* :class:`AddingTask` -- Hochreiter & Schmidhuber's adding problem, in the
  formulation of Le et al. (2015) and Arjovsky et al. (2016): two input
  channels, random values and a marker channel with exactly two 1s (one in
  each half); the target is the sum of the two marked values.

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
    "one_hot",
]

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
