"""The requirement matrix: every requirement of the province's security level, with its status.

The requirements come from ``checks/requirements.yaml`` (the checks' catalog of level
requirements): per entry ``id``, ``clause``, ``title_vi``, ``title_en``, ``level`` (list),
``assessed`` (``automated``, ``manual`` or ``not_applicable``), ``controls`` (control ids),
``note`` and optionally ``note_vi``.  Unknown keys are kept (the file may grow).

A requirement's status:

- ``not_applicable`` and ``manual`` (assessed by hand) come from the catalog;
- an automated requirement is ``failed`` when one of its controls has a failed or erroneous
  result; otherwise ``not_assessed`` when one of its controls has no result or a result
  that could not be assessed; otherwise ``insufficient_data`` when an SLA had too little
  data; otherwise ``waived`` when a failure was waived; otherwise ``passed``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ASSESSED = ("automated", "manual", "not_applicable")
ROW_STATUSES = ("failed", "not_assessed", "insufficient_data", "waived", "passed", "manual", "not_applicable")


def requirements_path() -> Path | None:
    try:
        import checks
    except ImportError:
        return None
    return Path(checks.__file__).with_name("requirements.yaml")


def load_requirements(path: Path | None = None) -> tuple[list[dict], str | None]:
    """(entries, problem): the entries of the file, or [] and why they could not be read."""
    path = path or requirements_path()
    if path is None or not path.exists():
        return [], f"no requirements catalog ({path or 'checks/requirements.yaml'})"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        return [], f"{path}: not readable ({e.__class__.__name__})"
    raw = doc.get("requirements") if isinstance(doc, dict) else None
    if not isinstance(raw, list):
        return [], f"{path}: no 'requirements' list"
    out, bad = [], []
    for i, r in enumerate(raw):
        if not isinstance(r, dict) or not r.get("id") or r.get("assessed") not in ASSESSED:
            bad.append(i)
            continue
        levels = r.get("level", r.get("levels", []))
        levels = [levels] if isinstance(levels, int) else list(levels or [])
        out.append({**r, "id": str(r["id"]), "clause": None if r.get("clause") is None else str(r["clause"]),
                    "level": [int(x) for x in levels if isinstance(x, int) or str(x).isdigit()],
                    "controls": [str(c) for c in r.get("controls") or []],
                    "title_vi": str(r.get("title_vi") or r["id"]), "title_en": str(r.get("title_en") or r["id"]),
                    "note": str(r.get("note") or ""), "note_vi": str(r.get("note_vi") or "")})
    return out, (f"{path}: entries {bad} lack id or a valid 'assessed'" if bad else None)


def _clause_key(r: dict) -> tuple:
    parts = [int(x) if x.isdigit() else 0 for x in (r.get("clause") or "99").split(".")]
    return (*parts, r["id"])


def matrix(entries: list[dict], level: int, controls: list[dict]) -> dict[str, Any]:
    """One row per requirement of ``level``, with the controls (and their counts) behind it."""
    by_id = {c["id"]: c for c in controls}
    rows = []
    for r in sorted((e for e in entries if level in e["level"]), key=_clause_key):
        row = {k: r[k] for k in ("id", "clause", "title_vi", "title_en", "assessed", "note", "note_vi")}
        linked, counts = [], Counter()
        for cid in r["controls"]:
            c = by_id.get(cid)
            cc = c["counts"] if c else {}
            counts.update({k: v for k, v in cc.items() if k != "total"})
            linked.append({"id": cid, "in_results": c is not None, "worst": c["worst"] if c else None,
                           "title_vi": c["title_vi"] if c else cid, "title_en": c["title_en"] if c else cid,
                           "counts": dict(cc)})
        row["controls"] = linked
        row["counts"] = dict(counts)
        if r["assessed"] == "not_applicable":
            status = "not_applicable"
        elif r["assessed"] == "manual":
            status = "manual"
        elif not linked:
            status = "not_assessed"
        elif counts["fail"] or counts["error"]:
            status = "failed"
        elif any(not x["in_results"] for x in linked) or counts["not_assessed"] or \
                not any(counts[s] for s in ("pass", "waived", "insufficient_data")):
            status = "not_assessed"
        elif counts["insufficient_data"]:
            status = "insufficient_data"
        elif counts["waived"]:
            status = "waived"
        else:
            status = "passed"
        row["status"] = status
        rows.append(row)
    tally = Counter(r["status"] for r in rows)
    decided = tally["passed"] + tally["failed"]
    return {
        "level": level,
        "rows": rows,
        "counts": {s: tally.get(s, 0) for s in ROW_STATUSES} | {"total": len(rows)},
        "rate": round(100.0 * tally["passed"] / decided, 2) if decided else None,
        "controls_outside": sorted(set(by_id) - {c for r in entries if level in r["level"] for c in r["controls"]}),
    }
