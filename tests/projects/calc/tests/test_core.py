from calc import add, mean


def test_add() -> None:
    assert add(2, 2.5) == 4.5


def test_mean() -> None:
    assert mean([1, 2, 4]) == 2.33
