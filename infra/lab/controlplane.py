"""A real Kubernetes control plane per cluster of the province file, on loopback.

For every cluster in ``datacenter.clusters`` the lab runs, as detached
processes of the host (own session, logs in the lab directory, PIDs recorded in
the lab's ``state.json``):

- ``etcd`` (TLS with client certificates, own data directory);
- ``kube-apiserver`` (TLS, RBAC + Node authorization, NodeRestriction,
  PodSecurity and DenyServiceExternalIPs admission on top of the defaults,
  Secrets encrypted at rest with secretbox, service-account keys, audit log);
- ``kube-controller-manager`` (all controllers) and ``kube-scheduler``;
- ``kwok``, which makes the fake nodes Ready and the pods on them Running.

Every port is picked free on 127.0.0.1 at start and recorded.  Fake Node
objects are registered for every node pool (count, labels, taints, capacity of
the model).  The admin kubeconfig of a cluster is
``<lab dir>/k8s/<cluster>/kubeconfig`` (0600), the auditors' one (user
``dcops-auditor``, group ``dcops:auditors``: a read-only identity once RBAC
binds the group) ``kubeconfig-auditor`` beside it.

The CAs are split (:mod:`infra.lab.pki`): etcd trusts only its own CA (its
certificates and the API server's etcd client certificate); the API server
trusts the client CA and the CSR signing CA for its clients; kubeconfigs trust
the serving CA.  No client of the API server can talk to etcd.

Layout of ``<lab dir>/k8s/<cluster>/``: ``pki/`` (CAs, certificates, keys,
encryption config; 0700), ``etcd/`` (data), ``logs/<component>.log``,
``*.kubeconfig`` of the components, ``kubeconfig`` (admin),
``kubeconfig-auditor``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..model import Cluster, ProvinceFile
from ..paths import REPO, lab_dir, tool
from . import gatewayapi, pki
from .state import LabState, pid_alive

COMPONENT = "k8s"
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.1/16"  # kwok's fake pod addresses; nothing is ever sent to them
READY_TIMEOUT = float(os.environ.get("DCOPS_LAB_TIMEOUT", "180"))

Progress = Callable[[str], None]

# Keep Popen handles so Python does not warn about still-running children.
_children: list[subprocess.Popen] = []


class LabError(RuntimeError):
    """Starting or checking the lab failed; the message says what and where to look."""


# --------------------------------------------------------------------------- paths


def k8s_dir(name: str, cluster: str) -> Path:
    return lab_dir(name) / "k8s" / cluster


def kubeconfig_path(name: str, cluster: str) -> Path:
    """The admin kubeconfig of a lab cluster (exists while the lab runs)."""
    return k8s_dir(name, cluster) / "kubeconfig"


AUDITOR_USER, AUDITORS_GROUP = "dcops-auditor", "dcops:auditors"


def auditor_kubeconfig_path(name: str, cluster: str) -> Path:
    """The auditors' kubeconfig of a lab cluster (user ``dcops-auditor``, group
    ``dcops:auditors``; client CA): what the checks use to read. Exists while the lab runs."""
    return k8s_dir(name, cluster) / "kubeconfig-auditor"


# --------------------------------------------------------------------------- API client


class Api:
    """A minimal JSON client for a lab API server (admin client certificate)."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path, timeout: float = 10.0):
        self.server = server.rstrip("/")
        self.timeout = timeout
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(cert), str(key))
        self.ctx = ctx

    @classmethod
    def for_cluster(cls, name: str, cluster: str) -> "Api":
        st = LabState.load(name)
        port = st.get(f"k8s.{cluster}.apiserver_port")
        if not port:
            raise LabError(f"lab '{name}' has no API server for cluster '{cluster}' (is the lab up?)")
        d = k8s_dir(name, cluster) / "pki"
        return cls(f"https://127.0.0.1:{port}", d / "ca.crt", d / "client-admin.crt", d / "client-admin.key")

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=self.timeout) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, obj = self.request("GET", path)
        if status != 200:
            raise LabError(f"GET {path}: HTTP {status}: {_msg(obj)}")
        return obj

    def apply(self, path: str, obj: dict[str, Any]) -> Any:
        """Create ``obj`` under collection ``path``; if it exists, leave it (idempotent)."""
        status, out = self.request("POST", path, obj)
        if status in (200, 201, 202, 409):
            return out
        raise LabError(f"POST {path} ({obj['metadata']['name']}): HTTP {status}: {_msg(out)}")

    def healthy(self, check: str = "readyz") -> tuple[bool, str]:
        try:
            status, body = self.request("GET", f"/{check}")
        except (OSError, ssl.SSLError) as e:
            return False, str(e)
        return status == 200, (body if isinstance(body, str) else json.dumps(body)).strip()[:200]


def _msg(obj: Any) -> str:
    if isinstance(obj, dict):
        return obj.get("message", json.dumps(obj)[:300])
    return str(obj)[:300]


