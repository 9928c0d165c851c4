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
from markupsafe import Markup, escape

from . import charts
from . import vi as _vi
from .i18n import LANGS, fmt_date, fmt_num, fmt_pct, t, vn_parts
from .redact import SecretLeak, find_secrets

TEMPLATES = Path(__file__).with_name("templates")
EVIDENCE_MAX_CHARS = 2500
# The PDF names targets up to this many in a list. A longer list of every target checked, or of the
# passing targets, is given as a count: "all N targets checked", or "every other target" (the
# lists of non-passing targets before it are complete, so that is exact). 700 sites made 44 lists
# of 701 names: 51 of the PDF's 165 pages.
PDF_NAMES_MAX = 40


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


def _ev_value(v: Any) -> str:
    if isinstance(v, str):
        s = v
    elif isinstance(v, list) and len(v) > 8:
        head = json.dumps(v[:2], ensure_ascii=False, sort_keys=True, default=str)[:-1]
        s = f"{head}, … ] ({len(v)})"
    else:
        s = json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
    if "\n" in s:
        s = "\n  " + s.replace("\n", "\n  ")
    return s


@lru_cache(maxsize=8192)
def _ev_head(key: str, lang: str) -> str:
    """The HTML of an evidence key's label (computed once per key and language)."""
    if lang == "vi":
        label = _vi.evidence_label(key)
        if label is None:
            return str(Markup('<code translate="no">{}</code>').format(key) if _vi.is_identifier_key(key) else
                       Markup('<span class="untranslated" lang="en" translate="no">{}</span>').format(key))
        return str(escape(label))
    return str(escape(key))


def evidence_html(ev: Any, lang: str, limit: int = EVIDENCE_MAX_CHARS) -> Markup:
    """Evidence as lines ``label: value``.  In Vietnamese the label is the key's Vietnamese
    name (configuration keywords stay as they are); values are what the checks saw, shown
    verbatim (``translate="no"``).  Long values are cut and hard-wrapped like evidence_text.

    Built as plain strings (every value through markupsafe's escape): Markup.format costs
    more than the rest of the report at 30,000 results."""
    if ev in (None, {}, [], ""):
        return Markup("")
    if not isinstance(ev, dict):
        ev = {"value": ev}
    out, used = [], 0
    for k, v in ev.items():
        key = str(k)
        head = _ev_head(key, lang)
        value = _hard_wrap(_ev_value(v), EVIDENCE_LINE)
        room = limit - used
        if room <= 0:
            out.append("…")
            break
        if len(value) > room:
            value = value[:room] + " …"
        used += len(value) + len(key) + 2
        out.append(f'{head}: <span class="ev" translate="no">{escape(value)}</span>')
    return Markup("\n".join(out))


def reason_html(text: str, lang: str) -> Markup:
    """A reason: English as written, or its Vietnamese translation with the values verbatim.
    A reason with no translation is shown as the tool's own words, marked as such."""
    if not text:
        return Markup("")
    if lang != "vi":
        return escape(text)
    segs = _vi.translate_reason(text)
    if segs is None:
        return Markup('{} <span class="untranslated" lang="en" translate="no">{}</span>').format(
            t("vi", "untranslated_reason"), text)
    return Markup("").join(Markup('<span class="v" translate="no">{}</span>').format(x.text) if x.verbatim else escape(x.text)
                           for x in segs)


def reason_plain(text: str, lang: str) -> str:
    """A reason as plain text (JUnit messages)."""
    if lang != "vi" or not text:
        return text
    segs = _vi.translate_reason(text)
    return text if segs is None else "".join(x.text for x in segs)


_CODE = re.compile(r"`([^`]+)`")
_GLOSS = re.compile(r"⟦([^⟧]+)⟧")


def rich(text: str) -> Markup:
    """A label or note with its small markup: `code` (a command, a field: shown as is) and
    ⟦term⟧ (an English term given as a gloss); everything else escaped."""
    html = str(escape(text))
    html = _CODE.sub(lambda m: f'<code translate="no">{m.group(1)}</code>', html)
    html = _GLOSS.sub(lambda m: f'<i lang="en" translate="no">{m.group(1)}</i>', html)
    return Markup(html)


