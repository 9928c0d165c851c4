"""Reports for auditors (``dcops report``).

- :mod:`.data`: assemble one language-neutral dict from the province file, the
  check results, the previous report, the catalog and the Pulumi stack;
- :mod:`.redact`: keep secrets out (applied to every input string);
- :mod:`.sla`: read SLA figures from the results;
- :mod:`.i18n`: every label in Vietnamese and English;
- :mod:`.charts`: inline SVG;
- :mod:`.render`: HTML (self-contained), PDF (WeasyPrint), JSON, JUnit XML.

Use::

    from infra.report import Inputs, build
    paths = build(Inputs(province=m, province_path=p, results=doc), out_dir, lang="vi",
                  formats=("html", "pdf", "json", "junit"))
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from .data import Inputs, ReportInputError, assemble, load_catalog, read_json, read_results_doc  # noqa: F401
from .redact import SecretLeak, redact  # noqa: F401

FORMATS = ("html", "pdf", "json", "junit")


def output_names(lang: str) -> dict[str, str]:
    return {"html": f"report.{lang}.html", "pdf": f"report.{lang}.pdf", "json": "report.json", "junit": "report.junit.xml"}


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def build(inputs: Inputs, out_dir: Path, *, lang: str = "vi", formats: Iterable[str] = FORMATS,
          version: str | None = None, timings: dict | None = None) -> dict[str, Path]:
    """Write the asked formats into ``out_dir``; returns ``{format: path}``.

    ``timings`` (if given) receives the seconds each step took."""
    from . import render
    from .. import __version__

    formats = list(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown format(s) {bad}; choose from {', '.join(FORMATS)}")
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    data = assemble(inputs, version=version or __version__)
    timings["assemble"] = time.perf_counter() - t0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = output_names(lang)
    written: dict[str, Path] = {}
    for f in formats:
        t1 = time.perf_counter()
        if f == "html":
            blob = render.render_html(data, lang).encode("utf-8")
        elif f == "pdf":
            blob = render.render_pdf(data, lang)
        elif f == "json":
            blob = render.render_json(data).encode("utf-8")
        else:
            blob = render.render_junit(data, lang).encode("utf-8")
        _write(out_dir / names[f], blob)
        written[f] = out_dir / names[f]
        timings[f] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    return written
