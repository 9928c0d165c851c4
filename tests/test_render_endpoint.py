"""The rendered desired state of the WAN endpoints (fast: no lab, no hosts)."""

from __future__ import annotations

import base64
import ipaddress
import random
import re
from pathlib import Path

import pytest
import yaml

from infra.render import endpoint as E
from infra.validate import load_province
from infra.wan import inventory as inv

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "stacks" / "province-lab.yaml"


@pytest.fixture(scope="module")
def model():
    return load_province(LAB)


def fake_keys(model, seed: int = 7) -> dict[str, str]:
    rnd = random.Random(seed)
    keys = {}
    for h in E.hosts(model):
        raw = bytearray(rnd.getrandbits(8) for _ in range(32))
        keys[h] = base64.b64encode(bytes(raw)).decode()
    return keys


@pytest.fixture(scope="module")
def keys(model):
    return fake_keys(model)


@pytest.fixture(scope="module")
def rendered(model, keys):
    return E.render(model, keys)


def _forward_elements(nft: str) -> set[tuple[str, str, int]]:
    m = re.search(r"ip daddr \. meta l4proto \. th dport (\{[^}]*\}|\S+ \. \S+ \. \d+) accept", nft)
    if not m:
        return set()
    body = m.group(1).strip("{} ")
    out = set()
    for el in body.split(","):
        addr, proto, port = [x.strip() for x in el.split(" . ")]
        out.add((addr, proto, int(port)))
    return out


def test_every_host_rendered_with_every_part(model, rendered):
    assert list(rendered) == E.hosts(model)
    assert rendered[E.GATEWAY].kind == "gateway"
    for ep in rendered.values():
        assert [p.name for p in ep.parts] == list(E.PARTS)
        paths = [f.path for f in ep.files()]
        assert len(paths) == len(set(paths)), "a file is rendered twice"
        for f in ep.files():
            assert f.path.startswith("/") and re.fullmatch(r"0[0-7]{3}", f.mode)
            assert f.content.endswith("\n")


def test_firewall_forwards_exactly_the_reach_set(model, rendered):
    for site in model.wan.sites:
        nft = rendered[site.id].file(E.NFT_CONF).content
        want = set()
        for pid in site.reach:
            p = model.platform_by_id[pid]
            for port in p.ports:
                want.add((p.address, port.protocol.lower(), port.port))
        assert _forward_elements(nft) == want, site.id
        # forwarding only from the site's LAN into the tunnel
        fwd = nft.split("chain forward", 1)[1].split("chain output", 1)[0]
        accepts = [ln.strip() for ln in fwd.splitlines() if ln.strip().endswith(("accept", '"')) and "accept" in ln]
        assert accepts[0] == "ct state established,related accept"
        assert all(f"ip saddr {site.lan}" in a and 'oifname "wg0"' in a for a in accepts[1:]), accepts
        assert "policy drop" in fwd
        # other platforms' addresses never appear
        others = {p.address for p in model.platforms if p.id not in site.reach}
        assert not any(a in nft for a in others), site.id


def test_firewall_input_rules(model, rendered):
    mgmt = model.management_segment().cidr
    hub = model.wan.hub
    for site in model.wan.sites:
        nft = rendered[site.id].file(E.NFT_CONF).content
        inp = nft.split("chain input", 1)[1].split("chain forward", 1)[0]
        assert "policy drop" in inp
        rules = [ln.strip() for ln in inp.splitlines() if " accept" in ln]
        ssh = [r for r in rules if "dport 22 " in r]
        assert ssh == [f'ip saddr {mgmt} tcp dport 22 accept comment "ssh from management"']
        wg = [r for r in rules if "udp dport" in r]
        assert wg and all(f"ip saddr {hub.wan_address} udp dport {hub.listen_port}" in r for r in wg)
        ne = [r for r in rules if "9100" in r]
        assert ne == [
            f'iifname "wg0" ip saddr {mgmt} ip daddr {site.tunnel_address} tcp dport 9100 '
            'accept comment "node_exporter from management via the tunnel"'
        ]
        icmp = [r for r in rules if "icmp" in r]
        assert icmp == [
            f'iifname "wg0" ip saddr {mgmt} ip daddr {site.tunnel_address} icmp type echo-request '
            'accept comment "link probes from management via the tunnel"'
        ]
        assert len(rules) == 6  # established, lo, ssh, wireguard, node_exporter, link probe: nothing else


