"""Tests of rnn_course.data: the France -> French task and the adding problem."""

import math

import numpy as np
import pytest

from rnn_course.data import (
    COUNTRY_LANGUAGE,
    ORDER_CLASSES,
    QUERY_TOKEN,
    AddingTask,
    AddingTask1997,
    CountryLanguageTask,
    TemporalOrderTask,
    one_hot,
)


# --------------------------------------------------------------------------- #
# France -> French
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("gap", [0, 1, 7, 100])
def test_country_shapes_and_one_hot(gap):
    task = CountryLanguageTask(gap, n_countries=5, n_fillers=3)
    x, y = task.batch(64, seed=0)
    assert task.seq_len == gap + 2
    assert task.input_size == 5 + 3 + 1
    assert x.shape == (64, gap + 2, task.input_size) and x.dtype == np.float64
    assert y.shape == (64,) and np.issubdtype(y.dtype, np.integer)
    # one-hot: every entry 0 or 1, exactly one 1 per step
    assert set(np.unique(x)) <= {0.0, 1.0}
    np.testing.assert_array_equal(x.sum(axis=2), 1.0)


def test_country_target_matches_opening_country():
    task = CountryLanguageTask(10, n_countries=8, n_fillers=4)
    x, y = task.batch(500, seed=1)
    tokens = x.argmax(axis=2)
    np.testing.assert_array_equal(tokens[:, 0], y)  # country k is token k ...
    for row in range(20):  # ... whose language is class k
        country = task.tokens[tokens[row, 0]]
        assert dict(COUNTRY_LANGUAGE)[country] == task.classes[y[row]]
    assert np.all(tokens[:, -1] == task.query_index)
    assert task.tokens[task.query_index] == QUERY_TOKEN
    fillers = tokens[:, 1:-1]
    assert fillers.min() >= 8 and fillers.max() < 8 + 4  # only filler tokens in the gap
    assert set(np.unique(y)) == set(range(8))  # every class occurs in 500 draws


def test_country_france_is_french():
    task = CountryLanguageTask(3)
    assert task.countries[0] == "France" and task.classes[0] == "French"
    sentence = task.sentence(np.array([0, 4, 5, 6, task.query_index]), 0)
    assert sentence.startswith("France ") and sentence.endswith("speak -> French")


def test_country_sentence_elides_long_gaps():
    task = CountryLanguageTask(100)
    x, y = task.batch(1, seed=0)
    text = task.sentence(x[0], y[0], max_fillers=4)
    assert "(96 more)" in text
    assert text.split()[0] == task.countries[y[0]]
    assert len(task.decode(x[0])) == 102


@pytest.mark.parametrize("k", [2, 4, 12])
def test_country_chance_level(k):
    task = CountryLanguageTask(5, n_countries=k)
    assert task.chance == pytest.approx(1 / k)
    assert task.baseline_loss == pytest.approx(math.log(k))
    assert task.output_size == k and task.kind == "classification"


def test_country_indices_match_one_hot():
    task = CountryLanguageTask(6)
    tokens, y1 = task.batch_indices(16, seed=3)
    x, y2 = task.batch(16, seed=3)
    np.testing.assert_array_equal(x.argmax(axis=2), tokens)
    np.testing.assert_array_equal(y1, y2)


# --------------------------------------------------------------------------- #
# Determinism, for both tasks
# --------------------------------------------------------------------------- #
TASKS = [CountryLanguageTask(20), AddingTask(30)]


@pytest.mark.parametrize("task", TASKS, ids=repr)
def test_same_seed_same_batch(task):
    x1, y1 = task.batch(32, seed=123)
    x2, y2 = task.batch(32, seed=123)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("task", TASKS, ids=repr)
def test_different_seeds_differ(task):
    x1, _ = task.batch(32, seed=1)
    x2, _ = task.batch(32, seed=2)
    assert not np.array_equal(x1, x2)


@pytest.mark.parametrize("task", TASKS, ids=repr)
def test_batches_stream_is_reproducible(task):
    a = task.batches(8, seed=5)
    b = task.batches(8, seed=5)
    first = [next(a) for _ in range(3)]
    for xa, ya in first:
        xb, yb = next(b)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # successive batches of one stream differ
    assert not np.array_equal(first[0][0], first[1][0])


def test_generator_seed_is_advanced():
    rng = np.random.default_rng(0)
    task = CountryLanguageTask(10)
    x1, _ = task.batch(16, seed=rng)
    x2, _ = task.batch(16, seed=rng)
    assert not np.array_equal(x1, x2)


