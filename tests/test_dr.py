"""DR as a standby site (issue 19), without a lab: the model and its validation, the DR copies the
renderer makes, the placement record, and the dry runs of `dcops dr failover` / `failback`.
The lab test (a failover with the primary's API server stopped) is tests/test_dr_lab.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.dr import placement as PL
from infra.model import cron_max_gap_minutes
from infra.render.k8s import object_key, render_province
from infra.validate import check_text, load_province

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "stacks" / "province-lab.yaml"
DCOPS = [str(Path(sys.executable).parent / "dcops")]


def _problems(text: str) -> list:
    model, problems = check_text(text)
    assert model is None and problems
    return problems


def _lab_with(edit) -> str:
    data = yaml.safe_load(LAB.read_text())
    edit(data)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _platform(data, pid):
    return next(p for p in data["platforms"] if p["id"] == pid)


# --------------------------------------------------------------------------- the schedule


@pytest.mark.parametrize("expr, gap", [
    ("30 1 * * *", 1440), ("0 * * * *", 60), ("*/15 * * * *", 15), ("0 1,13 * * *", 720),
    ("0 2 * * 0", 7 * 1440), ("0 2 * * 7", 7 * 1440), ("0 3 1 * *", 31 * 1440), ("0 0 * * 1-5", 3 * 1440),
])
def test_backup_interval_from_cron(expr, gap):
    assert cron_max_gap_minutes(expr) == gap


# --------------------------------------------------------------------------- validation


def test_lab_province_has_a_warm_and_a_cold_platform():
    m = load_province(LAB)
    modes = {p.id: p.dr.mode for p in m.platforms}
    assert "warm" in modes.values() and "cold" in modes.values()
    for p in m.platforms:
        if p.dr.mode != "none":
            assert m.dr_cluster_of(p.id) == "dr" and p.dr.rpo_minutes and p.dr.rto_minutes


def test_cold_rpo_shorter_than_the_backup_interval_is_refused_with_the_fix():
    (pb,) = _problems(_lab_with(lambda d: _platform(d, "ioc")["dr"].update(rpo_minutes=60)))
    assert pb.path == "platforms[4].dr.rpo_minutes" and pb.line
    assert "1440" in pb.message and "'30 1 * * *'" in pb.message
    assert "at least 1440" in pb.fix and "warm" in pb.fix
    # the same RPO with hourly backups is fine
    model, problems = check_text(_lab_with(lambda d: (_platform(d, "ioc")["dr"].update(rpo_minutes=60),
                                                      d["datacenter"]["backup"].update(schedule="0 * * * *"))))
    assert problems == [] and model.platform_by_id["ioc"].dr.rpo_minutes == 60


def test_warm_rpo_is_not_bound_to_the_backups():
    model, problems = check_text(_lab_with(lambda d: _platform(d, "motcua")["dr"].update(rpo_minutes=1)))
    assert problems == []


@pytest.mark.parametrize("edit, path, words, fix", [
    (lambda d: _platform(d, "motcua")["dr"].pop("rto_minutes"), "platforms[1].dr.rto_minutes",
     "needs its recovery objective", "rto_minutes: 60"),
    (lambda d: _platform(d, "lris").update(dr={"mode": "warm", "rpo_minutes": 5, "rto_minutes": 5}),
     "platforms[5].dr.mode", "cannot stand by for itself", "mode: none"),
    (lambda d: _platform(d, "motcua")["dr"].update(cluster="primary"), "platforms[1].dr.cluster",
     "not dr", "role: dr"),
    (lambda d: _platform(d, "motcua")["dr"].update(cluster="nowhere"), "platforms[1].dr.cluster",
     "does not exist", "dr, primary"),
    (lambda d: _platform(d, "dvc").update(dr={"mode": "warm", "rpo_minutes": 5, "rto_minutes": 5}),
     "platforms[0].dr.mode", "no node pool in segment 'dmz'", "segment: dmz"),
    (lambda d: _platform(d, "eoffice").update(dr={"mode": "cold", "rpo_minutes": 1440, "rto_minutes": 60}),
     "platforms[2].dr.mode", "'hdd-archive', which is not on DR cluster 'dr'", "under the class's 'clusters'"),
    (lambda d: d["datacenter"]["clusters"][1].pop("exposure"), "platforms[1].dr.mode",
     "has no 'exposure'", "add 'exposure' to cluster 'dr'"),
    (lambda d: d["datacenter"]["backup"].update(target_cluster="primary"), "platforms[4].dr.mode",
     "lost with it", "target_cluster"),
    (lambda d: d["datacenter"]["clusters"][1].update(role="primary"), "platforms[1].dr.mode",
     "0 clusters with role dr", "role: dr"),
])
def test_dr_mode_needs_a_dr_cluster_that_can_run_the_platform(edit, path, words, fix):
    problems = _problems(_lab_with(edit))
    hit = [p for p in problems if p.path == path and words in p.message]
    assert hit, "\n".join(p.render("lab") for p in problems)
    assert fix in hit[0].fix and hit[0].line


# --------------------------------------------------------------------------- the DR copies


def test_warm_copy_stands_by_at_zero_and_cold_copy_holds_what_a_restore_needs():
    m = load_province(LAB)
    dr = render_province(m)["dr"]
    warm, cold = dr.dr_copies["motcua"], dr.dr_copies["ioc"]
    assert (warm.mode, warm.active, cold.mode, cold.active) == ("warm", False, "cold", False)
    assert warm.workload["kind"] == "Deployment" and warm.workload["spec"]["replicas"] == 0
    svc = next(o for o in warm.objects if o["kind"] == "Service")
    assert svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["externalTrafficPolicy"] == "Local"
    assert svc["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] == m.platform_by_id["motcua"].address
    assert svc["metadata"]["annotations"]["metallb.io/address-pool"] == "dr-services"  # the DR site's pool
    assert warm.objects[0]["metadata"]["labels"]["dcops.gov.vn/cluster"] == "dr"
    assert cold.workload is None
    assert {o["kind"] for o in cold.objects} == {"Namespace", "NetworkPolicy", "ServiceAccount", "Role", "RoleBinding",
                                                  "LimitRange", "ResourceQuota"}
    # the standby's DR pods reach their dependency on the primary by its segment, not by namespace
    to_lgsp = next(o for o in warm.objects if o["metadata"]["name"] == "allow-to-lgsp")
    assert to_lgsp["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.10.3.0/24"}}]
    # every object of the cluster once
    keys = [object_key(o) for o in dr.objects()]
    assert len(keys) == len(set(keys))


def test_a_placement_runs_the_platform_on_dr_and_keeps_it_at_zero_at_home():
    m = load_province(LAB)
    before = render_province(m)
    after = render_province(m, {"motcua": "dr", "ioc": "dr"})
    assert after["dr"].dr_copies["motcua"].active and after["dr"].dr_copies["motcua"].workload["spec"]["replicas"] == 2
    ioc = after["dr"].dr_copies["ioc"]
    assert ioc.active and ioc.workload["kind"] == "StatefulSet" and ioc.workload["spec"]["replicas"] == 2
    # home: the same objects (nothing deleted, for the failback), the workload at 0
    for pid in ("motcua", "ioc"):
        home_before = {object_key(o) for o in before["primary"].platforms[pid].objects()}
        home_after = after["primary"].platforms[pid]
        assert {object_key(o) for o in home_after.objects()} == home_before
        assert home_after.workload["spec"]["replicas"] == 0
    # a platform on the primary that depends on motcua now reaches it across clusters
    dvc = {o["metadata"]["name"]: o for o in after["primary"].platforms["dvc"].network_policies}
    assert dvc["allow-to-motcua"]["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.10.3.0/24"}}]
    assert before["primary"].platforms["dvc"].network_policies != after["primary"].platforms["dvc"].network_policies
    # without a placement, or with every platform at home, nothing moves
    assert render_province(m, {"motcua": "primary"})["dr"].objects() == before["dr"].objects()


def test_placement_record_round_trip_and_refuses_a_corrupt_one(tmp_path):
    assert PL.placement(tmp_path) == {}
    PL.set_running(tmp_path, "motcua", "dr", "primary", "warm", "failover")
    PL.add_history(tmp_path, {"operation": "failover", "platforms": ["motcua"], "dry_run": False, "outcome": "ok"})
    assert PL.placement(tmp_path) == {"motcua": "dr"}
    assert PL.last_exercise(tmp_path, "failover")["outcome"] == "ok"
    assert oct(PL.record_path(tmp_path).parent.stat().st_mode & 0o777) == "0o700"
    PL.set_running(tmp_path, "motcua", "primary", "primary", "warm", "failback")
    assert PL.placement(tmp_path) == {} and len(PL.read(tmp_path)["history"]) == 1
    PL.record_path(tmp_path).write_text("{not json")
    with pytest.raises(PL.PlacementError, match="cannot be read"):
        PL.placement(tmp_path)


# --------------------------------------------------------------------------- the commands, dry


def _stack(tmp: Path) -> Path:
    """A stack of the lab province whose clusters' kubeconfigs lead nowhere (a dry run contacts nothing)."""
    for name in ("pass", "prom-pw", "id", "kh", "p.kc", "p-a.kc", "d.kc", "d-a.kc"):
        (tmp / name).write_text("x\n")
        (tmp / name).chmod(0o600)
    env = {
        "kind": "staging", "work_dir": str(tmp / "work"),
        "backend": {"url": f"file://{tmp / 'state'}", "passphrase": {"file": str(tmp / "pass")}},
        "clusters": {c: {"admin": {"kubeconfig": str(tmp / f"{c[0]}.kc")}, "checks": {"kubeconfig": str(tmp / f"{c[0]}-a.kc")}}
                     for c in ("primary", "dr")},
        "wan": {"user": "ops", "identity_file": str(tmp / "id"), "known_hosts": str(tmp / "kh")},
        "prometheus": {"url": "https://192.0.2.20:9090", "ca_file": str(tmp / "kh"),
                       "basic_auth": {"username": "checks", "password": {"file": str(tmp / "prom-pw")}}},
    }
    cfg = tmp / "Pulumi.t.yaml"
    cfg.write_text(yaml.safe_dump({"config": {"dcops:province": str(LAB), "dcops:environment": env}}))
    return cfg


