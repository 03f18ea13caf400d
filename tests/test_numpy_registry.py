"""The README's list of nablanet.numpy functions is the registry's, so the documentation cannot drift."""

from __future__ import annotations

import pathlib

import numpy as np

import nablanet.numpy as anp
from nablanet.numpy import registry

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_exactly_the_registry():
    section = registry.readme_section(README.read_text())
    assert section is not None, "README.md lost the generated function list's markers"
    assert section == registry.readme_block(), (
        "README.md's function list differs from the registry; run `python -m nablanet.numpy.registry README.md`"
    )


def test_registry_names_are_real_functions():
    diff, zero = registry.differentiable_names(), registry.zero_derivative_names()
    assert not set(diff) & set(zero)
    for name in diff + zero:
        assert callable(getattr(anp, name)), name
    # every zero-derivative name is NumPy's function of that name
    for name in zero:
        assert hasattr(np, name), name


def test_the_generator_notices_a_change(tmp_path):
    readme = tmp_path / "README.md"
    stale = registry.readme_block().replace("`cumsum` ", "")
    readme.write_text("intro\n\n" + stale + "\n\nafter\n")
    assert registry.readme_section(readme.read_text()) != registry.readme_block()
    assert registry.update_readme(readme) is True
    text = readme.read_text()
    assert registry.readme_section(text) == registry.readme_block()
    assert text.startswith("intro\n\n") and text.endswith("\n\nafter\n")
    assert registry.update_readme(readme) is False