# --------------------------------------------------------------------------- helpers


def free_port(taken: set[int]) -> int:
    """A TCP port free on 127.0.0.1 right now (and not already handed out)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port
    raise LabError("no free port on 127.0.0.1")


def spawn(cmd: list[str], log: Path, cwd: Path) -> int:
    """Start ``cmd`` detached (own session, stdin closed, output to ``log``); return its PID."""
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
    try:
        p = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)
    _children.append(p)
    return p.pid


def log_tail(path: Path | str | None, lines: int = 15) -> str:
    if not path:
        return ""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join("    " + line[:300] for line in text[-lines:])


def wait_for(
    what: str, check: Callable[[], tuple[bool, str]], procs: Iterable[dict[str, Any]], timeout: float
) -> None:
    """Poll ``check`` until it passes; fail early if one of ``procs`` dies."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        ok, last = check()
        if ok:
            return
        for p in procs:
            if not pid_alive(p["pid"], p.get("start_time")):
                raise LabError(f"{p['name']} (pid {p['pid']}) exited while waiting for {what}; log {p['log']}:\n"
                               + log_tail(p["log"]))
        if time.monotonic() > deadline:
            logs = "\n".join(f"  {p['name']}: {p['log']}\n{log_tail(p['log'], 8)}" for p in procs)
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})\n{logs}")
        time.sleep(0.5)


def node_pool_nodes(model: ProvinceFile, cluster: Cluster) -> list[dict[str, Any]]:
    """Node manifests for every node pool of ``cluster``, ready to POST.

    Uses ``infra.render.k8s.node_pool_nodes(model, cluster_id)`` when that module
    provides it (so the Pulumi program and the lab agree on names and labels),
    else names nodes ``<cluster>-<pool>-<n>`` with the pool's labels and taints.
    Always adds what kwok and a real scheduler need: the ``kwok.x-k8s.io/node:
    fake`` annotation and capacity (cpu, memory, pods) from the model.
    """
    rendered: list[Any] | None = None
    try:
        from ..render import k8s as render  # type: ignore[attr-defined]

        fn = getattr(render, "node_pool_nodes", None)
        if fn is not None:
            rendered = list(fn(model, cluster.id))
    except ImportError:
        rendered = None

    pools = {p.name: p for p in cluster.node_pools}
    out: list[dict[str, Any]] = []
    if rendered and all(isinstance(n, dict) for n in rendered):
        for n in rendered:
            md = n.get("metadata", {})
            labels = md.get("labels", {})
            pool = pools.get(labels.get("dcops.gov.vn/pool", "")) or next(
                (p for p in cluster.node_pools if md.get("name", "").startswith(f"{cluster.id}-{p.name}-")), None
            )
            out.append(_node(md["name"], pool, labels, n.get("spec", {}).get("taints"), md.get("annotations")))
        return out
    names = rendered if rendered and all(isinstance(n, str) for n in rendered) else None
    i = 0
    for pool in cluster.node_pools:
        for k in range(1, pool.count + 1):
            name = names[i] if names and i < len(names) else f"{cluster.id}-{pool.name}-{k}"
            i += 1
            out.append(_node(name, pool, None, None, None))
    return out


def _node(name: str, pool, labels, taints, annotations) -> dict[str, Any]:
    lab = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    if pool is not None:
        lab.update({"dcops.gov.vn/pool": pool.name, "dcops.gov.vn/segment": pool.segment})
        lab.update(pool.labels)
    lab.update(labels or {})
    if taints is None:
        taints = [t.model_dump(exclude_defaults=False) for t in pool.taints] if pool is not None else []
    cpu = str(pool.cpu) if pool else "4"
    mem = f"{pool.memory_gib}Gi" if pool else "16Gi"
    cap = {"cpu": cpu, "memory": mem, "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": lab,
            # controller-managed attach/detach (what a kubelet sets by default): the attach/detach
            # controller attaches volumes to this node and refuses a second node for a ReadWriteOnce one
            "annotations": {**(annotations or {}), "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"taints": taints} if taints else {},
        "status": {
            "capacity": cap,
            "allocatable": cap,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
                "osImage": "kwok fake node",
                "containerRuntimeVersion": "kwok",
                "kernelVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


KWOK_RBAC: list[tuple[str, dict[str, Any]]] = [
    (
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "dcops:kwok", "labels": {"app.kubernetes.io/managed-by": "dcops-lab"}},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes", "nodes/status", "pods", "pods/status"],
                 "verbs": ["get", "list", "watch", "update", "patch", "delete"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                 "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            ],
        },
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "dcops:kwok", "labels": {"app.kubernetes.io/managed-by": "dcops-lab"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "dcops:kwok"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "dcops:kwok"}],
        },
    ),
]

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
  - level: None
    users: ["system:kube-scheduler", "system:kube-controller-manager", "dcops:kwok"]
    verbs: ["get", "list", "watch"]
  - level: Metadata
