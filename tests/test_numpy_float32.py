"""float32 in gives float32 out for the functions added to nablanet.numpy: values, gradients and tangents."""

from __future__ import annotations

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp

F32 = {
    "mod": lambda x: x % 0.3,
    "fmod": lambda x: anp.fmod(x, 0.3),
    "sort": anp.sort,
    "median": lambda x: anp.median(x, axis=0),
    "quantile": lambda x: anp.quantile(x, 0.3),
    "arctan2": lambda x: anp.arctan2(x, 0.5),
    "hypot": lambda x: anp.hypot(x, x),
    "sinc": anp.sinc,
    "cbrt": anp.cbrt,
    "nan_to_num": anp.nan_to_num,
    "fmax": lambda x: anp.fmax(x, 0.5),
    "tril": anp.tril,
    "pad": lambda x: anp.pad(x, 1, constant_values=2.0),
    "pad_edge": lambda x: anp.pad(x, 1, mode="edge"),
    "diag": lambda x: anp.diag(x[0]),
    "cumsum": lambda x: anp.cumsum(x, 1),
    "cumprod": lambda x: anp.cumprod(x, 0),
    "nanmean": anp.nanmean,
    "nanstd": anp.nanstd,
    "ptp": anp.ptp,
    "diff": anp.diff,
    "std_one": lambda x: anp.std(x[:1, :1]),
    "linspace": lambda x: anp.linspace(x[0], x[1], 3),
    "gradient": lambda x: anp.gradient(x, axis=1),
    "select": lambda x: anp.select([x > 0.5], [x], 0.0),
    "full": lambda x: anp.full((2, 2), x[0, 0]),
    "r_": lambda x: anp.r_[x[0], x[1]],
    "list_mean": lambda x: anp.mean([x[0], x[1]], axis=0),
}


@pytest.mark.parametrize("name", sorted(F32))
def test_float32_stays_float32(name):
    f = F32[name]
    x = np.array([[0.2, 0.45, 0.9], [0.75, 0.35, 0.55]], dtype=np.float32)
    value = f(x)
    grad = nb.grad(lambda x: anp.sum(f(x)))(x)
    tangent = nb.jvp(f, (x,), (np.ones_like(x),))[1]
    for what, v in (("value", value), ("gradient", grad), ("tangent", tangent)):
        assert np.asarray(v).dtype == np.float32, f"{what} of {name} is {np.asarray(v).dtype}"
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(grad, nb.grad(lambda x: anp.sum(f(x)))(x64), rtol=1e-4, atol=1e-5)
