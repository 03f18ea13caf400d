"""Data sets: synthetic (Franke, Runge, polynomial, logic gates)."""

from .synthetic import franke, franke_function, logic_gate, polynomial, runge, runge2d, runge2d_function, runge_function

__all__ = ["franke", "franke_function", "logic_gate", "polynomial", "runge", "runge2d", "runge2d_function", "runge_function"]
