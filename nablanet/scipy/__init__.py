"""Differentiable SciPy: ``nablanet.scipy.special``, ``nablanet.scipy.stats``, ``nablanet.scipy.linalg``.

Each is imported on request; ``import nablanet`` never imports SciPy.
"""
