"""dcops report: data assembly, SLA figures, redaction, i18n, JSON, JUnit, CLI.

Fast tests (no browser, no PDF); the rendering tests are in test_report_render.py.
Results documents are made here with known content, so every figure the
report shows is checked against a value worked out by hand.
"""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from checks.catalog import catalog
from checks.result import Result, document
from infra.cli import app
from infra.report import Inputs, assemble, build
from infra.report.i18n import LABELS, fmt_pct, t
from infra.report.redact import REDACTED, find_secrets, redact
from infra.report.render import TEMPLATES, evidence_text, render_html, render_json, render_junit
from infra.report.sample import PLANTED, sample_results
from infra.validate import load_province

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "stacks" / "province-lab.yaml"
SITES = ["so-tttt", "so-tc", "so-xd", "so-yt", "vp-ubnd", "ttpvhcc", "p-trung-tam", "p-bac-son", "x-tan-lap", "x-hoa-binh"]


@pytest.fixture(scope="module")
def lab():
    return load_province(LAB)


def known_doc(generated: str = "2026-03-31T02:00:00+00:00", variant: str = "now") -> dict:
    """A small results document whose figures are worked out by hand in the tests."""
    rs = [
        Result.ok("DCOPS-SSH-001", "so-tttt", {"permitrootlogin": "no"}),
        Result.fail("DCOPS-SSH-001", "so-tc", {"permitrootlogin": "yes", "expected": ["no"]}, "PermitRootLogin yes")
        if variant == "now" else Result.ok("DCOPS-SSH-001", "so-tc", {"permitrootlogin": "no"}),
        Result.err("DCOPS-SSH-001", "so-xd", "host unreachable over the tunnel"),
        Result.skip("DCOPS-SSH-001", "so-yt", "host not started in the lab"),
        Result.ok("DCOPS-SSH-004", "so-tttt", {"permitemptypasswords": "no"})
        if variant == "now" else Result.fail("DCOPS-SSH-004", "so-tttt", {"permitemptypasswords": "yes"}, "empty passwords"),
        Result.ok("DCOPS-SSH-004", "so-tc", {"permitemptypasswords": "no"}),
    ]
    for s in SITES:
        if s == "x-hoa-binh":
            rs.append(Result.fail("DCOPS-WG-002", s, {"latest_handshake_age_s": 4000}, "last handshake 4000 s ago"))
        else:
            rs.append(Result.ok("DCOPS-WG-002", s, {"latest_handshake_age_s": 30}))
    doc = document(rs, {"province_code": "LAB"})
    doc["generated"] = generated
    avail = 99.95 if variant == "now" else 99.99
    doc["sla"] = {
        "window_days": 30,
        "platforms": {
            "dvc": {"availability_pct": avail, "target_pct": 99.9,
                    "daily": [{"date": f"2026-03-{d:02d}", "availability_pct": 99.9 + d / 1000, "latency_ms": 200 + d} for d in range(1, 31)]},
            "motcua": {"availability_pct": 99.8, "target_pct": 99.9},
        },
        "sites": {"x-hoa-binh": {"availability": 0.97, "target_pct": 99.5}},
    }
    return doc


def make(lab, doc, previous=None, **kw) -> dict:
    return assemble(Inputs(province=lab, province_path=LAB, results=doc, previous=previous, **kw), version="test")


# --------------------------------------------------------------------------- figures


