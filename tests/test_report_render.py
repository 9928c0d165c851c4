"""dcops report as people see it: the HTML in headless Chromium, the PDF as pages.

Needs Debian's chromium and poppler-utils (scripts/install-system); a missing
tool fails with the install hint.  The lab report is built once for the module
with fake secrets planted in the evidence, the stack outputs and the previous
results; the full-province report is built once and its build time printed.

Set DCOPS_REPORT_KEEP=DIR to keep the screenshots and PDF pages for a look.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from checks.catalog import catalog
from infra.report import Inputs, build
from infra.report.sample import PLANTED, sample_results
from infra.validate import load_province
from infra.waivers import load as load_waivers

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "stacks" / "province-lab.yaml"
FULL = sorted(p for p in (REPO / "stacks").glob("province-*.yaml") if p.name != "province-lab.yaml")
HINT = "install it with scripts/install-system (Debian packages chromium, poppler-utils, fonts-dejavu-core)"

SECTIONS = {
    "vi": ["Tóm tắt", "Ma trận yêu cầu của cấp độ", "Danh mục hạ tầng", "Kết quả từng biện pháp kiểm soát", "Chất lượng dịch vụ (SLA)",
           "Các trường hợp miễn trừ", "Thay đổi so với kỳ trước", "Xác nhận của các bên"],
    "en": ["Summary", "Requirement matrix of the level", "Inventory", "Results of every control", "Service levels (SLA)", "Waivers",
           "Changes since the previous report", "Sign-off"],
}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"`{tool}` is missing: {HINT}")
    return path


def keep(path: Path) -> None:
    dest = os.environ.get("DCOPS_REPORT_KEEP")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(dest) / path.name)


def chromium(args: list[str], tmp: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    exe = need("chromium")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def pdftext(pdf: Path, *pages: int) -> str:
    exe = need("pdftotext")
    rng = ["-f", str(pages[0]), "-l", str(pages[-1])] if pages else []
    return subprocess.run([exe, "-enc", "UTF-8", *rng, str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def pdf_pages(pdf: Path) -> int:
    out = subprocess.run([need("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


class Dom(HTMLParser):
    """Headings and tables (with their header cells) of a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.tables: list[dict] = []
        self._h: str | None = None
        self._text: list[str] = []
        self._th = False
        self._stack: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3"):
            self._h, self._text = tag, []
        elif tag == "table":
            t = {"class": dict(attrs).get("class", ""), "headers": [], "rows": 0}
            self.tables.append(t)
            self._stack.append(t)
        elif tag == "th" and self._stack:
            self._th, self._text = True, []
        elif tag == "tr" and self._stack:
            self._stack[-1]["rows"] += 1

    def handle_endtag(self, tag):
        if tag == self._h:
            self.headings.append((tag, " ".join("".join(self._text).split())))
            self._h = None
        elif tag == "th" and self._th:
            self._stack[-1]["headers"].append(" ".join("".join(self._text).split()))
            self._th = False
        elif tag == "table" and self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if self._h or self._th:
            self._text.append(data)


def _doc(m, seed: int, plant: bool) -> dict:
    return sample_results(m, catalog(), seed=seed, plant_secrets=plant)


def _previous_from(doc: dict) -> dict:
    """The same run a month earlier with a few results flipped: changes to report."""
    import copy

    prev = copy.deepcopy(doc)
    prev["generated"] = "2026-03-01T02:00:00+00:00"
    flipped = 0
    for r in prev["results"]:
        if r["status"] == "pass" and flipped < 5 and r["control"].startswith("DCOPS-SSH"):
            r["status"], r["reason"] = "fail", "was failing last month"
            flipped += 1
        elif r["status"] == "fail" and r["control"].startswith("DCOPS-FW") and flipped < 8:
            r["status"], r["reason"] = "pass", ""
            flipped += 1
    for r in prev["results"]:
        if r["control"] in ("DCOPS-SLA-001", "DCOPS-SLA-003"):
            r["evidence"] = dict(r["evidence"], availability_pct=min(100.0, r["evidence"]["availability_pct"] + 0.05))
    return prev


@pytest.fixture(scope="module")
def lab_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report-lab")
    m = load_province(LAB)
    doc = _doc(m, 6, plant=True)
    prev = _previous_from(doc)
    outputs = {"kubeconfig": f"token: {PLANTED['password']}", "wgPrivateKey": PLANTED["wg"], "caKey": PLANTED["pem"],
               "namespaces": ["dvc", "motcua", "eoffice", "lgsp", "ioc", "lris"]}
    timings: dict = {}
    wv = load_waivers(REPO / "stacks" / "waivers-lab.yaml", catalog(), m)
    paths = build(Inputs(province=m, province_path=LAB, results=doc, previous=prev, previous_path=Path("previous.json"),
                         stack_outputs=outputs, waivers=wv), out, lang="vi", timings=timings)
    paths |= {f"{k}_en": v for k, v in build(Inputs(province=m, province_path=LAB, results=doc, previous=prev,
                                                    stack_outputs=outputs, waivers=wv), out, lang="en", formats=("html",)).items()}
    print(f"\nlab report built: {', '.join(f'{k} {v:.1f}s' for k, v in timings.items())}")
    return paths


