"""The level-3 requirement catalog (checks/requirements.yaml): schema, every control it names
exists and applies at level 3, every level-3 control is listed, automated requirements name
controls, manual ones say how they are assessed."""

from __future__ import annotations

from pathlib import Path

import yaml

from checks.catalog import catalog

REQ = Path(__file__).resolve().parent.parent / "checks" / "requirements.yaml"
KEYS = {"id", "clause", "title_vi", "title_en", "level", "assessed", "controls", "note", "note_vi"}


def _reqs():
    return yaml.safe_load(REQ.read_text(encoding="utf-8"))["requirements"]


def test_schema_and_references():
    reqs = _reqs()
    ids = [r["id"] for r in reqs]
    assert len(ids) == len(set(ids)) and len(ids) >= 15
    cat = {c.id: c for c in catalog().controls}
    for r in reqs:
        assert set(r) <= KEYS and {"id", "clause", "title_vi", "title_en", "level", "assessed", "controls"} <= set(r), r["id"]
        assert r["level"] == [3] and r["assessed"] in ("automated", "manual", "not_applicable"), r["id"]
        assert r["clause"] is None or r["clause"] == "7.2" or r["clause"].startswith("7.1."), r["id"]
        for cid in r["controls"]:
            assert cid in cat and cat[cid].applies_at(3), (r["id"], cid)
        if r["assessed"] == "automated":
            assert r["controls"], r["id"]
        else:
            assert not r["controls"] or r["assessed"] == "manual"
            assert r.get("note"), f"{r['id']}: say how it is assessed or why it does not apply"
        if r["clause"] == "7.2":
            assert "unconfirmed" in (r.get("note") or "") or r["assessed"] == "not_applicable", r["id"]


def test_every_level3_control_is_in_the_matrix():
    listed = {c for r in _reqs() for c in r["controls"]}
    at3 = {c.id for c in catalog().controls if c.applies_at(3)}
    assert at3 - listed == set()


def test_the_management_requirements_are_there():
    clauses = {r["clause"] for r in _reqs()}
    assert {"7.1.1", "7.1.2", "7.1.3", "7.1.4", "7.1.5", "7.2"} <= clauses
