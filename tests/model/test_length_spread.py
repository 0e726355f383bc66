"""The request lengths' spread per point (inferno.model.length_spread): defaults, taking
points, the key columns, and the shapes checked."""

from __future__ import annotations

import numpy as np
import pytest

from inferno.model.length_spread import LengthSpread


def test_left_out_arrays_are_every_points_default() -> None:
    s = LengthSpread.of(3, out_cv=np.array([1.5, np.nan, 0.5]))
    assert np.isnan(s.in_cv).all() and np.isnan(s.out_max).all()
    assert not s.out_lognormal.any() and not s.in_lognormal.any()
    assert len(s) == 3


def test_taking_points_takes_every_field_and_the_columns_key_them() -> None:
    s = LengthSpread.of(
        3,
        out_cv=np.array([1.5, 1.0, 0.5]),
        out_lognormal=np.array([True, False, True]),
        out_max=np.array([8192.0, np.nan, 4096.0]),
    )
    t = s.take(np.array([2, 0, 2]))
    np.testing.assert_array_equal(t.out_cv, [0.5, 1.5, 0.5])
    np.testing.assert_array_equal(t.out_lognormal, [True, True, True])
    np.testing.assert_array_equal(t.out_max, [4096.0, 8192.0, 4096.0])
    cols = s.columns()
    assert len(cols) == 5 and all(c.dtype == np.float64 for c in cols)
    np.testing.assert_array_equal(cols[1], [1.0, 0.0, 1.0])


def test_an_array_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="out_max"):
        LengthSpread.of(3, out_max=np.array([1.0, 2.0]))
