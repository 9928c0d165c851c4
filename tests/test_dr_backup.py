"""Backups with Velero (issue 19): the rendered objects, the records, the controls' verdicts on
their scenario files, the CLI's input handling and dry runs, and the pinned velero client.

No lab here: tests/test_dr_backup_lab.py backs up and restores on one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO, dcops

from checks.catalog import SCENARIOS, catalog
from checks.controls import backup as BAK
from checks.result import Status
from infra.dr import backup as B
from infra.environment import BackupTarget
from infra.render import velero as R
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"
NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def pf():
    return load_province(PROVINCE)


def target(site: str = "dr", **kw) -> BackupTarget:
    return BackupTarget.model_validate({"s3_url": "https://rgw.dr.example.gov.vn", "bucket": "dcops-velero",
                                        "credentials_file": "/etc/dcops/velero-credentials", "site": site, **kw})


# --------------------------------------------------------------------- rendering


def test_a_schedule_per_platform_with_the_province_cron_and_retention(pf):
    b = pf.datacenter.backup
    for cluster in pf.cluster_by_id:
        objs = R.objects(pf, cluster, target(), b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        scheds = [o for o in objs if o["kind"] == "Schedule"]
        assert sorted(s["metadata"]["name"] for s in scheds) == sorted(f"dcops-{p.id}" for p in pf.platforms_on(cluster))
        for s in scheds:
            assert s["apiVersion"] == "velero.io/v1" and s["metadata"]["namespace"] == "velero"
            assert s["spec"]["schedule"] == b.schedule
            assert s["spec"]["template"]["ttl"] == f"{b.retention_days * 24}h0m0s"
            pid = s["metadata"]["labels"]["dcops.gov.vn/platform"]
            assert s["spec"]["template"]["includedNamespaces"] == [pf.platform_by_id[pid].namespace]
            assert s["spec"]["template"]["storageLocation"] == "dcops"
        bsl = next(o for o in objs if o["kind"] == "BackupStorageLocation")
        assert bsl["spec"]["objectStorage"]["bucket"] == "dcops-velero"
        assert bsl["spec"]["config"]["s3Url"] == "https://rgw.dr.example.gov.vn"
        assert bsl["spec"]["config"]["serverSideEncryption"] == "AES256"  # encrypted: true in the province
        assert bsl["spec"]["objectStorage"]["caCert"]  # the CA travels, base64
        text = yaml.safe_dump_all(objs)
        assert "velero-credentials" not in text and "secret" not in text.lower()  # neither the keys nor where they are


def test_an_unencrypted_policy_asks_for_no_encryption_and_a_profile_is_passed():
    bsl = R.storage_location(target(profile="velero"), encrypted=False)
    assert "serverSideEncryption" not in bsl["spec"]["config"] and bsl["spec"]["config"]["profile"] == "velero"
    assert "caCert" not in bsl["spec"]["objectStorage"]


def test_the_rendered_objects_validate_against_velero_s_crds_when_velero_is_built(pf):
    """The Schedule and location fields exist in Velero's own CRDs (from the pinned velero)."""
    crds = {c["spec"]["names"]["kind"]: c for c in B.crds()}
    assert {"Backup", "Restore", "Schedule", "BackupStorageLocation"} <= set(crds)
    for o in R.objects(pf, "primary", target()):
        if o["kind"] not in crds:
            continue
        schema = crds[o["kind"]]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]

        def walk(obj, sch, path):
            props = sch.get("properties")
            if isinstance(obj, dict) and props is not None and not sch.get("additionalProperties"):
                for k, v in obj.items():
                    assert k in props, f"{o['kind']}: {path}.{k} is not in Velero's CRD"
                    walk(v, props[k], f"{path}.{k}")

        walk(o["spec"], schema, "spec")


# --------------------------------------------------------------------- records and the verdict


