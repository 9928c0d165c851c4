"""What security level 3 asks of the province file, and the controls that rest on it (issue 16):

- central log retention: validation refuses less than the level's minimum (90 days at level 3),
  with the fix; the log server's logrotate is rendered from the province's retention;
- authoritative time: a hub that serves the WAN's time names its upstream source
  (``wan.hub.time_upstream``); the hub's chrony follows it;
- a provincial registry (``datacenter.registry``): validation refuses platform images outside
  it unless an exception with its reason is declared, and DCOPS-K8S-012 judges the running
  images against the declared registry, never against the file's own images.

The host controls' verdicts are in tests/test_checks_evidence.py and tests/test_checks_host.py.
"""

from __future__ import annotations

import yaml

from checks import scenario_k8s as S
from checks.controls import cluster as C
from checks.result import Status
from infra.model import ProvinceFile
from infra.paths import REPO
from infra.render import endpoint as E
from infra.validate import check_text

PROVINCE = REPO / "stacks" / "province-lab.yaml"
HUB_KEY = "x" * 42 + "A="


def _data() -> dict:
    return yaml.safe_load(PROVINCE.read_text(encoding="utf-8"))


def _hub(d: dict) -> dict:
    return d["wan"]["hubs"][0] if "hubs" in d["wan"] else d["wan"]["hub"]


def _problems(d: dict) -> dict[str, str]:
    _, problems = check_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False))
    return {p.path: f"{p.message} -- fix: {p.fix}" for p in problems}


def test_the_lab_file_meets_level3():
    assert _problems(_data()) == {}


def test_log_retention_below_the_level_is_refused_with_the_fix():
    d = _data()
    d["datacenter"]["log_retention_days"] = 60
    p = _problems(d)
    assert "at least 90 days" in p["datacenter.log_retention_days"]
    assert "set datacenter.log_retention_days to 90 or more" in p["datacenter.log_retention_days"]
    d["datacenter"]["log_retention_days"] = 90
    assert "datacenter.log_retention_days" not in _problems(d)
    d["province"]["security_level"] = 2  # level 2: one month (platforms keep their own level 3)
    for plat in d["platforms"]:
        plat["security_level"] = 2
    d["datacenter"]["log_retention_days"] = 30
    assert "datacenter.log_retention_days" not in _problems(d)


def test_log_retention_lands_in_the_log_servers_logrotate():
    d = _data()
    d["datacenter"]["log_retention_days"] = 123
    pf = ProvinceFile.model_validate(d)
    conf = next(f.content for f in E.render_gateway(pf, {E.GATEWAY: HUB_KEY}).part("logging").files
                if f.path == E.LOGROTATE_REMOTE)
    assert "\trotate 123\n" in conf and "\tmaxage 123\n" in conf and "\tdaily\n" in conf


def test_a_hub_without_upstream_time_is_refused_at_level3():
    d = _data()
    _hub(d).pop("time_upstream")
    p = _problems(d)
    (path,) = [k for k in p if k.endswith("time_upstream")]
    assert "free-running" in p[path] and "time_upstream: [{address:" in p[path]
    # a hub that does not serve the WAN's time needs no upstream of its own
    _hub(d)["ntp_server"] = "10.10.5.123"
    assert not [k for k in _problems(d) if k.endswith("time_upstream")]


def test_the_hubs_chrony_follows_its_upstream():
    pf = ProvinceFile.model_validate(_data())
    up = [t.address for t in pf.wan.hub.time_upstream]
    assert up
    conf = E.render_gateway(pf, {E.GATEWAY: HUB_KEY}).part("time").files[0].content
    lines = conf.splitlines()
    assert [l.split()[1] for l in lines if l.startswith("server ")] == up
    assert f"allow {pf.wan.tunnel_pool}" in lines
    # a site follows the hub only, never the upstream
    site = E.render_site(pf, pf.wan.sites[0].id, {E.GATEWAY: HUB_KEY}).part("time").files[0].content
    assert [l for l in site.splitlines() if l.startswith("server ")] == [f"server {pf.wan.hub.ntp_server} iburst"]


