"""Validation of province files: each kind of bad input gives its clear error."""

from __future__ import annotations

import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import yaml

from infra.validate import ProvinceError, check_text, load_province

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "stacks" / "province-lab.yaml"


def lab_data() -> dict:
    return yaml.safe_load(LAB.read_text(encoding="utf-8"))


def problems_of(data: dict) -> list:
    model, problems = check_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    assert model is None, "a file with problems must not produce a model"
    return problems


def one(problems, path: str, fragment: str):
    hits = [p for p in problems if p.path == path and fragment in p.message]
    assert hits, f"expected a problem at {path!r} containing {fragment!r}; got:\n" + "\n".join(
        f"{p.path}: {p.message}" for p in problems
    )
    assert hits[0].fix, "every problem carries a fix"
    return hits[0]


def test_lab_file_is_valid():
    m = load_province(LAB)
    assert m.province.security_level == 3
    assert {p.kind for p in m.platforms} >= {"portal", "one-stop", "e-office", "lgsp", "ioc", "lris"}
    assert {c.role for c in m.datacenter.clusters} == {"primary", "dr"}
    assert 8 <= len(m.wan.sites) <= 15


def test_unknown_key():
    d = lab_data()
    d["wan"]["sites"][2]["lann"] = "10.99.0.0/24"
    one(problems_of(d), "wan.sites[2].lann", "unknown key 'lann'")


def test_missing_field():
    d = lab_data()
    del d["platforms"][1]["slo"]
    one(problems_of(d), "platforms[1].slo", "required field 'slo' is missing")


def test_duplicate_ids():
    d = lab_data()
    d["wan"]["sites"][3]["id"] = d["wan"]["sites"][1]["id"]
    p = one(problems_of(d), "wan.sites[3].id", "duplicate site id")
    assert "wan.sites[1].id" in p.message


def test_overlapping_segments():
    d = lab_data()
    d["datacenter"]["segments"][1]["cidr"] = "10.10.0.128/25"
    one(problems_of(d), "datacenter.segments[1].cidr", "overlaps datacenter.segments[0].cidr")


def test_site_lan_overlaps_segment_and_tunnel_pool():
    d = lab_data()
    d["wan"]["sites"][4]["lan"] = "10.10.3.0/24"
    d["wan"]["sites"][5]["lan"] = "10.200.9.0/24"
    ps = problems_of(d)
    one(ps, "wan.sites[4].lan", "overlaps datacenter.segments[3].cidr")
    one(ps, "wan.sites[5].lan", "overlaps wan.tunnel_pool")


def test_site_lans_overlap_each_other():
    d = lab_data()
    d["wan"]["sites"][7]["lan"] = d["wan"]["sites"][6]["lan"]
    one(problems_of(d), "wan.sites[7].lan", "overlaps wan.sites[6].lan")


def test_tunnel_address_outside_pool():
    d = lab_data()
    d["wan"]["sites"][0]["tunnel_address"] = "10.201.0.5"
    one(problems_of(d), "wan.sites[0].tunnel_address", "outside wan.tunnel_pool")


def test_references_to_missing_platforms_and_sites():
    d = lab_data()
    d["platforms"][0]["depends_on"].append("cong-thanh-toan")
    d["wan"]["sites"][5]["parent"] = "so-khong-co"
    d["wan"]["sites"][6]["reach"].append("hoa-don")
    ps = problems_of(d)
    one(ps, "platforms[0].depends_on[2]", "platform 'cong-thanh-toan' does not exist")
    one(ps, "wan.sites[5].parent", "site 'so-khong-co' does not exist")
    one(ps, "wan.sites[6].reach[2]", "platform 'hoa-don' does not exist")


def test_dependency_cycle():
    d = lab_data()
    lgsp = next(p for p in d["platforms"] if p["id"] == "lgsp")
    lgsp["depends_on"] = ["motcua"]
    ps = problems_of(d)
    cyc = [p for p in ps if "dependency cycle" in p.message]
    assert len(cyc) == 1, ps
    assert "lgsp" in cyc[0].message and "motcua" in cyc[0].message


def test_slo_out_of_range():
    d = lab_data()
    d["platforms"][2]["slo"]["availability"] = 100
    d["platforms"][3]["slo"]["availability"] = 12.5
    ps = problems_of(d)
    one(ps, "platforms[2].slo.availability", "out of range")
    one(ps, "platforms[3].slo.availability", "out of range")


def test_invalid_vlan():
    d = lab_data()
    d["datacenter"]["segments"][0]["vlan"] = 5000
    d["datacenter"]["segments"][2]["vlan"] = d["datacenter"]["segments"][3]["vlan"]
    ps = problems_of(d)
    one(ps, "datacenter.segments[0].vlan", "4094")
    one(ps, "datacenter.segments[3].vlan", "duplicate VLAN")


