"""Backups of the platforms with Velero, and a restore test that leaves evidence.

The API (stable: ``dcops dr`` and the failover of cold platforms call it)::

    from infra.dr import backup as B
    B.install(stack)                              # Velero's CRDs, namespace, BackupStorageLocation, Schedules
    rec = B.backup(stack, "dvc")                  # one platform -> its record (dict)
    recs = B.backup(stack)                        # every platform -> list of records
    rec = B.restore(stack, "dvc", "dr", "dvc")    # latest backup of dvc into namespace dvc of cluster dr
    rec = B.restore_test(stack, "dvc")            # scratch namespace on the DR cluster, checked, recorded, removed
    B.read_record(stack, "restore-test", "dvc")   # the last record (dict), RecordError if unreadable

``stack`` is an :class:`infra.environment.Stack` whose environment has a ``backup`` target
(the S3-compatible object storage Velero writes to) and admin access to the clusters. Velero
itself runs beside each cluster: in a data center as the ``velero`` Deployment that
``velero install`` makes; in the lab as a process per cluster (``infra/lab/velero.py``).

What a backup is: the platform's namespace (every object in it, and the PersistentVolumes of
its claims) through ``velero backup create`` into the location. Before it, a **data marker**
is written into the namespace: the ConfigMap ``dcops-backup-marker`` with a fresh random token
and the time. Volume data goes through Velero's file-system backup only where node agents run
(a real cluster); the lab's kwok nodes run none, so there the marker stands for the data
(README: Backups and restore tests).

What a restore test is: the latest completed backup of the platform is restored into a scratch
namespace (``dcops-rt-<platform>``) of the DR cluster (the platform's ``dr.cluster``, else the
province's backup ``target_cluster``, else its cluster with role dr); then it counts the objects
by kind there against Velero's own list of what the backup holds, and reads the marker back
(it must carry the token of the platform's last ``dcops dr backup``, or be older than the
backup when the backup came from a Schedule). It writes the record, then deletes the scratch
namespace and any PersistentVolume restored for it.

Records (JSON, no secret), under the stack's work dir::

    <work_dir>/dr/backup/<platform>.json          the last backup (name, times, items, marker token)
    <work_dir>/dr/restore-test/<platform>.json    the last restore test (date, outcome, counts, marker)
    <work_dir>/dr/history.jsonl                   every record, one a line

Errors: :class:`BackupError` with ``code`` 1 (a backup or restore check failed), 2 (bad input:
unknown platform, no backup target in the environment), 3 (a tool missing, a cluster or Velero
unreachable or not answering in time).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from ..paths import ToolMissing, tool
from ..render import velero as R

MARKER = "dcops-backup-marker"
SCRATCH_PREFIX = "dcops-rt-"
RECORD_KINDS = ("backup", "restore-test")
# What a restore test counts, by kind (namespaced objects dcops or the platform's operators
# make; pods, ReplicaSets, Endpoints and events are the controllers' and come back by themselves).
COUNTED = (
    "apps/v1/Deployment", "apps/v1/StatefulSet", "apps/v1/DaemonSet", "batch/v1/CronJob", "batch/v1/Job",
    "v1/Service", "v1/ConfigMap", "v1/Secret", "v1/PersistentVolumeClaim", "v1/ServiceAccount",
    "v1/ResourceQuota", "v1/LimitRange", "networking.k8s.io/v1/NetworkPolicy", "networking.k8s.io/v1/Ingress",
    "rbac.authorization.k8s.io/v1/Role", "rbac.authorization.k8s.io/v1/RoleBinding",
    "policy/v1/PodDisruptionBudget", "autoscaling/v2/HorizontalPodAutoscaler",
)
KUBECTL_KINDS = {
    "apps/v1/Deployment": "deployments.apps", "apps/v1/StatefulSet": "statefulsets.apps",
    "apps/v1/DaemonSet": "daemonsets.apps", "batch/v1/CronJob": "cronjobs.batch", "batch/v1/Job": "jobs.batch",
    "v1/Service": "services", "v1/ConfigMap": "configmaps", "v1/Secret": "secrets",
    "v1/PersistentVolumeClaim": "persistentvolumeclaims", "v1/ServiceAccount": "serviceaccounts",
    "v1/ResourceQuota": "resourcequotas", "v1/LimitRange": "limitranges",
    "networking.k8s.io/v1/NetworkPolicy": "networkpolicies.networking.k8s.io",
    "networking.k8s.io/v1/Ingress": "ingresses.networking.k8s.io",
    "rbac.authorization.k8s.io/v1/Role": "roles.rbac.authorization.k8s.io",
    "rbac.authorization.k8s.io/v1/RoleBinding": "rolebindings.rbac.authorization.k8s.io",
    "policy/v1/PodDisruptionBudget": "poddisruptionbudgets.policy",
    "autoscaling/v2/HorizontalPodAutoscaler": "horizontalpodautoscalers.autoscaling",
}
CONTROLLER_MADE = "pods,replicasets.apps,endpoints,endpointslices.discovery.k8s.io,events,events.events.k8s.io"
"""Not restored (made again by the controllers from what is restored)."""
TIMEOUT = float(os.environ.get("DCOPS_BACKUP_TIMEOUT", "600"))
SYNC_TIMEOUT = float(os.environ.get("DCOPS_BACKUP_SYNC_TIMEOUT", "180"))

Progress = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore could not be done or checked; ``code`` is the exit code (1, 2 or 3)."""

    def __init__(self, message: str, code: int = 3):
        self.code = code
        super().__init__(message)


