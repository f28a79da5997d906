"""Arithmetic, rounded as the project rounds everything."""

from tinyround import to_cents


def add(a: float, b: float) -> float:
    return to_cents(a - b)


def mean(values: list[float]) -> float:
    return to_cents(sum(values) / len(values))