"""

# kwok's controller has no built-in behaviour: its Stages say what to do.  The
# lab's: fake nodes become Ready (conditions, addresses, phase) and keep a
# heartbeat (kwok also renews their Leases); scheduled pods become Running and
# Ready (container statuses, pod and host IPs from kwok's fake ranges) once the
# lab's volume stand-in says their volumes are attached to their node (annotation
# VOLUMES_READY, see attach_volumes_once: a kubelet starts no container before);
# Job pods complete; pods marked for deletion go.
KWOK_CONFIG = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  nodePlayStageParallelism: 4
  podPlayStageParallelism: 4
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 1
  enablePodsOnNodeSyncListPager: true
  enablePodsOnNodeSyncStreamWatch: false
  enableDebuggingHandlers: false
  enableProfilingHandler: false
  enableContentionProfiling: false
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: dcops-node-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
      - {key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ['True']}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - type: {{ .type | Quote }}
        status: {{ .status | Quote }}
        reason: {{ .reason | Quote }}
        message: {{ .message | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      addresses:
      - {type: InternalIP, address: {{ NodeIP | Quote }}}
      - {type: Hostname, address: {{ NodeName | Quote }}}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: dcops-node-heartbeat}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
      - {key: '.status.phase', operator: In, values: [Running]}
      - {key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: In, values: ['True']}
  delay: {durationMilliseconds: 300000, jitterDurationMilliseconds: 330000}
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $since := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - type: {{ .type | Quote }}
        status: {{ .status | Quote }}
        reason: {{ .reason | Quote }}
        message: {{ .message | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $since | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: dcops-pod-running}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
      - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
      - {key: '.status.phase', operator: In, values: [Pending]}
      - {key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ['True']}
      - {key: '.metadata.annotations["lab.dcops.gov.vn/volumes-attached"]', operator: In, values: ['true']}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range list "PodScheduled" "Initialized" "ContainersReady" "Ready" }}
      - {type: {{ . }}, status: "True", lastTransitionTime: {{ $now | Quote }}}
      {{ end }}
      {{ range .spec.readinessGates }}
      - {type: {{ .conditionType | Quote }}, status: "True", lastTransitionTime: {{ $now | Quote }}}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state: {running: {startedAt: {{ $now | Quote }}}}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        restartCount: 0
        state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}
      {{ end }}
      {{ with NodeIPsWith .spec.nodeName }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - {ip: {{ . | Quote }}}
      {{ end }}
      {{ end }}
      {{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - {ip: {{ . | Quote }}}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: dcops-pod-job-done}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
      - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
      - {key: '.status.phase', operator: In, values: [Running]}
      - {key: '.metadata.ownerReferences.[].kind', operator: In, values: [Job]}
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: false
        restartCount: 0
        state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}
      {{ end }}
      phase: Succeeded
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: dcops-pod-delete}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
      - {key: '.metadata.deletionTimestamp', operator: Exists}
  next:
    delete: true
"""


# --------------------------------------------------------------------------- the control plane


@dataclass
class ClusterRun:
    """Everything about one cluster's control plane while starting it."""

    name: str  # lab
    cluster: Cluster
    dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, dict[str, Any]] = field(default_factory=dict)
    pki: pki.ClusterPKI | None = None

    @property
    def id(self) -> str:
        return self.cluster.id

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def api(self) -> Api:
        assert self.pki
        a = self.pki.clients["admin"]
        return Api(self.server, self.pki.ca.cert, a.cert, a.key, timeout=5.0)


def check_tools() -> dict[str, Path]:
    """Paths of every tool the control plane needs (raises ToolMissing on the first missing)."""
    return {t: tool(t) for t in TOOLS}


