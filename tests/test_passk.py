"""pass@k: the unbiased estimator against hand-computed values, and the undefined cases."""

from __future__ import annotations

import pytest

from trialbook.model.passk import pass_at_k, pass_at_k_table, pass_at_k_task


@pytest.mark.parametrize(
    ("n", "c", "k", "want"),
    [
        (3, 0, 1, 0.0),
        (3, 1, 1, 1 / 3),
        (3, 1, 2, 2 / 3),  # 1 - C(2,2)/C(3,2) = 1 - 1/3
        (3, 1, 3, 1.0),
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 5, 1 - 21 / 252),  # C(7,5)=21, C(10,5)=252
        (4, 4, 2, 1.0),
    ],
)
def test_pass_at_k_task_hand_values(n: int, c: int, k: int, want: float) -> None:
    assert pass_at_k_task(n, c, k) == pytest.approx(want)


def test_fewer_attempts_than_k_is_undefined_not_zero() -> None:
    assert pass_at_k_task(2, 0, 3) is None
    assert pass_at_k({"a": (3, 1), "b": (2, 2)}, 3) is None
    assert pass_at_k({}, 1) is None


def test_mean_over_tasks() -> None:
    per_task = {"a": (3, 1), "b": (3, 3), "c": (3, 0)}
    assert pass_at_k(per_task, 1) == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert pass_at_k(per_task, 2) == pytest.approx((2 / 3 + 1 + 0) / 3)
    table = pass_at_k_table(per_task, range(1, 5))
    assert list(table) == ["1", "2", "3", "4"]
    assert table["4"] is None


def test_invalid_counts_raise() -> None:
    with pytest.raises(ValueError):
        pass_at_k_task(3, 4, 1)
