"""Cluster controls (DCOPS-K8S-*), read from the Kubernetes API.

A :class:`Snapshot` holds what the controls read from one cluster (fetched
once with :func:`fetch`); each control is a pure function of the snapshot, the
province model and its catalog entry, so the same code judges a live cluster
and a unit-test fixture.  The desired state comes from
``infra.render.k8s`` (the objects the Pulumi program applies).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from infra.model import ProvinceFile
from infra.render import k8s as K

from ..catalog import Control, catalog
from ..result import Result

Obj = dict[str, Any]

PLATFORM_KINDS = {
    "networkpolicies": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "resourcequotas": "/api/v1/namespaces/{ns}/resourcequotas",
    "limitranges": "/api/v1/namespaces/{ns}/limitranges",
    "deployments": "/apis/apps/v1/namespaces/{ns}/deployments",
    "statefulsets": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "daemonsets": "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "jobs": "/apis/batch/v1/namespaces/{ns}/jobs",
    "cronjobs": "/apis/batch/v1/namespaces/{ns}/cronjobs",
    "pods": "/api/v1/namespaces/{ns}/pods",
    "pvcs": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "serviceaccounts": "/api/v1/namespaces/{ns}/serviceaccounts",
}
WORKLOAD_KINDS = ("deployments", "statefulsets", "daemonsets", "jobs", "cronjobs", "pods")
"""Everything that runs containers in a namespace: the operator Role may create any of them."""


class KubeError(RuntimeError):
    pass


PROBE_TIMEOUT = 5.0
"""How long ``dcops check`` waits for a cluster's API server to answer ``/readyz`` before it counts
the cluster as down (every control of it then ``error``, none of its other requests is sent)."""


def _retry(retries: Any) -> Any:
    from urllib3.util.retry import Retry

    if retries == "default":
        return Retry(total=2, connect=2, read=0, status=0, other=0, backoff_factor=0.2, raise_on_status=False)
    return retries


class Kube:
    """A thin JSON client over the pinned kubernetes package (kubeconfig: server, CA, credentials).

    Evidence for auditors needs a server whose identity was checked: a kubeconfig that turns
    TLS verification off (``insecure-skip-tls-verify``) is refused, and so is an ``http://``
    server (a token would travel in the clear). The CA is the kubeconfig's own
    (``certificate-authority[-data]``), never the system's trust store in addition to it."""

    def __init__(self, kubeconfig: Path | str, timeout: float = 15.0, context: str | None = None,
                 retries: Any = "default"):
        from kubernetes import config
        from kubernetes.client import Configuration

        self.kubeconfig = str(kubeconfig)
        self.context = context
        conf = Configuration()
        # A connection that fails is tried again, a request that was sent and not answered is not:
        # urllib3's default (3 retries of everything) turns one frozen API server into 4 timeouts.
        conf.retries = _retry(retries)
        try:
            self.client = config.new_client_from_config(config_file=self.kubeconfig, context=context,
                                                        client_configuration=conf)
        except Exception as e:  # unreadable file, unknown context
            raise KubeError(f"kubeconfig {self.kubeconfig}{f' context {context}' if context else ''}: "
                            f"{e.__class__.__name__}: {e}") from None
        conf = self.client.configuration
        self.host = conf.host
        if not self.host.startswith("https://"):
            raise KubeError(f"kubeconfig {self.kubeconfig}: server {self.host} is not https: refused "
                            "(credentials and evidence would travel unprotected)")
        if not conf.verify_ssl:
            raise KubeError(f"kubeconfig {self.kubeconfig}: insecure-skip-tls-verify is set: refused "
                            "(the server's identity would not be checked); give it the cluster's CA")
        if not conf.ssl_ca_cert:
            raise KubeError(f"kubeconfig {self.kubeconfig}: no certificate-authority for {self.host}: give the "
                            "cluster's CA (the system trust store would accept any public certificate for its name)")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            r = self.client.rest_client.request(
                method, self.host + path, headers=headers, body=body, _preload_content=False,
                # (connect, read): the kubernetes client ignores a float (only an int or a pair is
                # a timeout there), so 15.0 alone meant no timeout at all: a frozen server hung forever
                _request_timeout=(self.timeout, self.timeout),
            )
            status, raw = r.status, r.data
        except ApiException as e:
            status, raw = e.status, e.body
        except Exception as e:  # connection refused, TLS...
            raise KubeError(f"{method} {self.host}{path}: {e.__class__.__name__}: {e}") from e
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace") if isinstance(raw, bytes) else raw

    def get(self, path: str) -> Any:
        status, obj = self.request("GET", path)
        if status != 200:
            raise KubeError(f"GET {path}: HTTP {status}: {obj.get('message') if isinstance(obj, dict) else obj}")
        return obj

    def get_or_none(self, path: str) -> Any:
        status, obj = self.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise KubeError(f"GET {path}: HTTP {status}: {obj.get('message') if isinstance(obj, dict) else obj}")
        return obj

    def items(self, path: str) -> list[Obj]:
        return self.get(path).get("items") or []