def up(model: ProvinceFile, name: str, progress: Progress = print) -> list[dict[str, Any]]:
    """Start a control plane per cluster of ``model``; return the process records.

    The caller holds the lab lock and has checked that nothing runs.  On
    failure, raises :class:`LabError` (what was started stays recorded in the
    state, so ``down`` removes it).
    """
    tools = check_tools()
    st = LabState.load(name)
    taken: set[int] = set()
    runs = [ClusterRun(name, c, k8s_dir(name, c.id)) for c in model.datacenter.clusters]
    if any(gatewayapi.needed(r.cluster) for r in runs):
        gatewayapi.manifests()  # ToolMissing before anything starts

    for r in runs:
        r.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        st.add_resource("dir", str(r.dir), component=COMPONENT, cluster=r.id)
        for comp in ("etcd_client", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kwok"):
            r.ports[comp] = free_port(taken)
        r.pki = pki.make_cluster_pki(r.dir / "pki", f"dcops-{name}-{r.id}-ca", SERVICE_IP)
        _write_configs(r)
        st.set(f"k8s.{r.id}.ports", r.ports)
        progress(f"{r.id}: certificates, keys and encryption config in {r.dir / 'pki'}")

    def start(r: ClusterRun, comp: str, cmd: list[str], port: int | None, cwd: Path | None = None) -> None:
        log = r.dir / "logs" / f"{comp}.log"
        pid = spawn(cmd, log, cwd or r.dir)
        rec = st.add_process(
            COMPONENT, f"{r.id}/{comp}", pid, cluster=r.id, ports={comp: port} if port else {}, dir=r.dir,
            log=log, cmd=cmd,
        )
        r.procs[comp] = rec
        progress(f"{r.id}: {comp} started (pid {pid}" + (f", 127.0.0.1:{port})" if port else ")"))

    # 1. etcd everywhere, then wait.
    for r in runs:
        start(r, "etcd", _etcd_cmd(tools["etcd"], r), r.ports["etcd_client"])
    for r in runs:
        wait_for(f"{r.id} etcd health", lambda r=r: _etcd_healthy(r), [r.procs["etcd"]], READY_TIMEOUT)
        progress(f"{r.id}: etcd healthy")

    # 2. API servers, then /readyz.
    for r in runs:
        start(r, "kube-apiserver", _apiserver_cmd(tools["kube-apiserver"], r), r.ports["apiserver"])
        st.set(f"k8s.{r.id}.apiserver_port", r.ports["apiserver"])
        st.set(f"k8s.{r.id}.server", r.server)
        st.set(f"k8s.{r.id}.kubeconfig", str(r.dir / "kubeconfig"))
        st.set(f"k8s.{r.id}.auditor_kubeconfig", str(auditor_kubeconfig_path(name, r.id)))
    for r in runs:
        api = r.api()
        wait_for(f"{r.id} kube-apiserver /readyz", api.healthy, [r.procs["kube-apiserver"], r.procs["etcd"]],
                 READY_TIMEOUT)
        progress(f"{r.id}: kube-apiserver ready ({r.server}/readyz ok)")

    # 3. RBAC for kwok, then the controllers, the scheduler and kwok.
    for r in runs:
        api = r.api()
        for path, obj in KWOK_RBAC:
            api.apply(path, obj)
        if gatewayapi.needed(r.cluster):  # its exposure is a Gateway: Gateway API's CRDs (no controller)
            gatewayapi.install(api, progress=lambda m, r=r: progress(f"{r.id}: {m}"))
        start(r, "kube-controller-manager", _kcm_cmd(tools["kube-controller-manager"], r),
              r.ports["controller_manager"])
        start(r, "kube-scheduler", _sched_cmd(tools["kube-scheduler"], r), r.ports["scheduler"])
        start(r, "kwok", _kwok_cmd(tools["kwok"], r), r.ports["kwok"])
        start(r, "volume-provisioner", _provisioner_cmd(r), None, cwd=REPO)

    # 4. Fake nodes per node pool, then wait for them to be Ready.
    for r in runs:
        api = r.api()
        nodes = node_pool_nodes(model, r.cluster)
        for n in nodes:
            api.apply("/api/v1/nodes", n)
        progress(f"{r.id}: registered {len(nodes)} fake nodes "
                 f"({', '.join(f'{p.name}×{p.count}' for p in r.cluster.node_pools)})")
    for r in runs:
        api = r.api()
        want = {n["metadata"]["name"] for n in node_pool_nodes(model, r.cluster)}
        wait_for(f"{r.id} nodes Ready", lambda api=api, want=want: _nodes_ready(api, want),
                 list(r.procs.values()), READY_TIMEOUT)
        wait_for(f"{r.id} controllers healthy",
                 lambda r=r: _components_healthy(r), list(r.procs.values()), READY_TIMEOUT)
        progress(f"{r.id}: {len(want)} nodes Ready; controller-manager, scheduler and kwok healthy")
    return [p for r in runs for p in r.procs.values()]


def _write_configs(r: ClusterRun) -> None:
    assert r.pki
    p = r.pki
    for comp, client in (("controller-manager", "controller-manager"), ("scheduler", "scheduler"),
                         ("kwok", "kwok")):
        pki.write_private(
            r.dir / f"{comp}.kubeconfig",
            pki.kubeconfig(r.server, p.ca.cert, p.clients[client], f"{r.name}-{r.id}", comp),
        )
    pki.write_private(
        r.dir / "kubeconfig",
        pki.kubeconfig(r.server, p.ca.cert, p.clients["admin"], f"{r.name}-{r.id}", f"{r.name}-{r.id}-admin"),
    )
    auditor = pki.issue_client(p, AUDITOR_USER, [AUDITORS_GROUP])
    pki.write_private(
        auditor_kubeconfig_path(r.name, r.id),
        pki.kubeconfig(r.server, p.ca.cert, auditor, f"{r.name}-{r.id}", f"{r.name}-{r.id}-auditor"),
    )
    pki.write_private(r.dir / "audit-policy.yaml", AUDIT_POLICY)
    pki.write_private(r.dir / "kwok.yaml", KWOK_CONFIG)


def _etcd_cmd(binary: Path, r: ClusterRun) -> list[str]:
    p = r.pki
    assert p
    client, peer = f"https://127.0.0.1:{r.ports['etcd_client']}", f"https://127.0.0.1:{r.ports['etcd_peer']}"
    member = f"{r.name}-{r.id}"
    return [
        str(binary),
        f"--name={member}",
        f"--data-dir={r.dir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={member}={peer}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token={member}",
        f"--cert-file={p.etcd.cert}",
        f"--key-file={p.etcd.key}",
        f"--trusted-ca-file={p.etcd_ca.cert}",  # its own CA only: no API client reaches etcd
        "--client-cert-auth=true",
        f"--peer-cert-file={p.etcd.cert}",
        f"--peer-key-file={p.etcd.key}",
        f"--peer-trusted-ca-file={p.etcd_ca.cert}",
        "--peer-client-cert-auth=true",
        # The lab's data is thrown away at `lab down`: skip fsync for speed on small machines.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def _apiserver_cmd(binary: Path, r: ClusterRun) -> list[str]:
    p = r.pki
    assert p
    return [
        str(binary),
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={r.ports['apiserver']}",
        f"--cert-dir={r.dir / 'pki'}",
        f"--tls-cert-file={p.apiserver.cert}",
        f"--tls-private-key-file={p.apiserver.key}",
        "--tls-min-version=VersionTLS12",
        f"--client-ca-file={p.client_ca_bundle}",  # client CA + CSR signing CA
        "--anonymous-auth=false",
        f"--etcd-servers=https://127.0.0.1:{r.ports['etcd_client']}",
        f"--etcd-cafile={p.etcd_ca.cert}",
        f"--etcd-certfile={p.apiserver_etcd_client.cert}",
        f"--etcd-keyfile={p.apiserver_etcd_client.key}",
        "--authorization-mode=Node,RBAC",
        # On top of the default plugins (NamespaceLifecycle, LimitRanger, ServiceAccount, ...).
        # DenyServiceExternalIPs: no new Service.spec.externalIPs (CVE-2020-8554: whoever may
        # create a Service could otherwise intercept traffic to any address).
        "--enable-admission-plugins=NodeRestriction,PodSecurity,DenyServiceExternalIPs",
        # Privileged containers are allowed by the server, so that Pod Security
        # admission (namespace labels) is what rejects them, as in production.
        "--allow-privileged=true",
        f"--encryption-provider-config={p.encryption_config}",
        "--encryption-provider-config-automatic-reload=false",
        f"--service-account-key-file={p.sa_pub}",
        f"--service-account-signing-key-file={p.sa_key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # The `kubernetes` Service would need a non-loopback endpoint: leave it without one.
        "--endpoint-reconciler-type=none",
        f"--audit-policy-file={r.dir / 'audit-policy.yaml'}",
        f"--audit-log-path={r.dir / 'logs' / 'audit.log'}",
        "--audit-log-maxsize=50",
        "--audit-log-maxbackup=1",
        "--profiling=false",
        "--v=1",
    ]


def _delegated(r: ClusterRun, comp: str) -> list[str]:
    kc = r.dir / f"{comp}.kubeconfig"
    return [
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        f"--cert-dir={r.dir / 'pki' / comp}",
        "--leader-elect=false",
        "--profiling=false",
    ]


def _kcm_cmd(binary: Path, r: ClusterRun) -> list[str]:
    p = r.pki
    assert p
    return [
        str(binary),
        *_delegated(r, "controller-manager"),
        f"--secure-port={r.ports['controller_manager']}",
        f"--service-account-private-key-file={p.sa_key}",
        f"--root-ca-file={p.ca.cert}",
        f"--cluster-signing-cert-file={p.signing_ca.cert}",
        f"--cluster-signing-key-file={p.signing_ca.key}",
        "--use-service-account-credentials=true",
        "--controllers=*",
        f"--cluster-name={r.name}-{r.id}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--v=1",
    ]


def _sched_cmd(binary: Path, r: ClusterRun) -> list[str]:
    return [str(binary), *_delegated(r, "scheduler"), f"--secure-port={r.ports['scheduler']}", "--v=1"]


def _kwok_cmd(binary: Path, r: ClusterRun) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={r.dir / 'kwok.kubeconfig'}",
        f"--config={r.dir / 'kwok.yaml'}",
        "--manage-all-nodes=true",
        f"--server-address=127.0.0.1:{r.ports['kwok']}",
        f"--cidr={POD_CIDR}",
        "--node-ip=127.0.0.1",
        "--node-lease-duration-seconds=40",
    ]


def _etcd_healthy(r: ClusterRun) -> tuple[bool, str]:
    assert r.pki
    try:
        out = etcd_request(r.pki, r.ports["etcd_client"], "GET", "/health")
    except (OSError, ssl.SSLError, ValueError) as e:
        return False, str(e)
    return str(out.get("health")) == "true", json.dumps(out)


def etcd_request(p: pki.ClusterPKI | Path, port: int, method: str, path: str, body: Any = None) -> Any:
    """Call etcd's HTTP API (v3 JSON gateway) over loopback with the API server's etcd client certificate.

    ``p``: the cluster's PKI, or its ``pki`` directory.  etcd's server certificate is checked
    against the etcd CA (``ca.crt`` in a lab started before the CAs were split).
    """
    d = p.dir if isinstance(p, pki.ClusterPKI) else Path(p)
    ca = d / f"{pki.ETCD_CA}.crt"
    ctx = ssl.create_default_context(cafile=str(ca if ca.exists() else d / "ca.crt"))
    ctx.load_cert_chain(str(d / "apiserver-etcd-client.crt"), str(d / "apiserver-etcd-client.key"))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"{}")


