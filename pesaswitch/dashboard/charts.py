"""A daily bar chart as server-rendered SVG: no JavaScript, no chart library, readable
by screen readers through its <title> and the table beside it."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from pesaswitch.dashboard.queries import Day

WIDTH = 720
HEIGHT = 220
LEFT = 40
BOTTOM = 24
TOP = 12


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def daily_bars(days: Sequence[Day]) -> str:
    """Completed (green) and failed (red) payments per day, side by side."""
    if not days:
        return ""
    top = _nice_ceiling(max(max(d.completed, d.failed) for d in days))
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(days)
    bar = max(1.0, slot * 0.38)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="chart" role="img" aria-labelledby="chart-title">',
        '<title id="chart-title">Completed and failed payments per day, last '
        f"{len(days)} days</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        value = top * fraction
        # Counts are whole: a half-way line at 0.5 gets no label.
        label = str(int(value)) if value == int(value) else ""
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" stroke="#d8dee4"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#57606a">{label}</text>'
        )
    for i, day in enumerate(days):
        x = LEFT + i * slot + slot * 0.1
        for offset, count, colour, label in (
            (0.0, day.completed, "#1a7f37", "completed"),
            (bar, day.failed, "#cf222e", "failed"),
        ):
            h = plot_h * count / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}" class="bar-{label}" '
                f'data-day="{day.day.isoformat()}" data-count="{count}">'
                f"<title>{escape(day.day.isoformat())}: {count} {label}</title></rect>"
            )
        if i % 5 == 0 or i == len(days) - 1:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11" '
                f'fill="#57606a">{day.day.strftime("%d %b")}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