@dataclass
class Snapshot:
    cluster: str
    namespaces: dict[str, Obj | None] = field(default_factory=dict)  # platform namespaces (None: missing)
    per_ns: dict[str, dict[str, list[Obj]]] = field(default_factory=dict)  # ns -> kind -> objects
    cluster_role_bindings: list[Obj] = field(default_factory=list)
    role_bindings: list[Obj] = field(default_factory=list)
    cluster_roles: dict[str, Obj] = field(default_factory=dict)
    # encryption at rest: the API server's flags and config, and raw etcd values of Secrets
    apiserver_flags: list[str] | None = None
    encryption_config: Obj | None = None
    encryption_config_error: str = ""
    etcd_secrets: dict[str, bytes] | None = None  # etcd key -> raw value prefix
    etcd_error: str = ""
    etcd_namespaces: list[str] | None = None  # the platforms' namespaces found in etcd (proof that the read reached the data)
    evidence_configured: bool = False  # the environment says where the control plane's evidence is
    other_networkpolicies: list[Obj] = field(default_factory=list)  # NetworkPolicies of every other namespace

    def objs(self, ns: str, kind: str) -> list[Obj]:
        return self.per_ns.get(ns, {}).get(kind, [])


def fetch(kube: Kube, pf: ProvinceFile, cluster: str, evidence: Any = None) -> Snapshot:
    """Everything the cluster controls read, in one pass.

    ``evidence``: the environment's :class:`infra.environment.ClusterEvidence` for this
    cluster with its paths resolved (see :func:`resolve_evidence`), or None: then what only
    the control plane's hosts can show (encryption at rest) is "not assessed"."""
    snap = Snapshot(cluster)
    for p in pf.platforms_on(cluster):
        ns = p.namespace
        snap.namespaces[ns] = kube.get_or_none(f"/api/v1/namespaces/{ns}")
        snap.per_ns[ns] = {kind: (kube.items(path.format(ns=ns)) if snap.namespaces[ns] else []) for kind, path in PLATFORM_KINDS.items()}
    platform_ns = {p.namespace for p in pf.platforms_on(cluster)}
    snap.other_networkpolicies = [n for n in kube.items("/apis/networking.k8s.io/v1/networkpolicies")
                                  if (n.get("metadata") or {}).get("namespace") not in platform_ns]
    snap.cluster_role_bindings = kube.items("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")
    snap.role_bindings = kube.items("/apis/rbac.authorization.k8s.io/v1/rolebindings")
    snap.cluster_roles = {r["metadata"]["name"]: r for r in kube.items("/apis/rbac.authorization.k8s.io/v1/clusterroles")}
    snap.evidence_configured = evidence is not None
    if evidence is not None:
        read_encryption_evidence(snap, evidence, [p.namespace for p in pf.platforms_on(cluster)])
    return snap


# --------------------------------------------------------------------- encryption evidence


@dataclass(frozen=True)
class Evidence:
    """Where the encryption-at-rest evidence of a cluster is read (paths resolved)."""

    apiserver_args_file: Path | None = None
    encryption_config_file: Path | None = None
    etcd_endpoints: tuple[str, ...] = ()
    etcd_ca: Path | None = None
    etcd_cert: Path | None = None
    etcd_key: Path | None = None


def resolve_evidence(stack: Any, cluster: str) -> Evidence | None:
    """The environment's evidence section of a cluster, paths resolved; None when it has none."""
    ev = stack.env.clusters[cluster].evidence
    if ev is None:
        return None
    r = stack.resolve
    e = ev.etcd
    return Evidence(r(ev.apiserver_args_file) if ev.apiserver_args_file else None,
                    r(ev.encryption_config_file) if ev.encryption_config_file else None,
                    tuple(e.endpoints) if e else (), r(e.ca_file) if e else None, r(e.cert_file) if e else None,
                    r(e.key_file) if e else None)


def _read_args(path: Path) -> list[str]:
    text = path.read_text()
    try:
        data = json.loads(text)
        if isinstance(data, list):
            return [str(x) for x in data]
    except ValueError:
        pass
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def read_encryption_evidence(snap: Snapshot, ev: Evidence, namespaces: list[str]) -> None:
    """The API server's flags and encryption config, and the raw etcd values of the platforms'
    Secrets. What cannot be read is recorded as an error (never a pass)."""
    try:
        if ev.apiserver_args_file is not None:
            snap.apiserver_flags = _read_args(ev.apiserver_args_file)
            path = ev.encryption_config_file or (lambda p: Path(p) if p else None)(_flag(snap.apiserver_flags, "--encryption-provider-config"))
            if path:
                snap.encryption_config = yaml.safe_load(Path(path).read_text())
        else:
            snap.encryption_config_error = "the environment gives no apiserver_args_file"
    except Exception as e:  # evidence missing is reported, never a pass
        snap.encryption_config_error = f"{e.__class__.__name__}: {e}"
    if ev.etcd_endpoints:
        try:
            snap.etcd_secrets = etcd_secret_values(ev, namespaces)
            snap.etcd_namespaces = etcd_namespaces_present(ev, namespaces)
        except Exception as e:
            snap.etcd_error = f"{e.__class__.__name__}: {e}"
    else:
        snap.etcd_error = "the environment gives no etcd client"