def etcd_get(name: str, cluster: str, key: str) -> bytes | None:
    """The raw value stored in a lab cluster's etcd under ``key`` (for checks of encryption at rest)."""
    ports = LabState.load(name).get(f"k8s.{cluster}.ports") or {}
    if "etcd_client" not in ports:
        raise LabError(f"lab '{name}' has no etcd for cluster '{cluster}' (is the lab up?)")
    out = etcd_request(k8s_dir(name, cluster) / "pki", ports["etcd_client"], "POST", "/v3/kv/range",
                       {"key": base64.b64encode(key.encode()).decode()})
    kvs = out.get("kvs") or []
    return base64.b64decode(kvs[0]["value"]) if kvs else None


NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def node_ready(n: dict[str, Any]) -> bool:
    """Ready condition True and the node lifecycle controller's not-ready taints gone (pods can land)."""
    conds = n.get("status", {}).get("conditions") or []
    if not any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
        return False
    return not any(t["key"] in NOT_READY_TAINTS for t in n.get("spec", {}).get("taints") or [])


def _nodes_ready(api: Api, want: set[str]) -> tuple[bool, str]:
    try:
        status, obj = api.request("GET", "/api/v1/nodes")
    except (OSError, ssl.SSLError) as e:
        return False, str(e)
    if status != 200:
        return False, f"HTTP {status}"
    ready = {n["metadata"]["name"] for n in obj.get("items", []) if node_ready(n)}
    missing = sorted(want - ready)
    return not missing, f"not Ready yet: {', '.join(missing[:5])}" if missing else "all Ready"