def test_summary_figures_match_hand_count(lab):
    d = make(lab, known_doc())
    sev = {r["severity"]: r for r in d["summary"]["by_severity"]}
    # critical: SSH-004 pass x2
    assert (sev["critical"]["pass"], sev["critical"]["pass_rate"]) == (2, 100.0)
    # high: SSH-001 (1 pass, 1 fail, 1 error, 1 skipped) + WG-002 (9 pass, 1 fail)
    h = sev["high"]
    assert (h["pass"], h["fail"], h["error"], h["skipped"], h["total"]) == (10, 2, 1, 1, 14)
    assert h["pass_rate"] == round(100 * 10 / 13, 2)
    targets = {x["id"]: x for x in d["summary"]["targets"]}
    # connected: WG-002 passes on 9 of 10; the lab province asks 100 %
    assert (targets["sites_connected"]["n"], targets["sites_connected"]["m"]) == (9, 10)
    assert targets["sites_connected"]["target_pct"] == 100 and targets["sites_connected"]["met"] is False
    # compliant: every non-skipped result passes: all but so-tc (fail), so-xd (error), x-hoa-binh (fail)
    assert targets["sites_compliant"]["n"] == 7 and targets["sites_compliant"]["actual_pct"] == 70.0
    assert targets["sites_compliant"]["target_pct"] == 95 and not targets["sites_compliant"]["met"]
    assert d["site_status"]["so-yt"]["compliant"] and not d["site_status"]["so-xd"]["compliant"]
    assert d["summary"]["failing_controls"] == ["DCOPS-SSH-001", "DCOPS-WG-002"]


def test_controls_failures_first_with_catalog_titles_and_references(lab):
    d = make(lab, known_doc())
    ids = [c["id"] for c in d["controls"]]
    assert ids == ["DCOPS-SSH-001", "DCOPS-WG-002", "DCOPS-SSH-004"]
    ssh1 = d["controls"][0]
    assert [r["status"] for r in ssh1["results"]] == ["fail", "error", "pass", "skipped"]
    cat = catalog().get("DCOPS-SSH-001")
    assert ssh1["title_vi"] == cat.title_vi and ssh1["title_en"] == cat.title_en and ssh1["in_catalog"]
    assert ssh1["references"]["tcvn_11930_2017"]["group"] == cat.references.tcvn_11930_2017.group
    assert ssh1["references"]["nist_800_53"] == list(cat.references.nist_800_53)


def test_unknown_control_is_listed_not_dropped(lab):
    doc = known_doc()
    doc["results"].append(Result.fail("LOCAL-999", "so-tc", {"x": 1}, "local rule").to_dict())
    d = make(lab, doc)
    c = next(c for c in d["controls"] if c["id"] == "LOCAL-999")
    assert not c["in_catalog"] and c["severity"] == "unknown" and c["counts"]["fail"] == 1


def test_sla_from_section_and_budget_computed(lab):
    d = make(lab, known_doc())
    plats = {p["id"]: p for p in d["sla_report"]["platforms"]}
    assert plats["dvc"]["availability_pct"] == 99.95
    assert plats["dvc"]["budget_left_pct"] == pytest.approx(50.0)  # (1 - 0.05/0.1) * 100
    assert plats["dvc"]["meets"] is True and len(plats["dvc"]["daily"]) == 30
    assert plats["motcua"]["meets"] is False and plats["motcua"]["budget_left_pct"] == pytest.approx(-100.0)
    assert plats["eoffice"]["meets"] is None  # no figures, no SLA result: unknown, never "met"
    sites = {s["id"]: s for s in d["sla_report"]["sites"]}
    assert sites["x-hoa-binh"]["availability_pct"] == pytest.approx(97.0)  # a ratio under a plain key
    assert d["summary"]["platforms_sla"] == {"meeting": 1, "with_data": 2, "insufficient": 0, "total": 6}


def test_sla_from_checks_evidence_same_as_from_section(lab):
    """The evidence of checks/sla.py's results and an `sla` section give the same figures."""
    a = make(lab, sample_results(lab, catalog(), sla_section=False))
    b = make(lab, sample_results(lab, catalog(), sla_section=True))
    for pa, pb in zip(a["sla_report"]["platforms"], b["sla_report"]["platforms"]):
        assert pa["availability_pct"] == pytest.approx(pb["availability_pct"])
        assert pa["budget_left_pct"] == pytest.approx(pb["budget_left_pct"], abs=0.01)
        assert pa["latency_ok_pct"] == pytest.approx(pb["latency_ok_pct"])
        assert pa["meets"] == pb["meets"]
    for sa, sb in zip(a["sla_report"]["sites"], b["sla_report"]["sites"]):
        assert sa["availability_pct"] == pytest.approx(sb["availability_pct"])


