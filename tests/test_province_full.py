"""The full province file (stacks/province-thanhhoa.yaml): valid, at scale, names intact, reproducible."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import yaml

from infra.model import ProvinceFile
from infra.validate import check_text, load_province

REPO = Path(__file__).resolve().parent.parent
FULL = REPO / "stacks" / "province-thanhhoa.yaml"
GENERATOR = REPO / "stacks" / "generate_full.py"


@pytest.fixture(scope="module")
def model() -> ProvinceFile:
    return load_province(FULL)


def test_full_file_validates(model):
    assert model.province.name == "Tỉnh Thanh Hóa"
    assert model.province.security_level == 3
    assert model.province.has_wireless


def test_cli_validate_exits_zero():
    r = subprocess.run(
        [sys.executable, "-m", "infra.cli", "validate", str(FULL)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid" in r.stdout and "Tỉnh Thanh Hóa" in r.stdout


def test_scale_and_tiers(model):
    sites = model.wan.sites
    assert len(sites) >= 200
    counts = Counter(s.tier for s in sites)
    for tier in model.wan.tiers:
        assert counts[tier.id] > 0, f"tier {tier.id} has no sites"
    # the public structure after 2025-07-01: 19 wards and 147 communes
    assert counts["ward"] == 19
    assert counts["commune"] == 147
    assert 20 <= counts["department"] + counts["other"]


def test_communes_are_slower_than_departments(model):
    link = {t.id: t.link for t in model.wan.tiers}
    assert link["commune"].delay_ms > link["ward"].delay_ms > link["department"].delay_ms
    assert link["commune"].rate_mbit < link["department"].rate_mbit


def test_every_platform_is_reachable_by_some_site(model):
    for p in model.platforms:
        assert model.sites_reaching(p.id), f"no site reaches {p.id}"
    kinds = {p.kind for p in model.platforms}
    assert {"portal", "one-stop", "e-office", "lgsp", "ioc", "lris"} <= kinds
    communes = [s for s in model.wan.sites if s.tier == "commune"]
    assert all({"motcua", "eoffice"} <= set(s.reach) for s in communes)


def test_data_center_shape(model):
    dc = model.datacenter
    assert {c.role for c in dc.clusters} == {"primary", "dr"}
    zones = {s.zone.value for s in dc.segments}
    assert {"internal_users", "edge", "dmz", "internal_servers", "database", "management", "wireless"} <= zones
    assert dc.log_retention_days >= 90
    assert dc.backup.separate_infrastructure
    assert dc.backup.target_cluster in {c.id for c in dc.clusters if c.role == "dr"}
    for p in model.platforms:
        assert ipaddress.ip_address(p.address) in ipaddress.ip_network(model.segment_by_id[p.segment].cidr)


def test_addresses_stay_in_private_lab_ranges(model):
    allowed = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("172.16.0.0/12")]

    def ok(net: str) -> bool:
        n = ipaddress.ip_network(net)
        return any(n.subnet_of(a) for a in allowed)

    nets = [s.cidr for s in model.datacenter.segments] + [n.cidr for n in model.national_endpoints]
    nets += [model.wan.underlay, model.wan.tunnel_pool] + [s.lan for s in model.wan.sites]
    assert all(ok(n) for n in nets)


def test_ids_are_ascii_slugs_of_the_names(model):
    sys.path.insert(0, str(GENERATOR.parent))
    try:
        import generate_full as gen
    finally:
        sys.path.remove(str(GENERATOR.parent))
    for s in model.wan.sites:
        assert s.id.isascii()
        if s.tier == "ward":
            assert s.id == "p-" + gen.slug(s.name.removeprefix("Phường "))
        elif s.tier == "commune":
            assert s.id == "xa-" + gen.slug(s.name.removeprefix("Xã "))
    assert gen.slug("Phường Hàm Rồng") == "phuong-ham-rong"
    assert gen.slug("Xã Đồng Lương") == "xa-dong-luong"


def _names(m: ProvinceFile) -> list[str]:
    out = [m.province.name, m.datacenter.name, m.wan.hub.name]
    out += [s.name for s in m.datacenter.segments] + [c.name for c in m.datacenter.clusters]
    out += [p.name for p in m.platforms] + [n.name for n in m.national_endpoints]
    out += [t.name for t in m.wan.tiers] + [s.name for s in m.wan.sites]
    return out


def test_names_round_trip_with_diacritics(model):
    raw = FULL.read_bytes().decode("utf-8")
    assert unicodedata.is_normalized("NFC", raw)
    names = _names(model)
    assert all(unicodedata.is_normalized("NFC", n) for n in names)
    for expected in ("Phường Hạc Thành", "Phường Hàm Rồng", "Xã Đồng Lương", "Xã Nguyệt Ấn", "Sở Khoa học và Công nghệ"):
        assert expected in names
        assert expected in raw

    # load -> dump -> load: equal, every name unchanged
    dumped = yaml.safe_dump(model.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
    again, problems = check_text(dumped)
    assert not problems, problems
    assert again == model
    assert _names(again) == names
    assert "Hạc Thành" in dumped  # not escaped to \u sequences


def test_generator_is_deterministic(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for out in (a, b):
        r = subprocess.run([sys.executable, str(GENERATOR), "-o", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() == FULL.read_bytes(), "stacks/province-thanhhoa.yaml is stale: run stacks/generate_full.py"
    r = subprocess.run([sys.executable, str(GENERATOR), "--check"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_unconfirmed_names_are_marked(model):
    sys.path.insert(0, str(GENERATOR.parent))
    try:
        import generate_full as gen
    finally:
        sys.path.remove(str(GENERATOR.parent))
    notes = gen.unconfirmed()
    assert notes, "the generator lists its unconfirmed names"
    lines = FULL.read_text(encoding="utf-8").splitlines()
    for s in model.wan.sites:
        line = next(x for x in lines if f"id: {s.id}," in x)
        assert line.endswith("# unconfirmed") == (s.name in notes), s.id
    readme = (REPO / "stacks" / "README.md").read_text(encoding="utf-8")
    for name in notes:
        assert name in readme, f"stacks/README.md does not list the unconfirmed name {name!r}"


def _generator():
    sys.path.insert(0, str(GENERATOR.parent))
    try:
        import generate_full as gen
    finally:
        sys.path.remove(str(GENERATOR.parent))
    return gen


def test_inserting_sites_changes_no_existing_address(model, monkeypatch, tmp_path):
    """Stable addresses: a commune inserted in the middle of its list, a ward at the top and
    300 more communes (more than a /24 block's 255) leave every existing site's addresses as they
    are; the new ones get free addresses and the file still validates."""
    gen = _generator()
    before = {s.id: (s.lan, s.wan_address, s.tunnel_address) for s in model.wan.sites}
    communes = list(gen.COMMUNES)
    communes.insert(len(communes) // 2, "Xã Mới Chèn")
    communes += [f"Xã Thử Nghiệm {i}" for i in range(300)]
    monkeypatch.setattr(gen, "COMMUNES", communes)
    monkeypatch.setattr(gen, "WARDS", ["Phường Đầu Danh Sách", *gen.WARDS])
    out = tmp_path / "province.yaml"
    assert gen.main(["-o", str(out), "--existing", str(FULL)]) == 0
    after, problems = check_text(out.read_text(encoding="utf-8"))
    assert not problems, problems[:5]
    got = {s.id: (s.lan, s.wan_address, s.tunnel_address) for s in after.wan.sites}
    changed = {i: (before[i], got.get(i)) for i in before if got.get(i) != before[i]}
    assert not changed, f"existing sites changed address: {changed}"
    new = [i for i in got if i not in before]
    assert len(new) == 302 and "xa-moi-chen" in new and "p-dau-danh-sach" in new
    # the inserted commune sits in the middle of the file, with addresses nobody else has
    ids = [s.id for s in after.wan.sites]
    assert ids.index("xa-moi-chen") < ids.index("xa-van-xuan")
    for k in range(3):
        values = [v[k] for v in got.values()]
        assert len(values) == len(set(values))
    # and a position-based first plan (--fresh) would have renumbered the sites after it
    fresh = tmp_path / "fresh.yaml"
    assert gen.main(["-o", str(fresh), "--fresh"]) == 0
    fresh_model, _ = check_text(fresh.read_text(encoding="utf-8"))
    moved = [s.id for s in fresh_model.wan.sites if s.id in before and (s.lan, s.wan_address, s.tunnel_address) != before[s.id]]
    assert moved, "the test would not notice renumbering"


def test_scale_file_keeps_the_province_addresses(model):
    """The 700-site scale file: generated by --scale 700, up to date, valid, and each of the
    province's own sites has there the addresses it has in the province file."""
    scale = GENERATOR.parent / "scale" / "province-thanhhoa-700.yaml"
    r = subprocess.run([sys.executable, str(GENERATOR), "--check"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    big = load_province(scale)
    assert len(big.wan.sites) == 700
    by_id = {s.id: s for s in big.wan.sites}
    for s in model.wan.sites:
        b = by_id[s.id]
        assert (b.lan, b.wan_address, b.tunnel_address) == (s.lan, s.wan_address, s.tunnel_address), s.id
    lines = scale.read_text(encoding="utf-8").splitlines()
    generated = [s for s in big.wan.sites if s.id not in model.site_by_id]
    assert len(generated) == 475
    for s in generated[:: 50]:
        line = next(x for x in lines if f"id: {s.id}," in x)
        assert line.endswith("# placeholder"), line
