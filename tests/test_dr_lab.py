"""DR as a standby site on a lab (issue 19): a failover of a warm and a cold platform while the
primary cluster's API server is stopped, the checks at each step, a `pulumi up` after the failover
that keeps the platforms where they run, and a failback.

One lean lab for the module (``dcops lab up --site so-tc``: one WAN host, a province of three platforms: LGSP,
the one-stop shop warm, IOC cold), Velero beside each cluster (:mod:`infra.lab.velero`) for the
cold platform's backup, the Pulumi program for the standby copies. The primary's API server is
stopped with SIGSTOP (its port still accepts connections but nothing answers, as when a site is
cut off) and resumed with SIGCONT, by its PID from the lab's state. Lab name: $DCOPS_TEST_LAB or
a random one; the lab is torn down at the end, even on failure.
"""

from __future__ import annotations

import json
import os
import random
import signal
import string
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, dcops, lab_stack

from infra import pulumi_env
from infra.lab import controlplane as cp
from infra.lab.state import LabState, pid_alive
from infra.paths import ToolMissing, lab_dir, tool
from infra.pulumi_plugins import kubernetes_plugin_installed, kubernetes_release

pytestmark = pytest.mark.lab

LAB_PROVINCE = REPO / "stacks" / "province-lab.yaml"
KEEP = ("lgsp", "motcua", "ioc")
TIMINGS = REPO / "docs" / "bench" / "dr-lab-timings.json"


def lean_province(path: Path) -> Path:
    """The lab province with LGSP, the one-stop shop (warm) and IOC (cold) only."""
    data = yaml.safe_load(LAB_PROVINCE.read_text())
    data["platforms"] = [p for p in data["platforms"] if p["id"] in KEEP]
    for p in data["platforms"]:
        p["depends_on"] = [d for d in p.get("depends_on", []) if d in KEEP]
    for s in data["wan"]["sites"]:
        s["reach"] = [r for r in s.get("reach", []) if r in KEEP]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def apiserver(name: str, cluster: str) -> dict:
    procs = [p for p in LabState.load(name).processes(cluster=cluster) if "apiserver" in p["name"]]
    assert len(procs) == 1, procs
    assert pid_alive(procs[0]["pid"], procs[0].get("start_time"))
    return procs[0]


def api_answers(name: str, cluster: str) -> bool:
    api = cp.Api.for_cluster(name, cluster)
    api.timeout = 3.0
    try:
        return api.healthy("readyz")[0]
    except Exception:
        return False


def get(name: str, cluster: str, path: str):
    api = cp.Api.for_cluster(name, cluster)
    api.timeout = 20.0
    status, out = api.request("GET", path)
    return out if status == 200 else None


def workload(name: str, cluster: str, ns: str, kind: str) -> dict | None:
    plural = "deployments" if kind == "Deployment" else "statefulsets"
    return get(name, cluster, f"/apis/apps/v1/namespaces/{ns}/{plural}/{ns}")


def replicas(name: str, cluster: str, ns: str, kind: str) -> tuple[int | None, int]:
    w = workload(name, cluster, ns, kind)
    if w is None:
        return None, 0
    return w["spec"].get("replicas"), (w.get("status") or {}).get("readyReplicas") or 0


def settle(name: str, cluster: str, want: dict[str, tuple[str, int]], timeout: float = 180) -> None:
    """Wait until each namespace's workload has its replicas ready (after a frozen API server comes back,
    kwok's nodes renew their leases and the pods turn ready again within a minute or two).
    The node lifecycle controller can mark pods not ready after a first `revive` (when its grace
    period for the lapsed leases ends later), so a workload that stays short is revived again every
    20 s while waiting."""
    deadline = time.monotonic() + timeout
    next_revive = time.monotonic() + 20
    while True:
        got = {ns: replicas(name, cluster, ns, kind) for ns, (kind, _) in want.items()}
        if all(got[ns] == (n, n) for ns, (_, n) in want.items()):
            return
        assert time.monotonic() < deadline, f"{cluster}: not settled after {timeout:.0f} s: {got}"
        if time.monotonic() >= next_revive:
            revive(name, cluster)
            next_revive = time.monotonic() + 20
        time.sleep(2)


