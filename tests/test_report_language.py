"""The Vietnamese report is in Vietnamese: no English sentence reaches its HTML.

- the text of the Vietnamese HTML, outside what is marked as a value shown verbatim
  (``translate="no"``: ids, addresses, commands, evidence values, cited English titles),
  holds no English word of a list that Vietnamese never uses, and no reason or evidence
  key is left untranslated (``class="untranslated"``);
- every reason template written in the controls' code (checks/controls, checks/sla.py,
  infra/check_cli.py), every evidence key they write and every catalog rationale has its
  Vietnamese (infra/report/vi.py): a new reason without a translation fails here;
- the detector itself catches an English sentence and an untranslated reason.
"""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from checks.catalog import catalog
from checks.result import Result, document
from infra.report import Inputs, assemble
from infra.report.render import render_html
from infra.report.sample import sample_results
from infra.report.vi import RATIONALE_VI, evidence_label, is_identifier_key, translate_reason
from infra.validate import load_province
from infra.waivers import load as load_waivers

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "stacks" / "province-lab.yaml"
CODE = [REPO / "checks" / "controls" / "host.py", REPO / "checks" / "controls" / "cluster.py",
        REPO / "checks" / "controls" / "backup.py",
        REPO / "checks" / "sla.py", REPO / "infra" / "check_cli.py"]

# English words that Vietnamese text never uses (unaccented Vietnamese syllables such as
# "to", "an", "in", "no", "do", "con", "can", "the" are left out on purpose), and English words
# of this report's subject.
ENGLISH = {
    "is", "are", "was", "were", "been", "of", "and", "with", "from", "for", "not", "has", "have", "had", "this", "that",
    "these", "those", "when", "which", "by", "at", "or", "it", "its", "than", "should", "must", "cannot", "could", "would",
    "every", "any", "only", "there", "their", "after", "before", "into", "over", "under", "without", "does", "did", "per",
    "each", "none", "all", "yes", "passed", "failed", "missing", "expected", "allowed", "unknown", "available",
    "availability", "latency", "target", "results", "result", "control", "controls", "evidence", "reason", "level",
    "window", "days", "error", "errors", "skipped", "waived", "assessed", "insufficient", "data", "report", "file",
    "files", "environment", "sample", "page", "pages", "summary", "inventory", "changes", "hosts", "host", "cluster",
    "platform", "site", "sites", "unit", "units", "link", "budget", "left", "total", "rate", "listening", "accounts",
    "unreachable", "denied", "timeout", "running", "enabled", "disabled", "waiver", "expired", "policy", "commit",
    "stack", "image", "taint", "segment", "zone", "replicas", "restore", "backup", "unconfirmed", "clause", "section",
}
VOID = {"br", "meta", "col", "img", "hr", "input", "link", "source", "wbr"}


