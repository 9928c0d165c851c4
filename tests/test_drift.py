"""`dcops drift`: the units that run it daily, its options, and the parse of the preview.

Drift found and cleared on a lab is tests/test_environment_lab.py's
``test_drift_finds_host_and_cluster_changes_then_nothing``: it runs on that module's lab (the
clusters and three sites), which it provisions, rolls out and monitors (a lab of its own here
cost a second lab with clusters per test run).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, dcops

UNITS = REPO / "deploy" / "systemd"


def test_timer_and_service_pass_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: it comes with systemd (apt-get install systemd)")
    import sys

    venv_dcops = Path(sys.executable).parent / "dcops"
    svc = (UNITS / "dcops-drift.service").read_text()
    # the installed paths (/opt/dcops, /etc/dcops) are this checkout's for the verification
    svc = svc.replace("/opt/dcops/.venv/bin/dcops", str(venv_dcops)).replace("WorkingDirectory=/opt/dcops",
                                                                             f"WorkingDirectory={REPO}")
    svc = svc.replace("EnvironmentFile=/etc/dcops/drift.env", f"EnvironmentFile=-{tmp_path}/drift.env")
    (tmp_path / "dcops-drift.service").write_text(svc)
    shutil.copy(UNITS / "dcops-drift.timer", tmp_path / "dcops-drift.timer")
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "dcops-drift.service"), str(tmp_path / "dcops-drift.timer")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    cal = subprocess.run(["systemd-analyze", "calendar", "*-*-* 06:30:00 Asia/Ho_Chi_Minh"], capture_output=True, text=True)
    assert cal.returncode == 0 and "Next elapse" in cal.stdout
    # a broken timer is refused by the same check (the test can fail)
    (tmp_path / "bad.timer").write_text((UNITS / "dcops-drift.timer").read_text().replace("OnCalendar=*-*-* 06:30:00", "OnCalendar=daily-ish"))
    bad = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "bad.timer")], capture_output=True, text=True)
    assert bad.returncode != 0


def test_drift_bad_input():
    r = dcops("drift", "-s", "thanhhoa", "--skip", "everything")
    assert r.returncode == 2 and "unknown look" in r.stderr


def test_preview_steps_name_the_drifted_objects():
    """The parse of `pulumi preview --json`: children of components count, components and providers do not."""
    from infra.drift_cli import changed_resources

    doc = {"steps": [
        {"op": "update", "urn": "urn:pulumi:lab::dcops::dcops:index:Cluster$dcops:index:Platform$kubernetes:apps/v1:Deployment::primary/Deployment/motcua/motcua",
         "detailedDiff": {"spec.replicas": {"kind": "update"}}},
        {"op": "update", "urn": "urn:pulumi:lab::dcops::dcops:index:Cluster::primary"},
        {"op": "update", "urn": "urn:pulumi:lab::dcops::pulumi:providers:kubernetes::primary"},
        {"op": "same", "urn": "urn:pulumi:lab::dcops::dcops:index:Cluster$kubernetes:core/v1:Namespace::primary/Namespace/dvc"},
        {"op": "refresh", "urn": "urn:pulumi:lab::dcops::dcops:index:Cluster$kubernetes:core/v1:Namespace::primary/Namespace/dvc"},
        {"op": "create", "urn": "urn:pulumi:lab::dcops::dcops:index:Cluster$kubernetes:core/v1:Secret::primary/Secret/x/y",
         "diffReasons": ["data"]},
    ]}
    assert [(x["op"], x["resource"], x["fields"]) for x in changed_resources(doc)] == [
        ("update", "primary/Deployment/motcua/motcua", ["spec.replicas"]), ("create", "primary/Secret/x/y", ["data"])]


def test_a_workload_left_not_ready_says_why():
    """An object the last `pulumi up` left not ready carries initErrors in its state (apitype
    ResourceV3); its preview step is an update with no field: the drift says why, in the
    provider's words, instead of an update of nothing."""
    from infra.drift_cli import _markdown, changed_resources

    urn = "urn:pulumi:lab::dcops::dcops:index:Cluster$dcops:index:Platform$kubernetes:apps/v1:Deployment::primary/Deployment/lgsp/lgsp"
    err = "Resource 'lgsp' was created but failed to initialize\n  Minimum number of live Pods was not attained"
    doc = {"steps": [{"op": "update", "urn": urn, "oldState": {"urn": urn, "initErrors": [err]}, "newState": {"urn": urn}},
                     {"op": "update", "urn": urn.replace("lgsp/lgsp", "x/x"), "oldState": {"initErrors": [err]},
                      "detailedDiff": {"spec.replicas": {"kind": "update"}}}]}
    got = changed_resources(doc)
    assert got[0]["fields"] == [] and got[0]["reason"] == (
        "not ready after the last pulumi up: Resource 'lgsp' was created but failed to initialize "
        "Minimum number of live Pods was not attained"), got
    assert "reason" not in got[1], got  # a field that differs is the drift itself
    md = _markdown({"stack": "s", "environment": "lab", "time_local": "t", "verdict": "drift found", "exit": 1,
                    "clusters": {"status": "drift", "changed": got}, "hosts": {"status": "clean"},
                    "controls": {"status": "clean"}})
    assert "- update primary/Deployment/lgsp/lgsp: not ready after the last pulumi up: Resource 'lgsp'" in md, md


def test_unreachable_hosts_are_not_looked_at_not_drift():
    """A host whose state `wan apply --check` could not read is listed apart, with its reason: it is
    neither clean nor drifted (evidence or nothing); drift on a host that answered still wins."""
    from infra.drift_cli import _markdown, host_verdict

    ok = {"status": "unchanged", "changes": [], "detail": ""}
    gone = {"status": "unreachable", "changes": [], "detail": "ConnectError: SSH error (No existing session)"}
    moved = {"status": "changed", "changes": ["firewall: /etc/nftables.conf"], "detail": ""}
    v = host_verdict({"hosts": {"a": ok, "b": gone}, "counts": {"unchanged": 1, "unreachable": 1}})
    assert v["status"] == "error" and v["hosts"] == {} and v["not_looked_at"] == {"b": gone}
    assert "could not read 1 of 2 host(s) (unreachable)" == v["reason"]
    v2 = host_verdict({"hosts": {"a": moved, "b": gone, "c": ok}})
    assert v2["status"] == "drift" and v2["hosts"] == {"a": moved} and list(v2["not_looked_at"]) == ["b"]
    assert host_verdict({"hosts": {"a": ok}})["status"] == "clean"
    doc = {"stack": "s", "environment": "lab", "time_local": "t", "verdict": "drift found", "exit": 1,
           "clusters": {"status": "clean"}, "hosts": v2, "controls": {"status": "clean"}}
    md = _markdown(doc)
    assert "- a: changed: firewall: /etc/nftables.conf" in md
    assert "Not looked at (1)" in md and "- b: unreachable (ConnectError: SSH error (No existing session))" in md