def revive(name: str, cluster: str) -> list[str]:
    """Delete the pods that are not ready on a cluster whose API server was frozen: its node
    lifecycle controller marked them not ready when kwok's node leases lapsed, and kwok (unlike a
    kubelet) never turns such a pod ready again; their controllers make new ones. A lab artefact."""
    api = cp.Api.for_cluster(name, cluster)
    api.timeout = 20.0
    gone = []
    for pod in api.get("/api/v1/pods")["items"]:
        md = pod["metadata"]
        if md["namespace"] in KEEP and not any(c["type"] == "Ready" and c["status"] == "True"
                                               for c in (pod.get("status") or {}).get("conditions") or []):
            api.request("DELETE", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}")
            gone.append(f"{md['namespace']}/{md['name']}")
    return gone


def check(lab: dict, targets: str, only: str, out: Path) -> tuple[int, dict[tuple[str, str], dict]]:
    """`dcops check` on the lab stack; (exit code, {(control, target-namespace or cluster): result})."""
    r = dcops("check", *lab["stack"], "--target", targets, "--only", only, "-o", str(out), "-q", timeout=300)
    doc = json.loads(out.read_text()) if out.exists() else {"results": []}
    res = {(x["control"], x["target"]): x for x in doc.get("results", [])}
    return r.returncode, res


def probed_on(name: str) -> dict[str, str]:
    """platform -> the cluster label of its SLA probe in the lab's rendered Prometheus configuration."""
    from infra.lab import monitoring
    from infra.render import prometheus as R

    doc = yaml.safe_load((monitoring.mon_dir(name) / "prometheus.yml").read_text())
    job = next(j for j in doc["scrape_configs"] if j["job_name"] == R.JOB_PLATFORM)
    return {sc["labels"]["platform"]: sc["labels"]["cluster"] for sc in job["static_configs"]}


def prometheus_alive(name: str) -> bool:
    from infra.lab import monitoring

    return monitoring.running(name) is not None


def record_timing(key: str, seconds: float) -> None:
    """Into docs/bench/dr-lab-timings.json only when asked (DCOPS_RECORD_TIMINGS=1): a test run
    leaves the checkout as it found it."""
    if os.environ.get("DCOPS_RECORD_TIMINGS") != "1":
        return
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data[key] = round(seconds, 1)
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    TIMINGS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- the lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    try:
        cp.check_tools()
        for t in ("pulumi", "pulumi-language-python", "kubectl", "velero"):  # velero-plugin-for-aws: checked by velero.start
            tool(t)
    except ToolMissing as e:
        pytest.fail(str(e))
    if not kubernetes_plugin_installed():
        pytest.fail(f"the pulumi-kubernetes provider plugin {kubernetes_release()} is not installed: run "
                    "`scripts/install-tools pulumi-resource-kubernetes`")
    from infra.lab import velero

    name = os.environ.get("DCOPS_TEST_LAB") or "d" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    province = lean_province(tmp_path_factory.mktemp("dr") / "province-dr.yaml")
    stopped: list[int] = []
    # one WAN site: the management namespace where the object store and Velero run comes with the hosts
    r = dcops("lab", "up", "--name", name, "--site", "so-tc", "--province", str(province), timeout=1200)
    try:
        assert r.returncode == 0, f"lab up failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        lines: list[str] = []
        t0 = time.monotonic()
        up = pulumi_env.provision(name, "up", province=province, on_line=lines.append, check=False)
        assert up.returncode == 0, "pulumi up failed:\n" + "\n".join(lines[-60:])
        velero.start(name)
        from infra.lab import monitoring
        from infra.validate import load_province

        monitoring.start(name, load_province(province), progress=lambda m: None)  # the SLA probes follow the moves
        yield {"name": name, "province": province, "stack": lab_stack(name), "stopped": stopped,
               "work": lab_dir(name) / "work", "up_seconds": time.monotonic() - t0}
    finally:
        for pid in stopped:  # never leave a frozen process behind
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        dcops("lab", "down", "--name", name)
        assert not lab_dir(name).exists()


