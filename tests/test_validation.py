"""Tests of rnn_course.validation: messages name the argument, the expected
shape (letters resolved) and the received shape; letters bind across arguments."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rnn_course.validation import ArrayTypeError, Dims, check_array, check_shapes


def z(*shape, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


def rnn_step_specs(N=2, D=3, H=5, Wh_shape=None):
    return dict(x=(z(N, D), ("N", "D")), prev_h=(z(N, H), ("N", "H")),
                Wx=(z(D, H), ("D", "H")), Wh=(z(*(Wh_shape or (H, H))), ("H", "H")),
                b=(z(H), ("H",)))


def test_valid_arrays_return_bindings():
    dims = check_shapes(**rnn_step_specs())
    assert dims == {"N": 2, "D": 3, "H": 5}
    assert isinstance(dims, Dims)
    assert dims.sources == {"N": "x", "D": "x", "H": "prev_h"}


def test_message_names_argument_expected_and_received():
    with pytest.raises(ValueError) as e:
        check_shapes(**rnn_step_specs(Wh_shape=(5, 4)))
    msg = str(e.value)
    assert msg.startswith("Wh: expected shape (H, H) = (5, 5), got (5, 4)")
    assert "H = 5 from prev_h" in msg


def test_exact_message_within_one_array():
    with pytest.raises(ValueError, match=re.escape("Wh: expected shape (H, H) = (5, 5), "
                                                   "got (5, 4)")):
        check_array("Wh", z(5, 4), ("H", "H"))


def test_letter_bound_by_earlier_argument():
    with pytest.raises(ValueError) as e:
        check_shapes(x=(z(2, 3), ("N", "D")), prev_h=(z(4, 5), ("N", "H")))
    msg = str(e.value)
    assert msg.startswith("prev_h: expected shape (N, H) = (2, H), got (4, 5)")
    assert "N = 2 from x" in msg


def test_bias_length_checked_against_hidden_size():
    with pytest.raises(ValueError, match=re.escape("b: expected shape (H,) = (5,), got (4,)")):
        check_shapes(**{**rnn_step_specs(), "b": (z(4), ("H",))})


def test_first_bad_argument_is_reported():
    specs = rnn_step_specs()
    specs["Wx"] = (z(4, 5), ("D", "H"))
    specs["b"] = (z(7), ("H",))
    with pytest.raises(ValueError, match="^Wx: "):
        check_shapes(**specs)


def test_wrong_number_of_dimensions():
    with pytest.raises(ValueError, match=re.escape("x: expected a 3-d array of shape (N, T, D), "
                                                   "got (2, 3)")):
        check_array("x", z(2, 3), ("N", "T", "D"))


def test_integer_entries():
    check_array("W", z(3, 4), (3, 4))
    with pytest.raises(ValueError, match=re.escape("W: expected shape (3, 4), got (3, 5)")):
        check_array("W", z(3, 5), (3, 4))


def test_none_matches_any_size():
    assert check_array("y", z(2, 17), ("N", None)) == {"N": 2}
    with pytest.raises(ValueError, match=re.escape("(N, any)")):
        check_array("y", z(3), ("N", None))


def test_multiple_of_letter_for_lstm_gates():
    dims = check_shapes(prev_h=(z(2, 5), ("N", "H")), Wx=(z(3, 20), ("D", "4H")),
                        Wh=(z(5, 20), ("H", "4H")), b=(z(20), ("4H",)))
    assert dims == {"N": 2, "H": 5, "D": 3}
    with pytest.raises(ValueError, match=re.escape("Wh: expected shape (H, 4H) = (5, 20), "
                                                   "got (5, 16)")):
        check_shapes(prev_h=(z(2, 5), ("N", "H")), Wh=(z(5, 16), ("H", "4H")))


def test_multiple_of_letter_binds_the_letter():
    dims = check_array("b", z(12), ("4H",))
    assert dims == {"H": 3}
    with pytest.raises(ValueError, match="multiple of 4"):
        check_array("b", z(10), ("4H",))


def test_dims_dict_carries_bindings_between_calls():
    dims = check_array("x", z(2, 3), ("N", "D"))
    check_array("h", z(2, 4), ("N", "H"), dims=dims)
    assert dims == {"N": 2, "D": 3, "H": 4}
    with pytest.raises(ValueError, match="N = 2 from x"):
        check_array("y", z(3), ("N",), dims=dims)


def test_check_shapes_continues_from_given_dims():
    dims = check_shapes(x=(z(2, 3), ("N", "D")))
    with pytest.raises(ValueError, match="^h0: "):
        check_shapes(dims, h0=(z(4, 5), ("N", "H")))


def test_plain_dict_of_known_sizes():
    dims = {"H": 5}
    with pytest.raises(ValueError, match=re.escape("expected shape (H,) = (5,), got (6,)")):
        check_array("b", z(6), ("H",), dims=dims)


def test_failed_array_binds_nothing():
    dims = Dims()
    with pytest.raises(ValueError):
        check_array("W", z(3, 4), ("D", "H", "K"), dims=dims)
    with pytest.raises(ValueError):
        check_array("Wh", z(4, 5), ("H", "H"), dims=dims)
    assert dims == {}


def test_dtype_error_message():
    with pytest.raises(ArrayTypeError, match=re.escape("x: expected a float64 numpy array, "
                                                       "got int64")):
        check_array("x", z(2, 3, dtype=np.int64), ("N", "D"))


def test_dtype_error_is_type_and_value_error():
    for exc in (TypeError, ValueError):
        with pytest.raises(exc):
            check_array("x", z(2, dtype=np.float32))


@pytest.mark.parametrize("value,got", [
    pytest.param([[1.0, 2.0]], "list", id="list"),
    pytest.param(3.0, "float", id="float"),
    pytest.param(None, "NoneType", id="None"),
    pytest.param(np.float64(1.0), "a numpy scalar of dtype float64", id="numpy-scalar"),
])
def test_not_an_array(value, got):
    with pytest.raises(ArrayTypeError, match=re.escape(f"h0: expected a float64 numpy array, "
                                                       f"got {got}")):
        check_array("h0", value, ("N", "H"))


def test_abstract_and_disabled_dtypes():
    check_array("y", z(3, dtype=np.int32), ("N",), dtype=np.integer)
    with pytest.raises(ArrayTypeError, match="expected an integer numpy array, got float64"):
        check_array("y", z(3), ("N",), dtype=np.integer)
    check_array("v", z(3, dtype=np.float32), dtype=np.floating)
    check_array("v", z(3, dtype=np.complex128), dtype=None)
    with pytest.raises(ArrayTypeError, match="expected a numpy array, got list"):
        check_array("v", [1.0], dtype=None)


def test_per_argument_dtype_in_check_shapes():
    dims = check_shapes(x=(z(2, 3), ("N", "T")), y=(z(2, 3, dtype=np.int64), ("N", "T"),
                                                    np.integer))
    assert dims == {"N": 2, "T": 3}
    with pytest.raises(ArrayTypeError, match="^y: "):
        check_shapes(y=(z(2), ("N",), np.integer))


@pytest.mark.parametrize("entry", [1.5, "4", "", "H H", True, -1])
def test_bad_shape_spec_is_a_programming_error(entry):
    with pytest.raises((TypeError, ValueError), match="shape entry"):
        check_array("x", z(3), (entry,))


def test_bad_spec_tuple():
    with pytest.raises(TypeError, match="x: spec"):
        check_shapes(x=z(3))


def test_zero_dimensional_and_any_shape():
    assert check_array("s", np.array(1.0), ()) == {}
    assert check_array("s", z(2, 3, 4)) == {}
    with pytest.raises(ValueError, match=re.escape("expected a 0-d array of shape (), got (1,)")):
        check_array("s", z(1), ())


def test_zero_size_dimension_binds():
    assert check_array("x", z(0, 3), ("N", "D")) == {"N": 0, "D": 3}


def test_read_only_array_is_accepted():
    x = z(2, 3)
    x.flags.writeable = False
    check_array("x", x, ("N", "D"))  # a read-only array is fine: nothing is written