def test_sla_error_result_never_meets(lab):
    doc = known_doc()
    doc["results"].append(Result.err("DCOPS-SLA-001", "eoffice", "series missing").to_dict())
    plats = {p["id"]: p for p in make(lab, doc)["sla_report"]["platforms"]}
    assert plats["eoffice"]["meets"] is False


def test_changes_since_previous(lab):
    prev = known_doc("2026-03-01T02:00:00+00:00", variant="before")
    d = make(lab, known_doc(), previous=prev)
    ch = d["changes"]
    assert ch["available"] and ch["previous_generated"] == "2026-03-01T02:00:00+00:00"
    assert [(x["control"], x["target"], x["was"]) for x in ch["new_failures"]] == [("DCOPS-SSH-001", "so-tc", "pass")]
    assert [(x["control"], x["target"]) for x in ch["fixed"]] == [("DCOPS-SSH-004", "so-tttt")]
    assert ch["still_failing"] == 2  # so-xd error, x-hoa-binh WG-002
    dvc = next(p for p in ch["sla_trend"]["platforms"] if p["id"] == "dvc")
    assert dvc["delta"] == pytest.approx(-0.04)


def test_previous_can_be_last_reports_json(lab, tmp_path):
    first = make(lab, known_doc("2026-03-01T02:00:00+00:00", variant="before"))
    prev = json.loads(render_json(first))
    d = make(lab, known_doc(), previous=prev)
    assert [(x["control"], x["target"]) for x in d["changes"]["fixed"]] == [("DCOPS-SSH-004", "so-tttt")]
    assert next(p for p in d["changes"]["sla_trend"]["platforms"] if p["id"] == "dvc")["before"] == 99.99


def test_cover_names_the_commit_of_the_province_file(lab):
    d = make(lab, known_doc())
    want = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%H", "--", "stacks/province-lab.yaml"],
                          capture_output=True, text=True).stdout.strip()
    assert d["cover"]["province_commit"] == want and len(want) == 40
    assert d["cover"]["scope"] == {"clusters": 2, "platforms": 6, "sites": 10, "controls": 3, "results": 16}


def test_stack_outputs_and_state_in_inventory(lab):
    outputs = {"namespaces": ["dvc", "motcua"], "hubPublicKey": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
               "wgPrivateKey": PLANTED["wg"], "kubeconfig": f"users: [{{token: {PLANTED['password']}}}]"}
    state = {"deployment": {"resources": [{"type": "kubernetes:core/v1:Namespace"}] * 6 + [{"type": "pulumi:pulumi:Stack"}]}}
    d = make(lab, known_doc(), stack_outputs=outputs, stack_state=state)
    inv = {o["key"]: o["value"] for o in d["inventory"]["stack_outputs"]}
    assert inv["wgPrivateKey"] == REDACTED and PLANTED["password"] not in inv["kubeconfig"]
    assert inv["hubPublicKey"].startswith("xTIBA5")  # public keys may stay
    assert {"type": "kubernetes:core/v1:Namespace", "count": 6} in d["inventory"]["stack_resources"]


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize("value", [
    PLANTED["pem"],
    PLANTED["pem_pkcs8"],
    PLANTED["pem_ec"],
    f"[Interface]\nPrivateKey = {PLANTED['wg']}\nListenPort = 51820",
    f"wg0\t{PLANTED['wg']}\tpub\t51820\toff",
    f"PULUMI_CONFIG_PASSPHRASE={PLANTED['passphrase']} pulumi up",
    f"password: {PLANTED['password']}",
    PLANTED["age"],
])
def test_redact_free_text(value):
    out = redact({"output": value})["output"]
    bodies = [PLANTED[k].splitlines()[1] for k in ("pem", "pem_pkcs8", "pem_ec")]
    for secret in (PLANTED["wg"], PLANTED["passphrase"], PLANTED["password"], *bodies, "b3BlbnNzaC1rZXkt", PLANTED["age"][16:]):
        assert secret not in out
    assert not find_secrets(out)


