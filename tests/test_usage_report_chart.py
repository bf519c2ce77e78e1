"""The server-side SVG stacked bar chart: well-formed, one group per series with its exact
total, bars stacked to the right heights, titles for screen readers, and text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from creditgate.web.charts import PLOT_HEIGHT, PLOT_TOP, ChartSeries, _nice_ceiling, legend_html, stacked_bars

NS = {"svg": "http://www.w3.org/2000/svg"}


def _usd(units: int) -> str:
    return f"${units / 100:.2f}"


def _render(series: list[ChartSeries], labels: list[str]) -> ET.Element:
    svg = stacked_bars(chart_id="c1", title="Spend <per> day", x_labels=labels, series=series, fmt=_usd)
    return ET.fromstring(svg)


def test_one_group_per_series_with_exact_totals() -> None:
    labels = ["1", "2", "3"]
    root = _render([ChartSeries("a", [100, 0, 300]), ChartSeries("b", [50, 50, 0])], labels)
    groups = root.findall("svg:g[@class='series']", NS)
    assert [(g.get("data-series"), g.get("data-total")) for g in groups] == [("a", "400"), ("b", "100")]
    assert [r.get("data-value") for r in groups[0].findall("svg:rect", NS)] == ["100", "300"]
    assert root.find("svg:title", NS).text == "Spend <per> day"  # type: ignore[union-attr]
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-title c1-desc"
    legend = "".join(t.text or "" for t in root.findall("svg:g[@class='legend']/svg:text", NS))
    assert "a ($4.00)" in legend and "b ($1.00)" in legend


def test_text_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    svg = stacked_bars(
        chart_id='x" onload="alert(1)',
        title=evil,
        x_labels=[evil],
        series=[ChartSeries(evil, [5])],
        fmt=str,
    )
    assert "<script>" not in svg and 'onload="' not in svg
    root = ET.fromstring(svg)
    assert root.find("svg:g[@class='series']", NS).get("data-series") == evil  # type: ignore[union-attr]


def test_empty_chart_says_so() -> None:
    root = _render([], [str(d) for d in range(30)])
    assert root.findall("svg:g[@class='series']", NS) == []
    assert "No usage" in "".join(root.itertext())


@given(st.lists(st.lists(st.integers(0, 10**15), min_size=4, max_size=4), min_size=1, max_size=6))
def test_each_stack_reaches_its_total(values: list[list[int]]) -> None:
    series = [ChartSeries(f"m{i}", v) for i, v in enumerate(values)]
    root = _render(series, ["a", "b", "c", "d"])
    totals = [sum(v[i] for v in values) for i in range(4)]
    top = _nice_ceiling(max(totals))
    assert top >= max(totals)
    columns: dict[str, list[ET.Element]] = {}
    for group in root.findall("svg:g[@class='series']", NS):
        for rect in group.findall("svg:rect", NS):
            columns.setdefault(rect.get("x") or "", []).append(rect)
    nonzero = [t for t in totals if t > 0]
    assert len(columns) == len(nonzero)
    for (_, rects), total in zip(sorted(columns.items(), key=lambda kv: float(kv[0])), nonzero, strict=True):
        assert sum(int(r.get("data-value") or 0) for r in rects) == total
        highest = min(float(r.get("y") or 0) for r in rects)
        assert abs(highest - (PLOT_TOP + PLOT_HEIGHT - total * PLOT_HEIGHT / top)) < 0.06


def test_nice_ceiling() -> None:
    assert [_nice_ceiling(v) for v in (0, 1, 3, 10, 11, 26, 501, 2_000_000_001)] == [
        1,
        1,
        5,
        10,
        20,
        50,
        1000,
        5_000_000_000,
    ]


def test_the_html_legend_escapes_and_lists_every_series() -> None:
    evil = "<b>x</b>"
    html = legend_html("c", [ChartSeries(evil, [1, 2]), ChartSeries("m", [0])], _usd)
    root = ET.fromstring(html)
    assert [li.get("data-series") for li in root.findall("li")] == [evil, "m"]
    assert "<b>" not in html and "&lt;b&gt;x&lt;/b&gt; <span>$0.03</span>" in html
    assert legend_html("c", [], _usd).endswith("No usage</p>")