def _local_healthz(port: int) -> tuple[bool, str]:
    """/healthz of a component's secure port on loopback (always-allowed path; self-signed cert)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the component's own self-signed serving cert, on 127.0.0.1
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=3) as r:
            return r.status == 200, r.read().decode()[:100]
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except OSError as e:
        return False, str(e)


def _http_healthz(port: int) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as r:
            return r.status == 200, r.read().decode()[:100]
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except OSError as e:
        return False, str(e)


def _components_healthy(r: ClusterRun) -> tuple[bool, str]:
    bad = []
    for comp, port, fn in (
        ("kube-controller-manager", r.ports["controller_manager"], _local_healthz),
        ("kube-scheduler", r.ports["scheduler"], _local_healthz),
        ("kwok", r.ports["kwok"], _http_healthz),
    ):
        ok, msg = fn(port)
        if not ok:
            bad.append(f"{comp}: {msg}")
    return not bad, "; ".join(bad) or "ok"


# --------------------------------------------------------------------------- fake volume provisioner

LAB_MANAGED = {"app.kubernetes.io/managed-by": "dcops-lab"}
PROVISIONER_ANNOT = "volume.kubernetes.io/storage-provisioner"
SELECTED_NODE_ANNOT = "volume.kubernetes.io/selected-node"
VOLUMES_READY = "lab.dcops.gov.vn/volumes-attached"
"""Pod annotation: its attachable volumes are attached to its node (kwok runs it only then)."""
ATTACH_REQUIRED = {"rbd.csi.ceph.com", "iscsi.csi.k8s.io"}
"""Drivers whose volumes are attached to one node (block devices), as their real CSIDriver objects say;
CephFS, NFS and local-path mount without an attach."""
MERGE = "application/merge-patch+json"


def provision_volumes_once(api: Api) -> list[str]:
    """One pass of the lab's volume provisioner; returns what it did.

    Plays the external CSI provisioner of every StorageClass: for each Pending
    PVC that the PV controller handed to an external provisioner (annotation
    ``volume.kubernetes.io/storage-provisioner``; for WaitForFirstConsumer
    classes once the scheduler picked a node), create a PV pre-bound to it
    (CSI source with the class's driver, capacity and access modes of the
    claim, the class's reclaim policy); the controller manager then binds them.
    A CSIDriver object is registered per driver with the real driver's
    ``attachRequired`` (:data:`ATTACH_REQUIRED`): the controller manager's
    attach/detach controller then attaches those volumes to one node at a time
    (VolumeAttachments, which :func:`attach_volumes_once` marks attached) and
    refuses a ReadWriteOnce volume to a second node (Multi-Attach error).
    Released PVs it made with policy Delete are deleted, as a real provisioner would.
    """
    did: list[str] = []
    classes = {c["metadata"]["name"]: c for c in api.get("/apis/storage.k8s.io/v1/storageclasses").get("items", [])}
    drivers = {d["metadata"]["name"] for d in api.get("/apis/storage.k8s.io/v1/csidrivers").get("items", [])}
    for pvc in api.get("/api/v1/persistentvolumeclaims").get("items", []):
        md, spec = pvc["metadata"], pvc["spec"]
        ann = md.get("annotations") or {}
        if pvc.get("status", {}).get("phase") != "Pending" or spec.get("volumeName"):
            continue
        driver = ann.get(PROVISIONER_ANNOT) or ann.get("volume.beta.kubernetes.io/storage-provisioner")
        sc = classes.get(spec.get("storageClassName") or "")
        if not driver or not sc or sc.get("provisioner") != driver:
            continue
        node = ann.get(SELECTED_NODE_ANNOT)
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
            continue
        if driver not in drivers:
            api.apply("/apis/storage.k8s.io/v1/csidrivers", {
                "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                "metadata": {"name": driver, "labels": dict(LAB_MANAGED)},
                "spec": {"attachRequired": driver in ATTACH_REQUIRED, "podInfoOnMount": False,
                         "volumeLifecycleModes": ["Persistent"]},
            })
            drivers.add(driver)
            did.append(f"CSIDriver {driver}")
        pv: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": f"pvc-{md['uid']}",
                "labels": dict(LAB_MANAGED),
                "annotations": {"pv.kubernetes.io/provisioned-by": driver},
            },
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "storageClassName": sc["metadata"]["name"],
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": md["namespace"],
                             "name": md["name"], "uid": md["uid"]},
                "csi": {"driver": driver, "volumeHandle": f"lab-{md['uid']}", "fsType": "ext4"},
            },
        }
        if node:
            pv["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
        api.apply("/api/v1/persistentvolumes", pv)
        did.append(f"PV {pv['metadata']['name']} for {md['namespace']}/{md['name']}")
    for pv in api.get("/api/v1/persistentvolumes?labelSelector=app.kubernetes.io%2Fmanaged-by%3Ddcops-lab").get(
        "items", []
    ):
        if pv.get("status", {}).get("phase") == "Released" and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            api.request("DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
            did.append(f"deleted released PV {pv['metadata']['name']}")
    return did


def attach_volumes_once(api: Api) -> list[str]:
    """One pass of the lab's stand-in for a CSI attacher and a kubelet's volume manager.

    The attacher: every VolumeAttachment the attach/detach controller made is marked attached
    (the controller itself refuses a ReadWriteOnce volume to a second node). The kubelet: a
    scheduled pod gets :data:`VOLUMES_READY` (and kwok runs it) only once each of its volumes
    whose driver requires an attach has an attached VolumeAttachment to the pod's node; a pod
    whose volume is held by another node stays Pending, as on a real cluster."""
    did: list[str] = []
    attachments = api.get("/apis/storage.k8s.io/v1/volumeattachments").get("items", [])
    attached: set[tuple[str, str]] = set()
    for va in attachments:
        md, spec = va["metadata"], va["spec"]
        pv = (spec.get("source") or {}).get("persistentVolumeName")
        if md.get("deletionTimestamp"):
            continue
        if not (va.get("status") or {}).get("attached"):
            status, out = api.request("PATCH", f"/apis/storage.k8s.io/v1/volumeattachments/{md['name']}/status",
                                      {"status": {"attached": True}}, MERGE)
            if status != 200:
                raise LabError(f"marking VolumeAttachment {md['name']} attached: HTTP {status}: {_msg(out)}")
            did.append(f"attached {pv} to {spec.get('nodeName')}")
        attached.add((str(pv), spec.get("nodeName")))
    drivers = {d["metadata"]["name"]: (d.get("spec") or {}).get("attachRequired", True)
               for d in api.get("/apis/storage.k8s.io/v1/csidrivers").get("items", [])}
    claims = {(c["metadata"]["namespace"], c["metadata"]["name"]): c
              for c in api.get("/api/v1/persistentvolumeclaims").get("items", [])}
    pvs = {v["metadata"]["name"]: v for v in api.get("/api/v1/persistentvolumes").get("items", [])}
    for pod in api.get("/api/v1/pods?fieldSelector=status.phase%3DPending").get("items", []):
        md, spec = pod["metadata"], pod["spec"]
        node = spec.get("nodeName")
        if not node or md.get("deletionTimestamp") or (md.get("annotations") or {}).get(VOLUMES_READY) == "true":
            continue
        waiting = []
        for vol in spec.get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pv = pvs.get(((claims.get((md["namespace"], claim)) or {}).get("spec") or {}).get("volumeName") or "")
            if pv is None:
                waiting.append(claim)  # not bound yet
                continue
            driver = ((pv.get("spec") or {}).get("csi") or {}).get("driver")
            if driver and drivers.get(driver, True) and (pv["metadata"]["name"], node) not in attached:
                waiting.append(claim)
        if waiting:
            continue
        status, out = api.request("PATCH", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}",
                                  {"metadata": {"annotations": {VOLUMES_READY: "true"}}}, MERGE)
        if status == 200:
            did.append(f"pod {md['namespace']}/{md['name']}: volumes attached on {node}")
    return did


def assign_load_balancers_once(api: Api) -> list[str]:
    """The lab's stand-in for the address pool's controller (MetalLB): a LoadBalancer Service gets the
    address it asks for (annotation ``metallb.io/loadBalancerIPs``) as its load-balancer ingress.
    The address is only recorded: the lab routes nothing to it (the front ends answer there)."""
    did: list[str] = []
    for svc in api.get("/api/v1/services").get("items", []):
        md, spec = svc["metadata"], svc["spec"]
        if spec.get("type") != "LoadBalancer" or ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            continue
        ips = [x.strip() for x in (md.get("annotations") or {}).get("metallb.io/loadBalancerIPs", "").split(",") if x.strip()]
        if not ips:
            continue
        status, out = api.request("PATCH", f"/api/v1/namespaces/{md['namespace']}/services/{md['name']}/status",
                                  {"status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ips]}}},
                                  MERGE)
        if status == 200:
            did.append(f"Service {md['namespace']}/{md['name']}: load balancer at {', '.join(ips)}")
    return did


def run_provisioner(name: str, cluster: str, interval: float = 1.0) -> None:  # pragma: no cover - a process
    """Loop of the volume provisioner process (``python -m infra.lab.controlplane provisioner``)."""
    import signal

    stop = False

    def _term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _term)
    api = Api.for_cluster(name, cluster)
    while not stop:
        try:
            for line in [*provision_volumes_once(api), *attach_volumes_once(api), *assign_load_balancers_once(api)]:
                print(time.strftime("%H:%M:%S"), line, flush=True)
        except (LabError, OSError, ssl.SSLError, KeyError, ValueError) as e:
            print(time.strftime("%H:%M:%S"), "error:", e, flush=True)
        time.sleep(interval)


def _provisioner_cmd(r: ClusterRun) -> list[str]:
    import sys

    return [sys.executable, "-m", "infra.lab.controlplane", "provisioner", r.name, r.id]


# --------------------------------------------------------------------------- status and down


def cluster_health(name: str, cluster: str) -> dict[str, Any]:
    """API health and node readiness of one lab cluster (for ``lab status``)."""
    try:
        api = Api.for_cluster(name, cluster)
        api.timeout = 3.0
    except (LabError, OSError, ssl.SSLError) as e:
        return {"api": False, "detail": str(e), "nodes": 0, "ready": 0}
    ok, detail = api.healthy()
    nodes = ready = 0
    if ok:
        try:
            items = api.get("/api/v1/nodes").get("items", [])
            nodes = len(items)
            ready = sum(1 for n in items if node_ready(n))
        except (LabError, OSError) as e:
            detail = str(e)
    return {"api": ok, "detail": detail, "nodes": nodes, "ready": ready}


def clusters_of(st: LabState) -> list[str]:
    seen: list[str] = []
    for p in st.processes(COMPONENT):
        c = p.get("cluster")
        if c and c not in seen:
            seen.append(c)
    return seen


def stop_processes(procs: list[dict[str, Any]], timeout: float = 15.0, progress: Progress = print) -> list[dict]:
    """SIGTERM every recorded process (that is still the same process), then SIGKILL after ``timeout``.

    Returns the records of processes that were still alive at the end (should be none).
    """
    import signal

    live = [p for p in procs if pid_alive(p["pid"], p.get("start_time"))]
    for p in live:
        try:
            os.kill(p["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = [p for p in live if pid_alive(p["pid"], p.get("start_time"))]
        if not live:
            break
        time.sleep(0.2)
    for p in live:
        progress(f"{p['name']} (pid {p['pid']}) did not stop after SIGTERM within {timeout:.0f}s: SIGKILL")
        try:
            os.kill(p["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while live and time.monotonic() < deadline:
        live = [p for p in live if pid_alive(p["pid"], p.get("start_time"))]
        time.sleep(0.1)
    return live



def stop_component(lab: str, component: str, timeout: float = 15.0) -> list[dict]:
    """End a lab component's recorded processes (newest first) and drop their records.

    Returns the records of processes still alive at the end (kept in the lab state)."""
    from ..paths import lab_name
    from .state import LabState

    st = LabState.load(lab_name(lab))
    procs = st.processes(component)
    left = stop_processes(list(reversed(procs)), timeout=timeout, progress=lambda m: None)
    for p in procs:
        if p not in left:
            st.remove_process(p["pid"])
    return left

if __name__ == "__main__":  # pragma: no cover
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "provisioner":
        run_provisioner(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m infra.lab.controlplane provisioner LAB CLUSTER")