def test_redact_sensitive_keys_keep_config_words():
    ev = {"PasswordAuthentication": "no", "passphrase": PLANTED["passphrase"], "db": {"password": PLANTED["password"]},
          "client_secret": ["a1b2c3d4"], "secrets_encrypted_at_rest": True, "password_min_length": 12,
          "private_key_mode": "0600", "peer_public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
          "api_token": "ghp_abcdefghijklmnop"}
    r = redact(ev)
    assert r["PasswordAuthentication"] == "no" and r["secrets_encrypted_at_rest"] is True
    assert r["password_min_length"] == 12 and r["private_key_mode"] == "0600"
    assert r["passphrase"] == REDACTED and r["db"]["password"] == REDACTED and r["client_secret"] == [REDACTED]
    assert r["api_token"] == REDACTED
    assert r["peer_public_key"].startswith("xTIBA5")


def test_writers_refuse_output_that_still_holds_a_key(lab):
    """The last line of defence: a writer never writes a PEM private key, however it got there."""
    from infra.report import SecretLeak

    d = make(lab, known_doc())
    d["controls"][0]["results"][0]["reason"] = PLANTED["pem"]  # bypass redaction on purpose
    with pytest.raises(SecretLeak):
        render_junit(d)
    with pytest.raises(SecretLeak):
        render_html(d)


def test_no_planted_secret_in_json_junit_html(lab):
    doc = sample_results(lab, catalog(), plant_secrets=True)
    prev = sample_results(lab, catalog(), seed=7, plant_secrets=True)
    d = make(lab, doc, previous=prev, stack_outputs={"wg_private_key": PLANTED["wg"], "note": PLANTED["pem"]})
    for text in (render_json(d), render_junit(d), render_html(d, "vi"), render_html(d, "en")):
        for name, secret in PLANTED.items():
            needle = secret.strip().splitlines()[1] if name.startswith("pem") else secret
            assert needle not in text, name
        assert "BEGIN OPENSSH PRIVATE KEY" not in text
        assert "[redacted" in text


# --------------------------------------------------------------------------- i18n


def test_every_template_label_exists_in_both_languages():
    used = set()
    for p in TEMPLATES.glob("*.j2"):
        used |= set(re.findall(r"""\bt\(\s*['"]([a-z0-9_]+)['"]\s*[,)]""", p.read_text(encoding="utf-8")))
    py = (TEMPLATES.parent / "render.py").read_text(encoding="utf-8")
    used |= set(re.findall(r"""\bt\(lang,\s*['"]([a-z0-9_]+)['"]""", py))
    from infra.report.data import ENV_KINDS, STATUSES
    from infra.report.requirements import ASSESSED, ROW_STATUSES

    dynamic = {f"status_{s}" for s in STATUSES} | {f"req_{s}" for s in ROW_STATUSES} | {f"assessed_{s}" for s in ASSESSED} | \
              {f"env_{k}" for k in ENV_KINDS} | {f"sha_{k}" for k in ("results", "province", "waivers")} | \
              {f"rate_{k}" for k in ("requirements", "controls", "pairs")} | {f"rate_{k}_def" for k in ("requirements", "controls", "pairs")} | \
              {f"sev_{s}" for s in ("critical", "high", "medium", "low", "info", "unknown")} | \
              {"role_primary", "role_dr", "sites_connected", "sites_compliant", "sites_worse", "sites_better",
               "prepared_by", "checked_by", "approved_by", "insufficient_targets", "not_assessed_targets", "skipped_targets"}
    missing = ({u for u in used if not u.endswith("_")} | dynamic) - set(LABELS)
    assert not missing, f"labels without translation: {sorted(missing)}"
    for key, (vi, en) in LABELS.items():
        assert vi.strip() and en.strip(), key
    with pytest.raises(KeyError):
        t("vi", "no-such-label")


def test_numbers_follow_the_language():
    assert fmt_pct("vi", 99.95) == "99,95 %" and fmt_pct("en", 99.95) == "99.95%"
    assert fmt_pct("vi", 1234.5, 1) == "1.234,5 %"


def test_english_report_has_no_vietnamese_labels(lab):
    d = make(lab, sample_results(lab, catalog()))
    html = render_html(d, "en")
    own = LAB.read_text(encoding="utf-8")  # names from the province file are the province's, in either language
    leaks = [vi for vi, en in LABELS.values() if vi != en and len(vi) >= 12 and "{" not in vi and vi in html and vi not in own]
    assert not leaks, leaks
    assert "<h2>1. Summary</h2>" in html and 'lang="en"' in html
    vi = render_html(d, "vi")
    assert "<h2>1. Tóm tắt</h2>" in vi and 'lang="vi"' in vi


