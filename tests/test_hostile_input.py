"""Hostile input cannot reach a config file, a shell or a parser's worst case (issue 13, part A).

Fast: no lab. One test per validation rule (every problem names its path and a fix), the
comment helper, the renderers with validation bypassed (they stay inert on their own), and
the command line refusing a malicious province file with exit 2 before any host is touched.
"""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
import yaml

from infra import model as M
from infra.render import endpoint as E
from infra.render import k8s as K
from infra.render.comments import COMMENT_MAX, comment, comment_block, nft_rule_comment
from infra.validate import MAX_BYTES, MAX_DEPTH, ProvinceError, check_text, load_province

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "stacks" / "province-lab.yaml"
DCOPS = [sys.executable, "-m", "infra.cli"]

INJECTION = "Xã A\n[Interface]\nPreUp = touch /tmp/dcops-pwned"


def lab_data() -> dict:
    return yaml.safe_load(LAB.read_text(encoding="utf-8"))


def problems_of(data: dict) -> list:
    model, problems = check_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    assert model is None, "a file with problems must not produce a model"
    return problems


def valid(data: dict):
    model, problems = check_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    assert problems == [], "\n".join(p.render("x") for p in problems)
    return model


def one(problems, path: str, fragment: str):
    hits = [p for p in problems if p.path == path and fragment in p.message]
    assert hits, f"expected a problem at {path!r} containing {fragment!r}; got:\n" + "\n".join(
        f"{p.path}: {p.message}" for p in problems
    )
    assert hits[0].fix and hits[0].line, "every problem carries a fix and a line"
    assert "\n" not in hits[0].render("f.yaml"), "a problem is one line, whatever the input held"
    return hits[0]


def fake_keys(model) -> dict[str, str]:
    return {h: base64.b64encode(bytes([i + 1]) * 32).decode() for i, h in enumerate(E.hosts(model))}


# Every free-text field of the model, as (path in the data, setter).
FREE_TEXT = {
    "province.name": lambda d, v: d["province"].__setitem__("name", v),
    "province.name_en": lambda d, v: d["province"].__setitem__("name_en", v),
    "datacenter.name": lambda d, v: d["datacenter"].__setitem__("name", v),
    "datacenter.segments[1].name": lambda d, v: d["datacenter"]["segments"][1].__setitem__("name", v),
    "datacenter.clusters[0].name": lambda d, v: d["datacenter"]["clusters"][0].__setitem__("name", v),
    "datacenter.backup.target": lambda d, v: d["datacenter"]["backup"].__setitem__("target", v),
    "national_endpoints[0].name": lambda d, v: d["national_endpoints"][0].__setitem__("name", v),
    "national_endpoints[0].name_en": lambda d, v: d["national_endpoints"][0].__setitem__("name_en", v),
    "platforms[2].name": lambda d, v: d["platforms"][2].__setitem__("name", v),
    "platforms[2].name_en": lambda d, v: d["platforms"][2].__setitem__("name_en", v),
    "wan.tiers[0].name": lambda d, v: d["wan"]["tiers"][0].__setitem__("name", v),
    "wan.tiers[0].name_en": lambda d, v: d["wan"]["tiers"][0].__setitem__("name_en", v),
    "wan.hub.name": lambda d, v: d["wan"]["hub"].__setitem__("name", v),
    "wan.sites[3].name": lambda d, v: d["wan"]["sites"][3].__setitem__("name", v),
}


# ------------------------------------------------------------------ one text type


def _bare_str_fields(model_cls, seen=None):
    """'Class.field' of every field holding a str with nothing that checks it, recursively."""
    seen = seen if seen is not None else set()
    if model_cls in seen:
        return
    seen.add(model_cls)
    validated = {f for d in model_cls.__pydantic_decorators__.field_validators.values() for f in d.info.fields}

    def bare(ann) -> bool:  # a plain str somewhere in the annotation, outside Annotated[...]
        if ann is str:
            return True
        if typing.get_origin(ann) is typing.Annotated:
            inner, *meta = typing.get_args(ann)
            return bare(inner) if not meta else False
        if isinstance(ann, type) and issubclass(ann, M.Strict):
            yield_from.append(ann)
            return False
        return any(bare(a) for a in typing.get_args(ann) if typing.get_origin(ann) is not typing.Literal)

    for name, f in model_cls.model_fields.items():
        yield_from: list = []
        if bare(f.annotation) and not f.metadata and name not in validated:
            yield f"{model_cls.__name__}.{name}"
        for sub in yield_from:
            yield from _bare_str_fields(sub, seen)


