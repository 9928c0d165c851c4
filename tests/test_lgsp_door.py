"""LGSP is the door (issue 19): only LGSP links to the national systems; the other platforms use
them through LGSP, or directly by an exception the province file declares with its reason.

- the rendered NetworkPolicies: every namespace's effective egress to the national ranges is
  exactly LGSP's links, or a platform's declared exceptions, and nothing else; every namespace is
  still egress-isolated (default deny); a platform using national systems through LGSP has its
  path to LGSP, and LGSP admits it;
- validation refuses a direct link without an exception, a via-LGSP system LGSP does not connect
  to, a via-LGSP platform that does not call LGSP, with file, line, field and fix;
- DCOPS-K8S-014 on snapshots (the lab API runs its scenarios in tests/test_checks_cluster.py);
- the report lists the exceptions with their reasons, in Vietnamese and English.
"""

from __future__ import annotations

import html
import ipaddress
from pathlib import Path

import pytest
import yaml

from checks import scenario_k8s as S
from checks.controls import cluster as C
from checks.result import Status
from infra.render import k8s as K
from infra.validate import ProvinceError, check_text, load_province

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "stacks" / "province-lab.yaml"
PROVINCES = sorted((REPO / "stacks").glob("province-*.yaml"))


def lab_data() -> dict:
    return yaml.safe_load(LAB.read_text(encoding="utf-8"))


def plat(d: dict, pid: str) -> dict:
    return next(p for p in d["platforms"] if p["id"] == pid)


def problems(d: dict) -> list:
    model, ps = check_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False))
    assert model is None and ps, "the file should not validate"
    return ps


# --------------------------------------------------------------------------- rendered egress


def _admits(block: dict, addr: ipaddress.IPv4Address) -> bool:
    if addr not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(addr in ipaddress.ip_network(e) for e in block.get("except", []))


