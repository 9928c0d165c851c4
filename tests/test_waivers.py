"""Waivers (infra/waivers.py): validated like a province file, applied to results, shown
in the results JSON, JUnit and the report; an expired one no longer applies."""

from __future__ import annotations

import datetime as _dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from checks.catalog import catalog
from checks.result import Result, any_failed, document, summarize
from infra.cli import app
from infra.report import Inputs, assemble
from infra.report.render import render_html, render_junit
from infra.validate import load_province
from infra.waivers import WaiverError, apply, load

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "stacks" / "province-lab.yaml"
LAB_WAIVERS = REPO / "stacks" / "waivers-lab.yaml"

GOOD = """\
province: LAB
waivers:
  - control: DCOPS-SSH-006
    targets: [x-hoa-binh, x-tan-lap]
    justification: Thiết bị đầu cuối của xã chưa hỗ trợ cấu hình mới; thay thế trong quý 2.
    approver: Giám đốc Sở Khoa học và Công nghệ
    approved_on: 2026-01-10
    expires: {expires}
"""


@pytest.fixture(scope="module")
def lab():
    return load_province(LAB)


def write(tmp_path: Path, text: str, name: str = "waivers.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def results_doc(generated: str = "2026-03-31T02:00:00+00:00") -> dict:
    rs = [
        Result.fail("DCOPS-SSH-006", "x-hoa-binh", {"channeltimeout": None}, "idle sessions are never ended"),
        Result.err("DCOPS-SSH-006", "x-tan-lap", "host unreachable over SSH as dcops from management: timeout"),
        Result.ok("DCOPS-SSH-006", "so-tc", {"clientaliveinterval": 300}),
        Result.fail("DCOPS-SSH-006", "so-xd", {"channeltimeout": None}, "idle sessions are never ended"),
    ]
    doc = document(rs, {"province_code": "LAB"})
    doc["generated"] = generated
    return doc


# --------------------------------------------------------------------------- validation


def test_the_committed_lab_waivers_validate(lab):
    w = load(LAB_WAIVERS, catalog(), lab)
    assert w.model.waivers and all(x.control in catalog().ids() for x in w.model.waivers)
    assert len(w.sha256) == 64


def test_applied_waiver_makes_the_failure_waived_with_its_justification(lab, tmp_path):
    w = load(write(tmp_path, GOOD.format(expires="2026-06-30")), catalog(), lab)
    doc = results_doc()
    out, summary = apply(doc["results"], w, checked_on=_dt.date(2026, 3, 31))
    by = {r["target"]: r for r in out}
    assert by["x-hoa-binh"]["status"] == "waived" and by["x-hoa-binh"]["waiver"]["status"] == "fail"
    assert by["x-tan-lap"]["status"] == "waived" and by["x-tan-lap"]["waiver"]["status"] == "error"
    assert by["x-hoa-binh"]["waiver"]["justification"].startswith("Thiết bị đầu cuối")
    assert by["x-hoa-binh"]["waiver"]["expires"] == "2026-06-30" and by["x-hoa-binh"]["waiver"]["expired"] is False
    assert by["so-tc"]["status"] == "pass" and "waiver" not in by["so-tc"]
    assert by["so-xd"]["status"] == "fail" and "waiver" not in by["so-xd"]  # not listed: not waived
    assert summary[0]["applied"] == 2 and summary[0]["expired"] is False
    # the exit code: only so-xd still fails
    rs = [Result.from_dict(r) for r in out]
    assert any_failed(rs) and summarize(rs)["waived"] == 2
    assert not any_failed([r for r in rs if r.target != "so-xd"])
    # the results JSON keeps the waived status, the status it had and the justification
    from checks.result import write_results

    path = write_results(rs, tmp_path / "latest.json", {"province_code": "LAB"}, timestamped=False)[0]
    back = {r["target"]: r for r in json.loads(path.read_text(encoding="utf-8"))["results"]}
    assert back["x-hoa-binh"]["status"] == "waived" and back["x-hoa-binh"]["waiver"]["status"] == "fail"
    assert back["x-hoa-binh"]["waiver"]["approver"] == "Giám đốc Sở Khoa học và Công nghệ" and "waiver" not in back["so-tc"]


def test_expired_waiver_no_longer_applies_and_says_so(lab, tmp_path):
    w = load(write(tmp_path, GOOD.format(expires="2026-03-30")), catalog(), lab)
    out, summary = apply(results_doc()["results"], w, checked_on=_dt.date(2026, 3, 31))
    by = {r["target"]: r for r in out}
    assert by["x-hoa-binh"]["status"] == "fail" and by["x-hoa-binh"]["waiver"]["expired"] is True
    assert summary[0]["expired"] is True and summary[0]["applied"] == 0 and summary[0]["expired_matches"] == 2
    # the last day still counts (Vietnam's calendar day: 2026-03-30 23:30 +07 is 16:30 UTC)
    w2 = load(write(tmp_path, GOOD.format(expires="2026-03-31"), "w2.yaml"), catalog(), lab)
    out2, _ = apply(results_doc()["results"], w2, checked_on=_dt.date(2026, 3, 31))
    assert {r["target"]: r["status"] for r in out2}["x-hoa-binh"] == "waived"


def test_expired_waiver_in_the_report_json_html_and_junit(lab, tmp_path):
    # the report applies the file against the day the checks ran (the results' 'generated', in UTC+7)
    w = load(write(tmp_path, GOOD.format(expires="2026-03-30")), catalog(), lab)
    d = assemble(Inputs(province=lab, province_path=LAB, results=results_doc("2026-03-30T17:30:00+00:00"), waivers=w), version="t")
    # 17:30 UTC on the 30th is already the 31st in Vietnam: expired
    assert d["waivers"]["waivers"][0]["expired"] is True
    assert all(r["status"] != "waived" for r in d["results"])
    vi, en = render_html(d, "vi"), render_html(d, "en")
    assert "Miễn trừ đã hết hạn" in vi and "waiver expired" in en.lower()
    d2 = assemble(Inputs(province=lab, province_path=LAB, results=results_doc("2026-03-30T16:30:00+00:00"), waivers=w), version="t")
    assert d2["waivers"]["waivers"][0]["expired"] is False  # 23:30 on the 30th in Vietnam


def test_waived_results_in_report_and_junit(lab, tmp_path):
    w = load(write(tmp_path, GOOD.format(expires="2026-06-30")), catalog(), lab)
    d = assemble(Inputs(province=lab, province_path=LAB, results=results_doc(), waivers=w), version="t")
    c = next(c for c in d["controls"] if c["id"] == "DCOPS-SSH-006")
    assert c["counts"]["waived"] == 2 and c["counts"]["fail"] == 1
    assert d["summary"]["overall"]["waived"] == 2
    html = render_html(d, "vi")
    assert "Thiết bị đầu cuối của xã chưa hỗ trợ cấu hình mới" in html and "Được miễn trừ" in html
    root = ET.fromstring(render_junit(d, "en"))
    case = next(x for x in root.iter("testcase") if x.get("name") == "x-hoa-binh")
    sk = case.find("skipped")
    assert sk is not None and sk.get("message").startswith("waived") and "Thiết bị đầu cuối" in sk.get("message")
    assert root.get("failures") == "1"  # so-xd only


@pytest.mark.parametrize("text, where, says", [
    ("waivers:\n  - control: DCOPS-NOPE-001\n    targets: [so-tc]\n    justification: " + "x" * 30 +
     "\n    approver: A\n    expires: 2026-06-30\n", 2, "not in the catalog"),
    ("waivers:\n  - control: DCOPS-SSH-006\n    targets: [so-tc]\n    justification: too short\n    approver: A\n"
     "    expires: 2026-06-30\n", 4, "justification"),
    ("waivers:\n  - control: DCOPS-SSH-006\n    targets: [so-tc]\n    justification: " + "x" * 30 + "\n    approver: A\n", 2,
     "'expires' is missing"),
    ("waivers:\n  - control: DCOPS-SSH-006\n    targets: [so-tc]\n    justification: " + "x" * 30 +
     "\n    approver: A\n    expires: 30/06/2026\n", 6, "expires"),
    ("waivers:\n  - control: DCOPS-SSH-006\n    targets: [nowhere]\n    justification: " + "x" * 30 +
     "\n    approver: A\n    expires: 2026-06-30\n", 3, "not a target"),
    ("waivers:\n  - control: DCOPS-K8S-001\n    targets: [so-tc]\n    justification: " + "x" * 30 +
     "\n    approver: A\n    expires: 2026-06-30\n", 3, "applies to cluster"),
    ("waivers:\n  - control: DCOPS-SSH-006\n    targets: [so-tc]\n    justification: " + "x" * 30 +
     "\n    approver: A\n    approved_on: 2026-07-01\n    expires: 2026-06-30\n", 2, "before approved_on"),
    ("waivers:\n  - control: DCOPS-SSH-006\n    targets: [so-tc]\n    justification: " + "x" * 30 +
     "\n    approver: A\n    expires: 2026-06-30\n    approvr: B\n", 7, "unknown key 'approvr'"),
    ("province: THANHHOA\nwaivers: []\n", 1, "province THANHHOA"),
])
def test_malformed_waivers_are_refused_with_line_field_and_fix(lab, tmp_path, text, where, says):
    with pytest.raises(WaiverError) as e:
        load(write(tmp_path, text), catalog(), lab)
    lines = [p.render(e.value.file) for p in e.value.problems]
    hit = [x for x in lines if says in x]
    assert hit, lines
    assert f"waivers.yaml:{where}:" in hit[0] and " -- fix: " in hit[0]


def test_every_problem_at_once(lab, tmp_path):
    text = ("waivers:\n  - control: DCOPS-NOPE-001\n    targets: [so-tc]\n    justification: " + "x" * 30 +
            "\n    approver: A\n    expires: 2026-06-30\n"
            "  - control: DCOPS-SSH-006\n    targets: [nowhere]\n    justification: " + "x" * 30 +
            "\n    approver: A\n    expires: 2026-06-30\n")
    with pytest.raises(WaiverError) as e:
        load(write(tmp_path, text), catalog(), lab)
    assert len(e.value.problems) == 2


# --------------------------------------------------------------------------- CLI


def run(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_report_cli_waivers_and_bad_file_exit_2(tmp_path):
    res = tmp_path / "results.json"
    res.write_text(json.dumps(results_doc()), encoding="utf-8")
    good = write(tmp_path, GOOD.format(expires="2026-06-30"), "good.yaml")
    r = run("report", "--province", str(LAB), "--results", str(res), "--waivers", str(good), "--out", str(tmp_path / "o"),
            "-f", "json", "--previous", "none")
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["summary"]["overall"]["waived"] == 2 and rep["provenance"]["waivers"]["sha256"]
    bad = write(tmp_path, "waivers:\n  - control: DCOPS-NOPE-001\n    targets: [so-tc]\n    justification: " + "x" * 30 +
                "\n    approver: A\n    expires: 2026-06-30\n", "bad.yaml")
    r = run("report", "--province", str(LAB), "--results", str(res), "--waivers", str(bad), "--out", str(tmp_path / "o2"))
    assert r.exit_code == 2 and "bad.yaml:2: waivers[0].control" in r.output and "unknown control is refused" in r.output
    assert not (tmp_path / "o2").exists()