def test_every_string_field_has_a_grammar():
    """No field of the model is a bare str: each is a Name/Text (one line, bounded), an id, a
    literal, or a value with its own grammar (address, network, path, image, cron...)."""
    fields = list(_bare_str_fields(M.ProvinceFile))
    assert not fields, f"str fields without a type that checks them: {fields}"
    # and the walker does see a bare str when there is one
    class Probe(M.Strict):
        ok: M.Name
        bad: dict[str, list[str | None]]

    assert list(_bare_str_fields(Probe)) == ["Probe.bad"]


@pytest.mark.parametrize("path", sorted(FREE_TEXT))
def test_newline_refused_in_every_free_text_field(path):
    d = lab_data()
    FREE_TEXT[path](d, INJECTION)
    p = one(problems_of(d), path, "U+000A")
    assert "newline" in p.fix


@pytest.mark.parametrize(
    "char, name",
    [("\r", "U+000D"), ("\x00", "U+0000"), ("\t", "U+0009"), ("\x1b", "U+001B"), ("\x85", "U+0085"),
     ("\u202e", "RIGHT-TO-LEFT OVERRIDE"), ("\u2066", "LEFT-TO-RIGHT ISOLATE"), ("\u200b", "ZERO WIDTH SPACE"),
     ("\ufeff", "ZERO WIDTH NO-BREAK SPACE"), ("\u2028", "LINE SEPARATOR"), ("\u2029", "PARAGRAPH SEPARATOR"),
     ("\ue000", "U+E000")],
)
def test_control_and_invisible_characters_refused(char, name):
    d = lab_data()
    d["wan"]["sites"][0]["name"] = f"Sở {char}Tài chính"
    one(problems_of(d), "wan.sites[0].name", name)


def test_name_length_limit_and_spaces():
    d = lab_data()
    d["wan"]["sites"][0]["name"] = "Ấ" * M.NAME_MAX
    valid(d)
    d["wan"]["sites"][0]["name"] = "Ấ" * (M.NAME_MAX + 1)
    d["datacenter"]["backup"]["target"] = "x" * (M.TEXT_MAX + 1)
    d["wan"]["sites"][1]["name"] = " Xã A"
    d["wan"]["sites"][2]["name"] = ""
    ps = problems_of(d)
    p = one(ps, "wan.sites[0].name", f"the maximum is {M.NAME_MAX}")
    assert f"at most {M.NAME_MAX}" in p.fix and len(p.message) < 300, "a long value is cut in the message"
    one(ps, "datacenter.backup.target", f"the maximum is {M.TEXT_MAX}")
    one(ps, "wan.sites[1].name", "starts or ends with a space")
    one(ps, "wan.sites[2].name", "at least 1 character")


def test_vietnamese_quotes_and_confusables_are_names():
    """Visible characters are fine: the comment helper, not the validator, makes them inert."""
    d = lab_data()
    d["wan"]["sites"][0]["name"] = 'Xã "Hòa" Bình; $(id) `id` {{ x }} %i # ; \\'
    d["wan"]["sites"][1]["name"] = "Ѕở Тài chính"  # Cyrillic S and T
    m = valid(d)
    assert m.wan.sites[1].name.startswith("Ѕ")


# ------------------------------------------------------------------ grammars of config values


def test_ids_and_port_names_and_kind():
    d = lab_data()
    d["wan"]["sites"][0]["id"] = "so-tc\nx"
    d["platforms"][0]["ports"][0]["name"] = "8443"  # Kubernetes wants at least one letter
    d["platforms"][1]["ports"][0]["name"] = "a--b"
    d["platforms"][2]["kind"] = "portal; rm -rf /"
    d["province"]["code"] = "LAB\n"
    d["datacenter"]["clusters"][0]["kubernetes_version"] = "1.34; x"
    ps = problems_of(d)
    assert "upper-case" in one(ps, "province.code", "not a province code").fix
    one(ps, "datacenter.clusters[0].kubernetes_version", "not a Kubernetes minor version")
    one(ps, "wan.sites[0].id", "pattern")
    one(ps, "platforms[0].ports[0].name", "not a port name")
    one(ps, "platforms[1].ports[0].name", "not a port name")
    one(ps, "platforms[2].kind", "pattern")


