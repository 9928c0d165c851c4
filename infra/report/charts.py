"""Inline SVG charts: no JavaScript, no external file, the same in a browser and
in WeasyPrint.  Each function returns an ``<svg>`` element as a string (marked
safe for Jinja by the caller); every text in it is escaped."""

from __future__ import annotations

from html import escape
from typing import Callable, Sequence

GOOD, WARN, BAD, NODATA, INK, GRID, LINE = "#2e7d32", "#f9a825", "#c62828", "#cfd8dc", "#263238", "#e0e0e0", "#1565c0"


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _svg(w: int, h: int, body: str, label: str, cls: str = "chart") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>{body}</svg>'
    )


def line_chart(
    points: Sequence[tuple[str, float | None]],
    *,
    label: str,
    target: float | None = None,
    higher_is_better: bool = True,
    y_min: float | None = None,
    y_max: float | None = None,
    fmt: Callable[[float], str] = lambda v: _f(v),
    width: int = 330,
    height: int = 150,
    empty_text: str = "–",
) -> str:
    """A daily series: a line with a dot per day (red where the target is missed)
    and the target as a dashed line."""
    vals = [v for _, v in points if v is not None]
    left, right, top, bottom = 44, 8, 8, 22
    pw, ph = width - left - right, height - top - bottom
    if not vals:
        body = (f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" stroke="{GRID}"/>'
                f'<text x="{width / 2}" y="{height / 2}" font-size="10" text-anchor="middle" fill="{INK}">{escape(empty_text)}</text>')
        return _svg(width, height, body, label)
    lo = min(vals + ([target] if target is not None else []))
    hi = max(vals + ([target] if target is not None else []))
    if y_min is not None:
        lo = min(lo, y_min) if higher_is_better else y_min
    if y_max is not None:
        hi = y_max
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - (pad if y_min is None or higher_is_better else 0), hi + (pad if y_max is None else 0)
    n = len(points)

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + ph * (1 - (v - lo) / (hi - lo))

    parts = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="{GRID}"/>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        yy = y(v)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{_f(yy)}" y2="{_f(yy)}" stroke="{GRID}" stroke-width="0.6"/>')
        parts.append(f'<text x="{left - 4}" y="{_f(yy + 3)}" font-size="8" text-anchor="end" fill="{INK}">{escape(fmt(v))}</text>')
    if target is not None and lo <= target <= hi:
        ty = y(target)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{_f(ty)}" y2="{_f(ty)}" stroke="{BAD}" stroke-dasharray="4 3" stroke-width="1"/>')
    step = max(1, n // 6)
    for i in range(0, n, step):
        d = str(points[i][0])
        parts.append(f'<text x="{_f(x(i))}" y="{height - 8}" font-size="8" text-anchor="middle" fill="{INK}">{escape(d[5:] if len(d) == 10 else d)}</text>')
    # the line, broken where a day has no data
    seg: list[str] = []
    for i, (_, v) in enumerate(points):
        if v is None:
            if len(seg) > 1:
                parts.append(f'<polyline fill="none" stroke="{LINE}" stroke-width="1.4" points="{" ".join(seg)}"/>')
            seg = []
            continue
        seg.append(f"{_f(x(i))},{_f(y(v))}")
    if len(seg) > 1:
        parts.append(f'<polyline fill="none" stroke="{LINE}" stroke-width="1.4" points="{" ".join(seg)}"/>')
    for i, (_, v) in enumerate(points):
        if v is None:
            continue
        bad = target is not None and ((v < target) if higher_is_better else (v > target))
        parts.append(f'<circle cx="{_f(x(i))}" cy="{_f(y(v))}" r="{2.2 if bad else 1.6}" fill="{BAD if bad else LINE}"/>')
    return _svg(width, height, "".join(parts), label)


def sparkline(values: Sequence[float | None], *, label: str, target: float | None = None,
              higher_is_better: bool = True, width: int = 80, height: int = 18) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return _svg(width, height, f'<rect width="{width}" height="{height}" fill="#fafafa"/>', label, "spark")
    lo = min(vals + ([target] if target is not None else []))
    hi = max(vals + ([target] if target is not None else []))
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    n = len(values)

    def x(i: int) -> float:
        return 2 + (width - 4) * (i / max(1, n - 1))

    def y(v: float) -> float:
        return 2 + (height - 4) * (1 - (v - lo) / (hi - lo))

    parts = []
    if target is not None:
        parts.append(f'<line x1="0" x2="{width}" y1="{_f(y(target))}" y2="{_f(y(target))}" stroke="{BAD}" stroke-dasharray="2 2" stroke-width="0.6"/>')
    pts = " ".join(f"{_f(x(i))},{_f(y(v))}" for i, v in enumerate(values) if v is not None)
    parts.append(f'<polyline fill="none" stroke="{LINE}" stroke-width="1" points="{pts}"/>')
    for i, v in enumerate(values):
        if v is not None and target is not None and ((v < target) if higher_is_better else (v > target)):
            parts.append(f'<circle cx="{_f(x(i))}" cy="{_f(y(v))}" r="1.5" fill="{BAD}"/>')
    return _svg(width, height, "".join(parts), label, "spark")


def heatmap(rows: Sequence[tuple[str, float | None, Sequence[float | None]]], *, label: str,
            days: Sequence[str], cell: int = 12, label_width: int = 0, max_height: int = 700) -> str:
    """One row per unit, one cell per day: green at or above the unit's target,
    amber below it, red under 95 %, grey without data.  Rows shrink so that the
    whole province fits on one page."""
    ncols = max((len(v) for _, _, v in rows), default=0)
    rh = max(2, min(8, max_height // max(1, len(rows))))
    w = label_width + ncols * cell + 2
    h = len(rows) * rh + 14
    parts = []
    for r, (name, target, vals) in enumerate(rows):
        yy = r * rh
        colors = [NODATA if v is None else GOOD if (target is None or v >= target) else WARN if v >= 95 else BAD for v in vals]
        c = 0
        while c < len(colors):  # one rect per run of equal colour: far fewer SVG nodes
            end = c
            while end + 1 < len(colors) and colors[end + 1] == colors[c]:
                end += 1
            parts.append(f'<rect x="{label_width + c * cell}" y="{yy}" width="{(end - c + 1) * cell - 0.5}" '
                         f'height="{rh - 0.5 if rh >= 5 else rh}" fill="{colors[c]}"><title>{escape(name)}</title></rect>')
            c = end + 1
    step = max(1, ncols // 6)
    for c in range(0, ncols, step):
        d = str(days[c]) if c < len(days) else str(c + 1)
        parts.append(f'<text x="{label_width + c * cell}" y="{h - 3}" font-size="8" fill="{INK}">{escape(d[5:] if len(d) == 10 else d)}</text>')
    return _svg(w, h, "".join(parts), label, "heatmap")


def stacked_bar(counts: dict[str, int], *, label: str, width: int = 160, height: int = 12) -> str:
    """pass / fail / error / skipped as one horizontal bar."""
    total = sum(counts.values()) or 1
    colors = {"pass": GOOD, "fail": BAD, "error": WARN, "not_assessed": NODATA, "skipped": NODATA}
    x = 0.0
    parts = []
    for k in ("pass", "fail", "error", "not_assessed", "skipped"):
        w = width * counts.get(k, 0) / total
        if w > 0:
            parts.append(f'<rect x="{_f(x)}" y="0" width="{_f(w)}" height="{height}" fill="{colors[k]}"/>')
        x += w
    return _svg(width, height, "".join(parts), label, "bar")
