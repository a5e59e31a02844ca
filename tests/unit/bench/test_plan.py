"""The benchmark's plan: which datasets a ``python -m bench run`` measures, in what order."""

from __future__ import annotations

import pytest

from bench.report import parse_point, plan_points


def test_grid_is_every_size_with_every_pod_count_cheapest_first() -> None:
    points = plan_points([1_000_000, 100_000], [10_000, 1_000], 3, [])
    assert points == [
        (100_000, 1_000, 3),
        (100_000, 10_000, 3),
        (1_000_000, 1_000, 3),
        (1_000_000, 10_000, 3),
    ]


def test_extra_points_join_the_grid_and_override_its_repeat() -> None:
    points = plan_points([100_000], [1_000], 3, [(5_000_000, 100_000, 1), (100_000, 1_000, 5)])
    assert points == [(100_000, 1_000, 5), (5_000_000, 100_000, 1)]


@pytest.mark.parametrize(
    ("text", "point"),
    [("5e6x1e5x1", (5_000_000, 100_000, 1)), ("1e5X1e3", (100_000, 1_000, 1))],
)
def test_point_syntax(text: str, point: tuple[int, int, int]) -> None:
    assert parse_point(text) == point


@pytest.mark.parametrize("text", ["5e6", "1e5x1e3x1x1", "0x10", "axb"])
def test_bad_point_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="bad point"):
        parse_point(text)
