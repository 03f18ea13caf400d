"""Optimizers on any pytree (as optax): init/update on lists, dicts, tuples, nested trees and a model's params.

The reference is the same optimizer on one flat vector holding all the leaves:
every update here is elementwise (and the clipping norm is global), so the
pytree result must equal the flat one, leaf for leaf.
"""

import numpy as np
import pytest

from nablanet import grad, optim
from nablanet.autodiff.tree import tree_flatten, tree_map, tree_structure
from nablanet.losses import mse
from nablanet.nn import MLP

OPTIMIZERS = {
    "sgd": lambda: optim.SGD(0.1),
    "momentum": lambda: optim.SGD(0.1, momentum=0.9),
    "nesterov": lambda: optim.SGD(0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda: optim.Adagrad(0.1),
    "rmsprop": lambda: optim.RMSprop(0.01),
    "adam": lambda: optim.Adam(0.01),
    "adamw": lambda: optim.AdamW(0.01, weight_decay=0.1),
    "adam_clipped": lambda: optim.Adam(0.01, clip_norm=0.5),
    "cosine_sgd": lambda: optim.SGD(optim.cosine(0.1, 5), momentum=0.5),
}


def trees(rng):
    a = lambda *s: rng.standard_normal(s)
    return {
        "array": a(3, 2),
        "list": [a(3), a(2, 2)],
        "dict": {"W": a(2, 3), "b": a(3)},
        "nested": [{"W": a(2, 2), "b": a(2)}, {}, {"gamma": a(2), "beta": (a(2), a(1, 2))}],
    }


@pytest.mark.parametrize("structure", ["array", "list", "dict", "nested"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_update_on_a_pytree_equals_the_update_on_the_flat_vector(name, structure):
    rng = np.random.default_rng(0)
    params = trees(rng)[structure]
    before = tree_map(np.copy, params)
    opt, ref = OPTIMIZERS[name](), OPTIMIZERS[name]()
    state = opt.init(params)
    flat = np.concatenate([np.ravel(x) for x in tree_flatten(params)[0]])
    ref_state = ref.init(flat)
    for _ in range(4):
        grads = tree_map(lambda x: rng.standard_normal(np.shape(x)), params)
        gflat = np.concatenate([np.ravel(x) for x in tree_flatten(grads)[0]])
        new, new_state = opt.update(params, grads, state)
        assert tree_structure(new) == tree_structure(params)
        assert new_state["t"] == state["t"] + 1
        params, state = new, new_state
        flat, ref_state = ref.update(flat, gflat, ref_state)
    got = np.concatenate([np.ravel(x) for x in tree_flatten(params)[0]])
    np.testing.assert_allclose(got, flat, rtol=1e-12, atol=1e-14)
    assert not np.allclose(got, np.concatenate([np.ravel(x) for x in tree_flatten(before)[0]]))


def test_update_leaves_its_inputs_alone_and_step_works_in_place():
    rng = np.random.default_rng(1)
    params = trees(rng)["nested"]
    grads = tree_map(np.ones_like, params)
    keep = tree_map(np.copy, params)
    opt = optim.Adam(0.1)
    state = opt.init(params)
    new, new_state = opt.update(params, grads, state)
    for a, b in zip(tree_flatten(params)[0], tree_flatten(keep)[0]):
        np.testing.assert_array_equal(a, b)
    assert state["t"] == 0 and all(not np.any(m) for m in state["m"])
    opt.step(params, grads, state)  # in place, same result
    for a, b in zip(tree_flatten(params)[0], tree_flatten(new)[0]):
        np.testing.assert_array_equal(a, b)
    assert state["t"] == 1


def test_scalar_and_integer_leaves_are_parameters_too():
    opt = optim.SGD(0.5, momentum=0.5)
    params = {"scale": 2.0, "shift": np.array([1, 2])}
    new, _ = opt.update(params, {"scale": 1.0, "shift": np.array([1.0, -1.0])}, opt.init(params))
    assert float(new["scale"]) == 1.5
    np.testing.assert_allclose(new["shift"], [0.5, 2.5])


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"])
def test_a_model_trains_with_init_and_update_on_its_params(name):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (128, 2))
    y = (X[:, :1] * X[:, 1:]) + 0.5 * X[:, :1]
    model = MLP([2, 16, 1], activation="tanh", seed=0, dtype=np.float64)
    cost = lambda params: mse(model.apply(params, X), y)
    opt = {"sgd": optim.SGD(0.2), "momentum": optim.SGD(0.1, momentum=0.9), "adagrad": optim.Adagrad(0.1),
           "rmsprop": optim.RMSprop(0.01), "adam": optim.Adam(0.02), "adamw": optim.AdamW(0.02)}[name]
    params, state = model.params, opt.init(model.params)
    first = cost(params)
    for _ in range(150):
        params, state = opt.update(params, grad(cost)(params), state)
    assert cost(params) < 0.25 * first


def test_mismatched_trees_get_one_clear_error():
    opt = optim.Adam()
    params = {"W": np.zeros((2, 2)), "b": np.zeros(2)}
    state = opt.init(params)
    with pytest.raises(ValueError, match="structure of params"):
        opt.update(params, {"W": np.zeros((2, 2))}, state)
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape \(3,\)"):
        opt.update(params, {"W": np.zeros((2, 2)), "b": np.zeros(3)}, state)
    with pytest.raises(ValueError, match="holds 1 arrays in slot 'm' for 2 parameter arrays; make it with Adam's init"):
        opt.update(params, {"W": np.zeros((2, 2)), "b": np.zeros(2)}, optim.Adam().init([np.zeros(3)]))
    with pytest.raises(TypeError, match="use update"):
        optim.SGD(0.1).step({"a": 1.0}, {"a": 1.0}, {"t": 0})


def test_trees_that_differ_are_refused_saying_where_and_how():
    """The message counted leaves ("1 leaves against 1") and did not say that the keys differed."""
    opt = optim.SGD(0.1)
    params = {"W": np.zeros(2)}
    with pytest.raises(ValueError, match=r"at the root params has a dict with keys 'W' and grads a dict with keys 'w'"):
        opt.update(params, {"w": np.zeros(2)}, opt.init(params))
    params = [{"W": np.zeros(2), "b": np.zeros(1)}, [np.zeros(1), np.zeros(1)]]
    grads = [{"W": np.zeros(2), "b": np.zeros(1)}, (np.zeros(1), np.zeros(1))]
    with pytest.raises(ValueError, match=r"at \[1\] params has a list of 2 and grads a tuple of 2"):
        opt.update(params, grads, opt.init(params))
    with pytest.raises(ValueError, match=r"at \[0\] .*keys 'b', 'W' \(the same keys in another order\)"):
        opt.step(params, [{"b": np.zeros(1), "W": np.zeros(2)}, [np.zeros(1), np.zeros(1)]], opt.init(params))
    with pytest.raises(ValueError, match=r"at \['a'\] the first has a leaf, another a dict with keys 'x'"):
        tree_map(np.add, {"a": 1.0}, {"a": {"x": 1.0}})


@pytest.mark.parametrize("how", ["update", "step"])
def test_a_state_another_optimizer_made_is_one_error_naming_the_slots(how):
    """Adam().update(p, g, SGD(momentum=0.9).init(p)) raised KeyError: 'm'."""
    p = np.zeros(3)
    call = lambda opt, state: (opt.update(p, p, state) if how == "update" else opt.step([p.copy()], [p], state))
    with pytest.raises(ValueError, match=r"Adam: the state must be a dict of the step count 't' and the slots 'm', "
                                         r"'v'; got the slots 'velocity'; make it with Adam's init\(\)"):
        call(optim.Adam(), optim.SGD(0.1, momentum=0.9).init(p))
    with pytest.raises(ValueError, match=r"SGD: .* and no slots; got the slots 'm', 'v'"):
        call(optim.SGD(0.1), optim.Adam().init(p))
    with pytest.raises(ValueError, match=r"got the slots 'sum_sq' and no step count 't'"):
        call(optim.Adagrad(), {"sum_sq": [np.zeros(3)]})
    with pytest.raises(ValueError, match=r"RMSprop: .*; got a list"):
        call(optim.RMSprop(), [np.zeros(3)])
    with pytest.raises(ValueError, match=r"state\['t'\]: expected an integer >= 0, got -1"):
        call(optim.Adam(), {**optim.Adam().init(p), "t": -1})
    with pytest.raises(ValueError, match=r"the state's 'v'\[0\] has shape \(2,\) but parameter array 0 has shape \(3,\)"):
        call(optim.Adam(), {**optim.Adam().init(p), "v": [np.zeros(2)]})