def test_taint_keys_values_and_labels():
    d = lab_data()
    pools = d["datacenter"]["clusters"][0]["node_pools"]
    pools[0]["taints"][0]["key"] = ""
    pools[2]["taints"][0]["key"] = "Bad_Prefix/data"
    pools[2]["taints"].append({"key": "dcops.gov.vn/x", "value": "a b", "effect": "NoSchedule"})
    pools[1]["labels"] = {"dcops.gov.vn/tier": "app\n", "ok/-bad": "x"}
    ps = problems_of(d)
    p = one(ps, "datacenter.clusters[0].node_pools[0].taints[0].key", "toleration of every taint")
    assert "qualified name" in p.fix
    one(ps, "datacenter.clusters[0].node_pools[2].taints[0].key", "invalid prefix")
    one(ps, "datacenter.clusters[0].node_pools[2].taints[1].value", "not a Kubernetes label value")
    one(ps, "datacenter.clusters[0].node_pools[1].labels.dcops.gov.vn/tier", "not a Kubernetes label value")
    one(ps, "datacenter.clusters[0].node_pools[1].labels.ok/-bad.[key]", "not a Kubernetes qualified name")


def test_duplicate_taint_refused():
    d = lab_data()
    pool = d["datacenter"]["clusters"][0]["node_pools"][0]
    pool["taints"].append(dict(pool["taints"][0], value="other"))
    one(problems_of(d), "datacenter.clusters[0].node_pools[0].taints[1]", "duplicate taint")


def test_image_and_schedule_and_bounds():
    d = lab_data()
    d["platforms"][0]["image"] = "registry.dcops.lab/dvc/portal:2.4.1\n"
    d["platforms"][1]["image"] = "Registry/UPPER:1"
    d["datacenter"]["backup"]["schedule"] = "30 1 * * * ; reboot"
    d["datacenter"]["log_retention_days"] = 10**9
    d["platforms"][0]["resources"]["memory_mib"] = 10**12
    ps = problems_of(d)
    one(ps, "platforms[0].image", "not a container image reference")
    one(ps, "platforms[1].image", "not a container image reference")
    one(ps, "datacenter.backup.schedule", "not a cron expression")
    p = one(ps, "datacenter.log_retention_days", "less than or equal")
    assert "36500" in p.fix
    one(ps, "platforms[0].resources.memory_mib", "less than or equal")


# ------------------------------------------------------------------ address families


@pytest.mark.parametrize(
    "path, setter, value",
    [
        ("wan.sites[1].lan", lambda d, v: d["wan"]["sites"][1].__setitem__("lan", v), "fd00:30:2::/64"),
        ("wan.sites[1].wan_address", lambda d, v: d["wan"]["sites"][1].__setitem__("wan_address", v), "fd00::2"),
        ("wan.sites[1].tunnel_address", lambda d, v: d["wan"]["sites"][1].__setitem__("tunnel_address", v), "fd00::2"),
        ("wan.hub.log_server", lambda d, v: d["wan"]["hub"].__setitem__("log_server", v), "fd00::1"),
        ("wan.hub.ntp_server", lambda d, v: d["wan"]["hub"].__setitem__("ntp_server", v), "fd00::1"),
        ("wan.tunnel_pool", lambda d, v: d["wan"].__setitem__("tunnel_pool", v), "fd00::/48"),
        ("wan.underlay", lambda d, v: d["wan"].__setitem__("underlay", v), "fd01::/48"),
        ("platforms[0].address", lambda d, v: d["platforms"][0].__setitem__("address", v), "fd10::10"),
        ("datacenter.segments[0].cidr", lambda d, v: d["datacenter"]["segments"][0].__setitem__("cidr", v), "fd10::/64"),
        ("national_endpoints[0].cidr", lambda d, v: d["national_endpoints"][0].__setitem__("cidr", v), "fd20::/64"),
    ],
)
def test_ipv6_refused_until_rendered(path, setter, value):
    d = lab_data()
    setter(d, value)
    p = one(problems_of(d), path, "IPv6 is not rendered yet")
    assert "IPv4" in p.fix