def test_html_is_self_contained(lab):
    html = render_html(make(lab, sample_results(lab, catalog())), "vi")
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "url(" not in html
    assert html.count("<svg") >= 6 + 6 + 10  # two charts per platform, sparklines per site


def test_evidence_text_is_short_and_wrapped():
    ev = {"daily": [{"date": f"2026-03-{d:02d}", "availability_pct": 99.9} for d in range(1, 31)], "x": "y" * 500}
    text = evidence_text(ev)
    assert "(30)" in text and max(len(line) for line in text.splitlines()) <= 100


# --------------------------------------------------------------------------- JUnit


def test_junit_one_testcase_per_control_and_target(lab):
    doc = known_doc()
    d = make(lab, doc)
    root = ET.fromstring(render_junit(d, "en"))
    cases = root.findall(".//testcase")
    assert len(cases) == len(doc["results"]) == int(root.get("tests"))
    assert root.get("failures") == "2" and root.get("errors") == "1" and root.get("skipped") == "1"
    fail = next(c for c in cases if c.get("classname") == "DCOPS-SSH-001" and c.get("name") == "so-tc")
    f = fail.find("failure")
    assert f is not None and f.get("message") == "PermitRootLogin yes" and "permitrootlogin: yes" in f.text
    assert f.get("type") == "high"
    err = next(c for c in cases if c.get("name") == "so-xd")
    assert err.find("error") is not None
    suite = next(s for s in root.findall("testsuite") if s.get("name").startswith("DCOPS-SSH-001"))
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert "TCVN 11930:2017" in props and props["severity"] == "high"


# --------------------------------------------------------------------------- CLI


def run_cli(*args):
    return CliRunner().invoke(app, ["report", *args], catch_exceptions=False)


def test_cli_writes_the_asked_formats(tmp_path):
    res_file = tmp_path / "results.json"
    res_file.write_text(json.dumps(known_doc()), encoding="utf-8")
    r = run_cli("--province", str(LAB), "--results", str(res_file), "--out", str(tmp_path / "o"),
                "-f", "json,junit,html", "--lang", "en", "--previous", "none")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["report.en.html", "report.json", "report.junit.xml"]
    assert json.loads((tmp_path / "o" / "report.json").read_text())["summary"]["overall"]["fail"] == 2


def test_cli_previous_auto_takes_the_newest_older_run(tmp_path):
    rdir = tmp_path / "results"
    rdir.mkdir()
    now, old, older = known_doc(), known_doc("2026-03-01T02:00:00+00:00", "before"), known_doc("2026-02-01T02:00:00+00:00")
    (rdir / "latest.json").write_text(json.dumps(now))
    (rdir / "20260331T020000Z.json").write_text(json.dumps(now))  # the copy of latest
    (rdir / "20260301T020000Z.json").write_text(json.dumps(old))
    (rdir / "20260201T020000Z.json").write_text(json.dumps(older))
    r = run_cli("--province", str(LAB), "--results", str(rdir / "latest.json"), "--out", str(tmp_path / "o"), "-f", "json")
    assert r.exit_code == 0, r.output
    assert "20260301T020000Z.json" in r.output
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["changes"]["previous_generated"] == "2026-03-01T02:00:00+00:00"


@pytest.mark.parametrize("args, says", [
    (["--lang", "fr"], "--lang"),
    (["-f", "docx"], "unknown format"),
    (["--results", "/nonexistent/latest.json"], "dcops check"),
])
def test_cli_bad_input_exits_2(tmp_path, args, says):
    r = run_cli("--province", str(LAB), "--out", str(tmp_path / "o"), *args)
    assert r.exit_code == 2 and says in r.output
    assert not (tmp_path / "o").exists()


