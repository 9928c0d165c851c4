"""Present the assembled report: HTML (self-contained), PDF (WeasyPrint), JSON
and JUnit XML.  Nothing here computes a figure; :mod:`infra.report.data` does.

Every writer checks its output with :func:`infra.report.redact.find_secrets`
and refuses to write one that still holds something that looks like a secret.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from . import charts
from .i18n import LANGS, fmt_date, fmt_num, fmt_pct, t
from .redact import SecretLeak, find_secrets

TEMPLATES = Path(__file__).with_name("templates")
EVIDENCE_MAX_CHARS = 2500


def check_no_secrets(text: str, what: str) -> None:
    found = find_secrets(text)
    if found:
        raise SecretLeak(f"{what}: refusing to write, it still holds what looks like a secret: {found[:3]}")


def evidence_text(ev: Any, limit: int = EVIDENCE_MAX_CHARS) -> str:
    """Evidence as short readable lines (``key: value``); long values are cut."""
    if ev in (None, {}, [], ""):
        return ""
    if isinstance(ev, dict):
        lines = []
        for k, v in ev.items():
            if isinstance(v, str):
                s = v
            elif isinstance(v, list) and len(v) > 8:
                head = json.dumps(v[:2], ensure_ascii=False, sort_keys=True, default=str)[:-1]
                s = f"{head}, … ] ({len(v)})"
            else:
                s = json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
            if "\n" in s:
                s = "\n  " + s.replace("\n", "\n  ")
            lines.append(f"{k}: {s}")
        text = "\n".join(lines)
    else:
        text = json.dumps(ev, ensure_ascii=False, default=str)
    text = text if len(text) <= limit else text[:limit] + " …"
    return _hard_wrap(text, EVIDENCE_LINE)


EVIDENCE_LINE = 96


def _hard_wrap(text: str, width: int) -> str:
    """Break long lines ourselves: a browser wraps anywhere cheaply, but WeasyPrint's
    line breaking of one very long unbreakable line in a table cell is quadratic."""
    out = []
    for line in text.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", width // 2, width)
            cut = cut + 1 if cut > 0 else width
            out.append(line[:cut])
            line = "  " + line[cut:]
        out.append(line)
    return "\n".join(out)


def _tcvn_text(lang: str, ref: dict | None) -> str:
    if not ref:
        return t(lang, "none")
    if ref.get("clause"):
        head = ("điều " if lang == "vi" else "clause ") + str(ref["clause"])
    else:
        head = "chưa xác nhận số điều" if lang == "vi" else "clause number unconfirmed"
    return head + (f": {ref['group']}" if ref.get("group") else "")


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _context(data: dict, lang: str, pdf: bool) -> dict:
    if lang not in LANGS:
        raise ValueError(f"language must be one of {LANGS}")
    sla = data["sla_report"]
    days = sla["days"]

    def series(entry: dict, key: str) -> list[tuple[str, float | None]]:
        by = {p["date"]: p.get(key) for p in entry.get("daily") or []}
        return [(d, by.get(d)) for d in days]

    def avail_chart(entry: dict) -> Markup:
        pts = series(entry, "availability_pct")
        return Markup(charts.line_chart(
            pts, label=f"{t(lang, 'daily_availability')}: {entry['id']}", target=entry.get("target_pct"),
            y_max=100.0, fmt=lambda v: fmt_num(lang, v, 2), empty_text=t(lang, "no_daily_series")))

    def latency_chart(entry: dict) -> Markup:
        pts = series(entry, "latency_ms")
        if not any(v is not None for _, v in pts):
            pts = series(entry, "latency_ok_pct")
            return Markup(charts.line_chart(
                pts, label=f"{t(lang, 'daily_latency')}: {entry['id']}", target=entry.get("latency_target_pct"),
                y_max=100.0, fmt=lambda v: fmt_num(lang, v, 1), empty_text=t(lang, "no_daily_series")))
        return Markup(charts.line_chart(
            pts, label=f"{t(lang, 'daily_latency')}: {entry['id']}", target=entry.get("latency_threshold_ms"),
            higher_is_better=False, y_min=0, fmt=lambda v: fmt_num(lang, v, 0)))

    def has_latency_series(entry: dict) -> bool:
        return any(("latency_ms" in p or "latency_ok_pct" in p) for p in entry.get("daily") or [])

    def spark(entry: dict, key: str) -> Markup:
        vals = [v for _, v in series(entry, key)]
        hib = key != "latency_ms"
        target = entry.get("target_pct") if key == "availability_pct" else None
        return Markup(charts.sparkline(vals, label=f"{entry['id']} {key}", target=target, higher_is_better=hib))

    def heatmap() -> Markup:
        rows = [(s["id"], s.get("target_pct"), [v for _, v in series(s, "availability_pct")]) for s in sla["sites"]]
        return Markup(charts.heatmap(rows, label=t(lang, "sla_heatmap"), days=days))

    def bar(counts: dict) -> Markup:
        return Markup(charts.stacked_bar({k: counts.get(k, 0) for k in ("pass", "fail", "error", "not_assessed", "skipped")},
                                         label=", ".join(f"{k} {counts.get(k, 0)}" for k in ("pass", "fail", "error", "not_assessed", "skipped"))))

    def title(c: dict) -> str:
        return c["title_vi"] if lang == "vi" else c["title_en"]

    def pname(x: dict) -> str:
        return x["name"] if lang == "vi" or not x.get("name_en") else x["name_en"]

    def budget(v: float | None) -> str:
        if v is None:
            return "–"
        if v <= 0:
            return f"{fmt_pct(lang, v, 1)} ({t(lang, 'budget_exhausted')})"
        return fmt_pct(lang, v, 1)

    def delta(v: float | None, digits: int = 2) -> str:
        if v is None:
            return "–"
        s = fmt_num(lang, abs(v), digits)
        return ("+" if v > 0 else "−" if v < 0 else "±") + s

    def grouped_skips(results: list[dict], status: str = "skipped") -> list[tuple[str, list[str]]]:
        g: dict[str, list[str]] = defaultdict(list)
        for r in results:
            if r["status"] == status:
                g[r["reason"]].append(r["target"])
        return sorted(g.items(), key=lambda kv: -len(kv[1]))

    audit = data["cover"]["province"]["audit_standard"]
    return {
        "d": data, "lang": lang, "pdf": pdf, "sla": sla,
        "t": lambda key, **kw: t(lang, key, **kw),
        "pct": lambda v, digits=2: fmt_pct(lang, v, digits),
        "num": lambda v, digits=2: fmt_num(lang, v, digits),
        "date": lambda v, with_time=False: fmt_date(lang, v, with_time),
        "evidence": evidence_text, "tcvn": lambda ref: _tcvn_text(lang, ref),
        "avail_chart": avail_chart, "latency_chart": latency_chart, "spark": spark, "heatmap": heatmap,
        "has_latency_series": has_latency_series, "bar": bar,
        "title": title, "pname": pname, "budget": budget, "delta": delta, "grouped_skips": grouped_skips,
        "show_14423": audit == "TCVN 14423:2026",
        "css": Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
    }


def render_html(data: dict, lang: str = "vi", *, pdf: bool = False) -> str:
    html = _env().get_template("report.html.j2").render(**_context(data, lang, pdf))
    check_no_secrets(html, "HTML report")
    return html


def render_pdf(data: dict, lang: str = "vi") -> bytes:
    from weasyprint import HTML  # imported late: it loads Pango and fonts

    html = render_html(data, lang, pdf=True)
    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


def render_json(data: dict) -> str:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    check_no_secrets(text, "JSON report")
    return text


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(s: str) -> str:
    """Text XML 1.0 can hold (control characters dropped)."""
    return _XML_BAD.sub("", s)


def render_junit(data: dict, lang: str = "vi") -> str:
    """JUnit XML: one testsuite per control, one testcase per control x target.

    fail -> ``<failure>``, error -> ``<error>``, skipped -> ``<skipped>``; the
    message is the reason, the body the (redacted) evidence and references."""
    root = ET.Element("testsuites", name=f"dcops {data['cover']['province']['code']}")
    totals = defaultdict(int)
    for c in data["controls"]:
        counts = c["counts"]
        suite = ET.SubElement(root, "testsuite", {
            "name": _x(f"{c['id']} {c['title_vi'] if lang == 'vi' else c['title_en']}"),
            "tests": str(counts["total"]), "failures": str(counts["fail"]), "errors": str(counts["error"]),
            "skipped": str(counts["skipped"] + counts.get("not_assessed", 0)),
            "time": f"{sum(float(r.get('duration_s') or 0) for r in c['results']):.3f}",
        })
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="severity", value=c["severity"])
        refs = c["references"]
        ET.SubElement(props, "property", name="TCVN 11930:2017", value=_tcvn_text(lang, refs.get("tcvn_11930_2017")))
        ET.SubElement(props, "property", name="TCVN 14423:2026", value=_tcvn_text(lang, refs.get("tcvn_14423_2026")))
        for r in c["results"]:
            case = ET.SubElement(suite, "testcase", {
                "classname": _x(c["id"]), "name": _x(r["target"]), "time": f"{float(r.get('duration_s') or 0):.3f}",
            })
            body = _x(evidence_text(r["evidence"], limit=20000))
            msg = _x(r["reason"] or t(lang, f"status_{r['status']}"))
            if r["status"] == "fail":
                ET.SubElement(case, "failure", message=msg, type=c["severity"]).text = body
            elif r["status"] == "error":
                ET.SubElement(case, "error", message=msg, type="error").text = body
            elif r["status"] == "skipped":
                ET.SubElement(case, "skipped", message=msg)
            elif r["status"] == "not_assessed":  # JUnit has no such state: skipped, said so
                ET.SubElement(case, "skipped", message=_x(f"{t(lang, 'status_not_assessed')}: {r['reason']}")).text = body
            elif body:
                ET.SubElement(case, "system-out").text = body
        for k in ("total", "fail", "error", "skipped"):
            totals[k] += counts[k] + (counts.get("not_assessed", 0) if k == "skipped" else 0)
    root.set("tests", str(totals["total"]))
    root.set("failures", str(totals["fail"]))
    root.set("errors", str(totals["error"]))
    root.set("skipped", str(totals["skipped"]))
    ET.indent(root)
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    check_no_secrets(text, "JUnit report")
    return text