def test_addresses_in_canonical_form_and_not_special():
    d = lab_data()
    d["wan"]["sites"][0]["lan"] = "10.30.1.0/255.255.255.0"
    d["wan"]["sites"][1]["lan"] = "0.0.0.0/0"
    d["platforms"][0]["address"] = "127.0.0.1"
    d["wan"]["hub"]["ntp_server"] = "224.0.0.1"
    ps = problems_of(d)
    p = one(ps, "wan.sites[0].lan", "address/prefix-length")
    assert "10.30.1.0/24" in p.fix
    one(ps, "wan.sites[1].lan", "range, not a network of the province")
    one(ps, "platforms[0].address", "loopback")
    one(ps, "wan.hub.ntp_server", "multicast")


# ------------------------------------------------------------------ ranges and paths


def test_national_endpoint_ports_in_range_and_unique():
    d = lab_data()
    d["national_endpoints"][0]["ports"] = [0, 443, 65536]
    d["national_endpoints"][1]["ports"] = [443, 443]
    ps = problems_of(d)
    one(ps, "national_endpoints[0].ports[0]", "greater than or equal to 1")
    one(ps, "national_endpoints[0].ports[2]", "less than or equal to 65535")
    one(ps, "national_endpoints[1].ports[1]", "duplicate port")


@pytest.mark.parametrize(
    "mount, fragment",
    [
        ("data", "not absolute"),
        ("/data/../etc", "not normalised"),
        ("/data/", "not normalised"),
        ("//data", "not normalised"),
        ("/data/./x", "not normalised"),
        ("/", "not normalised"),
        ("/tmp", "dcops mounts its scratch volume there"),
        ("/tmp/cache", "inside /tmp"),
        ("/proc/x", "the container runtime mounts it"),
        ("/etc/resolv.conf", "the container runtime mounts it"),
        ("/data x", "may hold only"),
        ("/data\n", "may hold only"),
        ("/" + "a" * 300, "the maximum is 200"),
    ],
)
def test_mount_path_rules(mount, fragment):
    d = lab_data()
    i = next(i for i, p in enumerate(d["platforms"]) if p.get("storage"))
    d["platforms"][i]["storage"][0]["mount_path"] = mount
    p = one(problems_of(d), f"platforms[{i}].storage[0].mount_path", fragment)
    assert "absolute, normalised path" in p.fix


def test_mount_paths_do_not_repeat():
    d = lab_data()
    eo = next(i for i, p in enumerate(d["platforms"]) if p["id"] == "eoffice")
    d["platforms"][eo]["storage"][0]["mount_path"] = "/var/lib/eoffice"
    d["platforms"][eo]["storage"][1]["mount_path"] = "/var/lib/eoffice"
    one(problems_of(d), f"platforms[{eo}].storage[1].mount_path", "also the mount path")


def test_k8s_renderer_keeps_its_own_mount_and_refuses_an_empty_taint_key():
    m = load_province(LAB)
    p = next(p for p in m.platforms if p.storage)
    dep = K.render_platform(m, p.id).deployment
    mounts = [v["mountPath"] for v in dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]]
    assert mounts[0] == M.TMP_MOUNT and len(set(mounts)) == len(mounts)
    # bypass validation: a model built without it still cannot render "tolerate everything"
    pool = next(pl for c in m.datacenter.clusters for pl in c.node_pools if pl.taints)
    with pytest.raises(K.RenderError, match="empty key"):
        K._toleration(pool.taints[0].model_copy(update={"key": ""}))
    bad_vol = p.storage[0].model_copy(update={"mount_path": M.TMP_MOUNT})
    bad = m.model_copy(update={"platforms": [q.model_copy(update={"storage": [bad_vol]}) if q.id == p.id else q
                                             for q in m.platforms]})
    assert any(M.TMP_MOUNT in x for x in K.render_problems(bad))


# ------------------------------------------------------------------ bounded YAML


BOMB = "".join(
    [
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        *[f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)],
    ]
)


def test_alias_bomb_refused_fast():
    t = time.monotonic()
    model, ps = check_text(BOMB)
    assert time.monotonic() - t < 1.0
    assert model is None and len(ps) == 1
    assert ps[0].line == 1 and "anchor &a" in ps[0].message and "billions" in ps[0].message
    assert "in full" in ps[0].fix