class RecordError(RuntimeError):
    """A record exists but cannot be read or parsed (the controls report it as an error)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- the stack's places


def _model(stack: Any):
    from ..validate import load_province

    return load_province(stack.province)


def target_of(stack: Any):
    t = stack.env.backup
    if t is None:
        raise BackupError(f"stack '{stack.name}': the environment has no 'backup' target (the S3-compatible "
                          "object storage Velero writes to): add backup: {s3_url, bucket, credentials_file, site, ...} "
                          "(README: Backups and restore tests)", 2)
    return t


def _platform(pf: Any, platform: str):
    if platform not in pf.platform_by_id:
        raise BackupError(f"unknown platform '{platform}' (platforms: {', '.join(sorted(pf.platform_by_id))})", 2)
    return pf.platform_by_id[platform]


def dr_cluster(pf: Any, platform: str) -> str:
    """Where a platform's restore test lands: its DR cluster, else the backup's target cluster,
    else the province's cluster with role dr, else its own cluster."""
    p = _platform(pf, platform)
    c = pf.dr_cluster_of(platform) if p.dr.mode != "none" else None
    return (c or pf.datacenter.backup.target_cluster
            or next((x.id for x in pf.datacenter.clusters if x.role == "dr"), None) or p.cluster)


def records_dir(stack: Any) -> Path:
    return stack.work_dir / "dr"


def record_path(stack: Any, kind: str, platform: str) -> Path:
    if kind not in RECORD_KINDS:
        raise ValueError(f"record kind {kind!r}")
    return records_dir(stack) / kind / f"{platform}.json"


def write_record(stack: Any, kind: str, platform: str, record: dict[str, Any]) -> Path:
    """Write a record (atomically) and append it to the history; refuses a record holding a secret."""
    from ..redact import find_secrets

    text = json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    leaks = find_secrets(text)
    if leaks:
        raise BackupError(f"refusing to write a {kind} record that holds a secret ({len(leaks)} finding(s))", 1)
    p = record_path(stack, kind, platform)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, p)
    with open(records_dir(stack) / "history.jsonl", "a") as f:
        f.write(json.dumps({"kind": kind, **record}, sort_keys=True, ensure_ascii=False) + "\n")
    return p