# --------------------------------------------------------------------------- the steps, in order


def test_provision_makes_the_standby_copies(lab, tmp_path):
    n = lab["name"]
    assert replicas(n, "primary", "motcua", "Deployment") == (2, 2)
    assert replicas(n, "primary", "ioc", "StatefulSet") == (2, 2)
    assert replicas(n, "dr", "motcua", "Deployment") == (0, 0)  # warm: there, at 0
    svc = get(n, "dr", "/api/v1/namespaces/motcua/services/motcua")
    assert svc["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] == "10.10.3.10"
    assert get(n, "dr", "/api/v1/namespaces/ioc") is not None  # cold: the namespace and its limits...
    assert get(n, "dr", "/api/v1/namespaces/ioc/resourcequotas/platform-quota") is not None
    assert workload(n, "dr", "ioc", "StatefulSet") is None  # ... and no workload
    code, res = check(lab, "primary,dr", "DCOPS-K8S-013,DCOPS-K8S-001", tmp_path / "r.json")
    assert code == 0, res
    assert res[("DCOPS-K8S-013", "primary")]["status"] == "pass"
    # the cold platform's backup (Velero, to the lab's object store) that its failover restores
    b = dcops("dr", "backup", *lab["stack"], "--platform", "ioc", timeout=600)
    assert b.returncode == 0, b.stdout[-2000:] + b.stderr[-2000:]


def test_failover_with_the_primary_api_server_stopped(lab, tmp_path):
    n = lab["name"]
    pid = apiserver(n, "primary")["pid"]
    os.kill(pid, signal.SIGSTOP)
    lab["stopped"].append(pid)
    assert not api_answers(n, "primary")
    dry = dcops("dr", "failover", *lab["stack"], "--dry-run")
    assert dry.returncode == 0 and "would failover primary -> dr" in dry.stdout
    t0 = time.monotonic()
    r = dcops("dr", "failover", *lab["stack"], timeout=900)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    record_timing("failover_warm_and_cold_seconds", took)
    assert "primary does not answer" in r.stdout and "not fenced" in r.stdout
    assert "restored" in r.stdout  # the cold platform came back from its backup
    assert replicas(n, "dr", "motcua", "Deployment") == (2, 2)
    assert replicas(n, "dr", "ioc", "StatefulSet") == (2, 2)
    for ns, address in (("motcua", "10.10.3.10"), ("ioc", "10.10.3.13")):
        svc = get(n, "dr", f"/api/v1/namespaces/{ns}/services/{ns}")
        assert {"ip": address} .items() <= (svc["status"]["loadBalancer"]["ingress"][0]).items()
        assert svc["metadata"]["annotations"]["metallb.io/address-pool"] == "dr-services"
    record = json.loads((lab["work"] / "dr" / "placement.json").read_text())
    assert {p: r["cluster"] for p, r in record["platforms"].items()} == {"motcua": "dr", "ioc": "dr"}
    assert record["history"][-1]["outcome"] == "ok" and not record["history"][-1]["dry_run"]
    # the SLA probes follow the record: the failover re-rendered the lab's monitoring and reloaded it
    assert "configuration re-rendered (placement: ioc on dr, motcua on dr) and reloaded (" in r.stdout, r.stdout[-2000:]
    assert probed_on(n) == {"lgsp": "primary", "motcua": "dr", "ioc": "dr"}
    assert prometheus_alive(n)
    # the checks follow the platforms to the DR cluster; the primary's are errors (unreachable), not passes
    code, res = check(lab, "dr", "DCOPS-K8S-013,DCOPS-K8S-001", tmp_path / "r.json")
    assert code == 0, res
    ev = res[("DCOPS-K8S-013", "dr")]["evidence"]["namespaces"]
    assert set(ev) == {"motcua", "ioc"} and ev["motcua"]["ready"] == 2 and ev["ioc"]["ready"] == 2
    # both clusters at once: the frozen primary is found by one bounded probe, its controls are errors
    # (never a pass), the platforms moved to DR pass there, and the exit code says the environment
    t0 = time.monotonic()
    code, res = check(lab, "primary,dr", "DCOPS-K8S-013,DCOPS-K8S-001", tmp_path / "r2.json")
    took = time.monotonic() - t0
    assert code == 3, {k: (v["status"], v["reason"]) for k, v in res.items()}
    assert took < 60, f"dcops check took {took:.0f} s against a frozen API server"
    for cid in ("DCOPS-K8S-013", "DCOPS-K8S-001"):
        r = res[(cid, "primary")]
        assert r["status"] == "error" and "the API server of cluster primary did not answer within" in r["reason"], r
        assert res[(cid, "dr")]["status"] == "pass", res[(cid, "dr")]
    assert set(res[("DCOPS-K8S-013", "dr")]["evidence"]["namespaces"]) == {"motcua", "ioc"}
    record_timing("check_with_the_primary_stopped_seconds", took)
    status = dcops("dr", "status", *lab["stack"])
    assert "motcua" in status.stdout and "FAILED OVER" in status.stdout


def test_pulumi_up_after_the_failover_keeps_the_platforms_on_dr(lab, tmp_path):
    n = lab["name"]
    pid = lab["stopped"].pop()
    os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 60
    while not api_answers(n, "primary"):
        assert time.monotonic() < deadline, "the primary's API server did not answer after SIGCONT"
        time.sleep(1)
    # the primary came back still running its copies (nobody could fence them)
    assert replicas(n, "primary", "motcua", "Deployment")[0] == 2
    lines: list[str] = []
    up = pulumi_env.provision(n, "up", province=lab["province"], on_line=lines.append, check=False)
    assert up.returncode == 0, "pulumi up failed:\n" + "\n".join(lines[-60:])
    assert replicas(n, "dr", "motcua", "Deployment") == (2, 2)  # not scaled back down
    assert replicas(n, "dr", "ioc", "StatefulSet") == (2, 2)
    assert replicas(n, "primary", "motcua", "Deployment")[0] == 0  # the home copies fenced by the record
    assert replicas(n, "primary", "ioc", "StatefulSet")[0] == 0
    revive(n, "primary")
    settle(n, "primary", {"lgsp": ("Deployment", 3)})
    code, res = check(lab, "primary,dr", "DCOPS-K8S-013,DCOPS-K8S-001", tmp_path / "r.json")
    assert code == 0, {k: v["status"] for k, v in res.items()}


def test_failback(lab, tmp_path):
    n = lab["name"]
    t0 = time.monotonic()
    r = dcops("dr", "failback", *lab["stack"], timeout=900)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    record_timing("failback_warm_and_cold_seconds", took)
    assert replicas(n, "primary", "motcua", "Deployment") == (2, 2)
    assert replicas(n, "primary", "ioc", "StatefulSet") == (2, 2)
    assert replicas(n, "dr", "motcua", "Deployment") == (0, 0)  # warm: standing by again
    w = workload(n, "dr", "ioc", "StatefulSet")  # cold: the restored workload goes
    assert w is None or w["metadata"].get("deletionTimestamp")
    assert json.loads((lab["work"] / "dr" / "placement.json").read_text())["platforms"] == {}
    assert probed_on(n) == {"lgsp": "primary", "motcua": "primary", "ioc": "primary"}  # the probes came home
    assert "configuration re-rendered and reloaded (" in r.stdout, r.stdout[-2000:]
    assert prometheus_alive(n)
    code, res = check(lab, "primary,dr", "DCOPS-K8S-013,DCOPS-K8S-001", tmp_path / "r.json")
    assert code == 0, {k: v["status"] for k, v in res.items()}
    ev = res[("DCOPS-K8S-013", "primary")]["evidence"]["namespaces"]
    assert ev["motcua"]["ready"] == 2 and ev["ioc"]["ready"] == 2
    # and a pulumi up now changes nothing on the clusters' workloads
    lines: list[str] = []
    up = pulumi_env.provision(n, "up", province=lab["province"], on_line=lines.append, check=False)
    assert up.returncode == 0, "\n".join(lines[-40:])
    assert replicas(n, "primary", "motcua", "Deployment") == (2, 2)
    assert replicas(n, "dr", "motcua", "Deployment") == (0, 0)