def test_invalid_cidr():
    d = lab_data()
    d["wan"]["sites"][1]["lan"] = "10.30.2.7/24"
    one(problems_of(d), "wan.sites[1].lan", "not a valid network")


def test_level3_requires_zones():
    d = lab_data()
    d["datacenter"]["segments"] = [s for s in d["datacenter"]["segments"] if s["zone"] != "database"]
    for pool in d["datacenter"]["clusters"][0]["node_pools"]:
        if pool["segment"] == "data":
            pool["segment"] = "app"
    p = one(problems_of(d), "datacenter.segments", "missing: database")
    assert "TCVN 11930" in p.fix


def test_wireless_zone_required_when_province_has_wireless():
    d = lab_data()
    d["province"]["has_wireless"] = True
    one(problems_of(d), "datacenter.segments", "missing: wireless")


def test_level2_province_does_not_need_all_zones():
    d = lab_data()
    d["province"]["security_level"] = 2
    for p in d["platforms"]:
        p["security_level"] = 2
    d["datacenter"]["segments"] = [s for s in d["datacenter"]["segments"] if s["zone"] != "edge"]
    model, problems = check_text(yaml.safe_dump(d, allow_unicode=True))
    assert problems == [] and model is not None


def test_every_problem_reported_at_once_with_lines():
    d = lab_data()
    d["wan"]["sites"][2]["lann"] = "x"
    d["wan"]["sites"][3]["id"] = d["wan"]["sites"][1]["id"]
    d["datacenter"]["segments"][0]["vlan"] = 0
    d["platforms"][0]["depends_on"].append("khong-co")
    ps = problems_of(d)
    paths = {p.path for p in ps}
    assert {"wan.sites[2].lann", "wan.sites[3].id", "datacenter.segments[0].vlan", "platforms[0].depends_on[2]"} <= paths
    assert all(p.line for p in ps), "every problem points at a line"


def test_duplicate_yaml_key_is_caught():
    text = LAB.read_text(encoding="utf-8").replace("  security_level: 3\n", "  security_level: 3\n  security_level: 2\n", 1)
    model, ps = check_text(text)
    assert model is None
    assert any("appears twice" in p.message and p.path == "province.security_level" for p in ps)


def test_vietnamese_names_round_trip():
    m = load_province(LAB)
    assert m.province.name == "Tỉnh Thử Nghiệm"
    names = [s.name for s in m.wan.sites] + [p.name for p in m.platforms]
    assert "Xã Hòa Bình" in names and "Hệ thống Một cửa điện tử" in names
    for n in names:
        assert unicodedata.is_normalized("NFC", n)
    again = check_text(yaml.safe_dump(m.model_dump(mode="json"), allow_unicode=True))[0]
    assert again == m


def test_cli_exit_codes_and_messages(tmp_path):
    bad = tmp_path / "province-bad.yaml"
    d = lab_data()
    d["wan"]["sites"][12 % len(d["wan"]["sites"])]["lan"] = "10.10.2.0/24"
    bad.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    dcops = [sys.executable, "-m", "infra.cli"]
    ok = subprocess.run([*dcops, "validate", str(LAB)], capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout and "Tỉnh Thử Nghiệm" in ok.stdout
    res = subprocess.run([*dcops, "validate", str(bad)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2
    assert f"{bad}:" in res.stderr and "wan.sites[2].lan" in res.stderr and "fix:" in res.stderr
    missing = subprocess.run([*dcops, "validate", str(tmp_path / "nope.yaml")], capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 2 and "file not found" in missing.stderr


def test_load_raises_with_every_problem(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("province: {code: x}\n", encoding="utf-8")
    with pytest.raises(ProvinceError) as e:
        load_province(f)
    assert len(e.value.problems) >= 4
    assert str(f) in str(e.value)


def test_platform_segment_needs_a_node_pool_and_unique_mounts():
    d = lab_data()
    ioc = next(i for i, p in enumerate(d["platforms"]) if p["id"] == "lris")
    d["platforms"][ioc]["segment"] = "dmz"  # the DR cluster has no pool in the DMZ
    eo = next(i for i, p in enumerate(d["platforms"]) if p["id"] == "eoffice")
    d["platforms"][eo]["storage"][1]["mount_path"] = "/data"
    ps = problems_of(d)
    one(ps, f"platforms[{ioc}].segment", "no node pool in segment 'dmz'")
    one(ps, f"platforms[{eo}].storage[1].mount_path", "also the mount path")
