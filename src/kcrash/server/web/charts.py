"""Charts drawn on the server as inline SVG: no chart library, no script, no download.

Why SVG text and not a canvas library: the dashboard must work on a network with no
internet and with scripts limited to its own one file; an SVG inside the page is there at
first paint, scales with the page, prints, and its ``<title>`` elements give every bar a
tooltip and a screen reader a value.  Colours are CSS classes (``s0``…``s9``) so the light
and dark themes pick them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Series beyond this many are summed into the last one ("other"): ten colours stay apart.
MAX_SERIES = 10
WIDTH, HEIGHT = 760, 220
PAD_L, PAD_R, PAD_T, PAD_B = 40, 8, 10, 24


@dataclass
class Series:
    key: str  # a class id (CSS-safe) or "other"
    label: str  # what people read (translated)
    values: list[int]


def day_range(end: dt.date, days: int) -> list[dt.date]:
    return [end - dt.timedelta(days=days - 1 - i) for i in range(days)]


def _nice_max(n: int) -> int:
    """The axis top: 1, 2, 5 × 10^k at or above ``n`` (so grid labels are round)."""
    top = 1
    while True:
        for m in (1, 2, 5):
            if top * m >= n:
                return top * m
        top *= 10


def _grid(top: int, plot_h: int) -> list[str]:
    out = []
    for i in range(5):
        v = top * i // 4
        y = PAD_T + plot_h - plot_h * v / top
        out.append(
            f'<line class="grid" x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{v}</text>'
        )
    return out


def stacked_bars(days: Sequence[dt.date], series: Sequence[Series], label: str) -> Markup:
    """One bar per day, stacked by series; ``label`` is the chart's accessible name."""
    n = len(days)
    totals = [sum(s.values[i] for s in series) for i in range(n)]
    top = _nice_max(max(totals, default=0) or 1)
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    slot = plot_w / max(n, 1)
    bar = max(1.0, slot * 0.72)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet">',
        *_grid(top, plot_h),
    ]
    for i, day in enumerate(days):
        x = PAD_L + i * slot + (slot - bar) / 2
        y = PAD_T + plot_h
        for k, s in enumerate(series):
            v = s.values[i]
            if not v:
                continue
            h = plot_h * v / top
            y -= h
            parts.append(
                f'<rect class="s{k}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                f"<title>{day.isoformat()} · {escape(s.label)}: {v}</title></rect>"
            )
        # A date label every week (and on the last day) keeps the axis readable.
        if (n - 1 - i) % 7 == 0:
            parts.append(
                f'<text class="axis" x="{x + bar / 2:.1f}" y="{HEIGHT - 6}" '
                f'text-anchor="middle">{day.strftime("%m-%d")}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series: Sequence[Series]) -> list[tuple[str, str, int]]:
    """(css class, label, total) per series, for the HTML legend under a chart."""
    return [(f"s{k}", s.label, sum(s.values)) for k, s in enumerate(series)]


def fold(series: list[Series], other_label: str) -> list[Series]:
    """Keep the biggest ``MAX_SERIES - 1`` series and sum the rest into one."""
    series = sorted(series, key=lambda s: -sum(s.values))
    if len(series) <= MAX_SERIES:
        return series
    keep, rest = series[: MAX_SERIES - 1], series[MAX_SERIES - 1 :]
    summed = [sum(vals) for vals in zip(*(s.values for s in rest), strict=True)]
    return [*keep, Series("other", other_label, summed)]