# --------------------------------------------------------------------------- #
# Adding problem
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("T", [2, 3, 10, 101])
def test_adding_markers_and_target(T):
    task = AddingTask(T)
    x, y = task.batch(400, seed=0)
    assert x.shape == (400, T, 2) and y.shape == (400,)
    values, marks = x[:, :, 0], x[:, :, 1]
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert set(np.unique(marks)) <= {0.0, 1.0}
    # exactly two markers, one in each half
    half = T // 2
    np.testing.assert_array_equal(marks[:, :half].sum(axis=1), 1.0)
    np.testing.assert_array_equal(marks[:, half:].sum(axis=1), 1.0)
    np.testing.assert_allclose(y, (values * marks).sum(axis=1), rtol=0, atol=1e-15)


def test_adding_baseline_and_chance():
    task = AddingTask(50)
    assert task.baseline_loss == pytest.approx(1 / 6)
    assert task.chance == pytest.approx(0.0784)
    _, y = task.batch(100_000, seed=0)
    # predicting 1.0 gives the baseline MSE, and is "correct" at the chance rate
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, rel=0.02)
    assert np.mean(np.abs(y - 1.0) < task.tolerance) == pytest.approx(task.chance, abs=0.005)


# --------------------------------------------------------------------------- #
# Argument errors
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: CountryLanguageTask(-1), "gap must be >= 0"),
        (lambda: CountryLanguageTask(2.5), "gap must be an int"),
        (lambda: CountryLanguageTask(True), "gap must be an int"),
        (lambda: CountryLanguageTask(3, n_countries=1), "n_countries must be >= 2"),
        (lambda: CountryLanguageTask(3, n_countries=99), "n_countries must be <= 12"),
        (lambda: CountryLanguageTask(3, n_fillers=0), "n_fillers must be >= 1"),
        (lambda: AddingTask(1), "seq_len must be >= 2"),
        (lambda: CountryLanguageTask(3).batch(0), "n must be >= 1"),
        (lambda: AddingTask(4).batch(-3), "n must be >= 1"),
        (lambda: CountryLanguageTask(3).batch(4, seed="x"), "seed must be"),
        (lambda: CountryLanguageTask(3).batch(4, seed=-1), "seed must be"),
        (lambda: next(AddingTask(4).batches(0)), "n must be >= 1"),
        (lambda: one_hot([0, 3], 3), r"indices must lie in \[0, 3\)"),
    ],
)
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_one_hot():
    out = one_hot(np.array([[0, 2], [1, 1]]), 3)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.argmax(axis=-1), [[0, 2], [1, 1]])
    np.testing.assert_array_equal(out.sum(axis=-1), 1.0)


# --------------------------------------------------------------------------- #
# Hochreiter & Schmidhuber (1997): the adding problem (experiment 4)
# --------------------------------------------------------------------------- #
def _starts(x):
    """Index of each sequence's first step (after the zero padding)."""
    return (np.abs(x).sum(axis=2) > 0).argmax(axis=1)


@pytest.mark.parametrize("T", [20, 21, 100])
def test_adding_1997_pairs_markers_and_target(T):
    task = AddingTask1997(T)
    x, y = task.batch(2000, seed=0)
    N, L, D = x.shape
    assert D == 2 and task.input_size == 2 and task.output_size == 1 and y.shape == (N,)
    assert T <= L <= T + T // 10 == task.max_len
    values, marks = x[:, :, 0], x[:, :, 1]
    start = _starts(x)
    lengths = L - start
    assert lengths.min() >= T and lengths.max() <= T + T // 10
    assert len(set(lengths.tolist())) > 1  # random lengths within one batch
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert set(np.unique(marks)) <= {-1.0, 0.0, 1.0}
    rows = np.arange(N)
    for r in range(N):  # the padding is all zero
        assert not x[r, :start[r]].any()
    # exactly two pairs marked 1; -1 at the first and the last pair unless marked
    np.testing.assert_array_equal((marks == 1.0).sum(axis=1), 2)
    assert np.all(marks[:, -1] == -1.0)
    first_marked = marks[rows, start] == 1.0
    assert np.all(marks[rows, start][~first_marked] == -1.0)
    assert np.all((marks == -1.0).sum(axis=1) == 2 - first_marked)
    assert np.all(values[rows, start][first_marked] == 0.0)  # a marked first pair counts 0
    rel = [np.flatnonzero(marks[r] == 1.0) - start[r] for r in range(N)]
    earliest = np.array([p[0] for p in rel])
    latest = np.array([p[1] for p in rel])
    assert earliest.max() < 10  # X1 is one of the first ten pairs ...
    # ... X2 one of the first T/2 - 1 unmarked pairs: up to position T/2 - 1, and all over
    assert latest.max() == T // 2 - 1 and len(set(latest.tolist())) >= T // 2 - 10
    # the target is 0.5 + (X1 + X2) / 4 ...
    np.testing.assert_allclose(y, 0.5 + (values * (marks == 1.0)).sum(axis=1) / 4.0,
                               rtol=0, atol=1e-15)
    # ... and the minimal lag (from X2 to the end) is at least T/2
    assert np.all(L - 1 - (start + latest) >= task.min_lag) and task.min_lag == T // 2