def read_record(stack_or_dir: Any, kind: str, platform: str) -> dict[str, Any] | None:
    """The last record of a platform (None: there is none); RecordError when it cannot be read."""
    base = Path(stack_or_dir) if isinstance(stack_or_dir, (str, Path)) else records_dir(stack_or_dir)
    p = base / kind / f"{platform}.json"
    if not p.exists():
        return None
    try:
        d = json.loads(p.read_text())
        if not isinstance(d, dict) or not isinstance(d.get("date"), str):
            raise ValueError("not a record (no 'date')")
        parse_time(d["date"])
        return d
    except (OSError, ValueError) as e:
        raise RecordError(f"{p}: {e.__class__.__name__}: {e}") from None


# --------------------------------------------------------------------------- tools


def _run(argv: list[str], what: str, timeout: float = 120, check: bool = True,
         env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, input=stdin,
                            stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what}: no answer in {timeout:.0f} s ({' '.join(argv[:4])} ...)", 3) from None
    except OSError as e:
        raise BackupError(f"{what}: {e}", 3) from None
    if check and cp.returncode != 0:
        msg = (cp.stderr or cp.stdout).strip().splitlines()
        tail = " | ".join(msg[-4:])[:800]
        unreachable = re.search(r"connection refused|no route to host|i/o timeout|Unable to connect|"
                                r"x509|certificate|Unauthorized|dial tcp", tail, re.I)
        raise BackupError(f"{what} failed (exit {cp.returncode}): {tail}", 3 if unreachable else 1)
    return cp


class Cluster:
    """kubectl and the velero client against one cluster, with the stack's admin identity."""

    def __init__(self, stack: Any, cluster: str):
        if cluster not in stack.env.clusters:
            raise BackupError(f"the environment of stack '{stack.name}' gives no access to cluster '{cluster}'", 2)
        self.id = cluster
        self.kubeconfig, self.context = stack.kubeconfig(cluster, "admin")
        t = target_of(stack)
        self.ns = t.namespace
        self.location = t.location
        try:
            self.kubectl_bin, self.velero_bin = str(tool("kubectl")), str(tool("velero"))
        except ToolMissing as e:
            raise BackupError(str(e), 3) from None

    def _k(self) -> list[str]:
        a = [self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), "--request-timeout=30s"]
        return a + (["--context", self.context] if self.context else [])

    def _v(self) -> list[str]:
        a = [self.velero_bin, "--kubeconfig", str(self.kubeconfig), "--namespace", self.ns]
        return a + (["--kubecontext", self.context] if self.context else [])

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True, stdin: str | None = None):
        return _run([*self._k(), *args], f"kubectl on cluster {self.id}", timeout, check, stdin=stdin)

    def velero(self, *args: str, timeout: float = 120, check: bool = True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["HOME"] = env.get("HOME", "/root")
        return _run([*self._v(), *args], f"velero on cluster {self.id}", timeout, check, env=env)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def get_or_none(self, *args: str) -> Any:
        cp = self.kubectl("get", *args, "-o", "json", check=False)
        if cp.returncode != 0:
            if "NotFound" in cp.stderr or "not found" in cp.stderr:
                return None
            raise BackupError(f"kubectl get {' '.join(args)} on cluster {self.id}: {cp.stderr.strip()[:400]}", 3)
        return json.loads(cp.stdout)

    def apply(self, objs: list[dict[str, Any]]) -> None:
        text = "\n---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)
        self.kubectl("apply", "--server-side", "--field-manager=dcops", "--force-conflicts", "-f", "-",
                     stdin=text, timeout=180)

    def reachable(self) -> None:
        cp = self.kubectl("get", "--raw", "/readyz", check=False, timeout=40)
        if cp.returncode != 0 or "ok" not in cp.stdout:
            raise BackupError(f"cluster {self.id} is unreachable ({self.kubeconfig}): "
                              f"{(cp.stderr or cp.stdout).strip()[:300]}", 3)


# --------------------------------------------------------------------------- install


def crds() -> list[dict[str, Any]]:
    """Velero's CustomResourceDefinitions, from the pinned velero (``velero install --crds-only --dry-run``)."""
    try:
        v = str(tool("velero"))
    except ToolMissing as e:
        raise BackupError(str(e), 3) from None
    cp = _run([v, "install", "--crds-only", "--dry-run", "-o", "yaml"], "velero install --crds-only", 60)
    docs = [d for d in yaml.safe_load_all(cp.stdout) if d]
    out: list[dict[str, Any]] = []
    for d in docs:
        out += d.get("items", []) if d.get("kind") == "List" else [d]
    return [d for d in out if d.get("kind") == "CustomResourceDefinition"]


def ca_pem(stack: Any) -> bytes | None:
    t = target_of(stack)
    if not t.ca_file:
        return None
    try:
        return stack.resolve(t.ca_file).read_bytes()
    except OSError as e:
        raise BackupError(f"backup.ca_file: {e}", 3) from None


def install(stack: Any, clusters: list[str] | None = None, progress: Progress = print,
            dry_run: bool = False) -> dict[str, Any]:
    """Apply Velero's CRDs, its namespace, the BackupStorageLocation and the province's Schedules
    (server-side apply, field manager dcops) on each cluster. Returns what was (or would be) applied."""
    pf = _model(stack)
    t = target_of(stack)
    ca = ca_pem(stack)
    done: dict[str, Any] = {}
    crd = None
    for c in clusters or sorted(stack.env.clusters):
        objs = R.objects(pf, c, t, ca)
        done[c] = [f"{o['kind']}/{o['metadata']['name']}" for o in objs]
        if dry_run:
            progress(f"{c}: would apply Velero's CRDs and {', '.join(done[c])}")
            continue
        k = Cluster(stack, c)
        k.reachable()
        crd = crd if crd is not None else crds()
        k.apply(crd)
        k.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                  *[f"crd/{d['metadata']['name']}" for d in crd], timeout=90)
        k.apply(objs)
        progress(f"{c}: Velero's {len(crd)} CRDs, {', '.join(done[c])} applied")
    return done