def plain(text: str) -> str:
    return _GLOSS.sub(lambda m: m.group(1), _CODE.sub(lambda m: m.group(1), text))


def css_string(text: str) -> str:
    """A CSS string literal holding ``text`` (for @page margin boxes)."""
    out = []
    for ch in text:
        if ch in '"\\<>' or ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _hard_wrap(text: str, width: int) -> str:
    """Break long lines ourselves: a browser wraps anywhere cheaply, but WeasyPrint's
    line breaking of one very long unbreakable line in a table cell is quadratic."""
    if len(text) <= width:
        return text
    out = []
    for line in text.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", width // 2, width)
            cut = cut + 1 if cut > 0 else width
            out.append(line[:cut])
            line = "  " + line[cut:]
        out.append(line)
    return "\n".join(out)


_EN_GLOSS = re.compile(r"\s*\(([^()]*)\)")
_VI_CHARS = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]", re.I)


def _vi_only(text: str) -> str:
    """A catalog group such as 'Bảo đảm an toàn máy chủ – Xác thực (server security –
    authentication)' without its English gloss in parentheses."""
    def drop(m: re.Match) -> str:
        inner = m.group(1)
        return "" if (not _VI_CHARS.search(inner) and len(inner.split()) >= 2) else m.group(0)
    return _EN_GLOSS.sub(drop, text).strip()


def legal_text(lang: str, text: str | None) -> str | None:
    """A decree or circular reference: in Vietnamese the act and article as the catalog cites
    them (the part before any English gloss), and whether the article is unconfirmed."""
    if not text:
        return None
    if lang != "vi":
        return text
    head = re.split(r" \(|; ", text, maxsplit=1)[0].strip()
    if "unconfirmed" in text:
        head += " (chưa xác nhận số điều)"
    return head


