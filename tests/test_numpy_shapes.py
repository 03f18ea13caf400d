"""Shapes and selection: each function's value is NumPy's, its derivatives pass check_grads in both modes."""

from __future__ import annotations

import numpy as np
import pytest
from numpy_cases import check, rng_for

import nablanet as nb
import nablanet.numpy as anp

M = (3, 4)
T3 = (2, 3, 4)
SQ = (3, 3)


def same(name, *args, **kwargs):
    """(nablanet's name(x, *args, **kwargs), NumPy's) as a pair of one-argument functions."""
    return (lambda x: getattr(anp, name)(x, *args, **kwargs), lambda x: getattr(np, name)(x, *args, **kwargs))


# name -> (f, ref, input shape)
CASES = {
    "tril": (*same("tril"), M),
    "tril_k": (*same("tril", k=1), M),
    "triu_k_neg": (*same("triu", k=-1), M),
    "triu_batched": (*same("triu"), T3),
    "diag_of_matrix": (*same("diag"), M),
    "diag_offset": (*same("diag", k=-1), M),
    "diag_of_vector": (*same("diag"), (4,)),
    "diag_of_vector_k": (*same("diag", k=2), (3,)),
    "diagonal": (*same("diagonal"), M),
    "diagonal_axes": (*same("diagonal", offset=1, axis1=-1, axis2=0), T3),
    "diagflat": (*same("diagflat"), (2, 2)),
    "diagflat_k": (*same("diagflat", k=-1), (3,)),
    "repeat": (*same("repeat", 2), M),
    "repeat_axis": (*same("repeat", [1, 0, 3], axis=0), M),
    "repeat_axis_neg": (*same("repeat", 2, axis=-1), T3),
    "tile": (*same("tile", (2, 1)), (2,)),
    "tile_3d": (*same("tile", (1, 2, 2)), M),
    "roll": (*same("roll", 2), M),
    "roll_axis": (*same("roll", -1, axis=1), M),
    "roll_axes": (*same("roll", (1, 2), axis=(0, 2)), T3),
    "flip": (*same("flip"), T3),
    "flip_axis": (*same("flip", axis=1), T3),
    "fliplr": (*same("fliplr"), M),
    "flipud": (*same("flipud"), M),
    "rot90": (*same("rot90"), M),
    "rot90_k": (*same("rot90", 3, axes=(1, 2)), T3),
    "split": (lambda x: anp.split(x, 2)[1], lambda x: np.split(x, 2)[1], (4, 3)),
    "split_indices": (lambda x: anp.split(x, [1, 3], axis=1)[2], lambda x: np.split(x, [1, 3], axis=1)[2], M),
    "array_split": (lambda x: anp.array_split(x, 3, axis=-1)[0], lambda x: np.array_split(x, 3, axis=-1)[0], M),
    "hsplit": (lambda x: anp.hsplit(x, 2)[0], lambda x: np.hsplit(x, 2)[0], M),
    "vsplit": (lambda x: anp.vsplit(x, [1])[1], lambda x: np.vsplit(x, [1])[1], M),
    "dsplit": (lambda x: anp.dsplit(x, 2)[1], lambda x: np.dsplit(x, 2)[1], T3),
    "split_all_pieces": (lambda x: anp.concatenate([p * i for i, p in enumerate(anp.split(x, 3))]),
                         lambda x: np.concatenate([p * i for i, p in enumerate(np.split(x, 3))]), (6,)),
    "append": (lambda x: anp.append(x, x[:1] * 2), lambda x: np.append(x, x[:1] * 2), M),
    "append_axis": (lambda x: anp.append(x, x * 2, axis=1), lambda x: np.append(x, x * 2, axis=1), M),
    "pad_constant": (*same("pad", 1), M),
    "pad_constant_values": (*same("pad", ((1, 0), (2, 1)), constant_values=((1.5, -1.0), (2.0, 3.0))), M),
    "pad_edge": (*same("pad", ((0, 2), (1, 1)), mode="edge"), M),
    "pad_reflect": (*same("pad", 2, mode="reflect"), M),
    "pad_symmetric": (*same("pad", (1, 2), mode="symmetric"), (4,)),
    "pad_wrap": (*same("pad", ((1, 1), (0, 3)), mode="wrap"), M),
    "take": (*same("take", [[0, 5], [5, 11]]), M),
    "moveaxis_multi": (*same("moveaxis", [0, 1], [-1, 0]), T3),
    "atleast_1d": (*same("atleast_1d"), ()),
    "atleast_2d": (*same("atleast_2d"), (3,)),
    "atleast_3d_0d": (*same("atleast_3d"), ()),
    "atleast_3d_1d": (*same("atleast_3d"), (3,)),
    "atleast_3d_2d": (*same("atleast_3d"), M),
    "atleast_3d_3d": (*same("atleast_3d"), T3),
    "dstack": (lambda x: anp.dstack([x, 2 * x]), lambda x: np.dstack([x, 2 * x]), M),
    "dstack_1d": (lambda x: anp.dstack((x, x)), lambda x: np.dstack((x, x)), (3,)),
    "column_stack": (lambda x: anp.column_stack([x, x**2]), lambda x: np.column_stack([x, x**2]), (3,)),
    "column_stack_2d": (lambda x: anp.column_stack([x, x[:, :1]]), lambda x: np.column_stack([x, x[:, :1]]), M),
    "hstack_list": (lambda x: anp.hstack([x, x]), lambda x: np.hstack([x, x]), M),
    "vstack_1d": (lambda x: anp.vstack([x, x]), lambda x: np.vstack([x, x]), (4,)),
    "full": (lambda x: anp.full((2, 3), x), lambda x: np.full((2, 3), x), ()),
    "full_row": (lambda x: anp.full((2, 3), x), lambda x: np.full((2, 3), x), (3,)),
    "ravel": (*same("ravel"), T3),
    "rollaxis": (*same("rollaxis", 2), T3),
    "rollaxis_start": (*same("rollaxis", 0, 3), T3),
    "rollaxis_neg": (*same("rollaxis", -1, 1), T3),
    "linspace_stop": (lambda x: anp.linspace(0.5, x, 5), lambda x: np.linspace(0.5, x, 5), ()),
    "linspace_both": (lambda x: anp.linspace(x, 2 * x + 3, 4, endpoint=False),
                      lambda x: np.linspace(x, 2 * x + 3, 4, endpoint=False), (3,)),
    "linspace_axis": (lambda x: anp.linspace(x, -x, 3, axis=-1), lambda x: np.linspace(x, -x, 3, axis=-1), (2, 2)),
    "swapaxes": (*same("swapaxes", 0, 2), T3),
    "np_tile": (lambda x: np.tile(x, 2), lambda x: np.tile(x, 2), M),
    "np_roll": (lambda x: np.roll(x, 1), lambda x: np.roll(x, 1), M),
    "np_pad": (lambda x: np.pad(x, 1, mode="edge"), lambda x: np.pad(x, 1, mode="edge"), M),
    "np_diag": (lambda x: np.diag(x), lambda x: np.diag(x), SQ),
    "np_triu": (lambda x: np.triu(x), lambda x: np.triu(x), SQ),
    "np_flip": (lambda x: np.flip(x), lambda x: np.flip(x), M),
    "np_split": (lambda x: np.split(x, 2)[0], lambda x: np.split(x, 2)[0], (4,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shape_function(name):
    f, ref, shape = CASES[name]
    x = rng_for(name).uniform(-2, 2, shape)
    check(f, np.asarray(x), ref=ref)


def test_linspace_retstep_and_plain():
    out, step = anp.linspace(0.0, 1.0, 5, retstep=True)
    np.testing.assert_array_equal(out, np.linspace(0.0, 1.0, 5))
    assert step == 0.25
    g = nb.grad(lambda s: anp.sum(anp.linspace(0.0, s, 5, retstep=True)[1] * anp.linspace(0.0, s, 5)))(2.0)
    assert g == pytest.approx(2 * 2.0 / 4 * np.sum(np.linspace(0, 1, 5)), rel=1e-12)


def test_select():
    x = np.array([-1.5, -0.2, 0.4, 2.0])
    conds = [x < -1, x > 1]
    f = lambda x: anp.select(conds, [x**2, anp.sin(x)], default=x)
    ref = lambda x: np.select(conds, [x**2, np.sin(x)], default=x)
    check(f, x, ref=ref)
    np.testing.assert_allclose(nb.elementwise_grad(f)(x), np.select(conds, [2 * x, np.cos(x)], default=np.ones(4)))
    check(lambda x: anp.select([x > 0], [x], 0.5), x, ref=lambda x: np.select([x > 0], [x], 0.5))


def test_gathers_add_up_repeated_copies():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(anp.tile(x, 3)))(x), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(anp.pad(x, 2, mode="edge")))(x), [3.0, 1.0, 3.0])
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(anp.pad(x, 1, constant_values=5.0)))(x), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(anp.repeat(x, [2, 0, 1])))(x), [2.0, 0.0, 1.0])
    M = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(nb.grad(lambda m: anp.sum(anp.tril(m)))(M), np.tril(np.ones((3, 3))))


