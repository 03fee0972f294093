"""The overview's chart, drawn on the server as SVG: no script, no chart library.

Colours come from CSS classes (``series-sent`` …) in the dashboard's stylesheet, so the markup
carries no inline style and the page's Content-Security-Policy stays strict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

__all__ = ["Series", "hourly_chart", "nice_ceiling"]

WIDTH = 760  # px of the drawing, scaled by the browser to the column it sits in
HEIGHT = 240
LEFT = 44  # room for the y axis labels
RIGHT = 24
TOP = 14
BOTTOM = 30  # room for the x axis labels
GRID_LINES = 4
LABEL_EVERY = 3  # hours between x axis labels


@dataclass(frozen=True, slots=True)
class Series:
    name: str  # also the CSS class suffix: series-<name>
    label: str
    values: Sequence[int]


def nice_ceiling(value: int) -> int:
    """The y axis top: at least ``GRID_LINES``, rounded up so each grid step is a whole number
    from the 1-2-5 sequence."""
    if value <= GRID_LINES:
        return GRID_LINES
    raw_step = value / GRID_LINES
    magnitude = 10 ** math.floor(math.log10(raw_step))
    for multiple in (1, 2, 5, 10):
        step = multiple * magnitude
        if step >= raw_step:
            return int(step * GRID_LINES)
    raise AssertionError("unreachable: 10 * magnitude always covers raw_step")


def hourly_chart(hours: Sequence[datetime], series: Sequence[Series]) -> Markup:
    """A line chart of ``series`` over ``hours`` (one point per hour, oldest first)."""
    count = len(hours)
    top_value = nice_ceiling(max((max(s.values, default=0) for s in series), default=0))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    step = plot_width / max(count - 1, 1)

    def x(index: int) -> float:
        return round(LEFT + index * step, 1)

    def y(value: int) -> float:
        return round(TOP + plot_height - value / top_value * plot_height, 1)

    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Messages per hour over the last 24 hours</title>',
    ]
    for line in range(GRID_LINES + 1):
        value = top_value * line // GRID_LINES
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value)}" y2="{y(value)}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y(value) + 4}" text-anchor="end">{value}</text>'
        )
    for index, hour in enumerate(hours):
        if index % LABEL_EVERY == 0 or index == count - 1:
            parts.append(
                f'<text class="axis" x="{x(index)}" y="{HEIGHT - 10}" text-anchor="middle">'
                f"{hour:%H}:00</text>"
            )
    for one in series:
        points = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(one.values))
        parts.append(
            f'<polyline class="line series-{escape(one.name)}" fill="none" points="{points}"/>'
        )
        parts.extend(
            f'<circle class="dot series-{escape(one.name)}" cx="{x(i)}" cy="{y(v)}" r="2.5"/>'
            for i, v in enumerate(one.values)
            if v
        )
    # One invisible column per hour whose tooltip lists that hour's numbers.
    for index, hour in enumerate(hours):
        numbers = ", ".join(f"{s.label} {s.values[index]}" for s in series)
        parts.append(
            f'<rect class="hover" x="{round(x(index) - step / 2, 1)}" y="{TOP}" '
            f'width="{round(step, 1)}" height="{plot_height}">'
            f"<title>{hour:%Y-%m-%d %H}:00 UTC: {escape(numbers)}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  # built from numbers and escaped labels only