def _tcvn_text(lang: str, ref: dict | None) -> str:
    """A TCVN reference: 'mục 7.2.1' (a clause of a TCVN is a mục), or 'chưa xác nhận số mục'."""
    if not ref:
        return t(lang, "none")
    if ref.get("clause"):
        head = ("mục " if lang == "vi" else "clause ") + str(ref["clause"])
        if ref.get("section"):
            head += (f" (mục con {ref['section']} theo cấu trúc của tiêu chuẩn, chưa xác nhận)" if lang == "vi"
                     else f", section {ref['section']} (by the standard's pattern, unconfirmed)")
    else:
        head = "chưa xác nhận số mục" if lang == "vi" else "clause number unconfirmed"
    group = ref.get("group") or ""
    if lang == "vi":
        group = _vi_only(group)
    text = head + (f": {group}" if group else "")
    if lang != "vi" and ref.get("note"):
        text += f" ({ref['note']})"
    return text


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
        what = t(lang, "availability" if key == "availability_pct" else "latency_ms")
        return Markup(charts.sparkline(vals, label=f"{entry['id']} {what}", target=target, higher_is_better=hib))

    def heatmap() -> Markup:
        rows = [(s["id"], s.get("target_pct"), [v for _, v in series(s, "availability_pct")]) for s in sla["sites"]]
        return Markup(charts.heatmap(rows, label=t(lang, "sla_heatmap"), days=days))

    def bar(counts: dict) -> Markup:
        keys = ("pass", "fail", "error", "waived", "insufficient_data", "not_assessed", "skipped")
        return Markup(charts.stacked_bar({k: counts.get(k, 0) for k in keys},
                                         label=", ".join(f"{t(lang, 'status_' + k)} {counts.get(k, 0)}" for k in keys)))

    def title(c: dict) -> str:
        return rich(_vi.fix_title(c["title_vi"])) if lang == "vi" else c["title_en"]

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

    def rationale(c: dict) -> str | None:
        if lang == "vi":
            return c.get("rationale_vi") or None
        return c.get("rationale") or None

    def kind(k: str) -> str:
        return _vi.PLATFORM_KINDS_VI.get(k, k) if lang == "vi" else k

    def zone(z: str) -> str:
        return (_vi.ZONES_VI if lang == "vi" else _vi.ZONES_EN).get(z, z)

    env = data["provenance"]["environment"]
    env_text = t(lang, f"env_{env['kind']}", name=env.get("name") or "–")
    prov = data["provenance"]
    hashes = " · ".join(f"{t(lang, 'sha_' + k)} {prov[k]['sha256']}" for k in ("results", "province", "waivers")
                        if prov.get(k) and prov[k].get("sha256"))
    page_css = (
        "@page { @top-left { content: " + css_string(t(lang, "environment") + ": " + env_text) + "; font-size: 7.5pt; "
        + ("color: #c62828; font-weight: bold; " if env["kind"] != "production" else "color: #2e7d32; ")
        + "} @bottom-left { content: " + css_string("SHA-256 · " + (hashes or t(lang, "no_results_file"))) + "; font-size: 5.5pt; "
        "color: #607d8b; font-family: 'DejaVu Sans Mono', monospace; width: 160mm; } "
        "@bottom-right { content: " + css_string(t(lang, "page") + " ") + " counter(page) \" / \" counter(pages); } }"
    )

    def grouped_skips(results: list[dict], status: str = "skipped") -> list[tuple[str, list[str]]]:
        g: dict[str, list[str]] = defaultdict(list)
        for r in results:
            if r["status"] == status:
                g[r["reason"]].append(r["target"])
        return sorted(g.items(), key=lambda kv: -len(kv[1]))

    def pdf_count(names: list, results: list, passing: bool = False) -> Markup | None:
        """What the PDF prints instead of a list of ``names`` (of a control's ``results``): "all N
        targets checked", or for the passing ones "every other target"; None where it names them
        (the HTML always does, and so does the PDF up to PDF_NAMES_MAX names)."""
        if not pdf or len(names) <= PDF_NAMES_MAX:
            return None
        if len(names) == len(results):
            return rich(t(lang, "all_targets_of_control", n=fmt_num(lang, len(names))))
        return rich(t(lang, "every_other_target", n=fmt_num(lang, len(names)))) if passing else None

    audit = data["cover"]["province"]["audit_standard"]
    return {
        "d": data, "lang": lang, "pdf": pdf, "sla": sla, "pdf_count": pdf_count,
        "t": lambda key, **kw: rich(t(lang, key, **kw)), "rich": rich,
        "pct": lambda v, digits=2: fmt_pct(lang, v, digits),
        "num": lambda v, digits=2: fmt_num(lang, v, digits),
        "date": lambda v, with_time=False: fmt_date(lang, v, with_time),
        "vn_parts": vn_parts,
        "evidence": lambda ev, limit=EVIDENCE_MAX_CHARS: evidence_html(ev, lang, limit),
        "reason": lambda text: reason_html(text, lang), "rationale": rationale, "zone": zone, "kind": kind,
        "env": env, "env_text": env_text, "page_css": Markup(page_css), "hashes": hashes,
        "tcvn": lambda ref: _tcvn_text(lang, ref), "legal": lambda x: legal_text(lang, x),
        "avail_chart": avail_chart, "latency_chart": latency_chart, "spark": spark, "heatmap": heatmap,
        "has_latency_series": has_latency_series, "bar": bar,
        "title": title, "pname": pname, "budget": budget, "delta": delta, "grouped_skips": grouped_skips,
        "show_14423": audit.startswith("TCVN 14423"),
        "std_name": lambda std: t(lang, "std_14423" if std.startswith("TCVN 14423") else "std_11930"),
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


_COMPACT = json.JSONEncoder(ensure_ascii=False, default=str)  # no indent: the C encoder
LONG_LIST = 8
"""A list longer than this is written one element per line, each element on one line
(results, sites, days): json.dumps with indent= runs Python's pure encoder over every
value, ten times slower than the C one on the 30,000 results of a province."""


def _json_lines(value: Any, pad: str, out: list[str]) -> None:
    """Append the JSON of ``value`` to ``out``: mappings and short lists indented by two
    spaces a level, as indent=2 writes them; long lists one compact element per line."""
    if isinstance(value, dict) and value:
        inner = pad + "  "
        out.append("{")
        first = True
        for k, v in value.items():
            out.append(("\n" if first else ",\n") + inner + (_COMPACT.encode(k) if isinstance(k, str) else _COMPACT.encode({k: 0})[1:-4]) + ": ")
            first = False
            _json_lines(v, inner, out)
        out.append("\n" + pad + "}")
    elif isinstance(value, (list, tuple)) and value:
        inner = pad + "  "
        out.append("[")
        if len(value) > LONG_LIST:
            out.append("\n" + inner + (",\n" + inner).join(_COMPACT.encode(v) for v in value))
        else:
            first = True
            for v in value:
                out.append(("\n" if first else ",\n") + inner)
                first = False
                _json_lines(v, inner, out)
        out.append("\n" + pad + "]")
    else:
        out.append(_COMPACT.encode(value))


def render_json(data: dict) -> str:
    out: list[str] = []
    _json_lines(data, "", out)
    text = "".join(out) + "\n"
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
            "name": _x(f"{c['id']} {plain(_vi.fix_title(c['title_vi'])) if lang == 'vi' else c['title_en']}"),
            "tests": str(counts["total"]), "failures": str(counts["fail"]), "errors": str(counts["error"]),
            "skipped": str(sum(counts.get(k, 0) for k in ("skipped", "not_assessed", "waived", "insufficient_data"))),
            "time": f"{sum(float(r.get('duration_s') or 0) for r in c['results']):.3f}",
        })
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="severity", value=c["severity"])
        refs = c["references"]
        ET.SubElement(props, "property", name="TCVN 11930:2017", value=_tcvn_text(lang, refs.get("tcvn_11930_2017")))
        ET.SubElement(props, "property", name="TCVN 14423:2025", value=_tcvn_text(lang, refs.get("tcvn_14423_2025")))
        for r in c["results"]:
            case = ET.SubElement(suite, "testcase", {
                "classname": _x(c["id"]), "name": _x(r["target"]), "time": f"{float(r.get('duration_s') or 0):.3f}",
            })
            body = _x(evidence_text(r["evidence"], limit=20000))
            msg = _x(reason_plain(r["reason"], lang) or t(lang, f"status_{r['status']}"))
            w = r.get("waiver") or {}
            if w.get("expired"):
                msg = _x(f"{msg} ({t(lang, 'waiver_expired_on', date=w.get('expires'))})")
            if r["status"] == "fail":
                ET.SubElement(case, "failure", message=msg, type=c["severity"]).text = body
            elif r["status"] == "error":
                ET.SubElement(case, "error", message=msg, type="error").text = body
            elif r["status"] == "skipped":
                ET.SubElement(case, "skipped", message=msg)
            elif r["status"] == "not_assessed":  # JUnit has no such state: skipped, said so
                ET.SubElement(case, "skipped", message=_x(f"{t(lang, 'status_not_assessed')}: {reason_plain(r['reason'], lang)}")).text = body
            elif r["status"] == "insufficient_data":
                ET.SubElement(case, "skipped", message=_x(f"{t(lang, 'status_insufficient_data')}: {reason_plain(r['reason'], lang)}")).text = body
            elif r["status"] == "waived":  # an approved exception: skipped, with who approved it, why and until when
                ET.SubElement(case, "skipped", message=_x(
                    f"{t(lang, 'junit_waived')} ({t(lang, 'status_' + str(w.get('status')))}): {w.get('justification')} "
                    f"– {w.get('approver')}, {t(lang, 'waiver_until', date=w.get('expires'))}")).text = body
            elif body:
                ET.SubElement(case, "system-out").text = body
        for k in ("total", "fail", "error"):
            totals[k] += counts[k]
        totals["skipped"] += sum(counts.get(k, 0) for k in ("skipped", "not_assessed", "waived", "insufficient_data"))
    root.set("tests", str(totals["total"]))
    root.set("failures", str(totals["fail"]))
    root.set("errors", str(totals["error"]))
    root.set("skipped", str(totals["skipped"]))
    ET.indent(root)
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    check_no_secrets(text, "JUnit report")
    return text