def test_images_outside_the_declared_registry_are_refused_unless_excepted():
    d = _data()
    assert d["datacenter"]["registry"]["host"] == "registry.dcops.lab"
    d["platforms"][0]["image"] = "docker.io/library/nginx:1.27"
    p = _problems(d)
    assert "does not come from the provincial registry registry.dcops.lab" in p["platforms[0].image"]
    assert "exceptions" in p["platforms[0].image"]
    d["datacenter"]["registry"]["exceptions"] = [{"image": "docker.io/library/nginx:1.27",
                                                  "reason": "Ảnh của nhà cung cấp, chưa đưa được vào kho của tỉnh"}]
    assert "platforms[0].image" not in _problems(d)
    # an exception for an image no platform uses is refused
    d["datacenter"]["registry"]["exceptions"].append({"image": "quay.io/x/y:1", "reason": "không dùng"})
    assert "datacenter.registry.exceptions[1].image" in _problems(d)
    # no registry at level 3: refused
    d = _data()
    del d["datacenter"]["registry"]
    assert "datacenter.registry" in _problems(d)


def _k8s012(pf: ProvinceFile, image: str | None = None):
    snap = S.rendered_snapshot(pf, "primary")
    if image:
        snap.per_ns["motcua"]["deployments"][0]["spec"]["template"]["spec"]["containers"][0]["image"] = image
    (r,) = C.run(snap, pf, {"DCOPS-K8S-012"})
    return r


def test_k8s012_judges_against_the_declared_registry_not_the_files_own_images():
    d = _data()
    pf = ProvinceFile.model_validate(d)
    assert _k8s012(pf).status == Status.passed
    r = _k8s012(pf, "docker.io/library/nginx:1.27")
    assert r.status == Status.failed and r.evidence["namespaces"]["motcua"]["outside_registry"]
    # the circular allow-list is gone: a public image named by the province file itself (a
    # model that skipped validation) does not make its registry allowed
    d["platforms"][1]["image"] = "docker.io/library/nginx:1.27"
    pf2 = ProvinceFile.model_validate(d)
    r = _k8s012(pf2, "docker.io/library/nginx:1.27")
    assert r.status == Status.failed, r.evidence
    # a declared exception, with its reason, is allowed (that image only)
    d["datacenter"]["registry"]["exceptions"] = [{"image": "docker.io/library/nginx:1.27", "reason": "ảnh của nhà cung cấp"}]
    pf3 = ProvinceFile.model_validate(d)
    assert _k8s012(pf3, "docker.io/library/nginx:1.27").status == Status.passed
    assert _k8s012(pf3, "docker.io/library/nginx:1.28").status == Status.failed
    # no registry declared: nothing to compare with, not a pass
    del d["datacenter"]["registry"]
    r = _k8s012(ProvinceFile.model_validate(d))
    assert r.status == Status.not_assessed and "datacenter.registry" in r.reason


def _k8s015(pf: ProvinceFile, flags, configured=True, error=""):
    snap = S.rendered_snapshot(pf, "primary")
    snap.apiserver_flags, snap.evidence_configured, snap.encryption_config_error = flags, configured, error
    (r,) = C.run(snap, pf, {"DCOPS-K8S-015"})
    return r


def test_k8s015_the_api_server_listens_in_the_management_zone_only():
    pf = ProvinceFile.model_validate(_data())
    mgmt = pf.management_segment().cidr
    assert _k8s015(pf, ["--bind-address=127.0.0.1"]).status == Status.passed  # the lab's: published to management only
    inside = mgmt.split("/")[0].rsplit(".", 1)[0] + ".20"
    assert _k8s015(pf, ["--bind-address", inside]).status == Status.passed
    r = _k8s015(pf, ["--secure-port=6443"])  # no --bind-address: kube-apiserver listens on every interface
    assert r.status == Status.failed and "every address (0.0.0.0)" in r.reason, r
    r = _k8s015(pf, ["--bind-address=10.10.3.5"])
    assert r.status == Status.failed and f"outside the management segment {mgmt}" in r.reason, r
    # no evidence: not assessed; evidence that could not be read: an error (never a pass)
    r = _k8s015(pf, None, configured=False)
    assert r.status == Status.not_assessed and r.evidence["would_settle"], r
    r = _k8s015(pf, None, error="the environment gives no apiserver_args_file")
    assert r.status == Status.not_assessed, r
    r = _k8s015(pf, None, error="FileNotFoundError: [Errno 2] No such file or directory: '/x/apiserver-args.json'")
    assert r.status == Status.error and "apiserver-args.json" in r.reason, r