def etcd_request(ev: Evidence, method: str, path: str, body: Any = None) -> Any:
    """etcd's v3 JSON gateway over TLS with the environment's (read-only) etcd client certificate."""
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(ev.etcd_ca))
    ctx.load_cert_chain(str(ev.etcd_cert), str(ev.etcd_key))
    data = json.dumps(body).encode() if body is not None else None
    last: Exception | None = None
    for ep in ev.etcd_endpoints:
        req = urllib.request.Request(f"{ep}{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"etcd {ep}{path}: HTTP {e.code}") from None
        except OSError as e:
            last = e
    raise RuntimeError(f"no etcd endpoint answered: {last}")


def _range_end(prefix: bytes) -> bytes:
    b = bytearray(prefix)
    b[-1] += 1
    return bytes(b)


def etcd_secret_values(ev: Evidence, namespaces: list[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for ns in namespaces:
        prefix = f"/registry/secrets/{ns}/".encode()
        body = {"key": base64.b64encode(prefix).decode(), "range_end": base64.b64encode(_range_end(prefix)).decode()}
        res = etcd_request(ev, "POST", "/v3/kv/range", body)
        for kv in res.get("kvs") or []:
            out[base64.b64decode(kv["key"]).decode()] = base64.b64decode(kv["value"])[:64]
    return out


def etcd_namespaces_present(ev: Evidence, namespaces: list[str]) -> list[str]:
    """The platforms' namespaces whose own key is in etcd (``/registry/namespaces/<ns>``)."""
    found = []
    for ns in namespaces:
        key = f"/registry/namespaces/{ns}".encode()
        res = etcd_request(ev, "POST", "/v3/kv/range", {"key": base64.b64encode(key).decode(), "count_only": True})
        if int(res.get("count") or 0) > 0:
            found.append(ns)
    return found


def _flag(flags: list[str], name: str) -> str | None:
    for i, f in enumerate(flags):
        if f.startswith(name + "="):
            return f.split("=", 1)[1]
        if f == name and i + 1 < len(flags):
            return flags[i + 1]
    return None


# --------------------------------------------------------------------- helpers


def _platforms(pf: ProvinceFile, snap: Snapshot):
    return pf.platforms_on(snap.cluster)


def _per_namespace(cid: str, snap: Snapshot, pf: ProvinceFile, judge: Callable[[str], tuple[bool, Any]], what: str) -> Result:
    """Run ``judge(ns)`` on every platform namespace; fail listing the namespaces that fail."""
    ev: dict[str, Any] = {}
    bad: list[str] = []
    for p in _platforms(pf, snap):
        ns = p.namespace
        if snap.namespaces.get(ns) is None:
            ev[ns] = "namespace missing"
            bad.append(ns)
            continue
        ok, detail = judge(ns)
        ev[ns] = detail
        if not ok:
            bad.append(ns)
    if not ev:
        return Result.skip(cid, snap.cluster, "no platform namespaces on this cluster")
    return Result.verdict(cid, snap.cluster, not bad, {"namespaces": ev, "failing": bad},
                          reason_fail=f"{what} in: {', '.join(bad)}", reason_pass=f"{len(ev)} namespace(s) checked")


def _is_default_deny(np: Obj) -> bool:
    spec = np.get("spec") or {}
    sel = spec.get("podSelector") or {}
    return (
        not sel.get("matchLabels") and not sel.get("matchExpressions")
        and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or [])
        and not spec.get("ingress") and not spec.get("egress")
    )


def differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Where ``got`` (live) does not contain ``want`` (rendered): maps by key, lists item by item."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: want a map, got {got!r}"]
        out: list[str] = []
        for k, v in want.items():
            if k not in got:
                out.append(f"{path}.{k}: missing")
            else:
                out += differences(v, got[k], f"{path}.{k}")
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: want {len(want) if isinstance(want, list) else want!r} item(s), got {len(got) if isinstance(got, list) else got!r}"]
        return [d for i, (w, g) in enumerate(zip(want, got)) for d in differences(w, g, f"{path}[{i}]")]
    return [] if want == got else [f"{path}: want {want!r}, got {got!r}"]


# --------------------------------------------------------------------- controls


def k8s_001(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    def judge(ns: str):
        deny = [n["metadata"]["name"] for n in snap.objs(ns, "networkpolicies") if _is_default_deny(n)]
        return bool(deny), {"default_deny": deny}

    return _per_namespace(c.id, snap, pf, judge, "no default-deny NetworkPolicy")


def k8s_002(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    def judge(ns: str):
        labels = (snap.namespaces[ns] or {}).get("metadata", {}).get("labels") or {}
        enforce = labels.get("pod-security.kubernetes.io/enforce")
        return enforce == "restricted", {"enforce": enforce, "enforce-version": labels.get("pod-security.kubernetes.io/enforce-version")}

    return _per_namespace(c.id, snap, pf, judge, "Pod Security 'restricted' not enforced")


def k8s_003(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    def judge(ns: str):
        qs = snap.objs(ns, "resourcequotas")
        hard = {k for q in qs for k in ((q.get("spec") or {}).get("hard") or {})}
        ok = bool(qs) and {"requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "pods"} <= hard
        return ok, {"quotas": [q["metadata"]["name"] for q in qs], "hard": sorted(hard)}

    return _per_namespace(c.id, snap, pf, judge, "no ResourceQuota limiting pods, CPU and memory")


def k8s_004(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    def judge(ns: str):
        lrs = snap.objs(ns, "limitranges")
        cont = [l for lr in lrs for l in (lr.get("spec") or {}).get("limits") or [] if l.get("type") == "Container"]
        ok = any((l.get("default") or {}).keys() >= {"cpu", "memory"} for l in cont)
        return ok, {"limitranges": [l["metadata"]["name"] for l in lrs]}

    return _per_namespace(c.id, snap, pf, judge, "no LimitRange with container CPU and memory defaults")


def _subject(s: Obj) -> str:
    ns = f"{s['namespace']}/" if s.get("namespace") else ""
    return f"{s.get('kind')}:{ns}{s.get('name')}"


def k8s_005(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    allowed = set(c.params.get("allowed", []))
    found: list[dict] = []
    bad: list[str] = []
    pairs = [("ClusterRoleBinding", b) for b in snap.cluster_role_bindings] + [("RoleBinding", b) for b in snap.role_bindings]
    for kind, b in pairs:  # items of a list carry no "kind"
        ref = b.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole" and ref.get("name") == "cluster-admin":
            where = f"{kind}/{b['metadata'].get('namespace', '')}/{b['metadata']['name']}".replace("//", "/")
            subs = [_subject(s) for s in b.get("subjects") or []]
            found.append({"binding": where, "subjects": subs})
            bad += [f"{s} (via {where})" for s in subs if s not in allowed]
    return Result.verdict(c.id, snap.cluster, not bad, {"bindings": found, "allowed": sorted(allowed), "not_allowed": bad},
                          reason_fail=f"cluster-admin granted beyond the allowed list: {', '.join(bad)}")


def k8s_006(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    name = c.params.get("role", K.AUDITOR_ROLE)
    role = snap.cluster_roles.get(name)
    if role is None:
        return Result.fail(c.id, snap.cluster, {"role": name}, f"ClusterRole {name} does not exist")
    writes, secrets = [], []
    for i, r in enumerate(role.get("rules") or []):
        verbs = set(r.get("verbs") or [])
        if verbs - {"get", "list", "watch"}:
            writes.append({"rule": i, "verbs": sorted(verbs - {"get", "list", "watch"})})
        groups, res = set(r.get("apiGroups") or []), set(r.get("resources") or [])
        if (groups & {"", "*"}) and (res & {"secrets", "*"}):
            secrets.append({"rule": i, "apiGroups": sorted(groups), "resources": sorted(res & {"secrets", "*"})})
        if r.get("nonResourceURLs") and verbs - {"get"}:
            writes.append({"rule": i, "nonResourceURLs": r["nonResourceURLs"]})
    if role.get("aggregationRule"):
        writes.append({"aggregationRule": "the role aggregates others: its rules can grow"})
    ev = {"role": name, "rules": len(role.get("rules") or []), "write_verbs": writes, "secret_access": secrets}
    return Result.verdict(c.id, snap.cluster, not writes and not secrets, ev,
                          reason_fail="auditor role " + "; ".join(x for x in (
                              "grants more than get/list/watch" if writes else "", "can read Secrets" if secrets else "") if x))


SETTLES_007 = ("the kube-apiserver's arguments (--encryption-provider-config) and its encryption config, read on a "
               "control-plane node, and a read-only etcd client to sample the raw Secrets (environment: "
               "clusters.<id>.evidence); or, on a managed cluster, the provider's attestation of encryption at rest")


def k8s_007(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    ev: dict[str, Any] = {}
    if not snap.evidence_configured:
        return Result.not_assessed(c.id, snap.cluster,
                                   "the read-only identity cannot see the API server's flags or etcd through the "
                                   "Kubernetes API, and the environment gives no other evidence",
                                   {"would_settle": SETTLES_007})
    if snap.apiserver_flags is None and snap.etcd_secrets is None:
        return Result.err(c.id, snap.cluster, "no evidence: neither the API server's configuration nor etcd could be read "
                          f"({snap.encryption_config_error}; {snap.etcd_error})")
    problems: list[str] = []
    if snap.apiserver_flags is not None:
        path = _flag(snap.apiserver_flags, "--encryption-provider-config")
        ev["encryption_provider_config"] = path
        if not path:
            problems.append("kube-apiserver has no --encryption-provider-config")
        elif snap.encryption_config is None:
            problems.append(f"encryption config unreadable: {snap.encryption_config_error}")
        else:
            first = None
            for res in snap.encryption_config.get("resources") or []:
                if "secrets" in (res.get("resources") or []):
                    provs = res.get("providers") or []
                    first = next(iter(provs[0]), None) if provs else None
                    break
            ev["secrets_first_provider"] = first
            if first in (None, "identity"):
                problems.append(f"first provider for secrets is {first!r}: new Secrets are stored in plain text")
    else:
        ev["encryption_provider_config"] = f"unknown ({snap.encryption_config_error})"
    if snap.etcd_secrets is not None:
        plain = sorted(k for k, v in snap.etcd_secrets.items() if not v.startswith(b"k8s:enc:") or v.startswith(b"k8s:enc:identity"))
        ev["etcd_secrets_sampled"] = len(snap.etcd_secrets)
        ev["etcd_prefixes"] = sorted({v.split(b":")[2].decode(errors="replace") if v.startswith(b"k8s:enc:") else "plain" for v in snap.etcd_secrets.values()})
        ev["stored_unencrypted"] = plain
        if plain:
            problems.append(f"{len(plain)} Secret(s) stored unencrypted in etcd: {', '.join(plain)}")
    else:
        ev["etcd"] = f"not read ({snap.etcd_error})"
    if problems:
        return Result.fail(c.id, snap.cluster, ev, "; ".join(problems))
    # no problem seen: a pass needs both halves of the evidence, and a sample that means something
    if snap.apiserver_flags is None:
        return Result.err(c.id, snap.cluster, f"the API server's configuration could not be read ({snap.encryption_config_error}): "
                          "only etcd was sampled", ev)
    if snap.etcd_secrets is None:
        return Result.err(c.id, snap.cluster, f"etcd could not be read ({snap.etcd_error}): the configuration says new Secrets "
                          "are encrypted, but what is stored was not seen", ev)
    if not snap.etcd_secrets:
        wanted = [p.namespace for p in pf.platforms_on(snap.cluster)]
        found = snap.etcd_namespaces or []
        ev["etcd_namespaces_found"] = found
        missing = sorted(set(wanted) - set(found))
        if missing or not wanted:
            return Result.err(c.id, snap.cluster, "zero Secrets sampled in etcd and the platforms' namespaces "
                              f"{missing or wanted} are not there either: the read did not reach the cluster's data "
                              "(wrong etcd, --etcd-prefix or permissions)", ev)
        ev["note"] = ("no Secret is stored in the platforms' namespaces yet (their namespace keys are in etcd): "
                      "the verdict rests on the encryption configuration")
    return Result.ok(c.id, snap.cluster, ev)


def _np_key(np: Obj) -> str:
    return np["metadata"]["name"]


def k8s_008(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    # Default deny is DCOPS-K8S-001's business: here the allow rules are compared.
    def judge(ns: str):
        want = {_np_key(n): n for n in K.network_policies(pf, pf.platform_by_id[ns]) if not _is_default_deny(n)}
        got = {_np_key(n): n for n in snap.objs(ns, "networkpolicies") if not _is_default_deny(n)}
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        differ = {k: differences(want[k]["spec"], got[k].get("spec"), "spec")[:5] for k in sorted(set(want) & set(got))}
        differ = {k: v for k, v in differ.items() if v}
        # the live spec must not carry more peers/rules than rendered either
        for k in sorted(set(want) & set(got)):
            if k not in differ and differences(got[k].get("spec"), want[k]["spec"], "spec"):
                differ[k] = ["live spec has fields the rendered one does not"]
        return not (missing or extra or differ), {"missing": missing, "unexpected": extra, "differing": differ}

    return _per_namespace(c.id, snap, pf, judge, "NetworkPolicies differ from the dependency graph")


def _pod_spec(w: Obj) -> Obj:
    """The pod spec of any workload: a Pod's own, a CronJob's job template's, the others' template's."""
    spec = w.get("spec") or {}
    if w.get("kind") == "Pod":
        return spec
    if w.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def _containers(d: Obj) -> list[Obj]:
    spec = _pod_spec(d)
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


_KIND_OF = {"deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet", "jobs": "Job",
            "cronjobs": "CronJob", "pods": "Pod"}


def workloads(snap: Snapshot, ns: str) -> list[Obj]:
    """Every workload of a namespace, each with its ``kind``: Deployments, StatefulSets,
    DaemonSets, Jobs, CronJobs and bare Pods (a Pod a controller owns is judged by its owner)."""
    out = []
    for coll in WORKLOAD_KINDS:
        for w in snap.objs(ns, coll):
            if coll == "pods" and (w.get("metadata") or {}).get("ownerReferences"):
                continue
            out.append({**w, "kind": w.get("kind") or _KIND_OF[coll]})
    return out


def _wname(w: Obj) -> str:
    return f"{w['kind']}/{w['metadata']['name']}"


def k8s_009(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    def judge(ns: str):
        bad, seen = [], []
        for d in workloads(snap, ns):
            pod_sc = _pod_spec(d).get("securityContext") or {}
            for ct in _containers(d):
                sc = ct.get("securityContext") or {}
                non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True and sc.get("runAsUser", pod_sc.get("runAsUser")) != 0
                ro = sc.get("readOnlyRootFilesystem") is True
                no_esc = sc.get("allowPrivilegeEscalation") is False
                name = f"{_wname(d)}/{ct['name']}"
                seen.append(name)
                if not (non_root and ro and no_esc):
                    bad.append({"container": name, "runAsNonRoot": non_root, "readOnlyRootFilesystem": ro, "allowPrivilegeEscalation": not no_esc})
        return not bad, {"containers": seen, "failing": bad}

    return _per_namespace(c.id, snap, pf, judge, "containers may run as root or write their root filesystem")


def k8s_010(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    def judge(ns: str):
        p = pf.platform_by_id[ns]
        # shared volumes by their name; per-replica ones as the StatefulSet names them (<volume>-<platform>-<ordinal>)
        declared = {v.name: v.storage_class for v in p.storage if not v.per_replica}
        declared |= {f"{v.name}-{p.id}-{i}": v.storage_class for v in p.storage if v.per_replica for i in range(p.replicas)}
        retained = {f"{v.name}-{p.id}-": v.storage_class for v in p.storage if v.per_replica}  # kept after a scale-down
        live = {x["metadata"]["name"]: x for x in snap.objs(ns, "pvcs")}
        bad = []
        ev = {}
        for name, cls in declared.items():
            x = live.get(name)
            if x is None:
                bad.append(f"{name}: missing")
                continue
            got_cls, phase = (x.get("spec") or {}).get("storageClassName"), (x.get("status") or {}).get("phase")
            if x["metadata"].get("deletionTimestamp"):
                phase = f"{phase}, being deleted"
            ev[name] = {"class": got_cls, "declared": cls, "phase": phase}
            if got_cls != cls or phase != "Bound":
                bad.append(f"{name}: class {got_cls} (declared {cls}), phase {phase}")
        for name in sorted(set(live) - set(declared)):
            prefix = next((x for x in retained if name.startswith(x) and name[len(x):].isdigit()), None)
            if prefix and (live[name].get("spec") or {}).get("storageClassName") == retained[prefix]:
                ev[name] = {"class": retained[prefix], "retained": "after a scale-down (StatefulSet claims are kept)"}
                continue
            bad.append(f"{name}: not declared in the province file (class {(live[name].get('spec') or {}).get('storageClassName')})")
        return not bad, {"pvcs": ev, "problems": bad}

    return _per_namespace(c.id, snap, pf, judge, "PVCs not bound to their declared storage class")


def k8s_011(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    def judge(ns: str):
        sas = {s["metadata"]["name"]: s for s in snap.objs(ns, "serviceaccounts")}
        bad, ev = [], {}
        for d in workloads(snap, ns):
            spec = _pod_spec(d)
            sa = spec.get("serviceAccountName") or "default"
            v = spec.get("automountServiceAccountToken")
            if v is None:
                v = (sas.get(sa) or {}).get("automountServiceAccountToken")
            mounted = v is not False  # Kubernetes mounts unless told not to
            ev[_wname(d)] = {"serviceAccount": sa, "automount": mounted}
            if mounted:
                bad.append(_wname(d))
        return not bad, {"workloads": ev, "failing": bad}

    return _per_namespace(c.id, snap, pf, judge, "service account tokens mounted into pods")


def k8s_012(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    """Every container image comes from the provincial registry the province file declares
    (``datacenter.registry``), or is one of its declared exceptions; never from the file's own
    images (which would allow any registry a platform happens to name)."""
    reg = pf.datacenter.registry
    if reg is None:
        return Result.not_assessed(c.id, snap.cluster, "the province file declares no provincial registry "
                                   "(datacenter.registry): there is nothing to compare the images with",
                                   {"would_settle": "datacenter.registry: {host: registry.<province>.gov.vn}"})
    allowed = {"registry": reg.host, "exceptions": [f"{x.image}: {x.reason}" for x in reg.exceptions]}

    def judge(ns: str):
        bad, seen = [], []
        for d in workloads(snap, ns):
            for ct in _containers(d):
                img = ct.get("image", "")
                seen.append(img)
                if not reg.allows(img):
                    bad.append(f"{_wname(d)}/{ct['name']}: {img}")
        return not bad, {"images": seen, "outside_registry": bad, "allowed": allowed}

    return _per_namespace(c.id, snap, pf, judge, "images from outside the provincial registry")


def k8s_013(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    def judge(ns: str):
        p = pf.platform_by_id[ns]
        kind = "StatefulSet" if p.per_replica_storage else "Deployment"
        d = next((x for x in workloads(snap, ns) if x["kind"] == kind and x["metadata"]["name"] == p.id), None)
        if d is None:
            return False, {"workload": f"{kind}/{p.id} missing"}
        got = (d.get("spec") or {}).get("replicas")
        ready = (d.get("status") or {}).get("readyReplicas") or 0
        return got == p.replicas and ready == p.replicas, {
            "workload": f"{kind}/{p.id}", "replicas": got, "ready": ready, "declared": p.replicas}

    return _per_namespace(c.id, snap, pf, judge, "ready replicas differ from the province file")


# --------------------------------------------------------------------- LGSP, the door to national systems


def _egress_isolating(spec: Obj) -> bool:
    types = spec.get("policyTypes")
    if types is None:  # the API's default; a live object always carries policyTypes
        return bool(spec.get("egress"))
    return "Egress" in types


def _block_admits(block: Obj, net: ipaddress.IPv4Network) -> bool:
    """Does an ipBlock (``cidr`` minus its ``except`` ranges) admit any address of ``net``?"""
    try:
        cidr = ipaddress.ip_network(str(block.get("cidr", "")), strict=False)
    except ValueError:
        return False
    if cidr.version != 4 or not cidr.overlaps(net):
        return False
    left = [net if net.subnet_of(cidr) else cidr]  # two CIDRs overlap only by nesting
    for e in block.get("except") or []:
        try:
            ex = ipaddress.ip_network(str(e), strict=False)
        except ValueError:
            continue
        if ex.version != 4:
            continue
        nxt: list[ipaddress.IPv4Network] = []
        for n in left:
            if not n.overlaps(ex):
                nxt.append(n)
            elif not n.subnet_of(ex):
                nxt.extend(n.address_exclude(ex))
        left = nxt
    return bool(left)


def national_reach(pf: ProvinceFile, policies: dict[str, list[Obj]], must_isolate: set[str]) -> dict[str, dict[str, list[str]]]:
    """Namespace -> national endpoint id -> what lets the namespace's pods reach its address.

    An egress rule reaches an endpoint when it has no ``to`` (every destination) or an ipBlock
    admitting part of the endpoint's CIDR (ports aside: the address is reached). Namespace and pod
    selectors name pods of the cluster, never a national address. A namespace of ``must_isolate``
    without a policy isolating the egress of all its pods reaches every address."""
    nets = {n.id: ipaddress.ip_network(n.cidr) for n in pf.national_endpoints}
    out: dict[str, dict[str, list[str]]] = {}
    for ns in sorted(set(policies) | must_isolate):
        reach: dict[str, list[str]] = {}
        pols = policies.get(ns, [])
        isolated = any(_egress_isolating(n.get("spec") or {}) and not ((n.get("spec") or {}).get("podSelector") or {})
                       for n in pols)
        if ns in must_isolate and not isolated:
            for nid in nets:
                reach.setdefault(nid, []).append("no egress isolation")
        for n in pols:
            spec = n.get("spec") or {}
            if not _egress_isolating(spec):
                continue
            for rule in spec.get("egress") or []:
                peers = rule.get("to") or []
                for nid, net in nets.items():
                    if not peers or any(_block_admits(x.get("ipBlock") or {}, net) for x in peers if "ipBlock" in x):
                        reach.setdefault(nid, []).append(f"NetworkPolicy {n['metadata']['name']}")
        out[ns] = {k: sorted(set(v)) for k, v in reach.items()}
    return out


def national_allowed(pf: ProvinceFile) -> dict[str, set[str]]:
    """Namespace -> the national endpoints it may reach itself: LGSP's links, a platform's declared exceptions."""
    out: dict[str, set[str]] = {}
    for p in pf.platforms:
        out.setdefault(p.namespace, set()).update(n.id for n, _ in pf.direct_national(p))
    return out


def k8s_014(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    if not pf.national_endpoints:
        return Result.skip(c.id, snap.cluster, "the province declares no national endpoints")
    allowed = national_allowed(pf)
    rendered: dict[str, list[Obj]] = {}
    for o in K.render_cluster(pf, snap.cluster).objects():
        if o["kind"] == "NetworkPolicy":
            rendered.setdefault(o["metadata"]["namespace"], []).append(o)
    present = {ns for ns, obj in snap.namespaces.items() if obj is not None}
    live: dict[str, list[Obj]] = {ns: list(snap.objs(ns, "networkpolicies")) for ns in sorted(present)}
    for n in snap.other_networkpolicies:
        live.setdefault((n.get("metadata") or {}).get("namespace") or "", []).append(n)
    ev: dict[str, Any] = {
        "allowed": {ns: sorted(v) for ns, v in sorted(allowed.items()) if v},
        "exceptions": [f"{p.namespace} -> {x.endpoint}: {x.reason}" for p, x in pf.national_exceptions()],
    }
    beyond: list[str] = []
    for where, pols, isolate in (("rendered", rendered, set(rendered)), ("live", live, present)):
        reach = national_reach(pf, pols, isolate)
        ev[where] = {ns: r for ns, r in reach.items() if r}
        for ns, r in reach.items():
            beyond += [f"{where} {ns} -> {nid} ({', '.join(r[nid])})" for nid in sorted(set(r) - allowed.get(ns, set()))]
    ev["beyond"] = beyond
    checked = len(set(rendered) | set(live))
    return Result.verdict(c.id, snap.cluster, not beyond, ev,
                          reason_fail=f"national endpoints reachable beyond LGSP and the declared exceptions: {'; '.join(beyond)}",
                          reason_pass=f"only LGSP and the declared exceptions reach national endpoints ({checked} namespace(s) checked)")


CONTROLS: dict[str, Callable[[Control, Snapshot, ProvinceFile], Result]] = {
    "DCOPS-K8S-001": k8s_001,
    "DCOPS-K8S-002": k8s_002,
    "DCOPS-K8S-003": k8s_003,
    "DCOPS-K8S-004": k8s_004,
    "DCOPS-K8S-005": k8s_005,
    "DCOPS-K8S-006": k8s_006,
    "DCOPS-K8S-007": k8s_007,
    "DCOPS-K8S-008": k8s_008,
    "DCOPS-K8S-009": k8s_009,
    "DCOPS-K8S-010": k8s_010,
    "DCOPS-K8S-011": k8s_011,
    "DCOPS-K8S-012": k8s_012,
    "DCOPS-K8S-013": k8s_013,
    "DCOPS-K8S-014": k8s_014,
}


_NO_ARGS = "the environment gives no apiserver_args_file"


def k8s_015(c: Control, snap: Snapshot, pf: ProvinceFile) -> Result:
    """The API server is administered from the management zone only: it listens on an address
    of the management segment, or on loopback (then only what the machine publishes reaches it;
    the lab publishes it inside its management namespace only). Read from the API server's own
    command line (the environment's evidence); a firewall in front of an API server that listens
    everywhere is not shown by this evidence and is assessed by hand."""
    mgmt = ipaddress.ip_network(pf.management_segment().cidr)
    if snap.apiserver_flags is None:
        if not snap.evidence_configured or snap.encryption_config_error == _NO_ARGS:
            return Result.not_assessed(c.id, snap.cluster, "the environment gives no API server flags: where the API "
                                       "server listens is unknown",
                                       {"would_settle": "clusters.<id>.evidence.apiserver_args_file (kube-apiserver's command line)"})
        return Result.err(c.id, snap.cluster, f"the API server's flags could not be read: {snap.encryption_config_error}")
    given = _flag(snap.apiserver_flags, "--bind-address")
    bind = given or "0.0.0.0"  # kube-apiserver's default: every interface
    ev = {"bind_address": bind, "bind_address_flag": given, "management": str(mgmt),
          "secure_port": _flag(snap.apiserver_flags, "--secure-port") or "6443"}
    try:
        addr = ipaddress.ip_address(bind)
    except ValueError:
        return Result.err(c.id, snap.cluster, f"--bind-address {bind!r} is not an address", ev)
    if addr.is_unspecified:
        return Result.fail(c.id, snap.cluster, ev, f"the API server listens on every address ({bind}): any zone that "
                           "routes to its node reaches it")
    ok = addr.is_loopback or (addr.version == mgmt.version and addr in mgmt)
    return Result.verdict(c.id, snap.cluster, ok, ev,
                          reason_fail=f"the API server listens on {bind}, outside the management segment {mgmt}")


CONTROLS["DCOPS-K8S-015"] = k8s_015


def level_of(pf: ProvinceFile, cluster: str) -> int:
    """A cluster carries the highest level of its platforms (the province's if it has none)."""
    return max([p.security_level for p in pf.platforms_on(cluster)] or [pf.province.security_level])


def run(snap: Snapshot, pf: ProvinceFile, only: set[str] | None = None) -> list[Result]:
    out = []
    level = level_of(pf, snap.cluster)
    for cid, fn in CONTROLS.items():
        if only and cid not in only:
            continue
        c = catalog().get(cid)
        t0 = time.monotonic()
        if not c.applies_at(level):
            r = Result.skip(cid, snap.cluster, f"applies at levels {c.levels}; cluster is level {level}")
        else:
            try:
                r = fn(c, snap, pf)
            except Exception as e:  # a bug or odd object: an error, never a pass
                r = Result.err(cid, snap.cluster, f"control raised {e.__class__.__name__}: {e}")
        r.duration_s = round(time.monotonic() - t0, 3)
        out.append(r)
    return out


def unanswered(cluster: str, timeout: float, detail: str) -> str:
    """The reason of every control of a cluster whose API server did not answer the probe."""
    return f"the API server of cluster {cluster} did not answer within {timeout:g} s ({detail})"


def probe(kubeconfig: Path | str, cluster: str, context: str | None = None, timeout: float = PROBE_TIMEOUT) -> str | None:
    """One ``GET /readyz`` with a bounded time and no retry: None when the API server answered
    (any HTTP answer: what it refuses, the controls report), else why the cluster counts as down.

    A server whose port accepts connections but never answers (a frozen or cut-off control plane)
    costs ``timeout`` seconds here, once, instead of a timeout per request of every control."""
    try:
        k = Kube(kubeconfig, timeout=timeout, context=context, retries=0)
    except KubeError:
        return None  # an unusable kubeconfig: the controls say so with its own reason
    result: dict[str, Any] = {}

    def ask() -> None:
        try:
            result["status"] = k.request("GET", "/readyz")[0]
        except KubeError as e:
            cause = e.__cause__
            result["error"] = f"{cause.__class__.__name__ if cause else 'error'}: {cause or e}"

    import threading

    t = threading.Thread(target=ask, daemon=True, name=f"probe-{cluster}")
    t.start()
    t.join(timeout + 1.0)  # urllib3 bounds each socket operation; this bounds the whole of it
    if t.is_alive():
        return unanswered(cluster, timeout, f"GET {k.host}/readyz: no answer")
    if "error" in result:
        return unanswered(cluster, timeout, f"GET {k.host}/readyz: {result['error'][:300]}")
    return None


def probe_all(targets: dict[str, tuple[Path | str, str | None]], timeout: float = PROBE_TIMEOUT) -> dict[str, str]:
    """Probe several clusters at once ({cluster: (kubeconfig, context)}); {cluster: reason} of those down."""
    from concurrent.futures import ThreadPoolExecutor

    if not targets:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as ex:
        futs = {c: ex.submit(probe, kc, c, ctx, timeout) for c, (kc, ctx) in targets.items()}
        got = {c: f.result() for c, f in futs.items()}
    return {c: r for c, r in got.items() if r}


def check_cluster(kubeconfig: Path, pf: ProvinceFile, cluster: str, evidence: Evidence | None = None,
                  only: set[str] | None = None, context: str | None = None, down: str | None = None) -> list[Result]:
    """Fetch once, run every cluster control; the API unreachable makes every control an error.

    ``down``: the probe's reason (:func:`probe`) when the API server did not answer; then nothing
    is sent and every control is an error with that reason."""
    if down:
        return [Result.err(cid, cluster, down) for cid in CONTROLS if not only or cid in only]
    try:
        snap = fetch(Kube(kubeconfig, context=context), pf, cluster, evidence)
    except Exception as e:
        reason = f"cannot read cluster {cluster} ({kubeconfig}): {e.__class__.__name__}: {e}"
        return [Result.err(cid, cluster, reason) for cid in CONTROLS if not only or cid in only]
    return run(snap, pf, only)
