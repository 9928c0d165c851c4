"""Two hubs (issue 18): ``wan.hubs`` (primary, standby) next to the single ``wan.hub``; every
collision of their addresses is caught; each site renders a tunnel to each hub and a failover unit;
the failover script moves the traffic to the standby's table and back, shown on real network
namespaces (veth stand-ins for the tunnels, real ping and ip rules)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from infra.render import endpoint as E
from infra.validate import check_text

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "stacks" / "province-lab.yaml"


def _key(c: str) -> str:
    return c * 42 + "A="


def two_hub_dict() -> dict:
    d = yaml.safe_load(LAB.read_text(encoding="utf-8"))
    hub = d["wan"].pop("hub")
    standby = copy.deepcopy(hub)
    standby.update(name="Cổng WAN dự phòng", wan_address="172.30.0.2", tunnel_address="10.200.0.2",
                   ntp_server="10.200.0.2", log_server="10.200.0.2")
    d["wan"]["hubs"] = [hub, standby]
    return d


def _check(d: dict):
    return check_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False))


def _keys(m) -> dict[str, str]:
    return {E.GATEWAY: _key("B"), E.STANDBY_GATEWAY: _key("C"), **{s.id: _key("D") for s in m.wan.sites}}


def test_both_forms_are_valid_and_the_same_for_one_hub():
    single = yaml.safe_load(LAB.read_text(encoding="utf-8"))
    listed = copy.deepcopy(single)
    listed["wan"]["hubs"] = [listed["wan"].pop("hub")]
    a, pa = _check(single)
    b, pb = _check(listed)
    assert not pa and not pb, (pa, pb)
    assert a.wan.hub == b.wan.hub and a.wan.hubs == b.wan.hubs and a.wan.standby is None
    assert E.render(a, _keys(a)) == E.render(b, _keys(b))
    two, p = _check(two_hub_dict())
    assert not p, p
    assert two.wan.hub.wan_address == "172.30.0.1" and two.wan.standby.wan_address == "172.30.0.2"
    # a dump writes the list form, which loads back the same
    again, p = check_text(yaml.safe_dump(two.model_dump(mode="json"), allow_unicode=True))
    assert not p and again == two


@pytest.mark.parametrize("change, path, words", [
    (lambda d: d["wan"].__setitem__("hub", copy.deepcopy(d["wan"]["hubs"][1])), "wan", "both 'hub' and 'hubs'"),
    (lambda d: d["wan"]["hubs"].append(copy.deepcopy(dict(d["wan"]["hubs"][1], wan_address="172.30.0.3", tunnel_address="10.200.0.3"))),
     "wan.hubs", "at most 2"),
    (lambda d: d["wan"].__setitem__("hubs", []), "wan.hubs", "at least 1"),
    (lambda d: d["wan"]["hubs"][1].__setitem__("wan_address", d["wan"]["sites"][2]["wan_address"]),
     "wan.sites[2].wan_address", "duplicate WAN address"),
    (lambda d: d["wan"]["hubs"][1].__setitem__("tunnel_address", "10.200.0.1"),
     "wan.hubs[1].tunnel_address", "duplicate tunnel address"),
    (lambda d: d["wan"]["hubs"][1].__setitem__("tunnel_address", "10.99.0.2"),
     "wan.hubs[1].tunnel_address", "outside wan.tunnel_pool"),
    (lambda d: d["wan"]["hubs"][1].__setitem__("wan_address", "172.29.0.2"),
     "wan.hubs[1].wan_address", "outside wan.underlay"),
])
def test_hub_collisions_are_reported_with_path_and_fix(change, path, words):
    d = two_hub_dict()
    change(d)
    m, problems = _check(d)
    assert m is None
    hits = [p for p in problems if p.path == path and words in p.message]
    assert hits, [(p.path, p.message) for p in problems]
    assert all(p.fix for p in hits) and all(p.line for p in hits)


def test_site_lan_collisions_are_reported():
    """The other collisions the stable plan relies on: LAN on LAN, LAN on a DC segment, duplicate site addresses."""
    d = two_hub_dict()
    sites = d["wan"]["sites"]
    sites[3]["lan"] = sites[1]["lan"]
    sites[4]["lan"] = d["datacenter"]["segments"][0]["cidr"]
    sites[5]["tunnel_address"] = sites[0]["tunnel_address"]
    sites[6]["wan_address"] = sites[0]["wan_address"]
    _, problems = _check(d)
    got = {(p.path, p.message.split(" ")[0]) for p in problems}
    paths = {p.path for p in problems}
    assert "wan.sites[3].lan" in paths or "wan.sites[1].lan" in paths, got
    assert any(p.path in ("wan.sites[4].lan", "datacenter.segments[0].cidr") and "overlaps" in p.message for p in problems)
    assert any(p.path == "wan.sites[5].tunnel_address" and "duplicate tunnel address" in p.message for p in problems)
    assert any(p.path == "wan.sites[6].wan_address" and "duplicate WAN address" in p.message for p in problems)


def test_every_site_has_a_tunnel_to_each_hub_and_a_failover_unit():
    m, p = _check(two_hub_dict())
    assert not p
    out = E.render(m, _keys(m))
    assert list(out)[:2] == [E.GATEWAY, E.STANDBY_GATEWAY]
    site = m.wan.sites[1]
    ep = out[site.id]
    wg = ep.part("wireguard")
    files = {f.path: f.content for f in wg.files}
    assert set(files) == {E.WG_CONF, E.WG_STANDBY_CONF, E.FAILOVER_SCRIPT, E.FAILOVER_UNIT}
    assert f"PublicKey = {_key('B')}" in files[E.WG_CONF] and "Endpoint = 172.30.0.1:51820" in files[E.WG_CONF]
    assert f"PublicKey = {_key('C')}" in files[E.WG_STANDBY_CONF] and "Endpoint = 172.30.0.2:51820" in files[E.WG_STANDBY_CONF]
    assert "10.200.0.2/32" in files[E.WG_STANDBY_CONF] and "10.200.0.2/32" not in files[E.WG_CONF]
    assert f"Table = {E.WG_STANDBY_TABLE}" in files[E.WG_STANDBY_CONF]
    assert "PRIMARY=10.200.0.1" in files[E.FAILOVER_SCRIPT]
    assert f"ExecStart={E.FAILOVER_SCRIPT}" in files[E.FAILOVER_UNIT]
    assert {s.name for s in wg.services} == {"wg-quick@wg0", "wg-quick@wg1", "dcops-wg-failover"}
    assert wg.daemon_reload
    fw = ep.part("firewall").files[0].content
    assert "ip saddr 172.30.0.2 udp dport 51821 accept" in fw
    assert 'oifname { "wg0", "wg1" }' in fw or not site.reach
    # the standby gateway: its own addresses, every site a peer, probes admitted
    sb = out[E.STANDBY_GATEWAY]
    assert (sb.address, sb.tunnel_address) == ("172.30.0.2", "10.200.0.2")
    conf = sb.part("wireguard").files[0].content
    assert "Address = 10.200.0.2/32" in conf and conf.count("[Peer]") == len(m.wan.sites)
    assert "ip daddr 10.200.0.2 icmp type echo-request accept" in sb.part("firewall").files[0].content
    # one hub: no second tunnel
    single, _ = check_text(LAB.read_text(encoding="utf-8"))
    one = E.render(single, {E.GATEWAY: _key("B"), **{s.id: _key("D") for s in single.wan.sites}})
    assert [f.path for f in one[site.id].part("wireguard").files] == [E.WG_CONF]
    with pytest.raises(E.RenderError, match="standby hub's public key"):
        E.render_site(m, site.id, {E.GATEWAY: _key("B"), site.id: _key("D")})


def _sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


def test_failover_script_moves_traffic_and_back():
    """The rendered script, run for real in a network namespace of its own: wg0 and wg1 are veth
    links to a 'primary' and a 'standby' namespace (WireGuard itself is shown by the lab tests).
    Traffic to a DC address follows table 51820 (wg0) while the primary answers; once the primary's
    address is gone it goes to table 51821 (wg1) within a few seconds; it comes back afterwards."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("needs root and iproute2 (run the suite as root: make test; apt-get install iproute2 iputils-ping)")
    m, _ = _check(two_hub_dict())
    site = m.wan.sites[1]
    files = E.render(m, _keys(m))[site.id].part("wireguard").files
    script = next(f.content for f in files if f.path == E.FAILOVER_SCRIPT)
    tag = uuid.uuid4().hex[:6]
    ns = {k: f"h6fo{k}{tag}" for k in ("s", "p", "b")}
    dc = "10.10.3.10"
    try:
        for n in ns.values():
            _sh("ip", "netns", "add", n)
        for iface, peer, addr in (("wg0", "p", m.wan.hub.tunnel_address), ("wg1", "b", m.wan.standby.tunnel_address)):
            _sh("ip", "link", "add", iface, "netns", ns["s"], "type", "veth", "peer", "name", "x0", "netns", ns[peer])
            _sh("ip", "-n", ns["s"], "addr", "add", f"{site.tunnel_address}/32", "dev", iface)
            _sh("ip", "-n", ns["s"], "link", "set", iface, "up")
            _sh("ip", "-n", ns[peer], "addr", "add", f"{addr}/32", "dev", "x0")
            _sh("ip", "-n", ns[peer], "addr", "add", f"{dc}/32", "dev", "lo")
            _sh("ip", "-n", ns[peer], "link", "set", "x0", "up")
            _sh("ip", "-n", ns[peer], "link", "set", "lo", "up")
            _sh("ip", "-n", ns[peer], "route", "add", f"{site.tunnel_address}/32", "dev", "x0")
        _sh("ip", "-n", ns["s"], "link", "set", "lo", "up")
        # what wg-quick makes of wg0.conf and wg1.conf: a table and a rule each
        for iface, table, prio, hub in (("wg0", E.WG_TABLE, E.WG_RULE_PRIORITY, m.wan.hub),
                                        ("wg1", E.WG_STANDBY_TABLE, E.WG_RULE_PRIORITY + 1, m.wan.standby)):
            for net in E.site_allowed_ips(m, site, standby=iface == "wg1"):
                _sh("ip", "-n", ns["s"], "route", "add", net, "dev", iface, "table", str(table))
            _sh("ip", "-n", ns["s"], "rule", "add", "not", "from", site.wan_address, "lookup", str(table), "priority", str(prio))

        def route() -> str:
            return _sh("ip", "-n", ns["s"], "route", "get", dc).stdout

        assert "dev wg0" in route()
        path = Path(f"/tmp/{ns['s']}.sh")
        path.write_text(script)
        proc = subprocess.Popen(["ip", "netns", "exec", ns["s"], "sh", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(4)
            assert "dev wg0" in route(), "moved away from an answering primary"
            t0 = time.monotonic()
            _sh("ip", "-n", ns["p"], "link", "set", "x0", "down")  # the primary stops answering
            while "dev wg1" not in route():
                assert time.monotonic() - t0 < 15, f"no failover within 15 s: {route()}"
                time.sleep(0.2)
            moved = time.monotonic() - t0
            assert E.failover_rule(site).split(" priority")[0] in _sh("ip", "-n", ns["s"], "rule").stdout
            _sh("ip", "-n", ns["p"], "link", "set", "x0", "up")  # back (its route went with the link)
            _sh("ip", "-n", ns["p"], "route", "replace", f"{site.tunnel_address}/32", "dev", "x0")
            t1 = time.monotonic()
            while "dev wg0" not in route():
                assert time.monotonic() - t1 < 20, f"no failback within 20 s: {route()}"
                time.sleep(0.2)
            print(f"failover after {moved:.1f} s, failback after {time.monotonic() - t1:.1f} s")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            path.unlink(missing_ok=True)
    finally:
        for n in ns.values():
            _sh("ip", "netns", "del", n, check=False)


def test_a_site_may_not_take_a_hub_name():
    d = two_hub_dict()
    d["wan"]["sites"][0]["id"] = "gateway-standby"
    _, problems = _check(d)
    assert any(p.path == "wan.sites[0].id" and "inventory name of a hub" in p.message for p in problems), problems
