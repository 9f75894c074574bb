"""Small charts drawn on the server as SVG: no JavaScript, no chart library, readable by screen readers
(a title and description on the image, and the same figures in a table beside it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 480
HEIGHT = 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 40, 16, 16, 36


@dataclass(frozen=True)
class Point:
    label: str
    value: float | None


def _svg(chart_id: str, title: str, description: str, body: str, height: int = HEIGHT) -> Markup:
    # Every text that came from data went through escape() above; the rest is our own markup.
    return Markup(  # noqa: S704
        f'<svg class="werkbrug-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" focusable="false">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>{body}</svg>'
    )


def line_chart(
    chart_id: str, title: str, points: Sequence[Point], *, low: float, high: float, reference: float | None = None
) -> Markup:
    """A line through the points, oldest left; gaps where a value is missing; an optional dashed reference
    line (for example the agreed hours)."""
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    span = (high - low) or 1.0

    def x(index: int) -> float:
        return PAD_LEFT + (plot_w * index / (len(points) - 1) if len(points) > 1 else plot_w / 2)

    def y(value: float) -> float:
        clipped = min(max(value, low), high)
        return PAD_TOP + plot_h - (clipped - low) / span * plot_h

    base = PAD_TOP + plot_h
    parts = [
        f'<line class="axis" x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH - PAD_RIGHT}" y2="{base}"/>',
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{base}"/>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{y(high) + 4:.1f}" text-anchor="end">{_fmt(high)}</text>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{y(low) + 4:.1f}" text-anchor="end">{_fmt(low)}</text>',
    ]
    if reference is not None:
        parts.append(
            f'<line class="reference" x1="{PAD_LEFT}" y1="{y(reference):.1f}" x2="{WIDTH - PAD_RIGHT}" '
            f'y2="{y(reference):.1f}" stroke-dasharray="6 4"/>'
        )
    segment: list[str] = []
    segments: list[list[str]] = []
    for index, point in enumerate(points):
        if point.value is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{x(index):.1f},{y(point.value):.1f}")
        parts.append(f'<circle class="point" cx="{x(index):.1f}" cy="{y(point.value):.1f}" r="4"/>')
    if segment:
        segments.append(segment)
    for line in segments:
        if len(line) > 1:
            parts.append(f'<polyline class="line" fill="none" points="{" ".join(line)}"/>')
    step = max(1, len(points) // 6)
    for index in range(0, len(points), step):
        parts.append(
            f'<text class="tick" x="{x(index):.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
            f"{escape(points[index].label)}</text>"
        )
    described = "; ".join(f"{p.label}: {_fmt(p.value) if p.value is not None else 'geen'}" for p in points)
    return _svg(chart_id, title, described or "Nog geen gegevens.", "".join(parts))


def bar_chart(chart_id: str, title: str, bars: Sequence[Point]) -> Markup:
    """Horizontal bars, one per label; a suppressed or missing value is drawn as a hatched stub and said so."""
    row = 26
    height = PAD_TOP + row * max(len(bars), 1) + 8
    label_w = 270
    plot_w = WIDTH - label_w - PAD_RIGHT - 40
    top = max((b.value for b in bars if b.value is not None), default=0) or 1
    parts = []
    for index, bar in enumerate(bars):
        y = PAD_TOP + index * row
        parts.append(f'<text class="label" x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(bar.label)}</text>')
        if bar.value is None:
            parts.append(f'<rect class="suppressed" x="{label_w}" y="{y + 3}" width="24" height="16"/>')
            parts.append(f'<text class="value" x="{label_w + 30}" y="{y + 15}">te klein om te tonen</text>')
            continue
        width = max(plot_w * bar.value / top, 1)
        parts.append(f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{width:.1f}" height="16"/>')
        parts.append(f'<text class="value" x="{label_w + width + 6:.1f}" y="{y + 15}">{_fmt(bar.value)}</text>')
    described = "; ".join(
        f"{b.label}: {_fmt(b.value) if b.value is not None else 'te klein om te tonen'}" for b in bars
    )
    return _svg(chart_id, title, described or "Nog geen gegevens.", "".join(parts), height)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}".replace(".", ",")
