"""A real `pulumi up` of the lab stack against the lab's real Kubernetes APIs.

One lab (own random name) for the whole module: `dcops lab up --no-hosts`,
then the Pulumi CLI with the lab's file backend and passphrase
(:mod:`infra.pulumi_env`), the Pulumi program of the repository
(``Pulumi.yaml``, ``infra/program.py``) and the pulumi-kubernetes provider plugin
that ``scripts/install-tools`` builds (found in the shared plugin directory, never
downloaded).  Every object the program declares is read back through the API and
compared with :mod:`infra.render.k8s`.  The lab is torn down at the end even on failure.

The tests run in file order: up, read back (field manager ``dcops``), Ready,
idempotence, a change of the province file (field-level diff, in place), an
out-of-band kubectl edit found by refresh, add/remove a platform, secrets in the
state, objects made with kubectl first and adopted, an up killed midway, destroy.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import pulumi_env
from infra.lab import controlplane as cp
from infra.lab.state import LabState, pid_alive
from infra.paths import REPO, ToolMissing, lab_dir, tool
from infra.pulumi_plugins import kubernetes_plugin_installed, kubernetes_release
from infra.render.k8s import object_key, render_province
from infra.validate import load_province

from test_lab_controlplane import dcops, new_lab_name, record_timing

PROVINCE = REPO / "stacks" / "province-lab.yaml"
MANAGED = "app.kubernetes.io/managed-by=dcops"

pytestmark = pytest.mark.lab


# --------------------------------------------------------------------------- helpers


class Live:
    """Reads objects of one lab cluster by manifest (discovery-based paths)."""

    def __init__(self, api: cp.Api):
        self.api = api
        self._res: dict[tuple[str, str], tuple[str, bool]] = {}

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        key = (api_version, kind)
        if key not in self._res:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for r in self.api.get(base)["resources"]:
                if "/" not in r["name"]:
                    self._res[(api_version, r["kind"])] = (r["name"], r["namespaced"])
        return self._res[key]

    def path(self, obj: dict, named: bool = True) -> str:
        plural, namespaced = self.resource(obj["apiVersion"], obj["kind"])
        base = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
        ns = obj["metadata"].get("namespace")
        p = f"{base}/namespaces/{ns}/{plural}" if namespaced and ns else f"{base}/{plural}"
        return f"{p}/{obj['metadata']['name']}" if named else p

    def get(self, obj: dict) -> dict | None:
        status, out = self.api.request("GET", self.path(obj))
        if status == 404:
            return None
        assert status == 200, out
        return out

    def managed(self, kinds: set[tuple[str, str]]) -> dict[str, dict]:
        """Every live object of these kinds labelled managed-by=dcops, by object_key."""
        found: dict[str, dict] = {}
        for api_version, kind in sorted(kinds):
            plural, _ = self.resource(api_version, kind)
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for o in self.api.get(f"{base}/{plural}?labelSelector={MANAGED}")["items"]:
                o.setdefault("kind", kind)
                o.setdefault("apiVersion", api_version)
                if o["metadata"].get("deletionTimestamp"):
                    continue
                found[object_key({"kind": kind, "metadata": o["metadata"]})] = o
        return found


def differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Where ``got`` (live) does not contain ``want`` (rendered): maps by key, lists item by item."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: want a map, got {got!r}"]
        out: list[str] = []
        for k, v in want.items():
            if k not in got:
                out.append(f"{path}.{k}: missing (want {v!r})")
            else:
                out += differences(v, got[k], f"{path}.{k}")
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: want {want!r}, got {got!r}"]
        return [d for i, (w, g) in enumerate(zip(want, got)) for d in differences(w, g, f"{path}[{i}]")]
    return [] if want == got else [f"{path}: want {want!r}, got {got!r}"]


def rendered(model) -> dict[str, dict[str, dict]]:
    """cluster id -> object_key -> manifest."""
    return {cid: {object_key(o): o for o in objs.objects()} for cid, objs in render_province(model).items()}


def kinds_of(objs: dict[str, dict[str, dict]]) -> set[tuple[str, str]]:
    return {(o["apiVersion"], o["kind"]) for per in objs.values() for o in per.values()}


def pulumi_json(args: list[str], name: str, check: bool = True) -> Any:
    cp_ = pulumi_env.pulumi([*args, "--json", *pulumi_env.stack_args(name)], name, capture=True, check=check)
    return json.loads(cp_.stdout) if cp_.stdout.strip() else None


def wait_until(what: str, fn, timeout: float = 120.0, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        ok, detail = fn()
        if ok:
            return detail
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}: {detail}")
        time.sleep(every)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lab():
    try:
        cp.check_tools()
        tool("pulumi")
        tool("pulumi-language-python")
        tool("kubectl")
    except ToolMissing as e:
        pytest.fail(str(e))
    if not kubernetes_plugin_installed():
        pytest.fail(f"the pulumi-kubernetes provider plugin {kubernetes_release()} is not installed: run "
                    "`scripts/install-tools pulumi-resource-kubernetes` (builds it and runs `pulumi plugin install`)")
    name = new_lab_name()
    r = dcops("lab", "up", "--name", name, "--no-hosts", "--province", str(PROVINCE))
    try:
        assert r.returncode == 0, f"lab up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        model = load_province(PROVINCE)
        clusters = {c.id: Live(cp.Api.for_cluster(name, c.id)) for c in model.datacenter.clusters}
        for live in clusters.values():
            live.api.timeout = 30.0
        yield {"name": name, "model": model, "live": clusters, "want": rendered(model)}
    finally:
        # Tear down: the stack's objects die with the lab's etcd; the lab dir goes with `down`.
        dcops("lab", "down", "--name", name)
        assert not lab_dir(name).exists()


@pytest.fixture(scope="module")
def stack_up(lab):
    name = lab["name"]
    t0 = time.monotonic()
    lines: list[str] = []
    r = pulumi_env.provision(name, "up", province=PROVINCE, on_line=lines.append, check=False)
    took = time.monotonic() - t0
    assert r.returncode == 0, "pulumi up failed:\n" + "\n".join(lines[-60:])
    record_timing("pulumi_up_seconds", took)
    return {"seconds": took, "output": "\n".join(lines)}


def assert_matches_render(lab, want: dict[str, dict[str, dict]]) -> None:
    problems = []
    for cid, objs in want.items():
        live = lab["live"][cid]
        for key, obj in objs.items():
            got = live.get(obj)
            if got is None:
                problems.append(f"{cid}: {key} does not exist")
                continue
            problems += [f"{cid}: {key}{d}" for d in differences(obj, got)]
    assert not problems, "\n".join(problems[:40])


# --------------------------------------------------------------------------- tests


def applied_by_dcops(obj: dict) -> bool:
    return any(m.get("manager") == "dcops" and m.get("operation") == "Apply"
               for m in obj["metadata"].get("managedFields") or [])


def test_up_creates_every_declared_object_as_rendered(lab, stack_up) -> None:
    assert_matches_render(lab, lab["want"])
    # ... and nothing else of ours, each one server-side applied by field manager dcops.
    for cid, live in lab["live"].items():
        got = live.managed(kinds_of(lab["want"]))
        assert set(got) == set(lab["want"][cid])
        assert not [k for k, o in got.items() if not applied_by_dcops(o)]
    # through the provider plugin install-tools built, from the shared plugin directory
    plugins = pulumi_env.pulumi(["plugin", "ls", "--json"], lab["name"], capture=True)
    assert {(p["name"], p["version"]) for p in json.loads(plugins.stdout)} >= {("kubernetes", kubernetes_release())}
    assert "pulumi-resource-kubernetes from $PATH" not in stack_up["output"]


def test_deployments_become_ready_through_kwok(lab, stack_up) -> None:
    for cid, objs in lab["want"].items():
        live = lab["live"][cid]
        for key, obj in objs.items():
            if obj["kind"] != "Deployment":
                continue
            d = live.get(obj)
            st = d["status"]
            if obj["spec"]["replicas"] == 0:  # a warm DR copy, scaled up only by `dcops dr failover`
                assert not st.get("readyReplicas") and not st.get("availableReplicas"), (key, st)
                continue
            assert st.get("readyReplicas") == obj["spec"]["replicas"] == st.get("availableReplicas"), (key, st)
            pods = live.api.get(
                f"/api/v1/namespaces/{obj['metadata']['namespace']}/pods?labelSelector="
                f"app.kubernetes.io%2Fname%3D{obj['metadata']['name']}"
            )["items"]
            running = [p for p in pods if p["status"].get("phase") == "Running"]
            assert len(running) == obj["spec"]["replicas"], key
            for p in running:  # on a fake node of the platform's segment
                seg = obj["spec"]["template"]["spec"]["nodeSelector"]["dcops.gov.vn/segment"]
                node = live.api.get(f"/api/v1/nodes/{p['spec']['nodeName']}")
                assert node["metadata"]["labels"]["dcops.gov.vn/segment"] == seg
            # Their volumes are bound (the lab's provisioner plays the CSI driver).
            for v in obj["spec"]["template"]["spec"].get("volumes", []):
                if "persistentVolumeClaim" in v:
                    pvc = live.api.get(f"/api/v1/namespaces/{obj['metadata']['namespace']}/persistentvolumeclaims/"
                                       f"{v['persistentVolumeClaim']['claimName']}")
                    assert pvc["status"]["phase"] == "Bound", pvc["metadata"]["name"]


def test_pod_security_rejects_privileged_pod_in_platform_namespace(lab, stack_up) -> None:
    p = lab["model"].platforms[0]
    api = lab["live"][p.cluster].api
    ns = api.get(f"/api/v1/namespaces/{p.namespace}")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    status, out = api.request("POST", f"/api/v1/namespaces/{p.namespace}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged-probe"},
        "spec": {"containers": [{"name": "c", "image": p.image, "securityContext": {"privileged": True}}]},
    })
    assert status == 403 and "violates PodSecurity" in out["message"], out


def test_second_up_and_preview_report_no_changes(lab, stack_up) -> None:
    name = lab["name"]
    r = pulumi_env.provision(name, "preview", extra=["--expect-no-changes"], on_line=lambda s: None, check=False)
    assert r.returncode == 0, r.stdout[-3000:]
    r = pulumi_env.provision(name, "up", extra=["--expect-no-changes"], on_line=lambda s: None, check=False)
    assert r.returncode == 0, r.stdout[-3000:]
    prev = pulumi_json(["preview", "--non-interactive"], name)
    summary = prev["changeSummary"]
    assert set(summary) <= {"same"}, summary


def _changed_province(out: Path) -> None:
    """The lab province with motcua at one more replica (so its quota grows too) and a new commune
    whose LAN may reach motcua (a new source in motcua's allow-sites policy)."""
    doc = yaml.safe_load(PROVINCE.read_text())
    motcua = next(p for p in doc["platforms"] if p["id"] == "motcua")
    motcua["replicas"] += 1
    doc["wan"]["sites"].append({
        "id": "x-moi", "name": "Xã Mới", "tier": "commune", "lan": "10.32.99.0/24",
        "wan_address": "172.30.3.99", "tunnel_address": "10.200.3.99", "reach": ["motcua"],
    })
    out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    load_province(out)  # it must validate


def _steps(preview: dict) -> dict[str, str]:
    """Resource name (the last part of the URN) -> op, for the steps of a JSON preview but the stack's
    (`--json` lists no "same" step: those are only counted in changeSummary)."""
    return {st["urn"].rsplit("::", 1)[1]: st["op"] for st in preview["steps"]
            if "pulumi:pulumi:Stack" not in st["urn"]}


def test_province_change_shows_a_field_level_diff_and_updates_in_place(lab, stack_up, tmp_path: Path) -> None:
    name = lab["name"]
    changed = tmp_path / "province-changed.yaml"
    _changed_province(changed)
    want_new = rendered(load_province(changed))
    differ = {f"{cid}/{k}" for cid in want_new for k, o in want_new[cid].items() if lab["want"][cid].get(k) != o}
    # the one-stop shop's quota and allow rule change on its warm DR copy too (its replicas stay 0 there)
    assert differ == {"primary/Deployment/motcua/motcua", "primary/ResourceQuota/motcua/platform-quota",
                      "primary/NetworkPolicy/motcua/allow-sites", "dr/ResourceQuota/motcua/platform-quota",
                      "dr/NetworkPolicy/motcua/allow-sites"}, differ
    before = {cid: {k: o["metadata"]["uid"] for k, o in live.managed(kinds_of(lab["want"])).items()}
              for cid, live in lab["live"].items()}
    pulumi_env.set_config("dcops:province", str(changed), name)
    try:
        prev = pulumi_json(["preview", "--non-interactive"], name)
        ops = _steps(prev)
        assert set(prev["changeSummary"]) == {"same", "update"}, prev["changeSummary"]
        assert {n for n, op in ops.items() if op != "same"} == differ, ops
        assert {ops[n] for n in differ} == {"update"}, ops
        # the diff names the fields, old and new values
        detailed = {st["urn"].rsplit("::", 1)[1]: st.get("detailedDiff") or {} for st in prev["steps"]}
        assert "spec.replicas" in detailed["primary/Deployment/motcua/motcua"], detailed
        assert any(k.startswith("spec.hard") for k in detailed["primary/ResourceQuota/motcua/platform-quota"])
        assert any(k.startswith("spec.ingress") for k in detailed["primary/NetworkPolicy/motcua/allow-sites"])
        text = pulumi_env.pulumi(["preview", "--diff", "--non-interactive", *pulumi_env.stack_args(name)], name,
                                 capture=True).stdout
        replicas = lab["model"].platform_by_id["motcua"].replicas
        assert re.search(rf"~ replicas\s*:\s*{replicas}\s*=>\s*{replicas + 1}", text), text[-4000:]
        assert "10.32.99.0/24" in text, text[-4000:]
        r = pulumi_env.provision(name, "up", on_line=lambda s: None, check=False)
        assert r.returncode == 0, r.stdout[-3000:]
        assert re.search(rf"~ {len(differ)} updated", r.stdout) and "replaced" not in r.stdout, r.stdout[-2000:]
        assert_matches_render(lab, want_new)
        after = {cid: {k: o["metadata"]["uid"] for k, o in live.managed(kinds_of(lab["want"])).items()}
                 for cid, live in lab["live"].items()}
        assert after == before  # in place: every object kept its uid
    finally:
        pulumi_env.set_config("dcops:province", str(PROVINCE), name)
    r = pulumi_env.provision(name, "up", on_line=lambda s: None, check=False)
    assert r.returncode == 0, r.stdout[-3000:]
    assert_matches_render(lab, lab["want"])


def test_out_of_band_kubectl_edit_is_found_by_refresh(lab, stack_up) -> None:
    name = lab["name"]
    p = lab["model"].platform_by_id["motcua"]
    kubeconfig = cp.kubeconfig_path(name, p.cluster)
    kubectl = [str(tool("kubectl")), "--kubeconfig", str(kubeconfig), "-n", p.namespace]
    subprocess.run([*kubectl, "scale", "deployment", p.id, f"--replicas={p.replicas + 4}"], check=True,
                   capture_output=True)
    subprocess.run([*kubectl, "label", "networkpolicy", "default-deny", "dcops.gov.vn/platform-", "--overwrite"],
                   check=True, capture_output=True)
    # A plain preview compares the program with the state: it does not see the edit ...
    plain = pulumi_json(["preview", "--non-interactive"], name)
    assert set(plain["changeSummary"]) == {"same"} and not _steps(plain), plain["changeSummary"]
    # ... `preview --refresh` reads the live objects first and plans to put both back.
    prev = pulumi_json(["preview", "--refresh", "--non-interactive"], name)
    ops = _steps(prev)
    drifted = {f"{p.cluster}/Deployment/{p.namespace}/{p.id}", f"{p.cluster}/NetworkPolicy/{p.namespace}/default-deny"}
    assert {n for n, op in ops.items() if op not in ("same", "refresh")} == drifted, ops
    assert {ops[n] for n in drifted} == {"update"}, ops
    # `pulumi refresh` records the drift in the state; the next up puts the province's values back.
    r = pulumi_env.pulumi(["refresh", "--yes", "--non-interactive", "--skip-preview", *pulumi_env.stack_args(name)],
                          name, capture=True)
    assert re.search(r"~ 2 updated", r.stdout), r.stdout[-2000:]
    r = pulumi_env.provision(name, "up", on_line=lambda s: None, check=False)
    assert r.returncode == 0, r.stdout[-3000:]
    assert_matches_render(lab, lab["want"])
    d = lab["live"][p.cluster].get(lab["want"][p.cluster][f"Deployment/{p.namespace}/{p.id}"])
    assert d["spec"]["replicas"] == p.replicas
    r = pulumi_env.provision(name, "preview", extra=["--expect-no-changes"], on_line=lambda s: None, check=False)
    assert r.returncode == 0, r.stdout[-3000:]


def _with_extra_platform(model_path: Path, out: Path) -> str:
    doc = yaml.safe_load(model_path.read_text())
    new = copy.deepcopy(next(p for p in doc["platforms"] if p["id"] == "ioc"))
    new.update(
        id="hop-truc-tuyen",
        name="Hệ thống họp trực tuyến",
        name_en="Video conferencing",
        kind="video",
        depends_on=[],
        image="registry.dcops.lab/video/meet:1.0.0",
        storage=[],
    )
    new.pop("national", None)
    # A free address in the platform's segment.
    used = {p.get("address") for p in doc["platforms"]}
    seg = next(s for s in doc["datacenter"]["segments"] if s["id"] == new["segment"])
    import ipaddress

    new["address"] = next(str(a) for a in list(ipaddress.ip_network(seg["cidr"]).hosts())[50:] if str(a) not in used)
    doc["platforms"].append(new)
    out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    load_province(out)  # it must validate
    return new["id"]


def test_adding_then_removing_a_platform_touches_only_its_objects(lab, stack_up, tmp_path: Path) -> None:
    name = lab["name"]
    bigger = tmp_path / "province-plus.yaml"
    pid = _with_extra_platform(PROVINCE, bigger)
    want_plus = rendered(load_province(bigger))
    added = {cid: set(want_plus[cid]) - set(lab["want"][cid]) for cid in want_plus}
    assert any(added.values())
    assert all(set(lab["want"][cid]) <= set(want_plus[cid]) for cid in want_plus)
    kinds = kinds_of(want_plus)

    def snapshot():
        return {cid: {k: (o["metadata"]["uid"], o["metadata"].get("generation"))
                      for k, o in live.managed(kinds).items()} for cid, live in lab["live"].items()}

    before = snapshot()
    # Preview: only creates, exactly the new platform's objects.
    pulumi_env.set_config("dcops:province", str(bigger), name)
    try:
        prev = pulumi_json(["preview", "--non-interactive"], name)
        summary = prev["changeSummary"]
        n_added = sum(len(v) for v in added.values())
        assert set(summary) <= {"same", "create"}, summary
        # created: the objects + the platform's component resources (no other change).
        assert summary.get("create", 0) >= n_added, summary
        for step in prev["steps"]:
            if step["op"] == "create":
                assert pid in step["urn"] or pid in json.dumps(step.get("newState", {}).get("inputs", {})), step["urn"]
        pulumi_env.provision(name, "up", on_line=lambda s: None)
        after = snapshot()
        for cid in after:
            assert set(after[cid]) == set(before[cid]) | added[cid]
            for k, v in before[cid].items():
                assert after[cid][k] == v, f"{cid}: {k} changed"
        assert_matches_render(lab, want_plus)
    finally:
        pulumi_env.set_config("dcops:province", str(PROVINCE), name)
    # Back to the original file: only that platform's objects are deleted.
    prev = pulumi_json(["preview", "--non-interactive"], name)
    assert set(prev["changeSummary"]) <= {"same", "delete"}, prev["changeSummary"]
    pulumi_env.provision(name, "up", on_line=lambda s: None)

    def back() -> tuple[bool, str]:
        now = snapshot()
        return now == before, str({c: set(now[c]) ^ set(before[c]) for c in now})

    wait_until("the added platform's objects to be gone", back, timeout=120)


def test_state_holds_no_secret_in_plain_text(lab, stack_up) -> None:
    name = lab["name"]
    state = pulumi_env.state_dir(name)
    blobs = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file())
    blobs += pulumi_env.config_file(name).read_bytes()
    assert blobs, "no state written"
    secrets: dict[str, bytes] = {"passphrase": pulumi_env.passphrase_path(name).read_bytes().strip()}
    for c in lab["model"].datacenter.clusters:
        d = cp.k8s_dir(name, c.id) / "pki"
        enc = yaml.safe_load((d / "encryption-config.yaml").read_text())
        secrets[f"{c.id} encryption key"] = enc["resources"][0]["providers"][0]["secretbox"]["keys"][0]["secret"].encode()
        for key in d.glob("*.key"):
            pem = key.read_bytes()
            body = b"".join(pem.strip().splitlines()[1:-1])
            secrets[f"{c.id} {key.name}"] = body
            secrets[f"{c.id} {key.name} (base64)"] = base64.b64encode(pem)
    for what, value in secrets.items():
        assert value and value not in blobs, f"{what} appears in the Pulumi state"
    assert b"PRIVATE KEY" not in blobs


