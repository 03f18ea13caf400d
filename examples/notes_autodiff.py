"""The lecture notes' two worked examples of automatic differentiation, by nablanet.

f(x) = exp(x^2)                 f'(x) = 2x exp(x^2)
g(x) = sqrt(x^2 + exp(x^2))     g'(x) = x (1 + b) / d,  b = exp(x^2), d = sqrt(x^2 + b)

Forward mode pushes a tangent from x to the output in the same sweep as the
values; reverse mode records the sweep and pulls the adjoint back from the
output.  Both must agree with the closed forms to the last digits.
"""

import numpy as np

import nablanet as nb
import nablanet.numpy as anp


def f(x):
    return anp.exp(x**2)


def g(x):
    return anp.sqrt(x**2 + anp.exp(x**2))


def main():
    x = 1.5
    b = np.exp(x**2)
    d = np.sqrt(x**2 + b)
    rows = [
        ("exp(x^2)", f, 2 * x * np.exp(x**2)),
        ("sqrt(x^2 + exp(x^2))", g, x * (1 + b) / d),
    ]
    print(f"derivatives at x = {x}\n")
    print(f"{'function':<24}{'forward mode':>22}{'reverse mode':>22}{'closed form':>22}{'rel. error':>12}")
    for name, fun, exact in rows:
        _, fwd = nb.jvp(fun, (x,), (1.0,))
        rev = nb.grad(fun)(x)
        err = max(abs(fwd - exact), abs(rev - exact)) / abs(exact)
        print(f"{name:<24}{fwd:>22.15f}{rev:>22.15f}{exact:>22.15f}{err:>12.1e}")
    print("\nsecond derivative of exp(x^2), grad(grad(f)):", nb.grad(nb.grad(f))(x),
          " closed form (2 + 4x^2) exp(x^2):", (2 + 4 * x**2) * np.exp(x**2))
    nb.check_grads(g, (x,), order=2)
    print("check_grads(g, order=2) against central differences: both modes agree")


if __name__ == "__main__":
    main()