def test_plain_calls_are_numpy():
    x = np.arange(6.0).reshape(2, 3)
    assert anp.split(x, 3, axis=1)[0].shape == (2, 1)
    np.testing.assert_array_equal(anp.pad(x, 1, mode="linear_ramp"), np.pad(x, 1, mode="linear_ramp"))
    with pytest.raises(NotImplementedError, match="linear_ramp"):
        nb.grad(lambda x: anp.sum(anp.pad(x, 1, mode="linear_ramp")))(x)


def test_make_diagonal():
    D = rng_for("md").uniform(-1, 1, (3, 4))
    check(lambda D: anp.make_diagonal(D), D)
    A = anp.make_diagonal(D)
    assert all(np.allclose(np.diag(A[i]), D[i]) for i in range(3))


RC = {
    "r_one": (lambda x, c: anp.r_[x], lambda x, c: np.r_[x]),
    "r_mixed": (lambda x, c: anp.r_[x, c, x], lambda x, c: np.r_[x, c, x]),
    "r_slice": (lambda x, c: anp.r_[x[0], c[1], 1:4], lambda x, c: np.r_[x[0], c[1], 1:4]),
    "c_mixed": (lambda x, c: anp.c_[x, c, x], lambda x, c: np.c_[x, c, x]),
    "c_column": (lambda x, c: anp.c_[x[:, 0], c], lambda x, c: np.c_[x[:, 0], c]),
}


@pytest.mark.parametrize("name", sorted(RC))
def test_index_tricks_r_c(name):
    f, ref = RC[name]
    rng = rng_for("rc", name)
    x, c = rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (3, 2))
    check(lambda x: f(x, c), x, ref=lambda x: ref(x, c))


def test_index_tricks_plain_are_numpy():
    np.testing.assert_array_equal(anp.r_[1:4, 7], np.r_[1:4, 7])
    np.testing.assert_array_equal(anp.c_[np.ones(2), np.zeros(2)], np.c_[np.ones(2), np.zeros(2)])