# --------------------------------------------------------------------------- backup


def count_namespace(k: Cluster, ns: str) -> dict[str, int]:
    """Objects of the counted kinds in ``ns``, by kind (``group/version/Kind``)."""
    got = k.get_json(",".join(KUBECTL_KINDS.values()), "-n", ns)
    by: dict[str, int] = {}
    for o in got.get("items") or []:
        key = f"{o['apiVersion']}/{o['kind']}"
        # the API may answer in another served version: count by group and kind
        by[_gk(key)] = by.get(_gk(key), 0) + 1
    return by


def _gk(key: str) -> str:
    """``apps/v1/Deployment`` -> ``apps/Deployment``; ``v1/Service`` -> ``Service``."""
    parts = key.split("/")
    return parts[-1] if len(parts) == 2 else f"{parts[0]}/{parts[-1]}"


COUNTED_GK = {_gk(x) for x in COUNTED}


def write_marker(k: Cluster, ns: str, when: dt.datetime) -> str:
    token = secrets.token_hex(16)
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": MARKER, "namespace": ns,
                       "labels": {"app.kubernetes.io/managed-by": "dcops", "app.kubernetes.io/part-of": "dcops-backup"}},
          "data": {"token": token, "written_at": iso(when)}}
    k.apply([cm])
    return token


def _backups(k: Cluster, platform: str) -> list[dict[str, Any]]:
    got = k.get_json("backups.velero.io", "-n", k.ns, "-l", f"dcops.gov.vn/platform={platform}")
    return got.get("items") or []


