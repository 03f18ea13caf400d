"""The public tape: nodes, values, tangents and adjoints of a recorded function."""

from __future__ import annotations

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from nablanet.autodiff import trace


def test_nodes_values_and_parents():
    tape = trace(lambda x, y: anp.sin(x) * y + x, 0.5, 2.0)
    ops = [n.op for n in tape.nodes]
    assert ops == ["input", "input", "sin", "multiply", "add"]
    assert tape.inputs == [0, 1] and tape.outputs == [4]
    assert tape.nodes[3].parents == ((0, 2), (1, 1))
    assert tape.nodes[2].value == np.sin(0.5)
    assert tape.output_value == np.sin(0.5) * 2.0 + 0.5
    assert repr(tape.nodes[3]).startswith("Node(v3 = multiply(v2, v1)")


def test_adjoints_and_tangents_agree_with_the_transforms():
    f = lambda x: anp.sum(anp.tanh(x) * x ** 2)  # noqa: E731
    x = np.array([0.3, -1.2, 2.0])
    tape = trace(f, x)
    (g,) = tape.backward()
    np.testing.assert_array_equal(g, nb.grad(f)(x))
    v = np.array([1.0, 0.5, -2.0])
    (t,) = tape.forward([v])
    np.testing.assert_allclose(t, nb.jvp(f, (x,), (v,))[1], rtol=1e-14)
    # every node's adjoint is d out / d node: the input's is the gradient, the output's is the seed
    assert tape.nodes[tape.outputs[0]].adjoint == 1.0


def test_constant_arguments_and_unreached_inputs():
    tape = trace(lambda x, y: x * 3.0, np.ones(2), np.ones(2))
    node = tape.nodes[-1]
    assert repr(node.args[0]) == "v0" and node.args[1] == 3.0
    gx, gy = tape.backward()
    np.testing.assert_array_equal(gx, [3.0, 3.0])
    np.testing.assert_array_equal(gy, [0.0, 0.0])
    with pytest.raises(ValueError, match="2 tangents for 2 inputs|1 tangents for 2 inputs"):
        tape.forward([np.ones(2)])
