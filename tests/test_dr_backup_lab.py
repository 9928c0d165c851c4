"""Backups and restore tests on a lab (issue 19): Velero's real servers, the lab's S3 object store.

One small lab for the module: two clusters (primary, dr), one WAN site (the management
namespace the object store and Velero run in), the S3 object store; one platform's objects
(dvc, on the primary) applied from the renderer. Then, through the CLI as an operator:

- `dcops dr backup --platform dvc`: the marker is written, Velero backs the namespace up;
- `dcops dr restore-test --platform dvc`: restored on the DR cluster, counted, marker found,
  recorded, scratch namespace removed;
- a backup without the marker (made by hand with velero) makes the restore test fail (exit 1);
- the controls through the read-only identity: BAK-001/002 pass; BAK-003 fails once the
  record is older than restore_test_interval_days;
- last, the same lab's object store as a team's shared Pulumi state: two `dcops provision` at once,
  one gets Pulumi's lock error (was tests/test_shared_state.py, with a lab of its own like this one).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import string
import time

import pytest
import yaml

from conftest import REPO, dcops, lab_stack

PLATFORM = "dvc"


def _kubectl(lab: str, cluster: str, *args: str, stdin: str | None = None, check: bool = True):
    import subprocess

    from infra.lab.controlplane import kubeconfig_path
    from infra.paths import tool

    r = subprocess.run([str(tool("kubectl")), "--kubeconfig", str(kubeconfig_path(lab, cluster)), *args],
                       input=stdin, capture_output=True, text=True, timeout=180)
    assert not check or r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def lab():
    from infra.lab import velero
    from infra.render import k8s as K
    from infra.validate import load_province

    name = "h4" + "".join(random.choices(string.ascii_lowercase + string.digits, k=4))
    try:
        r = dcops("lab", "up", "--name", name, "--site", "so-tc", "--state", "s3", timeout=1200)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        pf = load_province(REPO / "stacks" / "province-lab.yaml")
        objs = K.render_platform(pf, PLATFORM).objects()
        for c in pf.cluster_by_id:  # the read-only identity's role (pulumi up would make it)
            _kubectl(name, c, "apply", "--server-side", "--field-manager=dcops", "-f", "-",
                     stdin=yaml.safe_dump_all([K.auditor_cluster_role(), K.auditor_cluster_binding()]))
        _kubectl(name, "primary", "apply", "--server-side", "--field-manager=dcops", "-f", "-",
                 stdin=yaml.safe_dump_all(objs))
        t0 = time.monotonic()
        velero.start(name)
        print(f"velero servers up in {time.monotonic() - t0:.1f}s")
        yield name
    finally:
        dcops("lab", "down", "--name", name)


def _record(lab: str, kind: str) -> dict:
    from infra import environment as E

    st = E.load("lab", lab_stack(lab)[-1])
    return json.loads((st.work_dir / "dr" / kind / f"{PLATFORM}.json").read_text())


@pytest.mark.lab
def test_backup_then_restore_test_finds_the_marker(lab):
    t0 = time.monotonic()
    r = dcops("dr", "backup", *lab_stack(lab), "--platform", PLATFORM, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    took_backup = time.monotonic() - t0
    b = _record(lab, "backup")
    assert b["outcome"] == "pass" and b["phase"] == "Completed" and b["items_backed_up"] > 5, b
    assert b["marker"]["token"] and "secret" not in json.dumps(b).lower().replace("v1/secret", "")
    t0 = time.monotonic()
    r = dcops("dr", "restore-test", *lab_stack(lab), "--platform", PLATFORM, timeout=900)
    took_restore = time.monotonic() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rec = _record(lab, "restore-test")
    assert rec["outcome"] == "pass", rec
    assert rec["target_cluster"] == "dr" and rec["scratch_namespace"] == f"dcops-rt-{PLATFORM}"
    assert rec["marker"] == {"found": True, "written_at": b["marker"]["written_at"], "token_matches_last_backup": True}
    assert rec["restore"]["backup"] == b["backup"] and rec["restore"]["phase"] == "Completed"
    exp = rec["expected_counts"]
    assert exp.get("apps/Deployment", 0) + exp.get("apps/StatefulSet", 0) == 1 and exp.get("Service", 0) >= 1, exp
    assert exp.get("ConfigMap", 0) >= 1 and exp.get("networking.k8s.io/NetworkPolicy", 0) >= 1, exp
    for kind, n in exp.items():
        assert rec["restored_counts"].get(kind, 0) >= n, (kind, rec)
    assert rec["cleaned_up"] is True
    gone = _kubectl(lab, "dr", "get", "namespace", f"dcops-rt-{PLATFORM}", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    print(f"backup of {PLATFORM}: {took_backup:.1f}s; restore test: {took_restore:.1f}s")


@pytest.mark.lab
def test_controls_pass_then_a_stale_restore_test_fails(lab, tmp_path):
    stack = lab_stack(lab)
    r = dcops("check", *stack, "--only", "DCOPS-BAK-001,DCOPS-BAK-002,DCOPS-BAK-003", "--target", f"primary,{PLATFORM}",
              "--output", str(tmp_path / "bak.json"), timeout=600)
    doc = json.loads(open(str(tmp_path / "bak.json")).read())
    res = {(x["control"], x["target"]): x for x in doc["results"]}
    assert res[("DCOPS-BAK-001", "primary")]["status"] == "pass", res[("DCOPS-BAK-001", "primary")]
    assert res[("DCOPS-BAK-002", PLATFORM)]["status"] == "pass", res[("DCOPS-BAK-002", PLATFORM)]
    assert res[("DCOPS-BAK-003", PLATFORM)]["status"] == "pass", res[("DCOPS-BAK-003", PLATFORM)]
    assert r.returncode == 0, r.stdout[-2000:]
    # the record made older than the province's interval: the control fails, with the age
    from infra import environment as E
    from infra.validate import load_province

    st = E.load("lab", stack[-1])
    interval = load_province(st.province).datacenter.backup.restore_test_interval_days
    p = st.work_dir / "dr" / "restore-test" / f"{PLATFORM}.json"
    rec = json.loads(p.read_text())
    rec["date"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=interval + 5)).isoformat(timespec="seconds")
    p.write_text(json.dumps(rec))
    r = dcops("check", *stack, "--only", "DCOPS-BAK-003", "--target", PLATFORM, "--output", str(tmp_path / "bak.json"))
    assert r.returncode == 1, r.stdout[-2000:]
    x = json.loads(open(str(tmp_path / "bak.json")).read())["results"][0]
    assert x["status"] == "fail" and f"(interval {interval} days)" in x["reason"], x
    assert x["evidence"]["age_days"] > interval


@pytest.mark.lab
def test_a_backup_without_the_marker_fails_the_restore_test(lab):
    """A backup made by hand that leaves ConfigMaps out: the restore test cannot find the marker (exit 1)."""
    from infra import environment as E
    from infra.dr.backup import Cluster

    st = E.load("lab", lab_stack(lab)[-1])
    k = Cluster(st, "primary")
    name = f"manual-{PLATFORM}-{int(time.time())}"
    import subprocess

    from infra.lab.objectstore import mgmt_netns

    r = subprocess.run(["ip", "netns", "exec", mgmt_netns(lab), *k._v(), "backup", "create", name,
                        "--include-namespaces", PLATFORM, "--exclude-resources", "configmaps",
                        "--labels", f"dcops.gov.vn/platform={PLATFORM}", "--wait"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    r = dcops("dr", "restore-test", *lab_stack(lab), "--platform", PLATFORM, timeout=900)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    rec = _record(lab, "restore-test")
    assert rec["outcome"] == "fail" and rec["restore"]["backup"] == name, rec
    assert any("did not come back" in why for why in rec["reasons"]), rec["reasons"]
    assert rec["cleaned_up"] is True


@pytest.mark.lab
def test_two_engineers_at_once_one_gets_the_lock_error(lab):
    """A team's shared Pulumi state: this lab's S3-compatible object store (`dcops lab up --state s3`)
    as the stack's backend, written into the environment with an s3:// backend (credentials file, CA).
    Two engineers' `dcops provision` at once: one updates the stack, the other gets Pulumi's lock
    error (exit 1, said so) and changes nothing; the state stays readable and complete. (It had a lab of
    its own, the same as this module's, in tests/test_shared_state.py; it runs last here: it provisions
    the whole province, which takes the dvc objects applied above as they are.)"""
    import subprocess
    import sys

    stack = lab_stack(lab)
    env = yaml.safe_load(open(stack[-1]).read())["config"]["dcops:environment"]
    assert env["backend"]["url"].startswith("s3://") and env["backend"]["ca_file"]
    argv = [sys.executable, "-m", "infra.cli", "provision", *stack]
    r = dcops("provision", *stack, "--preview", timeout=1200)  # the stack is made in the bucket
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    procs = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)]
    time.sleep(1.0)
    procs.append(subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  stdin=subprocess.DEVNULL))
    outs = [p.communicate(timeout=1200) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], (codes, [o[0][-1500:] + o[1][-1500:] for o in outs])
    loser = outs[codes.index(1)]
    assert "locked" in (loser[0] + loser[1]), loser
    # the state is whole: a no-change preview, and the export parses with every object
    r = dcops("provision", *stack, "--preview", timeout=1200)
    assert r.returncode == 0 and "to update" not in r.stdout and "to create" not in r.stdout, r.stdout[-2000:]
    from infra import environment as EV
    from infra.paths import tool
    from infra.pulumi_env import stack_env

    st = EV.load("lab", stack[-1])
    # the object store answers inside the lab's management namespace only: read it from there
    ex = subprocess.run(["ip", "netns", "exec", st.env.management_netns, str(tool("pulumi")), "stack", "export",
                         "--stack", "lab"], env=stack_env(st), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert ex.returncode == 0, ex.stderr[-2000:]
    doc = json.loads(ex.stdout)
    kinds = {r["type"] for r in doc["deployment"]["resources"]}
    assert any(t.startswith("kubernetes:") for t in kinds), kinds