def latest_backup(k: Cluster, platform: str) -> dict[str, Any] | None:
    """The platform's newest Completed backup that cluster ``k``'s Velero knows of."""
    done = [b for b in _backups(k, platform) if (b.get("status") or {}).get("phase") == "Completed"
            and (b.get("status") or {}).get("completionTimestamp")]
    return max(done, key=lambda b: b["status"]["completionTimestamp"], default=None)


def backup(stack: Any, platform: str | None = None, *, progress: Progress = print, dry_run: bool = False,
           timeout: float = TIMEOUT) -> dict[str, Any] | list[dict[str, Any]]:
    """Back up one platform (its record) or every platform (``None``: the list of records).

    Writes the data marker, runs ``velero backup create --wait`` on the platform's cluster
    (labels ``dcops.gov.vn/platform``; TTL = the province's retention), and records the result.
    Raises BackupError (code 1 when Velero reports the backup failed)."""
    pf = _model(stack)
    if platform is None:
        return [backup(stack, p.id, progress=progress, dry_run=dry_run, timeout=timeout) for p in pf.platforms]
    p = _platform(pf, platform)
    t = target_of(stack)
    b = pf.datacenter.backup
    start = _now()
    name = f"dcops-{p.id}-{start.strftime('%Y%m%d%H%M%S')}"
    if dry_run:
        progress(f"{p.id}: would write the marker ConfigMap {MARKER} in {p.namespace} on {p.cluster}, then "
                 f"velero backup create {name} --include-namespaces {p.namespace} --storage-location {t.location} "
                 f"--ttl {R.ttl(b.retention_days)} (to s3 bucket {t.bucket} at {t.s3_url})")
        return {"platform": p.id, "dry_run": True, "backup": name}
    k = Cluster(stack, p.cluster)
    k.reachable()
    if k.get_or_none("namespace", p.namespace) is None:
        raise BackupError(f"{p.id}: namespace {p.namespace} does not exist on cluster {p.cluster} "
                          "(provision it first: dcops provision)", 1)
    token = write_marker(k, p.namespace, start)
    counts = count_namespace(k, p.namespace)
    progress(f"{p.id}: marker written; velero backup create {name} on {p.cluster} ...")
    t0 = time.monotonic()
    k.velero("backup", "create", name, "--include-namespaces", p.namespace, "--storage-location", t.location,
             "--ttl", R.ttl(b.retention_days), "--snapshot-volumes=false",
             f"--default-volumes-to-fs-backup={'true' if t.fs_backup else 'false'}",
             "--labels", f"dcops.gov.vn/platform={p.id},app.kubernetes.io/managed-by=dcops",
             "--wait", timeout=timeout)
    obj = k.get_json("backups.velero.io", name, "-n", k.ns)
    st = obj.get("status") or {}
    took = round(time.monotonic() - t0, 1)
    rec = {
        "kind": "backup", "platform": p.id, "stack": stack.name, "date": iso(_now()),
        "outcome": "pass" if st.get("phase") == "Completed" else "fail",
        "backup": name, "cluster": p.cluster, "namespace": p.namespace, "phase": st.get("phase"),
        "started": st.get("startTimestamp"), "completed": st.get("completionTimestamp"),
        "expires": st.get("expiration"), "items_backed_up": (st.get("progress") or {}).get("itemsBackedUp"),
        "warnings": st.get("warnings", 0), "errors": st.get("errors", 0),
        "location": t.location, "bucket": t.bucket, "s3_url": t.s3_url, "site": t.site,
        "marker": {"configmap": f"{p.namespace}/{MARKER}", "token": token, "written_at": iso(start)},
        "source_counts": counts, "seconds": took,
        "volume_data": ("file-system backup of the pods' volumes (Velero's node agents)" if t.fs_backup else
                        "objects only: no file-system backup of volume data (environment backup.fs_backup is false)"),
    }
    write_record(stack, "backup", p.id, rec)
    progress(f"{p.id}: backup {name} {st.get('phase')} ({rec['items_backed_up']} items, {took} s)")
    if rec["outcome"] != "pass":
        raise BackupError(f"{p.id}: backup {name} ended {st.get('phase')} "
                          f"({st.get('errors', 0)} errors; `velero backup logs {name}`)", 1)
    return rec


