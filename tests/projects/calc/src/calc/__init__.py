"""A small calculator library."""

from calc.core import add, mean

__all__ = ["add", "mean"]