def test_records_round_trip_and_refuse_secrets(tmp_path):
    st = SimpleNamespace(work_dir=tmp_path, name="t")
    rec = {"kind": "restore-test", "platform": "dvc", "date": "2026-12-04T10:00:00Z", "outcome": "pass"}
    p = B.write_record(st, "restore-test", "dvc", rec)
    assert p == tmp_path / "dr" / "restore-test" / "dvc.json"
    assert B.read_record(st, "restore-test", "dvc") == rec
    assert B.read_record(st, "restore-test", "lgsp") is None
    assert json.loads((tmp_path / "dr" / "history.jsonl").read_text().splitlines()[-1])["platform"] == "dvc"
    with pytest.raises(B.BackupError):
        pem = "-----{} PRIVATE KEY-----"  # a fake key's armour, assembled here: no key-like text in the repo
        B.write_record(st, "backup", "dvc", {**rec, "oops": pem.format("BEGIN") + "\nMIIE\n" + pem.format("END")})
    p.write_text('{"date": 3}')
    with pytest.raises(B.RecordError):
        B.read_record(st, "restore-test", "dvc")


def test_judge_counts_by_kind_and_reads_the_marker():
    want = {"apps/Deployment": 1, "ConfigMap": 2, "Service": 1, "Pod": 3}  # pods: not counted (controllers remake them)
    got = {"apps/Deployment": 1, "ConfigMap": 2, "Service": 1}
    marker = {"data": {"token": "abc", "written_at": "2026-12-04T10:00:00Z"}}
    assert B.judge(want, got, marker, "abc", None) == (True, [])
    ok, why = B.judge(want, {**got, "ConfigMap": 1}, marker, "abc", None)
    assert not ok and why == ["ConfigMap: 1 of 2 restored"]
    ok, why = B.judge(want, got, None, "abc", None)
    assert not ok and "did not come back" in why[0]
    ok, why = B.judge(want, got, {"data": {"token": "zzz"}}, "abc", None)
    assert not ok and "another token" in why[0]
    # a scheduled backup (no token of ours): the marker must be older than the backup
    assert B.judge(want, got, marker, None, "2026-12-04T11:00:00Z")[0]
    assert not B.judge(want, got, marker, None, "2026-12-04T09:00:00Z")[0]


# --------------------------------------------------------------------- the controls' scenarios


def _view(sc: dict, pf, tmp_path: Path) -> BAK.View:
    v = BAK.View(now=NOW, target=target(site=sc.get("backup_site", "dr")), records_dir=tmp_path / "dr")
    if sc.get("velero") == "rendered":
        objs = R.objects(pf, sc["target"], v.target)
        for ch in sc.get("change") or []:
            o = next(x for x in objs if x["kind"] == ch["kind"] and (not ch.get("name") or x["metadata"]["name"] == ch["name"]))
            if "path" not in ch:
                objs.remove(o)
                continue
            *head, last = ch["path"].split(".")
            for k in head:
                o = o[k]
            if ch.get("delete"):
                del o[last]
            else:
                o[last] = ch["value"]
        v.locations[sc["target"]] = next((o for o in objs if o["kind"] == "BackupStorageLocation"), None)
        v.schedules[sc["target"]] = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Schedule"}
    for b in sc.get("backups") or []:
        done = NOW - dt.timedelta(hours=b["completed_hours_ago"])
        cl = pf.platform_by_id[b["platform"]].cluster
        v.backups.setdefault(cl, []).append({
            "metadata": {"name": b["name"], "labels": {"dcops.gov.vn/platform": b["platform"]}},
            "spec": {"includedNamespaces": [b["platform"]]},
            "status": {"phase": b["phase"], "completionTimestamp": done.isoformat().replace("+00:00", "Z")}})
    if "record" in sc and sc["record"] is not None:
        r = sc["record"]
        rec = {"kind": "restore-test", "platform": sc["target"], "outcome": r["outcome"], "reasons": r.get("reasons", []),
               "date": (NOW - dt.timedelta(days=r["days_ago"])).isoformat().replace("+00:00", "Z")}
        B.write_record(SimpleNamespace(work_dir=tmp_path), "restore-test", sc["target"], rec)
    if "record_text" in sc:
        p = tmp_path / "dr" / "restore-test" / f"{sc['target']}.json"
        p.parent.mkdir(parents=True)
        p.write_text(sc["record_text"])
    return v


