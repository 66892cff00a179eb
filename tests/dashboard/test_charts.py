from __future__ import annotations

import re
from datetime import date, timedelta

from pesaswitch.dashboard.charts import _nice_ceiling, daily_bars
from pesaswitch.dashboard.queries import Day


def test_bar_heights_are_proportional_to_the_counts() -> None:
    days = [Day(date(2026, 11, 1) + timedelta(days=i), i, 10 - i, i * 100) for i in range(10)]
    bars = re.findall(
        r'height="([\d.]+)" fill="#\w+" class="bar-(\w+)"[^>]*data-count="(\d+)"',
        daily_bars(days),
    )
    assert len(bars) == 20
    height_of = {int(count): float(height) for height, _kind, count in bars}
    assert height_of[0] == 0
    assert height_of[10] == max(height_of.values())
    assert abs(height_of[5] * 2 - height_of[10]) < 0.2


def test_axis_tops_are_round_and_labels_whole() -> None:
    assert [_nice_ceiling(v) for v in (0, 1, 3, 7, 11, 180, 501)] == [1, 1, 5, 10, 20, 200, 1000]
    svg = daily_bars([Day(date(2026, 11, 1), 1, 0, 10)])
    labels = re.findall(r'text-anchor="end" font-size="11" fill="#57606a">([^<]*)<', svg)
    assert labels == ["0", "", "1"]
