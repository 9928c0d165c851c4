"""`dcops drift`: the units that run it daily, its options, and (lab) drift found and cleared.

The lab test: a lab of its own with the clusters and two sites, provisioned and rolled out
through its environment; one host's firewall and one cluster object are changed out of band;
`dcops drift` finds both (exit 1); after `dcops wan apply`, `dcops provision --refresh` and
`dcops provision` the next run reports nothing (exit 0).
"""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, dcops, lab_stack

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


@pytest.fixture(scope="module")
def lab():
    name = "d" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    try:
        r = dcops("lab", "up", "--name", name, "--site", "so-tc", "--site", "x-tan-lap")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        for step in (["provision"], ["wan", "apply"]):
            r = dcops(*step, *lab_stack(name), timeout=1800)
            assert r.returncode == 0, f"{step}: " + r.stdout[-3000:] + r.stderr[-2000:]
        r = dcops("lab", "monitor", "--name", name)  # the SLA controls read it
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        yield name
    finally:
        dcops("lab", "down", "--name", name)


@pytest.mark.lab
def test_drift_finds_host_and_cluster_changes_then_nothing(lab, tmp_path):
    from infra.lab import controlplane as cp
    from infra.lab import netexec

    out = tmp_path / "drift"
    r = dcops("drift", *lab_stack(lab), "--out", str(out), timeout=3600)  # the baseline of the controls
    first = json.loads((out / "drift.json").read_text())
    assert first["clusters"]["status"] == "clean", first["clusters"]
    assert first["hosts"]["status"] == "clean", first["hosts"]
    assert first["controls"]["status"] == "baseline"
    # out of band: one host's firewall, one cluster object
    netexec.host_run(lab, "so-tc", ["nft", "add", "table", "inet", "intruder"], capture_output=True, check=True)
    kc = str(cp.kubeconfig_path(lab, "primary"))
    k = subprocess.run([str(Path.home() / ".cache/dcops/tools/bin/kubectl"), "--kubeconfig", kc, "-n", "motcua",
                        "scale", "deployment", "--all", "--replicas=1"], capture_output=True, text=True)
    assert k.returncode == 0, k.stderr
    r = dcops("drift", *lab_stack(lab), "--out", str(out), timeout=3600)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    doc = json.loads((out / "drift.json").read_text())
    assert set(doc["hosts"]["hosts"]) == {"so-tc"} and any("firewall" in c for c in doc["hosts"]["hosts"]["so-tc"]["changes"])
    assert any(x["resource"].startswith("primary/Deployment/motcua") for x in doc["clusters"]["changed"]), doc["clusters"]
    assert "so-tc" in (out / "drift.md").read_text()
    # repaired the ordinary way (Pulumi learns of an out-of-band edit by a refresh, then up puts
    # the object back): the next run finds nothing
    for step in (["wan", "apply"], ["provision", "--refresh"], ["provision"]):
        r = dcops(*step, *lab_stack(lab), timeout=1800)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    r = dcops("drift", *lab_stack(lab), "--out", str(out), timeout=3600)
    doc = json.loads((out / "drift.json").read_text())
    assert doc["clusters"]["status"] == "clean", doc["clusters"]
    assert doc["hosts"]["status"] == "clean", doc["hosts"]
    assert r.returncode == 0, r.stdout[-2000:]  # controls only got better since the last run
    assert not any(x["worse"] for x in doc["controls"]["changes"]), doc["controls"]


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
