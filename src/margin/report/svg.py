"""Inline SVG charts drawn from prepared view data: no charting library, no network.

Every text that reaches the SVG goes through `escape`; numbers are formatted here. The result
is returned as `Markup` so the template can embed it: it is safe because this module built it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

WIDTH, HEIGHT = 520, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 130, 34, 44
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


@dataclass(frozen=True)
class Point:
    """One observation: x position, rate with its interval, and a label for its tooltip."""

    x: float
    y: float | None
    low: float | None = None
    high: float | None = None
    label: str = ""
    marked: bool = False
    """Drawn as a ring: the model's margin on an axis, or a frontier point."""


@dataclass(frozen=True)
class Series:
    name: str
    points: list[Point]
    dashed: bool = False
    color: str | None = None


@dataclass(frozen=True)
class Chart:
    """A chart's data: series over an x axis, a target line, axis titles."""

    title: str
    x_title: str
    y_title: str
    series: list[Series]
    target: float | None = None
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    log_x: bool = False
    y_range: tuple[float, float] = (0.0, 1.0)
    connect: bool = True


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high == low:
        return (out_low + out_high) / 2
    return out_low + (value - low) / (high - low) * (out_high - out_low)


@dataclass(frozen=True)
class _Axes:
    """Data coordinates to SVG coordinates for one chart."""

    x_low: float
    x_high: float
    y_low: float
    y_high: float
    log_x: bool
    plot_right: int = WIDTH - RIGHT

    @staticmethod
    def of(chart: Chart) -> _Axes:
        xs = [p.x for s in chart.series for p in s.points] + [x for x, _ in chart.x_ticks]
        if chart.log_x:
            xs = [math.log10(x) for x in xs if x > 0]
        x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if x_low == x_high:
            x_low, x_high = x_low - 1, x_high + 1
        pad = (x_high - x_low) * 0.06
        return _Axes(x_low - pad, x_high + pad, *chart.y_range, chart.log_x)

    def sx(self, x: float) -> float:
        value = math.log10(x) if self.log_x and x > 0 else x
        return _scale(value, self.x_low, self.x_high, LEFT, self.plot_right)

    def sy(self, y: float) -> float:
        return _scale(y, self.y_low, self.y_high, HEIGHT - BOTTOM, TOP)


def render(chart: Chart) -> Markup:
    """The chart as an `<svg>` element (role img, with a title for screen readers)."""
    axes = _Axes.of(chart)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' role="img" aria-label="{escape(chart.title)}"><title>{escape(chart.title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{axes.plot_right - LEFT}"'
        f' height="{HEIGHT - TOP - BOTTOM}" fill="#fafafa" stroke="#ccc"/>',
        f'<text x="{LEFT}" y="20" class="heading">{escape(_short(chart.title, 80))}</text>',
        *_grid(chart, axes),
    ]
    for index, series in enumerate(chart.series):
        color = series.color or PALETTE[index % len(PALETTE)]
        parts.extend(_series(series, color, axes.sx, axes.sy, chart.connect))
        parts.append(_legend(series, color, index, axes.plot_right))
    mid = (TOP + HEIGHT - BOTTOM) / 2
    parts.append(
        f'<text x="{(LEFT + axes.plot_right) / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle"'
        f' class="axis">{escape(chart.x_title)}</text>'
        f'<text x="14" y="{mid:.0f}" text-anchor="middle" class="axis"'
        f' transform="rotate(-90 14 {mid:.0f})">'
        f"{escape(chart.y_title)}</text></svg>"
    )
    return Markup("".join(parts))


def _grid(chart: Chart, axes: _Axes) -> list[str]:
    """The y ticks with their grid lines, the x ticks, and the dashed target line."""
    parts = []
    for tick in _y_ticks(axes.y_low, axes.y_high):
        y = axes.sy(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{axes.plot_right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{tick * 100:.0f}%</text>"
        )
    for x, label in chart.x_ticks:
        parts.append(
            f'<text x="{axes.sx(x):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle"'
            f' class="tick">{escape(label)}</text>'
        )
    if chart.target is not None:
        y = axes.sy(chart.target)
        parts.append(
            f'<line x1="{LEFT}" x2="{axes.plot_right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#000"'
            ' stroke-dasharray="6 4" class="target"/>'
            f'<text x="{axes.plot_right - 4}" y="{y - 5:.1f}" text-anchor="end" class="tick">'
            f"target {chart.target * 100:g}%</text>"
        )
    return parts


def _legend(series: Series, color: str, index: int, plot_right: int) -> str:
    legend_y = TOP + 14 + index * 16
    dash = ' stroke-dasharray="4 3"' if series.dashed else ""
    return (
        f'<line x1="{plot_right + 8}" x2="{plot_right + 24}" y1="{legend_y - 4}"'
        f' y2="{legend_y - 4}" stroke="{color}" stroke-width="2"{dash}/>'
        f'<text x="{plot_right + 28}" y="{legend_y}" class="legend">'
        f"{escape(_short(series.name, 16))}</text>"
    )


def _series(series: Series, color: str, sx, sy, connect: bool) -> list[str]:  # type: ignore[no-untyped-def]
    parts = []
    points = [p for p in series.points if p.y is not None]
    if connect and len(points) > 1:
        path = " ".join(f"{sx(p.x):.1f},{sy(p.y):.1f}" for p in points)
        dash = ' stroke-dasharray="4 3"' if series.dashed else ""
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"{dash}/>'
        )
    for p in points:
        x, y = sx(p.x), sy(p.y)
        if p.low is not None and p.high is not None:
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{sy(p.low):.1f}" y2="{sy(p.high):.1f}"'
                f' stroke="{color}" stroke-width="1" opacity="0.7"/>'
            )
        radius = 3 if not series.dashed else 2.5
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{color}">'
            f"<title>{escape(p.label)}</title></circle>"
        )
        if p.marked:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="{color}"'
                ' stroke-width="1.5" class="marked"/>'
            )
    return parts


def _y_ticks(low: float, high: float) -> Sequence[float]:
    step = 0.25 if high - low > 0.5 else 0.1
    ticks = []
    value = math.ceil(low / step) * step
    while value <= high + 1e-9:
        ticks.append(round(value, 4))
        value += step
    return ticks


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