class _Text(HTMLParser):
    """Text nodes of the page with, for each, whether it lies inside a translate="no" element."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        a = dict(attrs)
        exempt = bool(self.stack and self.stack[-1][1]) or a.get("translate") == "no" or tag in ("style", "script")
        self.stack.append((tag, exempt))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if data.strip() and not (self.stack and self.stack[-1][1]):
            self.chunks.append(" ".join(data.split()))


def english_in(html: str) -> list[tuple[str, list[str]]]:
    """(text, English words) of every text node outside translate="no" that holds English.
    Words with digits, '-', '_', '.' or '/' are identifiers (DCOPS-SSH-001, so-tc, cluster-admin)."""
    p = _Text()
    p.feed(html)
    out = []
    for chunk in p.chunks:
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9_./-]*", chunk) if not re.search(r"[0-9_./-]", w)]
        hits = [w for w in words if w.lower() in ENGLISH]
        if hits:
            out.append((chunk[:160], hits[:5]))
    return out


def assert_vietnamese(html: str) -> None:
    bad = english_in(html)
    assert not bad, "English in the Vietnamese report:\n" + "\n".join(f"  {h}: {c}" for c, h in bad[:30])
    n = html.count('class="untranslated"')
    assert n == 0, f"{n} untranslated reason(s) or evidence key(s) in the Vietnamese report: add them to infra/report/vi.py"


@pytest.fixture(scope="module")
def lab():
    return load_province(LAB)


def many_reasons_doc(lab) -> dict:
    """Results with the reasons and evidence the real controls write, of every status."""
    rs = [
        Result.fail("DCOPS-SSH-001", "so-tc", {"permitrootlogin": "yes", "expected": ["no"]}, "sshd permitrootlogin is 'yes': root may log in directly"),
        Result.fail("DCOPS-SSH-006", "so-xd", {"clientaliveinterval": 0, "idle_limit_s": None, "max_s": 900}, "idle sessions are never ended"),
        Result.fail("DCOPS-FW-003", "so-yt", {"listening": ["tcp 0.0.0.0:23 telnetd"]}, "unexpected listening sockets: tcp 0.0.0.0:23 (telnetd)"),
        Result.fail("DCOPS-WG-001", "vp-ubnd", {"peers": 2}, "wg0 address ['10.200.1.9/32'], expected 10.200.1.5/32; 2 peers, expected the hub only"),
        Result.fail("DCOPS-SYS-001", "ttpvhcc", {"values": {"net.ipv4.conf.all.accept_redirects": "1"}},
                    "net.ipv4.conf.all.accept_redirects=1 (want 0), net.ipv4.conf.default.accept_redirects=1 (want 0)"),
        Result.err("DCOPS-NTP-002", "p-trung-tam", "could not read /etc/chrony/chrony.conf"),
        Result.err("DCOPS-LOG-001", "p-bac-son", "host unreachable over SSH as dcops from management: ssh: connect to host 172.30.2.2 port 22: No route to host"),
        Result.err("DCOPS-MON-002", "x-tan-lap", "TimeoutError: timed out"),
        Result.skip("DCOPS-SSH-002", "gateway", "applies to endpoint, gateway, not a cluster"),
        Result.not_assessed("DCOPS-K8S-007", "primary", "the environment of stack 'thanhhoa' gives no access to cluster 'primary'",
                            {"would_settle": "clusters.primary in the environment"}),
        Result.fail("DCOPS-K8S-001", "primary", {"namespaces": {"dvc": "missing"}, "failing": ["dvc"]}, "no default-deny NetworkPolicy in: dvc, motcua"),
        Result.fail("DCOPS-K8S-006", "dr", {"write_verbs": ["create"]}, "auditor role grants more than get/list/watch; can read Secrets"),
        Result.fail("DCOPS-SLA-001", "motcua", {"availability_pct": 99.8, "target_pct": 99.9, "window_days": 30,
                                                 "error_budget_remaining_min": -43.2, "coverage_pct": 100.0},
                    "availability 99.8000% is below the target 99.9% over 30 days (budget overspent by 43.2 min)"),
        Result.insufficient("DCOPS-SLA-001", "dvc",
                            "insufficient data: observed 2.0 h of the 30.0 days window (0.3% < 90%); availability 100.0000% "
                            "over the monitored time (target 99.9%), not a verdict over the window",
                            {"availability_pct": 100.0, "monitored_s": 7200, "window_s": 2592000, "coverage_pct": 0.28}),
        Result.insufficient("DCOPS-SLA-002", "dvc",
                            "insufficient data: observed 2.0 h of the 30.0 days window (0.3% < 90%); answers within 1000 ms "
                            "99.5000% over the monitored time (target 99.0%), not a verdict over the window",
                            {"fast_pct": 99.5, "threshold_ms": 1000}),
        Result.err("DCOPS-SLA-004", "eoffice", "Prometheus at https://10.10.5.9:9090: certificate verify failed: its certificate "
                   "is not trusted by /etc/dcops/ca.pem (check prometheus.ca_file)"),
        Result.fail("DCOPS-SLA-003", "x-hoa-binh", {"availability_pct": 97.0}, "link availability 97.0000% is below 99.5% over 30 days"),
    ]
    doc = document(rs, {"province_code": "LAB", "stack": "lab", "environment": {"kind": "lab", "name": "lab", "config_file": "x"}})
    doc["generated"] = "2026-03-31T02:00:00+00:00"
    return doc


def build(lab, doc, **kw) -> dict:
    return assemble(Inputs(province=lab, province_path=LAB, results=doc, **kw), version="test")


# --------------------------------------------------------------------------- the HTML


def test_vietnamese_report_of_the_sample_has_no_english(lab):
    d = build(lab, sample_results(lab, catalog()), waivers=load_waivers(REPO / "stacks" / "waivers-lab.yaml", catalog(), lab))
    assert_vietnamese(render_html(d, "vi"))


def test_vietnamese_report_of_real_reasons_has_no_english(lab):
    assert_vietnamese(render_html(build(lab, many_reasons_doc(lab)), "vi"))


def test_vietnamese_pdf_html_has_no_english(lab):
    assert_vietnamese(render_html(build(lab, many_reasons_doc(lab)), "vi", pdf=True))


def test_the_detector_catches_english(lab):
    """So that the tests above mean something: an English sentence and an unknown reason fail them."""
    doc = many_reasons_doc(lab)
    doc["results"].append(Result.fail("DCOPS-USR-002", "so-tc", {"uid0": ["root", "toor"]}, "the backdoor account was found").to_dict())
    html = render_html(build(lab, doc), "vi")
    assert 'class="untranslated"' in html  # shown, marked as the tool's words, and caught
    with pytest.raises(AssertionError, match="untranslated"):
        assert_vietnamese(html)
    assert english_in("<p>Kết quả: the host is not reachable</p>")
    assert not english_in('<p>Kết quả <code translate="no">the host is not reachable</code> DCOPS-SSH-001 so-tc</p>')
    doc2 = many_reasons_doc(lab)
    doc2["results"].append(Result.ok("DCOPS-USR-002", "so-tc", {"an_english_key": 1}).to_dict())
    with pytest.raises(AssertionError, match="untranslated"):
        assert_vietnamese(render_html(build(lab, doc2), "vi"))


# --------------------------------------------------------------------------- what the controls write

PLACEHOLDER = "7"
# Reasons put together from parts, checked with a realistic example each.
COMPOSED = {
    "7: 7": "TimeoutError: timed out",
    "insufficient data: 7; 7 7% over the monitored time (target 7%), not a verdict over the window":
        "insufficient data: observed 3.5 days of the 30.0 days window (11.7% < 90%); link availability 99.9000% over the "
        "monitored time (target 99.5%), not a verdict over the window",
    "7 7% over the monitored time, 7: the bad time seen already overspends the whole window's error budget by 7 min":
        "availability 95.0000% over the monitored time, observed 5.0 days of the 30.0 days window (16.7% < 90%): the bad "
        "time seen already overspends the whole window's error budget by 316.8 min",
}


def _literal(n: ast.AST) -> list[str] | None:
    if isinstance(n, ast.Constant) and isinstance(n.value, str):
        return [n.value]
    if isinstance(n, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else PLACEHOLDER for v in n.values)]
    if isinstance(n, ast.IfExp):
        return (_literal(n.body) or []) + (_literal(n.orelse) or [])
    if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
        a, b = _literal(n.left), _literal(n.right)
        if a and b:
            return [x + y for x in a for y in b]
        if a or b:
            return [x + PLACEHOLDER for x in a] if a else [PLACEHOLDER + y for y in b]
    return None


def reason_templates() -> list[tuple[str, int, str]]:
    """Every reason (and part of one) the code writes, with its fields as placeholders."""
    out = []
    for f in CODE:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            args: list[ast.AST] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id == "Result":
                pos = {"fail": 3, "err": 2, "skip": 2, "not_assessed": 2, "insufficient": 2, "ok": 3}.get(node.func.attr)
                if pos is not None and len(node.args) > pos:
                    args.append(node.args[pos])
                args += [k.value for k in node.keywords if k.arg in ("reason", "reason_fail", "reason_pass")]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                at = {"_sshd_is": 4, "_per_namespace": 4, "_coverage_gate": 8}.get(node.func.id)
                if at is not None and len(node.args) > at:
                    args.append(node.args[at])
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append" and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id == "problems":
                args += node.args[:1]
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("why", "reason") for t in node.targets):
                args.append(node.value)
            for a in args:
                for text in _literal(a) or []:
                    if text:
                        out.append((f.relative_to(REPO).as_posix(), node.lineno, text))
    return out


def test_every_reason_the_controls_write_has_its_vietnamese():
    found = reason_templates()
    assert len(found) >= 60, len(found)  # the scan does see the controls' reasons
    missing = []
    for where, line, text in found:
        if translate_reason(text, placeholder=PLACEHOLDER) is not None:
            continue
        if text in COMPOSED and translate_reason(COMPOSED[text]) is not None:
            continue
        missing.append(f"{where}:{line}: {text!r}")
    assert not missing, "reasons with no Vietnamese in infra/report/vi.py REASONS/PHRASES:\n" + "\n".join(missing)


def evidence_keys() -> set[str]:
    keys: set[str] = set()

    def take(d: ast.AST) -> None:
        if isinstance(d, ast.Dict):
            keys.update(k.value for k in d.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))

    for f in CODE:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id == "Result":
                for a in list(node.args[2:]) + [k.value for k in node.keywords if k.arg == "evidence"]:
                    take(a)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("ev", "evidence") for t in node.targets):
                take(node.value)
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name) and \
                    node.value.id in ("ev", "evidence") and isinstance(node.slice, ast.Constant):
                keys.add(node.slice.value)
    return keys


def test_every_evidence_key_has_a_vietnamese_label():
    keys = evidence_keys()
    assert len(keys) >= 50, len(keys)
    missing = sorted(k for k in keys if evidence_label(k) is None and not is_identifier_key(k))
    assert not missing, f"evidence keys with no Vietnamese label in infra/report/vi.py EVIDENCE_LABELS: {missing}"


def test_every_control_has_a_vietnamese_rationale():
    missing = [c.id for c in catalog().controls if not (getattr(c, "rationale_vi", None) or RATIONALE_VI.get(c.id))]
    assert not missing, f"controls with no Vietnamese rationale (catalog rationale_vi or infra/report/vi.py): {missing}"
    for cid, text in RATIONALE_VI.items():
        assert not english_in(f"<p>{text}</p>"), cid


def test_translation_keeps_values_verbatim():
    segs = translate_reason("availability 99.8000% is below the target 99.9% over 30 days (budget overspent by 43.2 min)")
    assert "".join(s.text for s in segs) == "độ sẵn sàng 99,8000 % thấp hơn mục tiêu 99,9 % trong 30 ngày (vượt ngân sách lỗi 43,2 phút)"
    segs = translate_reason("SSH accepted beyond management: tcp dport 22 saddr 0.0.0.0/0 accept")
    assert [s.text for s in segs if s.verbatim] == ["tcp dport 22 saddr 0.0.0.0/0 accept"]
    assert translate_reason("something nobody wrote a translation for") is None