# --------------------------------------------------------------------------- restore


def _wait_backup(k: Cluster, platform: str, name: str | None, deadline: float, progress: Progress) -> dict[str, Any]:
    said = False
    while True:
        if name:
            b = k.get_or_none("backups.velero.io", name, "-n", k.ns)
            b = b if b and (b.get("status") or {}).get("phase") == "Completed" else None
        else:
            b = latest_backup(k, platform)
        if b:
            return b
        if time.monotonic() > deadline:
            raise BackupError(f"{platform}: no completed backup{' ' + name if name else ''} is known to Velero on "
                              f"cluster {k.id} (its backup sync from the location has not brought it; is Velero "
                              f"running there? `velero backup get -n {k.ns}`)", 1)
        if not said:
            progress(f"{platform}: waiting for Velero on {k.id} to sync the backup from the storage location ...")
            said = True
        time.sleep(2)


def backup_contents(k: Cluster, name: str, ns: str) -> dict[str, int]:
    """What the backup holds in namespace ``ns``, by kind, from Velero (``velero backup describe --details``)."""
    out = k.velero("backup", "describe", name, "--details", timeout=120).stdout
    by: dict[str, int] = {}
    in_list, kind = False, None
    for line in out.splitlines():
        if line.startswith("Resource List:"):
            if "<" in line:  # Resource List: <backup resource list not found> / <error ...>
                raise BackupError(f"velero backup describe {name}: {line.strip()}", 3)
            in_list = True
            continue
        if in_list:
            if line.strip() and not line[:1].isspace():
                break
            m = re.match(r"^\s+- (\S+?)/(\S+)\s*$", line)
            if m:
                if kind and m.group(1) == ns:
                    by[kind] = by.get(kind, 0) + 1
                continue
            m = re.match(r"^\s+(\S+):\s*$", line)
            if m:
                kind = _gk(m.group(1))
    if not in_list:
        raise BackupError(f"velero backup describe {name} --details gave no resource list "
                          f"(Velero could not read the backup's contents from the storage location)", 3)
    return by


