"""Complex numbers are refused with a TypeError wherever they meet a traced value.

nablanet differentiates real-valued computations; a complex input, or a
complex constant that a traced value runs into, must never give a silently
wrong derivative (before, ``grad(lambda x: x * (1 + 0.2j))(1.0)`` returned 1).
"""

from __future__ import annotations

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp

C = 1 + 0.2j
REFUSED = {
    "grad_complex_output": lambda: nb.grad(lambda x: x * C)(1.0),
    "grad_back_to_real": lambda: nb.grad(lambda x: anp.abs(x * C))(1.0),
    "grad_complex_array_constant": lambda: nb.grad(lambda x: anp.sum(anp.abs(x + np.array([1j, 2.0]))))(np.ones(2)),
    "grad_complex_input": lambda: nb.grad(anp.abs)(1 + 2j),
    "grad_complex_array_input": lambda: nb.grad(lambda z: anp.sum(anp.abs(z)))(np.ones(3, complex)),
    "value_and_grad": lambda: nb.value_and_grad(lambda x: anp.abs(x * C))(1.0),
    "elementwise_grad": lambda: nb.elementwise_grad(lambda x: anp.abs(x * C))(np.ones(2)),
    "vjp_complex_output": lambda: nb.vjp(lambda x: x * 1j, np.ones(2)),
    "jvp_back_to_real": lambda: nb.jvp(lambda x: anp.abs(x * C), (1.0,), (1.0,)),
    "jvp_complex_output": lambda: nb.jvp(lambda x: anp.exp(x * C), (1.0,), (1.0,)),
    "jvp_complex_input": lambda: nb.jvp(anp.abs, (1 + 2j,), (1.0 + 0j,)),
    "jacobian_rev": lambda: nb.jacobian(lambda x: anp.abs(x * C))(np.ones(2)),
    "jacobian_fwd": lambda: nb.jacobian(lambda x: anp.abs(x * C), mode="fwd")(np.ones(2)),
    "hessian": lambda: nb.hessian(lambda x: anp.abs(x * 1j) ** 2)(1.0),
    "hvp": lambda: nb.hvp(lambda x: anp.sum(anp.abs(x * C)), np.ones(2), np.ones(2)),
    "pytree_leaf": lambda: nb.grad(lambda p: anp.abs(p["a"]) + p["b"])({"a": 1j, "b": 1.0}),
    "check_grads": lambda: nb.check_grads(anp.exp, (np.array([1 + 1j]),)),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_complex_meeting_a_traced_value_is_refused(name):
    with pytest.raises(TypeError, match="complex"):
        REFUSED[name]()


def test_the_message_names_the_argument_and_says_what_to_do():
    with pytest.raises(TypeError, match=r"argument 1 is complex \(dtype complex128\).*real and imaginary parts"):
        nb.grad(lambda x, z: x * anp.abs(z), argnums=(0, 1))(1.0, 1j)
    with pytest.raises(TypeError, match="complex constant met a traced value"):
        nb.grad(lambda x: anp.abs(x * C))(1.0)


def test_complex_arguments_not_differentiated_pass_through_plain_code():
    # a complex array that never meets a traced value is ordinary NumPy
    z = np.array([1 + 1j, 2 - 1j])
    g = nb.grad(lambda x, z: anp.sum(x**2) + 0 * np.abs(z).sum(), argnums=0)(np.ones(2), z)
    np.testing.assert_array_equal(g, [2.0, 2.0])
    assert np.array_equal(anp.abs(z), np.abs(z))