SCENARIO_FILES = sorted((SCENARIOS / "backup").glob("DCOPS-BAK-*.yaml"))


def test_every_backup_control_has_its_scenarios():
    for cid in BAK.CONTROLS:
        names = [p.name for p in SCENARIO_FILES if p.name.startswith(cid + ".")]
        assert any(n.endswith(".pass.yaml") for n in names) and any(n.endswith(".fail.yaml") for n in names), cid
        assert catalog().get(cid).severity in ("high", "critical")


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_backup_scenario(path, pf, tmp_path):
    sc = yaml.safe_load(path.read_text())
    v = _view(sc, pf, tmp_path)
    res = [r for r in BAK.run(v, pf, only={sc["control"]}) if r.target == sc["target"]]
    assert len(res) == 1, res
    r = res[0]
    want = {"pass": Status.passed, "fail": Status.failed, "error": Status.error}[sc["expect"]]
    assert r.status == want, (r.status, r.reason, r.evidence)
    for frag in sc.get("reasons") or []:
        assert frag in r.reason, (frag, r.reason)


def test_unreadable_velero_objects_are_an_error_never_a_pass(pf, tmp_path):
    v = BAK.View(now=NOW, target=target(), records_dir=tmp_path)
    v.errors["primary"] = "KubeError: GET /apis/velero.io/v1/...: HTTP 403: forbidden"
    res = BAK.run(v, pf, only={"DCOPS-BAK-001", "DCOPS-BAK-002"})
    on_primary = [r for r in res if r.target == "primary" or pf.platform_by_id.get(r.target, None) is not None
                  and pf.platform_by_id[r.target].cluster == "primary"]
    assert on_primary and all(r.status == Status.error for r in on_primary), [(r.target, r.status) for r in on_primary]


def test_a_restore_test_older_than_the_interval_fails_and_a_fresh_one_passes(pf, tmp_path):
    interval = pf.datacenter.backup.restore_test_interval_days
    st = SimpleNamespace(work_dir=tmp_path)
    for days, want in ((interval + 1, Status.failed), (interval - 1, Status.passed)):
        B.write_record(st, "restore-test", "lgsp", {"platform": "lgsp", "outcome": "pass",
                                                    "date": (NOW - dt.timedelta(days=days)).isoformat()})
        r = BAK.run(BAK.View(now=NOW, target=target(), records_dir=tmp_path / "dr"), pf,
                    only={"DCOPS-BAK-003"}, targets={"lgsp"})[0]
        assert r.status == want and r.evidence["interval_days"] == interval, (days, r.reason)


# --------------------------------------------------------------------- the CLI


def _stack(tmp_path: Path, with_backup: bool = True) -> Path:
    cred = tmp_path / "velero-credentials"
    cred.write_text("[default]\naws_access_key_id = X\naws_secret_access_key = Y\n")
    os.chmod(cred, 0o600)
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\n")
    env = {
        "kind": "staging", "work_dir": str(tmp_path / "work"),
        "backend": {"url": f"file://{tmp_path}/state", "passphrase": {"file": str(cred)}},
        "clusters": {c: {"admin": {"kubeconfig": str(kc)}, "checks": {"kubeconfig": str(kc), "context": "ro"}}
                     for c in ("primary", "dr")},
        "wan": {"user": "dcops", "identity_file": str(cred), "known_hosts": str(cred)},
        "prometheus": {"url": "https://prom.example:9090"},
    }
    if with_backup:
        env["backup"] = {"s3_url": "https://rgw.dr.example.gov.vn", "bucket": "dcops-velero",
                         "credentials_file": str(cred), "site": "dr"}
    p = tmp_path / "Pulumi.t.yaml"
    p.write_text(yaml.safe_dump({"config": {"dcops:province": str(PROVINCE), "dcops:environment": env}}))
    return p