def test_gateway_peers_are_all_sites(model, keys, rendered):
    conf = rendered[E.GATEWAY].file(E.WG_CONF).content
    peers = re.findall(r"\[Peer\][^\[]*", conf)
    assert len(peers) == len(model.wan.sites)
    by_key = {}
    for block in peers:
        key = re.search(r"PublicKey = (\S+)", block).group(1)
        allowed = re.search(r"AllowedIPs = (.*)", block).group(1).split(", ")
        by_key[key] = allowed
    for s in model.wan.sites:
        assert by_key[keys[s.id]] == [f"{s.tunnel_address}/32", s.lan]
    assert f"ListenPort = {model.wan.hub.listen_port}" in conf
    # the gateway forwards each site LAN only to its platforms
    nft = rendered[E.GATEWAY].file(E.NFT_CONF).content
    elems = set(re.findall(r"(\d+\.\d+\.\d+\.\d+/\d+) \. (\d+\.\d+\.\d+\.\d+) \. (tcp|udp) \. (\d+)", nft))
    want = set()
    for s in model.wan.sites:
        for _, addr, proto, port in E.site_reach(model, s):
            want.add((s.lan, addr, proto, str(port)))
    assert elems == want


def test_site_tunnel(model, keys, rendered):
    hub = model.wan.hub
    mgmt = model.management_segment().cidr
    for s in model.wan.sites:
        conf = rendered[s.id].file(E.WG_CONF).content
        assert f"PublicKey = {keys[E.GATEWAY]}" in conf
        assert f"Endpoint = {hub.wan_address}:{hub.listen_port}" in conf
        allowed = re.search(r"AllowedIPs = (.*)", conf).group(1).split(", ")
        segs = {model.segment_by_id[model.platform_by_id[p].segment].cidr for p in s.reach}
        assert set(allowed) == segs | {f"{hub.tunnel_address}/32", mgmt}
        # no other site's LAN or tunnel address, and not the underlay (the tunnel's own path)
        for other in model.wan.sites:
            if other.id != s.id:
                assert other.lan not in conf and f"{other.tunnel_address}/" not in conf
        under = ipaddress.ip_network(model.wan.underlay)
        assert not any(ipaddress.ip_network(a).overlaps(under) for a in allowed)
        # the management caveat: replies from the WAN address never take the tunnel
        assert f"Table = {E.WG_TABLE}" in conf
        assert f"PreUp = ip -4 rule add not from {s.wan_address} lookup {E.WG_TABLE}" in conf
        assert "wg set %i private-key /etc/wireguard/private.key" in conf
        assert rendered[s.id].file(E.WG_CONF).mode == "0600"


def test_no_private_key_material(model, keys, rendered):
    public = set(keys.values())
    b64 = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
    for ep in rendered.values():
        for f in ep.files():
            assert "PrivateKey" not in f.content, (ep.host, f.path)
            for found in b64.findall(f.content):
                assert found in public, (ep.host, f.path)
        for p in ep.parts:
            for c in p.converge:
                assert "PrivateKey" not in c.check + c.apply
    # the key command prints only the public key
    assert "wg pubkey" in E.key_script(True) and "cat" not in E.key_script(True)
    assert "genkey" not in E.key_script(False)


def test_deterministic(model, keys):
    a = {h: ep.digest() for h, ep in E.render(model, keys).items()}
    shuffled = dict(random.Random(1).sample(list(keys.items()), len(keys)))
    b = {h: ep.digest() for h, ep in E.render(model, shuffled).items()}
    assert a == b


def test_hardening(model, rendered):
    hub = model.wan.hub
    for s in model.wan.sites:
        ep = rendered[s.id]
        sshd = ep.file(E.SSHD_DROPIN).content
        for line in (
            "PasswordAuthentication no",
            "PermitRootLogin no",
            "KbdInteractiveAuthentication no",
            "AllowUsers dcops",
            "ClientAliveInterval",
            "ClientAliveCountMax",
            "MaxAuthTries",
        ):
            assert line in sshd
        assert not re.search(r"cbc|hmac-sha1|hmac-md5|group1-sha1|group14-sha1", sshd)
        chrony = [ln for ln in ep.file(E.CHRONY_CONF).content.splitlines() if not ln.startswith("#")]
        assert [ln for ln in chrony if ln.startswith(("server ", "pool ", "peer "))] == [f"server {hub.ntp_server} iburst"]
        assert f'target="{hub.log_server}"' in ep.file(E.RSYSLOG_FORWARD).content
        assert ep.file(E.NODE_EXPORTER_DEFAULTS).content.endswith(
            f'ARGS="--web.listen-address={s.tunnel_address}:9100"\n'
        )
        sysctl = dict(ep.sysctls)
        assert sysctl["net.ipv4.ip_forward"] == ("1" if s.reach else "0")
        assert sysctl["net.ipv4.conf.all.rp_filter"] == "1"
        assert sysctl["net.ipv4.conf.all.accept_redirects"] == "0"
        assert sysctl["net.ipv4.conf.all.accept_source_route"] == "0"
        assert sysctl["kernel.kptr_restrict"] == "2"
    gw = rendered[E.GATEWAY]
    assert dict(gw.sysctls)["net.ipv4.ip_forward"] == "1"
    assert "allow " + model.wan.tunnel_pool in gw.file(E.CHRONY_CONF).content
    assert 'input(type="imtcp" port="514"' in gw.file(E.RSYSLOG_RECEIVE).content