# --------------------------------------------------------------------------- HTML in Chromium


def test_console_errors_are_caught_by_the_harness(tmp_path):
    """So that 'no console errors' below means something."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); nope();</script></body></html>")
    r = chromium(["--dump-dom", bad.as_uri()], tmp_path)
    assert len(console_lines(r.stderr)) >= 2, r.stderr[-2000:]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_html_renders_in_chromium(lab_report, tmp_path, lang):
    html = lab_report["html"] if lang == "vi" else lab_report["html_en"]
    r = chromium(["--dump-dom", html.as_uri()], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not console_lines(r.stderr), console_lines(r.stderr)
    dom = Dom()
    dom.feed(r.stdout)
    h2 = [text for tag, text in dom.headings if tag == "h2"]
    assert h2[1:] == [f"{i}. {s}" for i, s in enumerate(SECTIONS[lang], 1)], h2
    h1 = [text for tag, text in dom.headings if tag == "h1"]
    assert h1 == (["Báo cáo kiểm tra an toàn thông tin và chất lượng dịch vụ"] if lang == "vi"
                  else ["Security and service-level audit report"])
    h3 = [text for tag, text in dom.headings if tag == "h3"]
    assert sum(1 for x in h3 if x.startswith("DCOPS-")) == len(catalog().controls)  # every control of the catalog
    by_class = {c: t for t in dom.tables for c in t["class"].split() if c != "fixed"}
    sev = by_class["severity-table"]
    assert sev["headers"][:3] == (["Mức độ", "Đạt", "Không đạt"] if lang == "vi" else ["Severity", "Pass", "Fail"])
    assert by_class["sites-inventory"]["rows"] == 1 + 10
    assert by_class["sla-sites"]["rows"] == 1 + 10
    assert by_class["sla-platforms"]["rows"] == 1 + 6
    assert "targets-table" in by_class and "results-table" in by_class and "new-failures" in by_class
    assert by_class["req-matrix"]["rows"] >= 1 + 10 and "rates-table" in by_class and "waivers-table" in by_class


def test_html_screenshot(lab_report, tmp_path):
    shot = tmp_path / "report-vi.png"
    r = chromium([f"--screenshot={shot}", "--window-size=1280,2400", lab_report["html"].as_uri()], tmp_path)
    assert r.returncode == 0 and shot.exists(), r.stderr[-3000:]
    assert not console_lines(r.stderr), console_lines(r.stderr)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2400)
    assert len(data) > 100_000, "the screenshot is nearly empty"
    keep(shot)


# --------------------------------------------------------------------------- PDF


def test_pdf_pages_and_sections(lab_report, tmp_path):
    pdf = lab_report["pdf"]
    n = pdf_pages(pdf)
    assert 10 <= n <= 80, n
    subprocess.run([need("pdftoppm"), "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == n
    assert all(p.stat().st_size > 2000 for p in pngs)
    keep(pngs[0])
    keep(pngs[2])
    text = pdftext(pdf)
    # cover: province, scope, version and the commit of the province file
    cover = pdftext(pdf, 1)
    commit = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%H", "--", "stacks/province-lab.yaml"],
                            capture_output=True, text=True).stdout.strip()
    for want in ("Tỉnh Thử Nghiệm", "LAB", "TCVN 11930:2017", "0.1.0", commit):
        assert want in cover, want
    for i, s in enumerate(SECTIONS["vi"], 1):
        assert f"{i}. {s}" in text, s
    # each section starts on a page of its own after the contents (the contents line has leaders and a page number)
    pages = [pdftext(pdf, p) for p in range(1, n + 1)]
    starts = [next(i for i, page in enumerate(pages, 1) if f"{k}. {s}" in [x.strip() for x in page.splitlines()])
              for k, s in enumerate(SECTIONS["vi"], 1)]
    assert starts == sorted(set(starts)) and starts[0] >= 2, starts
    assert "DCOPS-SSH-001" in text and "TCVN 11930:2017" in text
    assert re.search(r"Trang \d+ / \d+", text)


def test_pdf_vietnamese_diacritics_round_trip(lab_report):
    text = pdftext(lab_report["pdf"])
    for name in ("Xã Hòa Bình", "Sở Khoa học và Công nghệ", "Cổng dịch vụ công tỉnh", "Phường Bắc Sơn",
                 "Độ sẵn sàng", "Ngân sách lỗi còn lại"):
        assert name in text, name


# --------------------------------------------------------------------------- secrets


def test_no_planted_secret_in_any_format(lab_report):
    texts = {
        "html": lab_report["html"].read_text(encoding="utf-8"),
        "html_en": lab_report["html_en"].read_text(encoding="utf-8"),
        "pdf": pdftext(lab_report["pdf"]),
        "json": lab_report["json"].read_text(encoding="utf-8"),
        "junit": lab_report["junit"].read_text(encoding="utf-8"),
    }
    needles = {
        "wireguard private key": PLANTED["wg"],
        "passphrase": PLANTED["passphrase"],
        "password": PLANTED["password"],
        "pem body": PLANTED["pem"].splitlines()[1],
        "pem header": "BEGIN OPENSSH PRIVATE KEY",
    }
    for fmt, text in texts.items():
        for what, needle in needles.items():
            assert needle not in text, f"{what} found in the {fmt} report"
        assert "redacted" in text, fmt  # the planted values were there, and were replaced
    # the PDF text also holds no key split over lines
    flat = re.sub(r"\s+", "", texts["pdf"])
    assert PLANTED["wg"] not in flat and PLANTED["passphrase"] not in flat


# --------------------------------------------------------------------------- full province


@pytest.mark.timeout(1800)
def test_full_province_report_build_time(tmp_path):
    assert FULL, "no full province file stacks/province-*.yaml"
    province = FULL[0]
    m = load_province(province)
    assert len(m.wan.sites) >= 200
    doc = _doc(m, 6, plant=True)
    prev = _previous_from(doc)
    timings: dict = {}
    t0 = time.perf_counter()
    c0 = time.process_time()
    paths = build(Inputs(province=m, province_path=province, results=doc, previous=prev), tmp_path, lang="vi", timings=timings)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = pdf_pages(paths["pdf"])
    print(f"\nfull province {m.province.name}: {len(m.wan.sites)} sites, {len(doc['results'])} results -> "
          f"{n} PDF pages; built in {wall:.1f} s wall, {cpu:.1f} s CPU ("
          + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items() if k != "total") + ")")
    text = pdftext(paths["pdf"])
    for i, s in enumerate(SECTIONS["vi"], 1):
        assert f"{i}. {s}" in text, s
    assert m.wan.sites[-1].name in text
    html = paths["html"].read_text(encoding="utf-8")
    assert html.count('<tr><td class="mono" translate="no">') >= 2 * len(m.wan.sites)
    for secret in (PLANTED["wg"], PLANTED["passphrase"], PLANTED["password"]):
        for p in (paths["html"], paths["json"], paths["junit"]):
            assert secret not in p.read_text(encoding="utf-8")
        assert secret not in text


# --------------------------------------------------------------------------- issue 17: every page, the matrix


def test_pdf_every_page_names_environment_and_hashes(lab_report):
    """The running header names the environment, the footer the SHA-256 of the inputs, on every page."""
    import hashlib

    pdf = lab_report["pdf"]
    n = pdf_pages(pdf)
    want_prov = hashlib.sha256(LAB.read_bytes()).hexdigest()
    for page in range(1, n + 1):
        text = " ".join(pdftext(pdf, page).split())
        assert "DỮ LIỆU MẪU" in text, page
        assert "SHA-256" in text and want_prov[:32] in text.replace(" ", ""), page
    assert "giờ Việt Nam, UTC+7" in pdftext(pdf, 1)


def test_pdf_first_pages_and_matrix_screenshots(lab_report, tmp_path):
    """PNGs of the cover, the summary and the requirement matrix (kept with DCOPS_REPORT_KEEP)."""
    pdf = lab_report["pdf"]
    n = pdf_pages(pdf)
    pages = [" ".join(pdftext(pdf, p).split()) for p in range(1, n + 1)]
    matrix = next(i for i, text in enumerate(pages, 1) if "2. Ma trận yêu cầu của cấp độ" in text and "Cách đánh giá" in text)
    for first in (1, 2, 3, matrix):
        subprocess.run([need("pdftoppm"), "-r", "70", "-f", str(first), "-l", str(first), "-png", str(pdf),
                        str(tmp_path / f"report-vi-p{first:02d}")], check=True)
    shots = sorted(tmp_path.glob("report-vi-p*.png"))
    assert len(shots) >= 3 and all(p.stat().st_size > 10_000 for p in shots)
    for p in shots:
        keep(p)
    for want in ("Thủ công", "Tự động", "Trạng thái"):
        assert want in pages[matrix - 1], want