def effective_national_egress(policies: list[dict], nets: dict[str, ipaddress.IPv4Network]) -> set[str]:
    """The national endpoints some address of which a namespace's pods may open a connection to.

    Independent of the control's own arithmetic: probes the first, middle and last address of each
    range against every egress rule."""
    out = set()
    for np in policies:
        spec = np["spec"]
        assert spec["podSelector"] == {}, "the renderer selects every pod of the namespace"
        if "Egress" not in spec["policyTypes"]:
            continue
        for rule in spec.get("egress", []):
            peers = rule.get("to")
            for nid, net in nets.items():
                probes = [net.network_address, net.network_address + net.num_addresses // 2, net.broadcast_address]
                if not peers or any("ipBlock" in p and _admits(p["ipBlock"], a) for p in peers for a in probes):
                    out.add(nid)
    return out


@pytest.mark.parametrize("province", PROVINCES, ids=lambda p: p.stem)
def test_rendered_egress_to_national_ranges_is_lgsp_and_declared_exceptions_only(province):
    m = load_province(province)
    nets = {n.id: ipaddress.ip_network(n.cidr) for n in m.national_endpoints}
    assert nets, "the province declares national endpoints"
    lgsp = [p for p in m.platforms if p.kind == "lgsp"]
    assert lgsp and all(p.national for p in lgsp), "LGSP links to national systems"
    seen = 0
    for cid, objs in K.render_province(m).items():
        by_ns: dict[str, list[dict]] = {}
        for o in objs.objects():
            if o["kind"] == "NetworkPolicy":
                by_ns.setdefault(o["metadata"]["namespace"], []).append(o)
        for ns, pols in by_ns.items():
            p = m.platform_by_id[ns]
            # default deny still holds: a deny-all policy, and egress isolated for every pod
            assert any(n["metadata"]["name"] == "default-deny" and set(n["spec"]["policyTypes"]) == {"Ingress", "Egress"}
                       and not n["spec"].get("egress") for n in pols), (cid, ns)
            want = set(p.national) if p.kind == "lgsp" else {x.endpoint for x in p.national_exceptions}
            got = effective_national_egress(pols, nets)
            assert got == want, f"{cid}/{ns}: reaches national {sorted(got)}, should reach {sorted(want)}"
            seen += 1
            if p.national_via_lgsp:
                # its way to the national systems is LGSP: an egress rule to LGSP's pods on LGSP's ports,
                # annotated with the systems it uses there
                door = next(g for g in lgsp if g.id in p.depends_on)
                to = next(n for n in pols if n["metadata"]["name"] == f"allow-to-{door.id}")
                assert to["metadata"]["annotations"][K.ANNOT_NATIONAL_VIA] == ",".join(p.national_via_lgsp)
                assert to["spec"]["egress"][0]["ports"] == [{"protocol": x.protocol, "port": x.port} for x in door.ports]
    assert seen >= len(m.platforms)
    # LGSP admits each platform that uses it (ingress on LGSP's side)
    for g in lgsp:
        lp = {n["metadata"]["name"]: n for n in K.network_policies(m, g)}
        for p in m.platforms:
            if p.national_via_lgsp:
                assert f"allow-from-{p.id}" in lp, (g.id, p.id)
                assert lp[f"allow-from-{p.id}"]["metadata"]["annotations"][K.ANNOT_NATIONAL_VIA] == ",".join(p.national_via_lgsp)


def test_a_declared_exception_gets_its_egress_with_its_reason():
    m = load_province(LAB)
    dvc = m.platform_by_id["dvc"]
    assert [x.endpoint for x in dvc.national_exceptions] == ["thanh-toan"]
    pols = {n["metadata"]["name"]: n for n in K.network_policies(m, dvc)}
    nat = pols["allow-national-thanh-toan"]
    assert nat["spec"]["egress"] == [{"to": [{"ipBlock": {"cidr": m.national_by_id["thanh-toan"].cidr}}],
                                      "ports": [{"protocol": "TCP", "port": 443}]}]
    assert nat["metadata"]["annotations"][K.ANNOT_NATIONAL_EXCEPTION] == dvc.national_exceptions[0].reason
    assert not [n for n in pols if n.startswith("allow-national-") and n != "allow-national-thanh-toan"]
    # without the exception, dvc has no national egress at all
    d = lab_data()
    del plat(d, "dvc")["national_exceptions"]
    m2, ps = check_text(yaml.safe_dump(d, allow_unicode=True))
    assert not ps, ps
    assert not [n for n in K.network_policies(m2, m2.platform_by_id["dvc"]) if n["metadata"]["name"].startswith("allow-national-")]


# --------------------------------------------------------------------------- validation


def test_a_direct_link_without_an_exception_is_refused_with_file_line_field_and_fix(tmp_path):
    d = lab_data()
    plat(d, "eoffice")["national"] = ["truc-vb"]
    f = tmp_path / "province-x.yaml"
    f.write_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(ProvinceError) as e:
        load_province(f)
    (p,) = [p for p in e.value.problems if "national" in p.path]
    i = d["platforms"].index(plat(d, "eoffice"))
    assert p.path == f"platforms[{i}].national[0]" and p.line
    assert "'eoffice' is not LGSP" in p.message and "truc-vb" in p.message
    assert "national_via_lgsp" in p.fix and "national_exceptions" in p.fix and "reason" in p.fix
    line = p.render(str(f))
    assert line.startswith(f"{f}:{p.line}: platforms[{i}].national[0]: ") and " -- fix: " in line


def test_the_same_link_declared_as_an_exception_is_accepted():
    d = lab_data()
    plat(d, "eoffice")["national_exceptions"] = [{"endpoint": "truc-vb", "reason": "Kết nối trực tiếp đã được phê duyệt"}]
    plat(d, "eoffice")["national_via_lgsp"] = []
    m, ps = check_text(yaml.safe_dump(d, allow_unicode=True))
    assert not ps, ps
    assert [(p.id, x.endpoint) for p, x in m.national_exceptions()] == [("dvc", "thanh-toan"), ("eoffice", "truc-vb")]


def test_an_exception_needs_a_reason_and_an_existing_endpoint():
    d = lab_data()
    plat(d, "ioc")["national_exceptions"] = [{"endpoint": "ndxp"}, {"endpoint": "nope", "reason": "x"}]
    ps = problems(d)
    i = d["platforms"].index(plat(d, "ioc"))
    assert any(p.path == f"platforms[{i}].national_exceptions[0].reason" and "missing" in p.message for p in ps), ps
    assert any(p.path == f"platforms[{i}].national_exceptions[1].endpoint" and "'nope' does not exist" in p.message for p in ps), ps


def test_via_lgsp_to_a_system_lgsp_does_not_connect_to_is_refused():
    d = lab_data()
    plat(d, "ioc")["national_via_lgsp"] = ["thanh-toan"]  # LGSP's national: ndxp, dvcqg, truc-vb, bao-cao-qg
    ps = problems(d)
    i, g = d["platforms"].index(plat(d, "ioc")), d["platforms"].index(plat(d, "lgsp"))
    (p,) = [p for p in ps if p.path == f"platforms[{i}].national_via_lgsp[0]"]
    assert "LGSP ('lgsp') does not connect to national endpoint 'thanh-toan'" in p.message
    assert f"platforms[{g}].national" in p.fix


def test_via_lgsp_without_calling_lgsp_is_refused():
    d = lab_data()
    e = plat(d, "eoffice")
    e["depends_on"] = []
    ps = problems(d)
    i = d["platforms"].index(e)
    (p,) = [p for p in ps if p.path == f"platforms[{i}].national_via_lgsp"]
    assert "does not call LGSP" in p.message and "add 'lgsp' to its 'depends_on'" in p.fix


def test_lgsp_itself_and_double_declarations_are_refused():
    d = lab_data()
    plat(d, "lgsp")["national_via_lgsp"] = ["ndxp"]
    plat(d, "lgsp")["national_exceptions"] = [{"endpoint": "ndxp", "reason": "x"}]
    plat(d, "dvc")["national_via_lgsp"] = ["dvcqg", "truc-vb", "dvcqg"]
    plat(d, "dvc")["national_exceptions"].append({"endpoint": "truc-vb", "reason": "y"})
    ps = problems(d)
    g, v = d["platforms"].index(plat(d, "lgsp")), d["platforms"].index(plat(d, "dvc"))
    paths = {p.path: p for p in ps}
    assert "is LGSP" in paths[f"platforms[{g}].national_via_lgsp"].message
    assert "is LGSP" in paths[f"platforms[{g}].national_exceptions[0]"].message
    assert "listed twice" in paths[f"platforms[{v}].national_via_lgsp[2]"].message
    assert "also used through LGSP" in paths[f"platforms[{v}].national_exceptions[1].endpoint"].message


def test_no_lgsp_platform_means_nothing_goes_through_it():
    d = lab_data()
    plat(d, "lgsp")["kind"] = "bus"
    ps = problems(d)
    assert any("no platform is LGSP" in p.message for p in ps), ps
    assert any("is not LGSP" in p.message and p.path.endswith(".national[0]") for p in ps), ps  # its own links now direct


# --------------------------------------------------------------------------- the control on snapshots

CID = "DCOPS-K8S-014"


def run(snap, pf):
    return C.run(snap, pf, {CID})[0]


@pytest.fixture(scope="module")
def pf():
    return load_province(LAB)


def test_rendered_cluster_passes_and_names_the_exception(pf):
    for cluster in ("primary", "dr"):
        r = run(S.rendered_snapshot(pf, cluster), pf)
        assert r.status == Status.passed, (r.reason, r.evidence)
    r = run(S.rendered_snapshot(pf, "primary"), pf)
    assert r.evidence["allowed"]["lgsp"] == sorted(pf.platform_by_id["lgsp"].national)
    assert r.evidence["allowed"]["dvc"] == ["thanh-toan"]
    assert set(r.evidence["live"]) == {"lgsp", "dvc"} and set(r.evidence["live"]["dvc"]) == {"thanh-toan"}
    assert r.evidence["exceptions"] == [f"dvc -> thanh-toan: {pf.platform_by_id['dvc'].national_exceptions[0].reason}"]


def _np(ns: str, name: str, egress: list, types=("Egress",)) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": list(types), "egress": egress}}


@pytest.mark.parametrize("name, ns, egress, words", [
    ("to-ndxp", "eoffice", [{"to": [{"ipBlock": {"cidr": "10.250.0.0/28"}}]}], "live eoffice -> ndxp (NetworkPolicy to-ndxp)"),
    ("wide", "ioc", [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.250.0.0/27"]}}]}], "live ioc -> thanh-toan"),
    ("all", "motcua", [{}], "live motcua -> ndxp (NetworkPolicy all)"),
    ("host-in-range", "dvc", [{"to": [{"ipBlock": {"cidr": "10.250.0.70/32"}}], "ports": [{"port": 22}]}], "live dvc -> bao-cao-qg"),
])
def test_a_live_policy_reaching_a_national_address_fails(pf, name, ns, egress, words):
    snap = S.rendered_snapshot(pf, "primary")
    snap.per_ns[ns]["networkpolicies"].append(_np(ns, name, egress))
    r = run(snap, pf)
    assert r.status == Status.failed and words in r.reason, (r.reason, r.evidence["beyond"])
    assert all(b.startswith("live ") for b in r.evidence["beyond"])  # the rendered objects are right


def test_a_policy_in_a_namespace_outside_the_platforms_counts(pf):
    snap = S.rendered_snapshot(pf, "primary")
    snap.other_networkpolicies = [_np("tools", "egress-out", [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}])]
    r = run(snap, pf)
    assert r.status == Status.failed and "live tools -> ndxp" in r.reason
    # a selector peer is a pod of the cluster, never a national address; an ingress-only policy opens no egress
    snap.other_networkpolicies = [_np("tools", "to-dns", [{"to": [{"namespaceSelector": {}}]}]),
                                  _np("tools", "in", [], types=("Ingress",))]
    assert run(snap, pf).status == Status.passed


def test_a_platform_namespace_without_egress_isolation_reaches_everything(pf):
    snap = S.rendered_snapshot(pf, "primary")
    snap.per_ns["ioc"]["networkpolicies"] = [n for n in snap.per_ns["ioc"]["networkpolicies"]
                                             if "Egress" not in n["spec"]["policyTypes"]]
    r = run(snap, pf)
    assert r.status == Status.failed and "live ioc -> ndxp (no egress isolation)" in r.reason


def test_an_exception_withdrawn_from_the_province_fails_the_running_policy(pf):
    """The cluster still runs dvc's direct link after the province file withdrew the exception:
    the live policy fails; the rendered objects (from the new file) are right."""
    snap = S.rendered_snapshot(pf, "primary")
    d = lab_data()
    del plat(d, "dvc")["national_exceptions"]
    new, ps = check_text(yaml.safe_dump(d, allow_unicode=True))
    assert not ps
    r = run(snap, new)
    assert r.status == Status.failed and r.evidence["beyond"] == ["live dvc -> thanh-toan (NetworkPolicy allow-national-thanh-toan)"]


def test_no_national_endpoints_is_a_skip(pf):
    d = lab_data()
    d["national_endpoints"] = []
    for p in d["platforms"]:
        for k in ("national", "national_via_lgsp", "national_exceptions"):
            p.pop(k, None)
    m, ps = check_text(yaml.safe_dump(d, allow_unicode=True))
    assert not ps, ps
    assert run(S.rendered_snapshot(m, "primary"), m).status == Status.skipped


# --------------------------------------------------------------------------- the report


def test_the_report_lists_the_exceptions_with_their_reasons(pf):
    from checks.catalog import catalog
    from infra.report import Inputs, assemble
    from infra.report.render import render_html
    from infra.report.sample import sample_results

    data = assemble(Inputs(province=pf, province_path=LAB, results=sample_results(pf, catalog())), version="test")
    (x,) = data["inventory"]["national_exceptions"]
    exc = pf.platform_by_id["dvc"].national_exceptions[0]
    assert (x["platform"], x["endpoint"], x["reason"], x["reason_en"]) == ("dvc", "thanh-toan", exc.reason, exc.reason_en)
    nat = {n["id"]: n for n in data["inventory"]["national_endpoints"]}
    assert nat["thanh-toan"]["direct"] == ["dvc"] and nat["ndxp"]["direct"] == ["lgsp"]
    assert nat["dvcqg"]["direct"] == ["lgsp"] and nat["dvcqg"]["via_lgsp"] == ["dvc"]
    vi, en = html.unescape(render_html(data, "vi")), html.unescape(render_html(data, "en"))
    assert "Ngoại lệ: kết nối trực tiếp tới hệ thống quốc gia không qua LGSP" in vi and exc.reason in vi
    assert "Exceptions: direct links to national systems that bypass LGSP" in en and exc.reason_en in en
    assert exc.approved_by in vi and exc.approved_by in en
    # a province without exceptions says so
    d = lab_data()
    del plat(d, "dvc")["national_exceptions"]
    m, _ = check_text(yaml.safe_dump(d, allow_unicode=True))
    data = assemble(Inputs(province=m, province_path=LAB, results=sample_results(m, catalog())), version="test")
    assert data["inventory"]["national_exceptions"] == []
    assert "mọi kết nối tới hệ thống quốc gia đều đi qua LGSP" in render_html(data, "vi")
