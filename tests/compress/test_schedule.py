import pytest

from distillab.compress import cubic_sparsity


def test_cubic_schedule_values():
    s = lambda t: cubic_sparsity(t, 0.8, start_step=10, end_step=110)  # noqa: E731
    assert s(0) == 0.0 and s(10) == 0.0
    assert s(60) == pytest.approx(0.8 * (1 - 0.5**3))  # 0.7: most of it in the first half
    assert s(35) == pytest.approx(0.8 * (1 - 0.75**3))
    assert s(110) == s(500) == 0.8
    values = [s(t) for t in range(10, 111)]
    assert values == sorted(values)  # never decreases
    assert cubic_sparsity(5, 0.5, start_step=5, end_step=5) == 0.5  # a single step