def test_cli_rejects_results_of_another_province(tmp_path):
    doc = known_doc()
    doc["province_code"] = "THANHHOA"
    f = tmp_path / "r.json"
    f.write_text(json.dumps(doc))
    r = run_cli("--province", str(LAB), "--results", str(f), "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "THANHHOA" in r.output


def test_cli_rejects_broken_results_and_province(tmp_path):
    f = tmp_path / "r.json"
    f.write_text('{"results": [{"control": "X", "target": "y", "status": "maybe"}]}')
    r = run_cli("--province", str(LAB), "--results", str(f), "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "maybe" in r.output
    bad = tmp_path / "province.yaml"
    bad.write_text(LAB.read_text(encoding="utf-8").replace("security_level: 3\n  audit", "security_level: 9\n  audit", 1))
    r = run_cli("--province", str(bad), "--sample", "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "security_level" in r.output


def test_build_rejects_unknown_format(lab, tmp_path):
    with pytest.raises(ValueError):
        build(Inputs(province=lab, province_path=LAB, results=known_doc()), tmp_path, formats=["docx"])


# --------------------------------------------------------------------------- issue 17: matrix, rates, time, origin, sign-off


def test_matrix_has_one_row_per_requirement_of_the_level(lab):
    from infra.report.requirements import load_requirements

    entries, problem = load_requirements()
    assert problem is None and entries
    want = [e["id"] for e in entries if lab.province.security_level in e["level"]]
    d = make(lab, sample_results(lab, catalog()))
    rows = d["requirements"]["rows"]
    assert sorted(r["id"] for r in rows) == sorted(want) and len(rows) == len(set(want))
    assert sum(d["requirements"]["counts"][s] for s in d["requirements"]["counts"] if s != "total") == len(rows)
    html = render_html(d, "vi")
    body = html.split('<table class="req-matrix fixed">', 1)[1].split("</table>", 1)[0]
    assert body.count('<tr id="req-') == len(want)
    for r in rows:  # each row links to the controls behind it, whose sections exist
        for c in r["controls"]:
            assert f'href="#c-{c["id"]}"' in body
            if c["in_results"]:
                assert f'id="c-{c["id"]}"' in html


def test_matrix_statuses_follow_the_controls(lab):
    reqs = [
        {"id": "R-FAIL", "clause": "7.2", "title_vi": "a", "title_en": "a", "level": [3], "assessed": "automated",
         "controls": ["DCOPS-SSH-001", "DCOPS-SSH-004"], "note": "", "note_vi": ""},
        {"id": "R-PASS", "clause": "7.2", "title_vi": "b", "title_en": "b", "level": [3], "assessed": "automated",
         "controls": ["DCOPS-SSH-004"], "note": "", "note_vi": ""},
        {"id": "R-NORES", "clause": "7.2", "title_vi": "c", "title_en": "c", "level": [3], "assessed": "automated",
         "controls": ["DCOPS-SSH-004", "DCOPS-NTP-001"], "note": "", "note_vi": ""},
        {"id": "R-WAIVED", "clause": "7.2", "title_vi": "d", "title_en": "d", "level": [3], "assessed": "automated",
         "controls": ["DCOPS-WG-002"], "note": "", "note_vi": ""},
        {"id": "R-HAND", "clause": "7.1.1", "title_vi": "e", "title_en": "e", "level": [3], "assessed": "manual", "controls": [],
         "note": "", "note_vi": ""},
        {"id": "R-NA", "clause": "7.2", "title_vi": "f", "title_en": "f", "level": [3], "assessed": "not_applicable", "controls": [],
         "note": "", "note_vi": ""},
        {"id": "R-L4", "clause": "8.2", "title_vi": "g", "title_en": "g", "level": [4], "assessed": "manual", "controls": [],
         "note": "", "note_vi": ""},
    ]
    doc = known_doc()
    for r in doc["results"]:  # the one WG-002 failure is waived
        if r["control"] == "DCOPS-WG-002" and r["status"] == "fail":
            r["status"], r["waiver"] = "waived", {"status": "fail", "justification": "x" * 30, "approver": "A", "expires": "2026-12-31"}
    d = make(lab, doc, requirements=reqs)
    st = {r["id"]: r["status"] for r in d["requirements"]["rows"]}
    assert st == {"R-FAIL": "failed", "R-PASS": "passed", "R-NORES": "not_assessed", "R-WAIVED": "waived",
                  "R-HAND": "manual", "R-NA": "not_applicable"}
    assert d["summary"]["rates"]["requirements"] == {"n": 1, "m": 2, "pct": 50.0}


def test_three_rates_with_their_definitions(lab):
    d = make(lab, known_doc())
    r = d["summary"]["rates"]
    # pairs: 12 pass of 12 + 2 fail + 1 error (the skipped one left out)
    assert r["pairs"] == {"n": 12, "m": 15, "pct": round(100 * 12 / 15, 2)}
    # controls: SSH-004 passes everywhere; SSH-001 (fail, error) and WG-002 (fail) do not
    assert r["controls"] == {"n": 1, "m": 3, "pct": round(100 / 3, 2)}
    for lang in ("vi", "en"):
        html = render_html(d, lang)
        for key in ("rate_requirements_def", "rate_controls_def", "rate_pairs_def"):
            assert t(lang, key) in html


def test_times_are_vietnam_time_with_the_zone_named(lab):
    from infra.report.i18n import fmt_date

    assert fmt_date("vi", "2026-03-31T02:00:00+00:00", True) == "09:00 ngày 31/03/2026 (giờ Việt Nam, UTC+7)"
    assert fmt_date("en", "2026-03-31T02:00:00Z", True) == "2026-03-31 09:00 (Asia/Ho_Chi_Minh, UTC+7)"
    assert fmt_date("vi", "2026-03-30T17:30:00+00:00") == "31/03/2026"  # already the 31st in Vietnam
    assert fmt_date("vi", "2026-03-30") == "30/03/2026"  # a calendar day stays as it is
    html = render_html(make(lab, known_doc()), "vi")
    assert "09:00 ngày 31/03/2026 (giờ Việt Nam, UTC+7)" in html
    assert not re.search(r"\d\d:\d\d UTC\b", html)


@pytest.mark.parametrize("doc_env, given, kind, marker", [
    ({"stack": "lab", "environment": {"kind": "lab", "name": "lab", "config_file": "x"}}, None, "lab", "môi trường phòng thí nghiệm (lab) – lab"),
    ({"stack": "thanhhoa", "environment": {"kind": "production", "name": "thanhhoa", "config_file": "x"}}, None, "production",
     "hệ thống thật (production) – thanhhoa"),
    ({}, {"kind": "staging", "name": "th-staging", "stack": "th-staging"}, "staging", "(staging) – th-staging"),
    ({}, None, "unknown", "không rõ môi trường"),
])
def test_environment_marker_on_every_page(lab, doc_env, given, kind, marker):
    doc = known_doc() | doc_env
    d = make(lab, doc, environment=given)
    assert d["provenance"]["environment"]["kind"] == kind
    html = render_html(d, "vi", pdf=True)
    assert marker in html.split('id="envbar"', 1)[1].split("</div>", 1)[0]
    page_rule = html.split("@page { @top-left { content: ", 1)[1].split(";", 1)[0]  # the running header of every PDF page
    assert marker.split(" – ")[0] in page_rule or kind == "unknown"
    sample = make(lab, sample_results(lab, catalog()))
    assert sample["provenance"]["environment"]["kind"] == "sample"
    assert "DỮ LIỆU MẪU" in render_html(sample, "vi") and "SAMPLE: synthetic results" in render_html(sample, "en")


def test_verify_detects_a_changed_results_file(tmp_path):
    res = tmp_path / "results.json"
    res.write_text(json.dumps(known_doc()), encoding="utf-8")
    r = run_cli("--province", str(LAB), "--results", str(res), "--out", str(tmp_path / "o"), "-f", "json,html", "--previous", "none")
    assert r.exit_code == 0, r.output
    rep = tmp_path / "o" / "report.json"
    prov = json.loads(rep.read_text())["provenance"]
    import hashlib

    assert prov["results"]["sha256"] == hashlib.sha256(res.read_bytes()).hexdigest()
    assert prov["province"]["sha256"] == hashlib.sha256(LAB.read_bytes()).hexdigest()
    assert prov["results"]["sha256"] in (tmp_path / "o" / "report.vi.html").read_text()
    r = run_cli("--verify", str(rep))
    assert r.exit_code == 0 and "every file matches" in r.output, r.output
    doc = json.loads(res.read_text())
    doc["results"][1]["status"] = "pass"  # someone turns a failure into a pass
    res.write_text(json.dumps(doc), encoding="utf-8")
    r = run_cli("--verify", str(rep))
    assert r.exit_code == 1 and "results   CHANGED" in r.output, r.output
    res.unlink()
    r = run_cli("--verify", str(rep))
    assert r.exit_code == 1 and "MISSING" in r.output
    r = run_cli("--verify", str(tmp_path / "nope.json"))
    assert r.exit_code == 2


def test_signoff_blocks_and_level_decisions(tmp_path):
    text = LAB.read_text(encoding="utf-8") + """
dossier:
  place: Thử Nghiệm
  operator: Trung tâm Chuyển đổi số, Sở Khoa học và Công nghệ
  prepared_by: {role: Chuyên viên Trung tâm Chuyển đổi số, name: Nguyễn Văn An}
  checked_by: {role: Phó Giám đốc Trung tâm Chuyển đổi số}
  approved_by: {role: Giám đốc Sở Khoa học và Công nghệ}
  level_decisions:
    - {system: Cổng dịch vụ công tỉnh, level: 3, number: 1234/QĐ-UBND, date: 2025-11-20, issued_by: UBND tỉnh Thử Nghiệm}
"""
    f = tmp_path / "province-lab.yaml"
    f.write_text(text, encoding="utf-8")
    m = load_province(f)
    d = assemble(Inputs(province=m, province_path=f, results=known_doc()), version="t")
    assert d["signoff"]["level_decisions"][0]["number"] == "1234/QĐ-UBND"
    html = render_html(d, "vi")
    sign = html.split('id="signoff"', 1)[1]
    for want in ("1234/QĐ-UBND", "20/11/2025", "Cổng dịch vụ công tỉnh", "Thử Nghiệm, ngày …… tháng …… năm ……",
                 "Người lập báo cáo", "Người kiểm tra", "Người phê duyệt", "Nguyễn Văn An", "Giám đốc Sở Khoa học và Công nghệ"):
        assert want in sign, want
    assert "Trung tâm Chuyển đổi số, Sở Khoa học và Công nghệ" in html  # the operator on the cover
    # without a dossier: blank blocks to sign by hand, the place from the province's name
    d2 = make(load_province(LAB), known_doc())
    assert d2["signoff"]["place"] == "Thử Nghiệm" and d2["signoff"]["level_decisions"] == []
    assert "dossier.level_decisions" in render_html(d2, "vi")


def test_insufficient_data_is_its_own_status_not_a_failure(lab, tmp_path):
    doc = known_doc()
    doc["results"].append(Result.insufficient(
        "DCOPS-SLA-001", "eoffice", "insufficient data: observed 2.0 h of the 30.0 days window (0.3% < 90%); availability "
        "100.0000% over the monitored time (target 99.9%), not a verdict over the window",
        {"availability_pct": 100.0, "target_pct": 99.9, "coverage_pct": 0.28, "monitored_s": 7200, "window_s": 2592000}).to_dict())
    f = tmp_path / "r.json"
    f.write_text(json.dumps(doc), encoding="utf-8")
    read_back = __import__("infra.report", fromlist=["read_results_doc"]).read_results_doc(f)
    d = make(lab, read_back)
    assert "DCOPS-SLA-001" not in d["summary"]["failing_controls"]
    eo = next(p for p in d["sla_report"]["platforms"] if p["id"] == "eoffice")
    assert eo["insufficient"] is True and eo["meets"] is None and eo["coverage_pct"] == pytest.approx(0.28)
    root = ET.fromstring(render_junit(d, "en"))
    case = next(c for c in root.iter("testcase") if c.get("classname") == "DCOPS-SLA-001" and c.get("name") == "eoffice")
    assert case.find("skipped") is not None and case.find("skipped").get("message").startswith("Insufficient data")
    assert "Chưa đủ dữ liệu" in render_html(d, "vi")
