"""The report at province scale (issue 18): what the faster writers must keep.

report.json reads back exactly as json.dumps(indent=2) of the same data; the evidence HTML
is the same markup as before; the PDF's cover says what the PDF holds and what only the
HTML and JSON hold, in both languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from markupsafe import Markup, escape

from checks.catalog import catalog
from infra.report import Inputs, assemble
from infra.report import vi as _vi
from infra.report.i18n import t
from infra.report.render import EVIDENCE_LINE, _ev_value, _hard_wrap, evidence_html, render_html, render_json
from infra.report.sample import sample_results
from infra.validate import load_province

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "stacks" / "province-lab.yaml"


@pytest.fixture(scope="module")
def data():
    m = load_province(LAB)
    return assemble(Inputs(province=m, province_path=LAB, results=sample_results(m, catalog(), seed=3, plant_secrets=True)),
                    version="test")


def test_report_json_reads_back_as_indented_json(data):
    text = render_json(data)
    assert json.loads(text) == json.loads(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    lines = text.splitlines()
    n = len(data["results"])
    assert n > 100
    # every result on a line of its own, mappings indented as before
    assert sum(1 for x in lines if x.startswith('    {"control": ')) >= n
    assert lines[0] == "{" and lines[1].startswith('  "schema": ') and text.endswith("}\n")
    assert json.loads(render_json({1: [], "a": {}, "b": [1, 2], "c": list(range(20)), "d": {"e": None}})) == \
        {"1": [], "a": {}, "b": [1, 2], "c": list(range(20)), "d": {"e": None}}


def _evidence_html_before(ev, lang: str, limit: int = 2500) -> Markup:
    """evidence_html as it was written before issue 18 (Markup.format per line)."""
    if ev in (None, {}, [], ""):
        return Markup("")
    if not isinstance(ev, dict):
        ev = {"value": ev}
    out, used = [], 0
    for k, v in ev.items():
        key = str(k)
        if lang == "vi":
            label = _vi.evidence_label(key)
            if label is None:
                head = Markup('<code translate="no">{}</code>').format(key) if _vi.is_identifier_key(key) else \
                    Markup('<span class="untranslated" lang="en" translate="no">{}</span>').format(key)
            else:
                head = escape(label)
        else:
            head = escape(key)
        value = _hard_wrap(_ev_value(v), EVIDENCE_LINE)
        room = limit - used
        if room <= 0:
            out.append(Markup("…"))
            break
        if len(value) > room:
            value = value[:room] + " …"
        used += len(value) + len(key) + 2
        out.append(Markup('{}: <span class="ev" translate="no">{}</span>').format(head, value))
    return Markup("\n").join(out)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_evidence_html_unchanged(data, lang):
    evs = [r["evidence"] for r in data["results"]] + [
        {"<b>&": "<script>", "PermitRootLogin": "no", "x" * 200: ["a"] * 20, "n": 3.5}, "plain <text>", None,
        {"long": "y " * 3000}]
    for ev in evs:
        for limit in (2500, 600, 40):
            assert evidence_html(ev, lang, limit) == _evidence_html_before(ev, lang, limit)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_pdf_cover_says_what_the_pdf_holds(data, lang):
    note = str(escape(t(lang, "pdf_scope_note")))
    pdf_html = render_html(data, lang, pdf=True)
    cover = pdf_html.split('<section id="cover"', 1)[1].split("</section>", 1)[0]
    assert note in cover
    assert ("HTML" in note and "JSON" in note and ("bằng chứng" in note if lang == "vi" else "evidence" in note))
    assert note not in render_html(data, lang)


def _article(html: str, cid: str) -> str:
    return html.split(f'id="c-{cid}"', 1)[1].split("</article>", 1)[0]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_pdf_counts_long_lists_of_passing_targets_and_html_names_them(data, lang, monkeypatch):
    """The PDF gives the count of a list of names holding every target checked, or every target the
    complete lists of non-passing ones leave; the HTML names each target."""
    from infra.report import render as R

    monkeypatch.setattr(R, "PDF_NAMES_MAX", 2)
    pdf_html, html = render_html(data, lang, pdf=True), render_html(data, lang)
    all_pass = [c for c in data["controls"] if len(c["results"]) > 2 and all(r["status"] == "pass" for r in c["results"])]
    mixed = [c for c in data["controls"]
             if sum(r["status"] == "pass" for r in c["results"]) > 2 and any(r["status"] != "pass" for r in c["results"])]
    assert all_pass and mixed, "the sample results need both kinds of control"
    for c, key in ((all_pass[0], "all_targets_of_control"), (mixed[0], "every_other_target")):
        passed = [r["target"] for r in c["results"] if r["status"] == "pass"]
        n = len(passed)
        in_pdf, in_html = _article(pdf_html, c["id"]), _article(html, c["id"])
        assert str(escape(t(lang, key, n=n))) in in_pdf, (c["id"], key)
        assert ", ".join(passed) not in in_pdf and ", ".join(passed) in in_html
        for r in c["results"]:  # every non-passing target is still named in the PDF
            if r["status"] != "pass":
                assert r["target"] in in_pdf, (c["id"], r["target"], r["status"])