def test_aliases_and_merge_keys_refused_in_a_real_file():
    text = LAB.read_text(encoding="utf-8")
    text = text.replace("    slo: {availability: 99.9, latency_ms: 1000, latency_target: 99.0, window_days: 30}",
                        "    slo: &slo {availability: 99.9, latency_ms: 1000, latency_target: 99.0, window_days: 30}", 1)
    model, ps = check_text(text)
    assert model is None and "anchor &slo" in ps[0].message
    model, ps = check_text("base: &b {x: 1}\nother:\n  <<: *b\n")
    assert model is None and "anchor &b" in ps[0].message
    model, ps = check_text("x: *nothing\n")
    assert model is None and ps[0].line == 1


def test_deep_nesting_and_huge_numbers_refused():
    model, ps = check_text("a: " + "[" * 5000 + "]" * 5000)
    assert model is None and f"deeper than {MAX_DEPTH}" in ps[0].message
    model, ps = check_text("a: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2))
    assert not any("deeper" in p.message for p in ps)
    model, ps = check_text("province: {security_level: " + "9" * 5000 + "}\n")
    assert model is None and "cannot be read" in ps[0].message


def test_oversized_file_refused_before_parsing(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        f.write("# " + "x" * 1000 + "\n")
        f.write(("- " + "y" * 1000 + "\n") * (MAX_BYTES // 1000))
    t = time.monotonic()
    with pytest.raises(ProvinceError) as e:
        load_province(big)
    assert time.monotonic() - t < 1.0
    assert "4 MiB" in e.value.problems[0].message
    model, ps = check_text(big.read_text())
    assert model is None and "4 MiB" in ps[0].message


# ------------------------------------------------------------------ the comment helper


def test_comment_helper_keeps_everything_on_one_line():
    nasty = "a\nb\rc\x00d\x85e\u2028f\u2029g\u202eh\x0bi\x0cj\x1ck"
    line = comment(nasty)
    assert line.startswith("# ") and len(line.splitlines()) == 1 and line == line.strip()
    assert all(ch not in line for ch in "\n\r\x00\x85\u2028\u2029\u202e\x0b\x0c\x1c")
    assert yaml.safe_load(line + "\nk: v\n") == {"k": "v"}, "YAML sees one comment line"
    assert comment("ends in a backslash \\").endswith("/"), "systemd would join the next line"
    assert len(comment("x" * 1000)) <= COMMENT_MAX + 2
    block = comment_block("one", "two\nthree")
    assert block == "# one\n# two?three\n"
    nft = nft_rule_comment('say "hi" \n' + "é" * 200)
    assert nft.startswith('comment "') and nft.count('"') == 2 and "\n" not in nft
    assert len(nft.encode()) <= len('comment ""') + 127


def _bypass(m, site_name: str, hub_name: str):
    """The model with hostile names, validation bypassed (model_copy does not validate)."""
    sites = [s.model_copy(update={"name": site_name}) for s in m.wan.sites]
    hub = m.wan.hub.model_copy(update={"name": hub_name})
    return m.model_copy(update={"wan": m.wan.model_copy(update={"sites": sites, "hub": hub})})


def _config_lines(text: str) -> list[str]:
    """What a '#'-comment config language reads: every line not a comment."""
    return [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]


def test_renderers_stay_inert_when_validation_is_bypassed(tmp_path):
    """The issue's attack, against the renderers themselves: a newline in a hub or site name
    opening a [Interface] with PreUp (run as root by wg-quick), an AllowedIPs 0.0.0.0/0 on the
    hub, nft statements. Every such line ends up inside a comment."""
    m = load_province(LAB)
    keys = fake_keys(m)
    evil = _bypass(m, "X\n[Interface]\nPreUp = touch /tmp/pwned\r\nAllowedIPs = 0.0.0.0/0\u2028table ip evil {}",
                   "H\n[Peer]\nAllowedIPs = 0.0.0.0/0\\")
    clean, dirty = E.render(m, keys), E.render(evil, keys)
    for h in clean:
        for f in clean[h].files():
            a, b = f.content, dirty[h].file(f.path).content
            assert _config_lines(a) == _config_lines(b), f"{h}:{f.path}: the names changed more than comments"
            assert "PreUp = touch" not in _config_lines(b) and "pwned" not in "".join(_config_lines(b))
    from infra.render import prometheus as P

    P.render(evil, tmp_path)
    for f in tmp_path.rglob("*.yml"):
        yaml.safe_load(f.read_text())


# ------------------------------------------------------------------ drift and logs (rendered)


def test_nft_file_is_the_whole_ruleset_and_the_check_lists_all_of_it():
    m = load_province(LAB)
    ep = E.render(m, fake_keys(m))[E.GATEWAY]
    conf = ep.file(E.NFT_CONF).content
    assert "flush ruleset\n" in _config_lines(conf)[0] + "\n", "the first statement removes every other table"
    conv = ep.part("firewall").converge[0]
    assert conv.check.count("nft list ruleset") == 2 and "list table" not in conv.check
    assert conv.apply == f"nft -f {E.NFT_CONF}"
    assert "nft list ruleset" in ep.sync_check()


def test_log_files_named_by_sender_address_not_claimed_hostname():
    m = load_province(LAB)
    ep = E.render(m, fake_keys(m))[E.GATEWAY]
    conf = ep.file(E.RSYSLOG_RECEIVE).content
    body = "\n".join(_config_lines(conf))
    assert "%HOSTNAME%" not in body and "hostname" not in body.lower()
    assert "$fromhost-ip" in body and "secpath-replace" in body and E.RSYSLOG_SENDERS in body
    import json

    table = json.loads(ep.file(E.RSYSLOG_SENDERS).content)
    assert {r["index"]: r["value"] for r in table["table"]} == {s.tunnel_address: s.id for s in m.wan.sites}
    assert table["nomatch"] == "" and 'then { set $.dcops_sender = "unknown-" & $fromhost-ip; }' in body
    assert E.log_file("so-tc") == f"{E.REMOTE_LOG_DIR}/so-tc.log"


# ------------------------------------------------------------------ the command line


def _malicious(tmp_path: Path) -> Path:
    bad = tmp_path / "province-evil.yaml"
    text = LAB.read_text(encoding="utf-8")
    name = next(s["name"] for s in lab_data()["wan"]["sites"] if s["id"] == "so-tc")
    assert text.count(f"name: {name},") == 1
    bad.write_text(text.replace(f"name: {name},", 'name: "Sở Tài chính\\n[Interface]\\nPreUp = touch /tmp/dcops-pwned",'),
                   encoding="utf-8")
    return bad


def test_dcops_validate_refuses_a_newline_in_a_site_name(tmp_path):
    bad = _malicious(tmp_path)
    res = subprocess.run([*DCOPS, "validate", str(bad)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    line = next(ln for ln in res.stderr.splitlines() if ".name:" in ln)
    assert line.startswith(f"{bad}:") and "wan.sites[" in line and "U+000A" in line and "fix:" in line
    assert "\n" not in line and not (tmp_path / "dcops-pwned").exists()
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    t = time.monotonic()
    res = subprocess.run([*DCOPS, "validate", str(bomb)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 2 and "anchor &a" in res.stderr
    assert time.monotonic() - t < 60


def test_dcops_wan_apply_refuses_it_before_any_host(tmp_path):
    """`dcops wan apply` validates the province file before it connects to anything: a stack
    whose environment names hosts that do not exist (and no lab) still answers exit 2."""
    bad = _malicious(tmp_path)
    cfg = tmp_path / "Pulumi.evil.yaml"
    known = tmp_path / "known_hosts"
    known.write_text("")
    env = {
        "kind": "staging",
        "work_dir": str(tmp_path / "work"),
        "backend": {"url": f"file://{tmp_path}/state", "passphrase": {"file": str(tmp_path / "passphrase")}},
        "clusters": {c["id"]: {"admin": {"kubeconfig": str(tmp_path / "kc")}, "checks": {"kubeconfig": str(tmp_path / "kc")}}
                     for c in lab_data()["datacenter"]["clusters"]},
        "wan": {"user": "dcops", "known_hosts": str(known), "identity_file": str(tmp_path / "id_ed25519")},
        "prometheus": {"url": "https://prometheus.invalid:9090"},
    }
    cfg.write_text(yaml.safe_dump({"config": {"dcops:province": str(bad), "dcops:environment": env}}))
    res = subprocess.run([*DCOPS, "wan", "apply", "--config-file", str(cfg), "--engine", "pyinfra"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "U+000A" in out and "wan.sites[" in out and "nothing was changed" in out, out
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").rglob("*")), "nothing was written for hosts"