def test_cli_dry_runs_say_what_would_happen_and_contact_nothing(tmp_path):
    cfg = _stack(tmp_path)
    r = dcops("dr", "backup", "-s", "t", "--config-file", str(cfg), "--platform", "dvc", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "velero backup create dcops-dvc-" in r.stdout and "dcops-velero" in r.stdout
    assert "primary: would apply Velero's CRDs" in r.stdout and "Schedule/dcops-dvc" in r.stdout
    r = dcops("dr", "restore-test", "-s", "t", "--config-file", str(cfg), "--platform", "dvc", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dcops-rt-dvc" in r.stdout and "cluster dr" in r.stdout
    assert not (tmp_path / "work" / "dr").exists()  # a dry run writes no record


def test_cli_bad_input_is_exit_2(tmp_path):
    cfg = _stack(tmp_path)
    r = dcops("dr", "restore-test", "-s", "t", "--config-file", str(cfg), "--platform", "nope", "--dry-run")
    assert r.returncode == 2 and "unknown platform 'nope'" in r.stderr, r.stderr
    (tmp_path / "nb").mkdir()
    cfg2 = _stack(tmp_path / "nb", with_backup=False)
    r = dcops("dr", "backup", "-s", "t", "--config-file", str(cfg2), "--dry-run")
    assert r.returncode == 2 and "no 'backup' target" in r.stderr, r.stderr


def test_cli_an_unreachable_cluster_is_exit_3_and_the_attempt_is_recorded(tmp_path):
    cfg = _stack(tmp_path)
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}], "users": [{"name": "u", "user": {}}]}))
    r = dcops("dr", "restore-test", "-s", "t", "--config-file", str(cfg), "--platform", "dvc", timeout=300)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "unreachable" in r.stderr
    rec = json.loads((tmp_path / "work" / "dr" / "restore-test" / "dvc.json").read_text())
    assert rec["outcome"] == "error" and rec["target_cluster"] == "dr"


def test_help_teaches():
    for cmd in ("backup", "restore-test"):
        r = dcops("dr", cmd, "--help")
        assert r.returncode == 0 and "Exit:" in r.stdout and "Examples:" in r.stdout and "--dry-run" in r.stdout


def test_environment_refuses_backup_credentials_inside_the_repository(tmp_path):
    from infra.environment import EnvironmentError, load

    cfg = _stack(tmp_path)
    doc = yaml.safe_load(cfg.read_text())
    doc["config"]["dcops:environment"]["backup"]["credentials_file"] = str(REPO / "stacks" / "velero-credentials")
    cfg.write_text(yaml.safe_dump(doc))
    with pytest.raises(EnvironmentError) as e:
        load("t", cfg)
    assert any(p.path.endswith("backup.credentials_file") for p in e.value.problems)
    doc["config"]["dcops:environment"]["backup"]["s3_url"] = "http://rgw:80"
    cfg.write_text(yaml.safe_dump(doc))
    with pytest.raises(EnvironmentError) as e:
        load("t", cfg)
    assert any("s3_url" in p.path for p in e.value.problems)


# --------------------------------------------------------------------- the tool


def test_velero_client_runs_from_the_cache():
    from infra.paths import ToolMissing, tool

    try:
        tool("velero")
    except ToolMissing as e:
        pytest.fail(f"{e} (scripts/install-tools velero)")
    assert B.velero_version() == "v1.18.3"


def test_what_the_backup_holds_is_read_from_velero_s_resource_list():
    """`velero backup describe --details` (tabwriter spacing): counts by kind in one namespace."""
    out = ("Name:         dcops-dvc-1\nPhase:  Completed\n\nResource List:\n  apps/v1/Deployment:\n    - dvc/dvc\n"
           "  v1/ConfigMap:\n    - dvc/dcops-backup-marker\n    - dvc/kube-root-ca.crt\n    - lgsp/x\n"
           "  v1/Namespace:\n    - dvc\n  v1/PersistentVolume:\n    - pvc-1\n\nBackup Volumes:\n  <none included>\n")

    class K:
        def velero(self, *a, **kw):
            return SimpleNamespace(stdout=out)

    assert B.backup_contents(K(), "dcops-dvc-1", "dvc") == {"apps/Deployment": 1, "ConfigMap": 2}
    out = "Name: x\nResource List:\t<backup resource list not found>\n"
    with pytest.raises(B.BackupError):
        B.backup_contents(K(), "x", "dvc")
