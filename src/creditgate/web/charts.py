"""Stacked bar charts as inline SVG, drawn on the server: one series per model, a legend, a
<title> and <desc> for screen readers and a tooltip <title> on every bar segment. No script,
no style attribute (the CSP allows neither), and every text escaped.

Values are exact integers (ledger units); only pixel positions are floats, and the caller's
`fmt` turns a value into the text a person reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# Okabe-Ito and Tableau hues, each at >= 3:1 contrast against white (WCAG non-text contrast).
PALETTE = (
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#8a6d00",
    "#56447a", "#c0392b", "#1b7f8a", "#6b6b6b", "#7a4f1d",
)  # fmt: skip
WIDTH, PLOT_TOP, PLOT_HEIGHT = 720, 16, 200
LEFT, RIGHT = 72, 8
LEGEND_ROW, LEGEND_COLUMN = 20, 236
TICKS = 4


@dataclass(frozen=True)
class ChartSeries:
    label: str
    values: Sequence[int]  # one per x label, >= 0


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is >= value (1 for nothing)."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _short(label: str, limit: int = 26) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[ChartSeries],
    fmt: Callable[[int], str],
    label_every: int = 1,
    legend: bool = True,
) -> str:
    """An <svg> stacking `series` over the `x_labels` (every `label_every`-th one printed),
    with its legend inside unless `legend` is False (then draw `legend_html` beside it)."""
    count = max(len(x_labels), 1)
    top = _nice_ceiling(max((sum(s.values[i] for s in series) for i in range(len(x_labels))), default=0))
    plot_width = WIDTH - LEFT - RIGHT
    slot = plot_width / count
    bar = max(slot * 0.7, 1.0)
    bottom = PLOT_TOP + PLOT_HEIGHT
    per_row = max(1, (WIDTH - LEFT) // LEGEND_COLUMN)
    legend_rows = (-(-len(series) // per_row) if series else 1) if legend else 0
    height = bottom + 28 + legend_rows * LEGEND_ROW
    total = sum(sum(s.values) for s in series)
    desc = (
        f"{len(series)} series over {len(x_labels)} bars; total {fmt(total)}."
        if series
        else "No usage in this period."
    )

    def y(value: int) -> float:
        return bottom - value * PLOT_HEIGHT / top

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
        '<g class="axis" aria-hidden="true">',
    ]
    for k in range(TICKS + 1):
        value = top * k // TICKS
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y(value))}" y2="{_num(y(value))}" '
            f'stroke="#d0d0d0" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{_num(y(value) + 4)}" text-anchor="end" font-size="13" '
            f'fill="#333">{escape(fmt(value))}</text>'
        )
    for i, label in enumerate(x_labels):
        if i % label_every == 0:
            x = LEFT + slot * i + slot / 2
            out.append(
                f'<text x="{_num(x)}" y="{bottom + 16}" text-anchor="middle" font-size="13" '
                f'fill="#333">{escape(label)}</text>'
            )
    out.append("</g>")
    stacked = [0] * len(x_labels)
    for n, s in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        out.append(
            f'<g class="series" data-series="{escape(s.label)}" data-total="{sum(s.values)}" fill="{color}">'
        )
        for i, value in enumerate(s.values):
            if value <= 0:
                continue
            x = LEFT + slot * i + (slot - bar) / 2
            y_top, y_base = y(stacked[i] + value), y(stacked[i])
            stacked[i] += value
            out.append(
                f'<rect x="{_num(x)}" y="{_num(y_top)}" width="{_num(bar)}" '
                f'height="{_num(max(y_base - y_top, 0.5))}" data-value="{value}">'
                f"<title>{escape(s.label)}, {escape(x_labels[i])}: {escape(fmt(value))}</title></rect>"
            )
        out.append("</g>")
    if legend:
        out.append('<g class="legend">')
        for n, s in enumerate(series):
            row, column = divmod(n, per_row)
            x, y0 = LEFT + column * LEGEND_COLUMN, bottom + 30 + row * LEGEND_ROW
            out.append(
                f'<rect x="{x}" y="{y0}" width="12" height="12" fill="{PALETTE[n % len(PALETTE)]}"/>'
                f'<text x="{x + 18}" y="{y0 + 11}" font-size="12" fill="#222">'
                f"{escape(_short(s.label))} ({escape(fmt(sum(s.values)))})</text>"
            )
        if not series:
            out.append(f'<text x="{LEFT}" y="{bottom + 41}" font-size="12" fill="#222">No usage</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def legend_html(chart_id: str, series: Sequence[ChartSeries], fmt: Callable[[int], str]) -> str:
    """The chart's legend as an HTML list (it wraps at any width): a swatch, the label and
    the series total per item."""
    if not series:
        return f'<p class="chart-legend muted" id="{escape(chart_id)}-legend">No usage</p>'
    items = "".join(
        f'<li data-series="{escape(s.label)}"><svg class="swatch" width="12" height="12" aria-hidden="true">'
        f'<rect width="12" height="12" fill="{PALETTE[n % len(PALETTE)]}"/></svg>'
        f"{escape(s.label)} <span>{escape(fmt(sum(s.values)))}</span></li>"
        for n, s in enumerate(series)
    )
    return f'<ul class="chart-legend" id="{escape(chart_id)}-legend" aria-label="Legend">{items}</ul>'