def test_render_errors(model, keys):
    with pytest.raises(E.RenderError, match="hub's public key"):
        E.render_site(model, model.wan.sites[0].id, {k: v for k, v in keys.items() if k != E.GATEWAY})
    with pytest.raises(E.RenderError, match="not a WireGuard public key"):
        E.render(model, {**keys, model.wan.sites[1].id: "PrivateKey = oops"})
    # a site without a gathered key is left out of the hub's peers, with a warning
    missing = model.wan.sites[2].id
    gw = E.render_gateway(model, {k: v for k, v in keys.items() if k != missing})
    assert any(missing in w for w in gw.warnings)
    assert gw.file(E.WG_CONF).content.count("[Peer]") == len(model.wan.sites) - 1


def test_key_output_parsing():
    key = "A" * 43 + "="
    assert E.parse_key_output(f"CREATED\n{key}\n") == (key, True)
    assert E.parse_key_output(f"{key}\n") == (key, False)
    assert E.parse_key_output("MISSING\n") == (None, False)


def test_inventory_groups_and_limit(model):
    p = inv.plan(model)
    assert p.hosts[0] == E.GATEWAY and p.addresses[E.GATEWAY] == model.wan.hub.wan_address
    assert p.groups["tier_commune"] == [s.id for s in model.wan.sites if s.tier == "commune"]
    assert p.groups["parent_vp_ubnd"] == ["ttpvhcc"]
    assert inv.resolve_limit(p, model, None) == p.hosts
    assert inv.resolve_limit(p, model, "commune") == p.groups["tier_commune"]
    assert inv.resolve_limit(p, model, "so-tc,gateway") == [E.GATEWAY, "so-tc"]
    assert inv.resolve_limit(p, model, "parent_vp-ubnd") == ["ttpvhcc"]
    with pytest.raises(inv.LimitError, match="no-such-site"):
        inv.resolve_limit(p, model, "so-tc,no-such-site")


def test_host_vars_are_never_templated(model, rendered, tmp_path):
    """Rendered text goes into host_vars tagged !unsafe and comes back unchanged through Ansible's loader."""
    from ansible.parsing.yaml.loader import AnsibleLoader

    ep = rendered["so-tc"]
    inv.write_host_vars(tmp_path, {"so-tc": ep})
    text = (tmp_path / "host_vars" / "so-tc.yml").read_text()
    assert "!unsafe" in text
    loaded = yaml.load(text, Loader=AnsibleLoader)
    assert loaded["firewall_state"]["files"][0]["content"] == ep.file(E.NFT_CONF).content
    assert loaded == ep.to_vars()


def test_engines_share_the_parts():
    """Both engines deploy the same parts in the same order; every part has its Ansible role."""
    import ast

    tree = ast.parse((REPO / "playbooks/pyinfra/dcops_endpoint.py").read_text())
    parts = next(
        ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "PARTS"
    )
    assert parts == E.PARTS
    play = yaml.safe_load((REPO / "playbooks/wan.yml").read_text())
    assert play[0]["roles"] == list(E.PARTS)
    for part in E.PARTS:
        tasks = (REPO / f"playbooks/roles/{part}/tasks/main.yml").read_text()
        assert f"{part}_state.files" in tasks and f"{part}_state.converge" in tasks
        assert (REPO / f"playbooks/roles/{part}/handlers/main.yml").exists()


def test_a_site_reaching_one_port_still_gets_a_set(model, rendered):
    """nft refuses a singleton concatenation (`ip daddr . meta l4proto . th dport a . b . c`)."""
    one = [s for s in model.wan.sites if len(E.site_reach(model, s)) == 1]
    assert one, "the lab province has a site that reaches exactly one platform port"
    for site in one:
        nft = rendered[site.id].file(E.NFT_CONF).content
        line = next(ln for ln in nft.splitlines() if "th dport" in ln and "saddr " + site.lan in ln)
        assert "th dport { " in line and " }" in line