def test_adding_1997_error_criterion_chance_and_baseline():
    task = AddingTask1997(100)
    assert task.tolerance == 0.04 and task.kind == "regression"
    _, y = task.batch(200_000, seed=1)
    assert 0.0 <= y.min() and y.max() <= 1.0
    # predicting 0.5 is within 0.04 of the target at the chance rate ...
    assert np.mean(np.abs(y - 0.5) < task.tolerance) == pytest.approx(task.chance, abs=0.004)
    assert task.chance == pytest.approx(0.154, abs=0.001)
    # ... and its squared error is the baseline loss
    assert np.mean((y - 0.5) ** 2) == pytest.approx(task.baseline_loss, rel=0.02)


def test_adding_1997_success_is_the_paper_criterion():
    from rnn_course.training import _accuracy

    task = AddingTask1997(20)
    y = np.array([0.5, 0.5, 0.5, 0.5])
    out = np.array([[0.5], [0.539], [0.461], [0.541]])  # errors 0, 0.039, 0.039, 0.041
    assert _accuracy(task, out, y) == 0.75


# --------------------------------------------------------------------------- #
# Hochreiter & Schmidhuber (1997): the temporal order (experiment 6a)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("T", [10, 100])
def test_temporal_order_symbols_positions_and_classes(T):
    task = TemporalOrderTask(T)
    tokens, y = task.batch_indices(3000, seed=0)
    x, y2 = task.batch(3000, seed=0)
    np.testing.assert_array_equal(y, y2)
    N, L = tokens.shape
    assert x.shape == (N, L, 8) and task.input_size == 8 and task.output_size == 4
    sym = {s: i for i, s in enumerate(task.symbols)}
    assert task.symbols == ("E", "B", "a", "b", "c", "d", "X", "Y")
    start = (tokens >= 0).argmax(axis=1)
    lengths = L - start
    assert lengths.min() >= T and lengths.max() <= T + T // 10
    rows = np.arange(N)
    assert np.all(tokens[rows, start] == sym["E"]) and np.all(tokens[:, -1] == sym["B"])
    np.testing.assert_array_equal(x[tokens < 0], 0.0)  # padding: zero vectors
    np.testing.assert_array_equal(x[tokens >= 0].sum(axis=1), 1.0)  # one-hot elsewhere
    relevant = (tokens == sym["X"]) | (tokens == sym["Y"])
    np.testing.assert_array_equal(relevant.sum(axis=1), 2)
    pos = np.array([np.flatnonzero(relevant[r]) for r in range(N)]) - start[:, None]
    assert pos[:, 0].min() == T // 10 and pos[:, 0].max() == T // 5
    assert pos[:, 1].min() == T // 2 and pos[:, 1].max() == T // 2 + T // 10
    inner = tokens[:, 1:-1][~relevant[:, 1:-1] & (tokens[:, 1:-1] >= sym["a"])]
    assert set(np.unique(inner)) == {sym[c] for c in "abcd"}  # distractors elsewhere
    # classes by the order: XX -> Q (0), XY -> R (1), YX -> S (2), YY -> U (3)
    first = tokens[rows, start + pos[:, 0]] == sym["Y"]
    second = tokens[rows, start + pos[:, 1]] == sym["Y"]
    np.testing.assert_array_equal(y, 2 * first + second)
    assert [ORDER_CLASSES[k] for k in (0, 1, 2, 3)] == ["XX", "XY", "YX", "YY"]
    assert np.bincount(y, minlength=4).min() > N / 4 * 0.8
    assert task.chance == 0.25 and task.baseline_loss == pytest.approx(math.log(4))
    assert np.all(L - 1 - (start + pos[:, 1]) >= task.min_lag)


def test_paper_tasks_are_seeded_and_check_arguments():
    for task in (AddingTask1997(30), TemporalOrderTask(30)):
        a, b, c = task.batch(8, seed=3), task.batch(8, seed=3), task.batch(8, seed=4)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="seq_len must be >= 20"):
        AddingTask1997(19)
    with pytest.raises(ValueError, match="seq_len must be >= 10"):
        TemporalOrderTask(9)
