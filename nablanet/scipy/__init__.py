"""Differentiable SciPy: ``nablanet.scipy.special`` (imported on request; ``import nablanet`` never imports SciPy)."""
