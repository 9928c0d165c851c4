"""The control catalog and the result schema."""

from __future__ import annotations

import json

import pytest

from checks.catalog import UNCONFIRMED_14423, Catalog, catalog, load_catalog
from checks.result import Result, Status, read_results, summarize, write_results


def test_catalog_loads_and_is_big_enough():
    c = catalog()
    host = [x for x in c.controls if {"endpoint", "gateway"} & set(x.applies_to)]
    cluster = c.for_kind("cluster")
    assert len(host) >= 25
    assert len(cluster) >= 10
    assert c.for_kind("platform") and c.for_kind("wan_link")


def test_every_control_references_every_standard():
    for c in catalog().controls:
        r = c.references
        assert r.tcvn_11930_2017 and r.tcvn_14423_2025, c.id
        assert r.cis and r.nist_800_53, c.id
        lines = c.reference_lines()
        assert any(line.startswith("TCVN 11930:2017, clause 7.2 (level 3") for line in lines), c.id
        assert any(line.startswith("TCVN 14423:2025") for line in lines)
        assert any(line.startswith("NIST SP 800-53") for line in lines)
        if c.applies_at(3):  # the legal basis of the level-3 requirements
            assert r.decree_85_2016.startswith("Nghị định 85/2016/NĐ-CP, Điều 9") and "12/2022" in r.circular_12_2022
        # no clause number is claimed unless confirmed, a finer section never as confirmed
        for t in (r.tcvn_11930_2017, r.tcvn_14423_2025):
            assert (t.clause is None) == (not t.confirmed), c.id
            if not t.confirmed:
                assert "clause unconfirmed" in t.render("X")
            if t.section:
                assert "unconfirmed" in t.render("TCVN 11930:2017")
    # nothing in the catalog uses the wrong name of the successor standard
    from checks.catalog import CATALOG

    wrong_year = str(2025 + 1)  # the wrong name, assembled: it appears nowhere in the repo
    text = CATALOG.read_text(encoding="utf-8")
    assert f"14423:{wrong_year}" not in text and f"14423_{wrong_year}" not in text


def test_tcvn_14423_defaults_to_explicitly_unconfirmed():
    c = catalog().get("DCOPS-SSH-001")
    assert c.references.tcvn_14423_2025.note == UNCONFIRMED_14423
    assert "An ninh mạng – Yêu cầu đối với hệ thống thông tin quan trọng" in UNCONFIRMED_14423
    # the province's audit standard comes first
    assert c.reference_lines("TCVN 14423:2025")[0].startswith("TCVN 14423:2025")


def test_level3_core_requirements_are_covered():
    """Level 3's technical requirements each have at least one control at level 3."""
    c = catalog()
    at3 = [x for x in c.controls if x.applies_at(3)]
    fams = {x.family for x in at3}
    # zones/firewalls, admin over SSH only from management, time sync, central logs, encryption, at rest
    assert {"FW", "SSH", "NTP", "LOG", "WG", "K8S"} <= fams
    ids = {x.id for x in at3}
    assert {"DCOPS-FW-004", "DCOPS-SSH-006", "DCOPS-K8S-007", "DCOPS-LOG-001", "DCOPS-NTP-001"} <= ids


def test_catalog_rejects_bad_entries(tmp_path):
    good = catalog().model_dump()
    bad = json.loads(json.dumps(good))
    bad["controls"][0]["references"]["tcvn_11930_2017"] = {"clause": "7.1.2", "group": "x"}  # clause without confirmation
    with pytest.raises(Exception, match="clause"):
        Catalog.model_validate(bad)
    bad = json.loads(json.dumps(good))
    bad["controls"][1]["id"] = bad["controls"][0]["id"]
    with pytest.raises(Exception, match="duplicate"):
        Catalog.model_validate(bad)
    bad = json.loads(json.dumps(good))
    bad["controls"][0]["references"]["nist_800_53"] = ["XX-1"]
    with pytest.raises(Exception, match="NIST"):
        Catalog.model_validate(bad)
    bad = json.loads(json.dumps(good))
    bad["controls"][0]["severity"] = "urgent"
    with pytest.raises(Exception):
        Catalog.model_validate(bad)
    # the shipped file itself round-trips
    assert load_catalog().ids() == catalog().ids()


def test_result_schema_roundtrip(tmp_path):
    rs = [
        Result.ok("DCOPS-SSH-001", "so-tc", {"permitrootlogin": "no"}),
        Result.fail("DCOPS-SSH-002", "so-tc", {"passwordauthentication": "yes"}, "password logins are allowed"),
        Result.err("DCOPS-SLA-001", "dvc", "Prometheus unreachable"),
        Result.skip("DCOPS-SSH-005", "so-tc", "level 2 site"),
    ]
    with pytest.raises(ValueError):
        Result("DCOPS-SLA-001", "dvc", Status.error)  # an error needs a reason
    with pytest.raises(ValueError):
        Result("DCOPS-SLA-001", "dvc", "maybe")  # only the statuses of Status
    paths = write_results(rs, tmp_path / "latest.json", {"lab": "t"})
    assert len(paths) == 2 and all(p.exists() for p in paths)
    doc = json.loads(paths[0].read_text())
    assert doc["summary"] == {"pass": 1, "fail": 1, "error": 1, "skipped": 1, "not_assessed": 0, "waived": 0,
                              "insufficient_data": 0, "total": 4}
    assert set(doc["results"][0]) >= {"control", "target", "status", "evidence", "reason", "time"}
    back = read_results(paths[1])
    assert [r.status for r in back] == [Status.passed, Status.failed, Status.error, Status.skipped]
    assert summarize(back)["total"] == 4


def test_every_control_ships_a_pass_and_a_fail_scenario():
    from checks.catalog import scenario_files

    for c in catalog().controls:
        if c.params.get("machine_wide"):
            # machine-wide kernel keys: a lab host (a container) cannot be put into their states;
            # their verdicts are unit tests (tests/test_checks_evidence.py::test_sys008_*)
            from pathlib import Path

            unit = (Path(__file__).parent / "test_checks_evidence.py").read_text(encoding="utf-8")
            assert f"def test_{c.id.split('-', 1)[1].replace('-', '').lower()}_" in unit, c.id
            continue
        sc = scenario_files(c.id)
        assert sc["pass"] and sc["fail"], f"{c.id}: scenarios {sc}"


def test_insufficient_data_is_its_own_status_never_a_pass_nor_a_failure():
    from checks.result import any_failed, summarize

    r = Result.insufficient("DCOPS-SLA-001", "dvc", "observed 2 h of 720 h (0.3% < 90%)", {"coverage_pct": 0.3})
    assert r.status == Status.insufficient_data and r.to_dict()["status"] == "insufficient_data"
    assert Result.from_dict(r.to_dict()).status == Status.insufficient_data
    with pytest.raises(ValueError):
        Result("DCOPS-SLA-001", "dvc", Status.insufficient_data)  # says how long was observed
    assert not any_failed([r, Result.ok("DCOPS-SSH-001", "so-tc")])
    assert any_failed([r, Result.err("DCOPS-SLA-002", "dvc", "down")])
    s = summarize([r])
    assert s["insufficient_data"] == 1 and s["pass"] == 0 and s["total"] == 1