def _dcops(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DCOPS, "dr", *args, "-s", "t", "--config-file", str(cfg)], capture_output=True, text=True,
                          cwd=REPO, timeout=120, stdin=subprocess.DEVNULL,
                          env={k: v for k, v in os.environ.items() if not k.startswith("DCOPS_")})


def test_failover_dry_run_says_every_step_and_changes_nothing(tmp_path):
    cfg = _stack(tmp_path)
    r = _dcops(cfg, "failover", "--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "motcua (warm): would failover primary -> dr" in out and "ioc (cold): would failover primary -> dr" in out
    assert "restore the latest backup of ioc into dr/ioc" in out
    assert "restore the latest backup of motcua" not in out  # warm: its data is replicated, nothing restored
    assert "Deployment/motcua has 2 ready replica(s) on dr" in out and "StatefulSet/ioc has 2 ready" in out
    assert "10.10.3.10 is served from dr" in out
    assert not (tmp_path / "work").exists()  # nothing written
    one = _dcops(cfg, "failover", "--dry-run", "--platform", "motcua")
    assert one.returncode == 0 and "motcua" in one.stdout and "ioc" not in one.stdout


@pytest.mark.parametrize("platform, words", [("lris", "DR mode none"), ("nope", "does not exist")])
def test_failover_refuses_a_platform_it_cannot_move(tmp_path, platform, words):
    r = _dcops(_stack(tmp_path), "failover", "--dry-run", "--platform", platform)
    assert r.returncode == 2 and words in r.stderr


def test_failback_and_status_follow_the_record(tmp_path):
    cfg = _stack(tmp_path)
    r = _dcops(cfg, "failback", "--dry-run")
    assert r.returncode == 0 and "nothing to failback" in r.stdout
    PL.set_running(tmp_path / "work", "motcua", "dr", "primary", "warm", "failover")
    r = _dcops(cfg, "failback", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "motcua (warm): would failback dr -> primary" in r.stdout and "0 replicas" in r.stdout
    assert "ioc" in r.stdout and "already runs at home" in r.stdout
    st = _dcops(cfg, "status", "--json")
    rows = {x["platform"]: x for x in json.loads(st.stdout)["platforms"]}
    assert rows["motcua"]["runs_on"] == "dr" and rows["ioc"]["runs_on"] == "primary"
    assert "FAILED OVER" in _dcops(cfg, "status").stdout
    # failing over again skips what already runs there
    r = _dcops(cfg, "failover", "--dry-run")
    assert "motcua: already runs on dr" in r.stdout and "ioc (cold): would failover" in r.stdout


def test_check_follows_the_record():
    """The checks judge a moved platform on the cluster it runs on (the model as placed)."""
    from checks.controls import cluster as K

    m = load_province(LAB).placed({"motcua": "dr"})
    assert [p.id for p in m.platforms_on("dr")] == ["motcua", "lris"]
    assert "motcua" not in [p.id for p in m.platforms_on("primary")]
    assert K.level_of(m, "dr") == 3


# --------------------------------------------------------------------------- an address of its own at the DR site


def test_an_address_at_the_dr_site_moves_with_the_platform_and_the_sites_may_reach_it():
    from infra.render.endpoint import site_reach

    text = _lab_with(lambda d: _platform(d, "motcua")["dr"].update(address="10.10.3.30"))
    m, problems = check_text(text)
    assert problems == []
    there = m.placed({"motcua": "dr"}).platform_by_id["motcua"]
    assert (there.cluster, there.address, there.segment) == ("dr", "10.10.3.30", "app")
    svc = next(o for o in render_province(m)["dr"].dr_copies["motcua"].objects if o["kind"] == "Service")
    assert svc["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] == "10.10.3.30"
    site = m.site_by_id["so-tc"]
    assert ("motcua", "10.10.3.30", "tcp", 8080) in site_reach(m, site)
    assert ("motcua", "10.10.3.10", "tcp", 8080) in site_reach(m, site)


@pytest.mark.parametrize("dr, path, words", [
    ({"address": "10.10.9.30"}, "platforms[1].dr.address", "is not an address of segment 'app'"),
    ({"address": "10.10.3.12"}, "platforms[1].dr.address", "already used by platforms[3].address"),
    ({"segment": "nowhere"}, "platforms[1].dr.segment", "does not exist"),
    ({"segment": "data"}, "platforms[1].dr.mode", "no node pool in segment 'data'"),
])
def test_a_dr_address_and_segment_are_checked(dr, path, words):
    problems = _problems(_lab_with(lambda d: _platform(d, "motcua")["dr"].update(dr)))
    assert any(p.path == path and words in p.message for p in problems), [p.render("lab") for p in problems]


def test_failover_dry_run_names_the_dns_change_for_an_address_of_its_own(tmp_path):
    cfg = _stack(tmp_path)
    province = tmp_path / "province.yaml"
    province.write_text(_lab_with(lambda d: _platform(d, "motcua")["dr"].update(address="10.10.3.30")))
    data = yaml.safe_load(cfg.read_text())
    data["config"]["dcops:province"] = str(province)
    cfg.write_text(yaml.safe_dump(data))
    r = _dcops(cfg, "failover", "--dry-run", "--platform", "motcua")
    assert r.returncode == 0, r.stderr
    assert "10.10.3.30 is served from dr" in r.stdout and "DNS: point the name of motcua to 10.10.3.30" in r.stdout