def restore(stack: Any, platform: str, target_cluster: str, namespace: str, *, backup_name: str | None = None,
            progress: Progress = print, dry_run: bool = False, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Restore the platform's latest completed backup (or ``backup_name``) into ``namespace`` of
    ``target_cluster`` (``velero restore create --namespace-mappings``). Returns the record
    (not written: the caller records it)."""
    pf = _model(stack)
    p = _platform(pf, platform)
    if dry_run:
        progress(f"{p.id}: would restore {backup_name or 'its latest backup'} into namespace {namespace} of "
                 f"cluster {target_cluster} (velero restore create --namespace-mappings {p.namespace}:{namespace})")
        return {"platform": p.id, "dry_run": True, "target_cluster": target_cluster, "namespace": namespace}
    k = Cluster(stack, target_cluster)
    k.reachable()
    t0 = time.monotonic()
    if backup_name is None and p.cluster != target_cluster:
        # The newest backup is the one the platform's own cluster made last; the target's Velero
        # learns of it at its next sync. With the primary lost (a failover), the newest the
        # target knows of.
        try:
            src = Cluster(stack, p.cluster)
            src.reachable()
            last = latest_backup(src, p.id)
            backup_name = last["metadata"]["name"] if last else None
        except BackupError as e:
            progress(f"{p.id}: cluster {p.cluster} unreachable ({str(e)[:120]}): "
                     f"restoring the newest backup Velero on {target_cluster} knows of")
    b = _wait_backup(k, p.id, backup_name, time.monotonic() + SYNC_TIMEOUT, progress)
    bname = b["metadata"]["name"]
    rname = f"{bname}-to-{namespace}"[:52] + _now().strftime("-%H%M%S")
    progress(f"{p.id}: velero restore create {rname} --from-backup {bname} into {target_cluster}/{namespace} ...")
    # What the controllers make comes back by itself from the restored Deployments and StatefulSets:
    # restoring Pods too fails (the API refuses their pod-template-hash as both a spread constraint's
    # matchLabelKey and its selector) and would run stale copies.
    args = ["restore", "create", rname, "--from-backup", bname, "--wait", "--exclude-resources", CONTROLLER_MADE]
    if namespace != p.namespace:
        args += ["--namespace-mappings", f"{p.namespace}:{namespace}"]
    k.velero(*args, timeout=timeout)
    r = k.get_json("restores.velero.io", rname, "-n", k.ns)
    st = r.get("status") or {}
    return {"platform": p.id, "backup": bname, "backup_completed": (b.get("status") or {}).get("completionTimestamp"),
            "backup_started": (b.get("status") or {}).get("startTimestamp"),
            "restore": rname, "phase": st.get("phase"), "warnings": st.get("warnings", 0),
            "errors": st.get("errors", 0), "items_restored": (st.get("progress") or {}).get("itemsRestored"),
            "target_cluster": target_cluster, "namespace": namespace, "seconds": round(time.monotonic() - t0, 1)}


def _cleanup(k: Cluster, ns: str, progress: Progress) -> bool:
    k.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s", timeout=150)
    pvs = k.get_json("persistentvolumes").get("items") or []
    mine = [v["metadata"]["name"] for v in pvs if ((v.get("spec") or {}).get("claimRef") or {}).get("namespace") == ns]
    if mine:
        k.kubectl("delete", "persistentvolume", *mine, "--ignore-not-found", "--wait=false", timeout=60)
    gone = k.get_or_none("namespace", ns) is None
    progress(f"scratch namespace {ns} on {k.id} {'removed' if gone else 'still terminating'}"
             + (f", {len(mine)} PersistentVolume(s) deleted" if mine else ""))
    return gone


def judge(expected: dict[str, int], restored: dict[str, int], marker: dict[str, Any] | None,
          want_token: str | None, backup_started: str | None) -> tuple[bool, list[str]]:
    """A restore test's verdict: every counted kind came back at least as often as the backup
    holds it, and the marker is there (with the token of the last dcops backup, or written before
    the backup began). Returns (ok, reasons of failure)."""
    bad: list[str] = []
    for kind, n in sorted(expected.items()):
        if kind in COUNTED_GK and restored.get(kind, 0) < n:
            bad.append(f"{kind}: {restored.get(kind, 0)} of {n} restored")
    if marker is None:
        bad.append(f"the data marker ConfigMap {MARKER} did not come back")
    else:
        data = marker.get("data") or {}
        if want_token is not None:
            if data.get("token") != want_token:
                bad.append("the data marker came back with another token than the backup's")
        elif backup_started and data.get("written_at"):
            if parse_time(data["written_at"]) > parse_time(backup_started):
                bad.append("the data marker is newer than the backup")
        elif not data.get("written_at"):
            bad.append("the data marker has no time")
    return not bad, bad


def restore_test(stack: Any, platform: str | None = None, *, progress: Progress = print, dry_run: bool = False,
                 keep: bool = False, timeout: float = TIMEOUT) -> dict[str, Any] | list[dict[str, Any]]:
    """Restore the latest backup of a platform into a scratch namespace of its DR cluster, check it,
    record it (outcome pass/fail), clean up. ``None``: every platform (list of records).

    The record is written whatever the outcome; BackupError(code 3) when it could not be run
    (then a record with outcome ``error`` is written too, so the control sees the attempt)."""
    pf = _model(stack)
    if platform is None:
        return [restore_test(stack, p.id, progress=progress, dry_run=dry_run, keep=keep, timeout=timeout)
                for p in pf.platforms]
    p = _platform(pf, platform)
    target_of(stack)
    target = dr_cluster(pf, p.id)
    scratch = f"{SCRATCH_PREFIX}{p.id}"[:63]
    if dry_run:
        restore(stack, p.id, target, scratch, progress=progress, dry_run=True)
        progress(f"{p.id}: would count the objects by kind in {target}/{scratch}, read the marker {MARKER}, "
                 f"write {record_path(stack, 'restore-test', p.id)} and delete {scratch}")
        return {"platform": p.id, "dry_run": True, "target_cluster": target, "namespace": scratch}
    start = _now()
    rec: dict[str, Any] = {"kind": "restore-test", "platform": p.id, "stack": stack.name, "date": iso(start),
                           "source_cluster": p.cluster, "target_cluster": target, "scratch_namespace": scratch,
                           "interval_days": pf.datacenter.backup.restore_test_interval_days}
    k = Cluster(stack, target)
    try:
        k.reachable()
        if k.get_or_none("namespace", scratch) is not None:
            progress(f"{p.id}: a scratch namespace {scratch} is left from an earlier test: removing it first")
            _cleanup(k, scratch, progress)
        r = restore(stack, p.id, target, scratch, progress=progress, timeout=timeout)
        rec["restore"] = r
        expected = backup_contents(k, r["backup"], p.namespace)
        restored = count_namespace(k, scratch)
        marker = k.get_or_none("configmap", MARKER, "-n", scratch)
        last = None
        try:
            last = read_record(stack, "backup", p.id)
        except RecordError:
            pass
        want = (last or {}).get("marker", {}).get("token") if (last or {}).get("backup") == r["backup"] else None
        ok, why = judge(expected, restored, marker, want, r.get("backup_started"))
        if r["phase"] != "Completed":
            ok, why = False, [f"Velero's restore ended {r['phase']} ({r['errors']} errors, {r['warnings']} warnings)", *why]
        rec.update({
            "outcome": "pass" if ok else "fail", "reasons": why,
            "expected_counts": {x: n for x, n in sorted(expected.items()) if x in COUNTED_GK},
            "restored_counts": {x: n for x, n in sorted(restored.items())},
            "marker": {"found": marker is not None,
                       "written_at": ((marker or {}).get("data") or {}).get("written_at"),
                       "token_matches_last_backup": (None if want is None else
                                                     ((marker or {}).get("data") or {}).get("token") == want)},
        })
    except BackupError as e:
        rec.update({"outcome": "error", "reasons": [str(e)]})
        rec["cleaned_up"] = _safe_cleanup(k, scratch, progress) if not keep else False
        rec["seconds"] = round((_now() - start).total_seconds(), 1)
        write_record(stack, "restore-test", p.id, rec)
        raise
    rec["cleaned_up"] = False if keep else _safe_cleanup(k, scratch, progress)
    rec["seconds"] = round((_now() - start).total_seconds(), 1)
    path = write_record(stack, "restore-test", p.id, rec)
    progress(f"{p.id}: restore test {rec['outcome'].upper()} ({rec['seconds']} s); record {path}")
    return rec


def _safe_cleanup(k: Cluster, ns: str, progress: Progress) -> bool:
    try:
        return _cleanup(k, ns, progress)
    except BackupError as e:
        progress(f"could not remove the scratch namespace {ns} on {k.id}: {e}")
        return False


def velero_version() -> str:
    """``velero version --client-only`` of the pinned build (BackupError 3 when missing)."""
    try:
        v = str(tool("velero"))
    except ToolMissing as e:
        raise BackupError(str(e), 3) from None
    out = _run([v, "version", "--client-only"], "velero version", 30).stdout
    m = re.search(r"Version:\s*(\S+)", out)
    return m.group(1) if m else out.strip()


__all__ = ["BackupError", "RecordError", "backup", "restore", "restore_test", "install", "read_record",
           "write_record", "record_path", "dr_cluster", "latest_backup", "judge", "velero_version"]