def test_objects_made_with_kubectl_first_are_adopted_without_replacement(lab, stack_up, tmp_path: Path) -> None:
    """A province that already runs a platform (made by hand with kubectl) takes its objects into the
    stack: `pulumi up` server-side applies them as field manager dcops over the live objects (an upsert),
    so none is deleted or replaced: same uids, and the up plans only creates (in the state) and sames."""
    name = lab["name"]
    pulumi_env.provision(name, "destroy", on_line=lambda s: None)
    wait_until("destroy to finish", lambda: (_managed_count(lab) == 0, _managed_count(lab)), timeout=180)
    p = lab["model"].platform_by_id["motcua"]
    objs = render_province(lab["model"])[p.cluster]
    by_hand = [*objs.storage_classes, *objs.platforms[p.id].objects()]
    manifest = tmp_path / "by-hand.yaml"
    manifest.write_text(yaml.safe_dump_all(by_hand, allow_unicode=True, sort_keys=False))
    kubectl = [str(tool("kubectl")), "--kubeconfig", str(cp.kubeconfig_path(name, p.cluster))]
    r = subprocess.run([*kubectl, "create", "-f", str(manifest)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    live = lab["live"][p.cluster]
    keys = [object_key(o) for o in by_hand]
    uids = {k: live.get(lab["want"][p.cluster][k])["metadata"]["uid"] for k in keys}
    assert not any(applied_by_dcops(live.get(lab["want"][p.cluster][k])) for k in keys)

    prev = pulumi_json(["preview", "--non-interactive"], name)
    assert set(prev["changeSummary"]) <= {"create", "same"}, prev["changeSummary"]
    assert not [st for st in prev["steps"] if st["op"] not in ("create", "same")]
    r = pulumi_env.provision(name, "up", on_line=lambda s: None, check=False)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "replaced" not in r.stdout and "deleted" not in r.stdout, r.stdout[-2000:]
    for k in keys:
        got = live.get(lab["want"][p.cluster][k])
        assert got["metadata"]["uid"] == uids[k], f"{k} was replaced"
        assert applied_by_dcops(got), f"{k} is not applied by dcops"
    assert_matches_render(lab, lab["want"])
    r = pulumi_env.provision(name, "preview", extra=["--expect-no-changes"], on_line=lambda s: None, check=False)
    assert r.returncode == 0, r.stdout[-3000:]


def _session_members(sid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
                out.append(int(d.name))
    return out


def _managed_count(lab) -> int:
    kinds = kinds_of(lab["want"])
    return sum(len(live.managed(kinds)) for live in lab["live"].values())


def test_up_killed_midway_then_refresh_and_up_converges(lab, stack_up) -> None:
    name = lab["name"]
    pulumi_env.provision(name, "destroy", on_line=lambda s: None)
    wait_until("destroy to finish", lambda: (_managed_count(lab) == 0, _managed_count(lab)), timeout=120)
    total = sum(len(v) for v in lab["want"].values())
    env = pulumi_env.lab_env(name)
    # as pulumi_env.pulumi does: a private TMPDIR, so the provider's kubeconfig copies (client
    # keys) go nowhere shared; SIGKILL leaves them there, and the block's end removes them
    with pulumi_env.private_tmpdir() as tmp:
        env["TMPDIR"] = tmp
        args = [str(tool("pulumi")), *pulumi_env.action_args("up"), *pulumi_env.stack_args(name)]
        log = lab_dir(name) / "killed-up.log"
        with open(log, "wb") as f:
            p = subprocess.Popen(args, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while _managed_count(lab) < 5:
                assert p.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "pulumi up made no objects"
                time.sleep(0.2)
        finally:
            # pulumi, its language host, the program and the provider: the plugins run in process
            # groups of their own but in pulumi's session, so kill the whole session, at once.
            killed: set[int] = set()
            for _ in range(20):  # again, in case one was forking meanwhile
                members = [pid for pid in _session_members(p.pid) if pid_alive(pid)]
                if not members:
                    break
                for pid in members:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                killed.update(members)
                time.sleep(0.1)
            p.wait()
            left = sorted(x.name for x in Path(tmp).iterdir())
            assert len(killed) > 1 and not [pid for pid in _session_members(p.pid) if pid_alive(pid)]
            assert any(x.startswith("kubeconfig") for x in left), f"the provider wrote no kubeconfig copy here: {left}"
    made = _managed_count(lab)
    assert 0 < made < total, f"kill came too late to test anything ({made}/{total})"
    # dcops writes the state once, at the end of a command (PULUMI_SKIP_CHECKPOINTS): what the killed up
    # made is in no state; the recovery below must take those very objects back (same uid), not remake them.
    kinds = kinds_of(lab["want"])
    uids = {(cid, key): o["metadata"]["uid"] for cid, live in lab["live"].items()
            for key, o in live.managed(kinds).items()}
    # Recover: clear the lock of the killed update, read the real state back, up again.
    pulumi_env.cancel(name)
    r = pulumi_env.pulumi(["refresh", "--yes", "--non-interactive", "--skip-preview", "--clear-pending-creates",
                           *pulumi_env.stack_args(name)], name, capture=True, check=False)
    if r.returncode != 0 and "unknown flag" in r.stderr:
        r = pulumi_env.pulumi(["refresh", "--yes", "--non-interactive", "--skip-preview",
                               *pulumi_env.stack_args(name)], name, capture=True, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = pulumi_env.provision(name, "up", on_line=lambda s: None, check=False)
    assert r.returncode == 0, r.stdout[-3000:]
    assert_matches_render(lab, lab["want"])
    for cid, live in lab["live"].items():
        assert set(live.managed(kinds_of(lab["want"]))) == set(lab["want"][cid])
    after = {(cid, key): o["metadata"]["uid"] for cid, live in lab["live"].items()
             for key, o in live.managed(kinds).items()}
    remade = sorted(f"{c}/{k}" for (c, k), uid in uids.items() if after.get((c, k)) != uid)
    assert not remade, f"objects of the killed up were deleted and made again instead of taken back: {remade}"
    r = pulumi_env.provision(name, "preview", extra=["--expect-no-changes"], on_line=lambda s: None, check=False)
    assert r.returncode == 0, r.stdout[-3000:]


def test_destroy_leaves_none_of_our_objects(lab, stack_up) -> None:
    name = lab["name"]
    pulumi_env.provision(name, "destroy", on_line=lambda s: None)
    kinds = kinds_of(lab["want"])

    def gone() -> tuple[bool, str]:
        left = {cid: sorted(live.managed(kinds)) for cid, live in lab["live"].items()}
        return not any(left.values()), str(left)

    wait_until("every object of ours to be gone", gone, timeout=120)
    for cid, objs in lab["want"].items():
        for key, obj in objs.items():
            assert lab["live"][cid].get(obj) is None, f"{cid}: {key} still exists"
    # Pulumi's state agrees: the stack has no resources left.
    exported = pulumi_env.pulumi(["stack", "export", *pulumi_env.stack_args(name)[:2]], name, capture=True)
    resources = json.loads(exported.stdout)["deployment"].get("resources") or []
    assert not [r for r in resources if r["type"] != "pulumi:pulumi:Stack"], resources
