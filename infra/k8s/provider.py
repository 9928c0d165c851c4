"""A Pulumi dynamic provider for Kubernetes objects (instead of pulumi-kubernetes).

The pulumi-kubernetes plugin cannot be obtained on this project's machines, so
every Kubernetes object the program declares is a :class:`KubeObject`: a
``pulumi.dynamic.Resource`` whose inputs are

- ``manifest``: the object as a plain dict (from :mod:`infra.render.k8s`);
- ``kubeconfig``: a PATH to a kubeconfig file (never its contents: nothing
  secret lands in the Pulumi state);
- ``await_ready``: for Deployments, wait until every replica is available;
- ``ready_timeout``: seconds to wait for readiness and for deletion.

The provider talks to the API server with its own small HTTPS client
(:class:`PlainClient`, urllib3) when the kubeconfig holds only certificates or a
token, else with the ``kubernetes`` Python client (exec plugins...):

- create/update: server-side apply (field manager ``dcops``, conflicts forced),
  so re-applying is idempotent and fields dropped from the manifest are removed;
- diff: compares old and new manifests (and the kubeconfig path); a change of
  group, kind, namespace or name replaces the object (new first), a change of an
  immutable field (``IMMUTABLE``) deletes and recreates it, equal manifests are
  no change (a second ``pulumi up`` or a ``pulumi preview`` shows nothing to do);
- read (``pulumi refresh``): the live values of exactly the fields the manifest
  sets, or gone when the object no longer exists;
- delete: deletes and waits until the object is gone (404 is fine).

The provider is pickled by dill *by reference* (this module is importable), so
the dynamic-provider process imports this module; keep module-level state to
caches only.

Profiling: with ``DCOPS_K8S_TRACE=<file>`` in the environment of ``pulumi``, every
provider call (diff, create, update, read, delete) appends one JSON line to the
file: ``op``, ``object``, ``kind``, ``t0`` (epoch seconds), ``dt`` and, where
they apply, ``api`` (seconds in the apply/delete request), ``ready`` (Deployment
readiness wait) and ``gone`` (wait until a deleted object is gone).  ``dcops
bench --cases provision`` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

FIELD_MANAGER = "dcops"
DEFAULT_TIMEOUT = 300
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN

# Kinds we render -> (plural, namespaced).  Others are found by discovery.
_KNOWN: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("v1", "LimitRange"): ("limitranges", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("storage.k8s.io/v1", "StorageClass"): ("storageclasses", False),
}

# Fields the API server refuses to change: a change replaces the object (deleted
# first: the name stays the same).  PVCs are deliberately absent: replacing a
# claim would throw its data away, so the API's refusal is reported instead.
IMMUTABLE: dict[str, list[tuple[str, ...]]] = {
    "StorageClass": [("provisioner",), ("parameters",), ("reclaimPolicy",), ("volumeBindingMode",)],
    "Deployment": [("spec", "selector")],
    "StatefulSet": [("spec", "selector")],
    "RoleBinding": [("roleRef",)],
    "ClusterRoleBinding": [("roleRef",)],
}

_LOCK = threading.Lock()
_CLIENTS: dict[str, Any] = {}
_DISCOVERED: dict[tuple[str, str, str], tuple[str, bool]] = {}


class KubeError(RuntimeError):
    """A Kubernetes API call failed; the message names the object and the cause."""


TRACE_ENV = "DCOPS_K8S_TRACE"


@contextlib.contextmanager
def _traced(op: str, manifest: Any):
    """Time one provider call into ``$DCOPS_K8S_TRACE`` (a JSON line); a no-op without it."""
    path = os.environ.get(TRACE_ENV)
    rec: dict[str, Any] = {}
    if not path:
        yield rec
        return
    m = manifest if isinstance(manifest, dict) else {}
    rec.update(op=op, object=describe(m), kind=m.get("kind", ""), t0=time.time(), thread=threading.get_ident())
    try:
        yield rec
    except BaseException as e:
        rec["error"] = type(e).__name__
        raise
    finally:
        rec["dt"] = time.time() - rec["t0"]
        line = json.dumps(rec) + "\n"
        with _LOCK, open(path, "a") as f:
            f.write(line)


# --------------------------------------------------------------------- plain helpers


def clean(value: Any) -> Any:
    """Undo Pulumi's wire format: integral floats back to ints (ports, replicas...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def _has_unknown(value: Any) -> bool:
    if isinstance(value, str):
        return value == _UNKNOWN
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def identity(manifest: dict) -> tuple[str, str, str, str]:
    """(API group, kind, namespace, name): what makes two manifests the same object."""
    api_version = manifest.get("apiVersion", "")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    md = manifest.get("metadata") or {}
    return group, manifest.get("kind", ""), md.get("namespace") or "", md.get("name", "")


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def immutable_changes(old: dict, new: dict) -> list[str]:
    """Immutable fields (see ``IMMUTABLE``) that differ between two manifests of the same object."""
    return [".".join(path) for path in IMMUTABLE.get(new.get("kind", ""), []) if _at(old, path) != _at(new, path)]


def object_id(manifest: dict) -> str:
    """The Pulumi id: ``apiVersion/Kind/namespace/name`` (no namespace part when cluster-scoped)."""
    md = manifest["metadata"]
    parts = [manifest["apiVersion"], manifest["kind"]]
    if md.get("namespace"):
        parts.append(md["namespace"])
    parts.append(md["name"])
    return "/".join(parts)


def describe(manifest: dict) -> str:
    md = manifest.get("metadata") or {}
    ns = md.get("namespace")
    return f"{manifest.get('kind')} {ns + '/' if ns else ''}{md.get('name')}"


def project(desired: Any, live: Any) -> Any:
    """The live values of exactly the fields ``desired`` sets (what we manage).

    Fields the API server adds (defaults, status, uid, the namespace name label)
    are dropped; fields we set that are gone from the live object are missing
    from the result, so a diff against the manifest shows the drift.
    """
    if isinstance(desired, dict) and isinstance(live, dict):
        return {k: project(v, live[k]) for k, v in desired.items() if k in live}
    if isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live):
        return [project(d, x) for d, x in zip(desired, live)]
    return live


# --------------------------------------------------------------------- API access


class ApiError(Exception):
    """An HTTP error answer of the API server (``status``, ``body``: like ``kubernetes.client.ApiException``)."""

    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


# What a kubeconfig may hold for the plain client below; anything else (exec or
# auth-provider plugins, proxies, basic auth...) goes to the ``kubernetes`` package.
_PLAIN_CLUSTER = {"server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify",
                  "tls-server-name"}
_PLAIN_USER = {"client-certificate", "client-certificate-data", "client-key", "client-key-data", "token", "tokenFile"}


class PlainClient:
    """HTTPS to one API server with the certificates or the token of a kubeconfig, over urllib3.

    Why not the ``kubernetes`` package: importing it takes ~3 s of CPU (every model class),
    and each ``pulumi up``/``destroy``/``refresh`` paid that in its first provider calls,
    on the critical path.  Only used for kubeconfigs that need nothing more (see
    ``_PLAIN_*``); certificate and key data are loaded from memory (``memfd`` on Linux;
    elsewhere a private temporary directory, removed at once).
    """

    def __init__(self, server: str, ctx, token: str | None, server_name: str | None):
        import urllib3

        self.host = server.rstrip("/")
        self.token = token
        kw: dict[str, Any] = {"ssl_context": ctx} if self.host.startswith("https:") else {}
        if server_name:
            kw["server_hostname"] = server_name
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=8, retries=False,
                                        timeout=urllib3.Timeout(connect=10.0, read=60.0), **kw)

    @classmethod
    def from_kubeconfig(cls, path: Path) -> "PlainClient | None":
        """The client for the current context of ``path``, or None if it needs more than certificates/token."""
        import base64
        import ssl

        import yaml

        try:
            doc = yaml.safe_load(path.read_text()) or {}
            ctx_name = doc.get("current-context")
            context = next(c["context"] for c in doc.get("contexts") or [] if c.get("name") == ctx_name)
            cluster = next(c["cluster"] for c in doc.get("clusters") or [] if c.get("name") == context.get("cluster"))
            user = next((u["user"] for u in doc.get("users") or [] if u.get("name") == context.get("user")), {}) or {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration, yaml.YAMLError):
            return None
        if set(cluster) - _PLAIN_CLUSTER or set(user) - _PLAIN_USER or not cluster.get("server"):
            return None
        base = path.parent

        def blob(src: dict, key: str) -> bytes | None:
            if src.get(key + "-data"):
                return base64.b64decode(src[key + "-data"])
            if src.get(key):
                f = Path(src[key]).expanduser()
                return (f if f.is_absolute() else base / f).read_bytes()
            return None

        try:
            ctx = ssl.create_default_context()
            if cluster.get("insecure-skip-tls-verify"):
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            else:
                ca = blob(cluster, "certificate-authority")
                if ca:
                    ctx.load_verify_locations(cadata=ca.decode())
            cert, key = blob(user, "client-certificate"), blob(user, "client-key")
            if cert and key:
                _load_cert_chain(ctx, cert, key)
            token = user.get("token")
            if not token and user.get("tokenFile"):
                token = Path(user["tokenFile"]).expanduser().read_text().strip()
        except (OSError, ValueError, ssl.SSLError) as e:
            raise KubeError(f"kubeconfig {path}: cannot load its certificates or token: {e}") from e
        return cls(cluster["server"], ctx, token, cluster.get("tls-server-name"))

    def call(self, method: str, path: str, body: Any, query: list, content_type: str) -> dict:
        from urllib.parse import urlencode

        headers = {"Accept": "application/json", "Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.host + path + (("?" + urlencode(query)) if query else "")
        data = None if body is None else json.dumps(body).encode()
        r = self.pool.request(method, url, body=data, headers=headers, preload_content=True)
        text = r.data.decode("utf-8", "replace") if r.data else ""
        if r.status >= 400:
            raise ApiError(r.status, text)
        return json.loads(text) if text else {}


def _load_cert_chain(ctx, cert: bytes, key: bytes) -> None:
    """``ctx.load_cert_chain`` from memory: anonymous memory files on Linux, else a private temp dir."""
    if hasattr(os, "memfd_create"):
        fds = []
        try:
            for data in (cert, key):
                fd = os.memfd_create("dcops-kubeconfig", os.MFD_CLOEXEC)
                fds.append(fd)
                os.write(fd, data)
            ctx.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
            return
        finally:
            for fd in fds:
                os.close(fd)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dcops-kc-") as d:
        c, k = Path(d) / "c.pem", Path(d) / "k.pem"
        for f, data in ((c, cert), (k, key)):
            fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        ctx.load_cert_chain(str(c), str(k))


def _client(kubeconfig: str):
    """The API client of a kubeconfig (cached per path): :class:`PlainClient`, else the ``kubernetes`` package's."""
    path = Path(kubeconfig)
    if not path.is_file():
        raise KubeError(
            f"kubeconfig {kubeconfig} does not exist: start the lab (`dcops lab up`) or set the stack config "
            f"`dcops:kubeconfigs` to a map of cluster id -> kubeconfig path"
        )
    with _LOCK:
        api = _CLIENTS.get(str(path))
        if api is None:
            api = PlainClient.from_kubeconfig(path)
            if api is None:
                from kubernetes import config as kconfig

                api = kconfig.new_client_from_config(config_file=str(path))
            _CLIENTS[str(path)] = api
        return api


def _host(api) -> str:
    return api.host if isinstance(api, PlainClient) else api.configuration.host


def _call(api, method: str, path: str, body: Any = None, query: Optional[list] = None,
          content_type: str = "application/json") -> dict:
    if isinstance(api, PlainClient):
        return api.call(method, path, body, query or [], content_type)
    resp = api.call_api(
        path,
        method,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
        _request_timeout=60,
    )
    data = resp.data
    return json.loads(data) if data else {}


def _status(e: Exception) -> int | None:
    return getattr(e, "status", None)


def _reason(e: Exception) -> str:
    body = getattr(e, "body", None)
    if body:
        try:
            return json.loads(body).get("message") or str(body)
        except (ValueError, AttributeError):
            return str(body)
    return str(e)


def _transient(e: Exception) -> bool:
    """Worth retrying: API overload or restart, quota status not computed yet, connection trouble."""
    st = _status(e)
    if st in (429, 500, 502, 503, 504):
        return True
    if st == 403 and "status unknown for quota" in _reason(e):
        return True
    if st is None:
        # urllib3 connection errors (API server restarting)
        return type(e).__name__ in ("MaxRetryError", "NewConnectionError", "ProtocolError", "ConnectionError",
                                    "ReadTimeoutError")
    return False


def _retrying(what: str, fn, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - re-raised below when not transient
            if not _transient(e) or time.monotonic() > deadline:
                raise
            pulumi.log.debug(f"{what}: {_reason(e)}; retrying")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _resource(api, api_version: str, kind: str) -> tuple[str, bool]:
    known = _KNOWN.get((api_version, kind))
    if known:
        return known
    key = (_host(api), api_version, kind)
    if key not in _DISCOVERED:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        doc = _retrying(f"discovery {base}", lambda: _call(api, "GET", base))
        for r in doc.get("resources", []):
            if r.get("kind") == kind and "/" not in r.get("name", ""):
                _DISCOVERED[key] = (r["name"], bool(r.get("namespaced")))
                break
        else:
            raise KubeError(f"the API server does not serve {kind} in {api_version}")
    return _DISCOVERED[key]


def _path(api, manifest: dict, with_name: bool = True) -> str:
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    plural, namespaced = _resource(api, api_version, kind)
    md = manifest["metadata"]
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced:
        if not md.get("namespace"):
            raise KubeError(f"{describe(manifest)}: {kind} is namespaced but metadata.namespace is empty")
        path += f"/namespaces/{md['namespace']}"
    path += f"/{plural}"
    if with_name:
        path += f"/{md['name']}"
    return path


def get(api, manifest: dict) -> dict | None:
    """The live object, or None when it does not exist."""
    path = _path(api, manifest)
    try:
        return _retrying(f"get {describe(manifest)}", lambda: _call(api, "GET", path))
    except Exception as e:  # noqa: BLE001
        if _status(e) == 404:
            return None
        raise KubeError(f"reading {describe(manifest)} failed: {_reason(e)}") from e


def apply(api, manifest: dict) -> dict:
    """Server-side apply ``manifest`` as field manager ``dcops`` (conflicts forced)."""
    path = _path(api, manifest)
    query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
    try:
        return _retrying(
            f"apply {describe(manifest)}",
            lambda: _call(api, "PATCH", path, body=manifest, query=query, content_type="application/apply-patch+yaml"),
        )
    except Exception as e:  # noqa: BLE001
        raise KubeError(f"applying {describe(manifest)} failed ({_status(e)}): {_reason(e)}") from e


def deployment_ready(obj: dict) -> tuple[bool, str]:
    """Whether a Deployment has rolled out completely, and a one-line account of where it is."""
    spec, st, md = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    want = spec.get("replicas", 1)
    gen, seen = md.get("generation", 0), st.get("observedGeneration", 0)
    updated, ready, avail = st.get("updatedReplicas", 0), st.get("readyReplicas", 0), st.get("availableReplicas", 0)
    total, unavailable = st.get("replicas", 0), st.get("unavailableReplicas", 0)
    ok = seen >= gen and updated == want and ready == want and avail == want and total == want and not unavailable
    conds = "; ".join(
        f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})" for c in st.get("conditions", [])
    )
    summary = (f"{avail}/{want} available, {ready} ready, {updated} updated, {total} total, "
               f"observedGeneration {seen} of {gen}" + (f"; conditions: {conds}" if conds else ""))
    return ok, summary


def _polls(first: float = 0.1, most: float = 1.0):
    """Sleep intervals for polling: short at first (kwok makes pods Ready within a second or
    two, most deletions finish as fast), growing to ``most`` for slow ones."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 1.5, most)


def wait_ready(api, manifest: dict, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    polls = _polls(0.1, 1.0)
    while True:
        live = get(api, manifest)
        if live is None:
            raise KubeError(f"{describe(manifest)} disappeared while waiting for it to become Ready")
        ok, summary = deployment_ready(live)
        if ok:
            return live
        if time.monotonic() > deadline:
            ns = manifest["metadata"].get("namespace")
            raise KubeError(
                f"{describe(manifest)} not Ready after {timeout:.0f}s: {summary}. "
                f"Look at `kubectl -n {ns} get pods,events` (node pool labels/taints, quota, PVC binding, image), "
                f"or set `dcops:awaitReady false` to skip the wait"
            )
        time.sleep(next(polls))


def delete(api, manifest: dict, timeout: float, rec: dict[str, Any] | None = None) -> None:
    """Delete and wait until gone; a missing object is fine.  ``rec``: gets ``api`` and ``gone`` seconds."""
    rec = {} if rec is None else rec
    path = _path(api, manifest)
    t0 = time.monotonic()
    try:
        _retrying(
            f"delete {describe(manifest)}",
            lambda: _call(api, "DELETE", path, body={"kind": "DeleteOptions", "apiVersion": "v1",
                                                    "propagationPolicy": "Background"}),
        )
    except Exception as e:  # noqa: BLE001
        if _status(e) == 404:
            return
        raise KubeError(f"deleting {describe(manifest)} failed ({_status(e)}): {_reason(e)}") from e
    t1 = time.monotonic()
    rec["api"] = t1 - t0
    deadline = t1 + timeout
    polls = _polls(0.1, 0.5)
    while True:
        live = get(api, manifest)
        if live is None:
            rec["gone"] = time.monotonic() - t1
            return
        if time.monotonic() > deadline:
            fin = (live.get("metadata") or {}).get("finalizers") or (live.get("spec") or {}).get("finalizers")
            raise KubeError(
                f"{describe(manifest)} still exists {timeout:.0f}s after deletion (finalizers: {fin}); "
                f"is kube-controller-manager running?"
            )
        time.sleep(next(polls))


# --------------------------------------------------------------------- the provider


class KubeProvider(ResourceProvider):
    """CRUD for one Kubernetes object; see the module docstring."""

    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        m = news.get("manifest")
        if isinstance(m, dict) and not _has_unknown(m):
            for key in ("apiVersion", "kind"):
                if not isinstance(m.get(key), str) or not m.get(key):
                    failures.append(CheckFailure("manifest", f"manifest needs a non-empty '{key}'"))
            md = m.get("metadata")
            if not isinstance(md, dict) or not md.get("name"):
                failures.append(CheckFailure("manifest", "manifest needs metadata.name"))
        elif not isinstance(m, (dict, str)):
            failures.append(CheckFailure("manifest", "manifest must be a Kubernetes object (a mapping)"))
        kc = news.get("kubeconfig")
        if not isinstance(kc, str) or not kc:
            failures.append(CheckFailure("kubeconfig", "kubeconfig must be the path of a kubeconfig file"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        with _traced("diff", news.get("manifest")):
            return self._diff(olds, news)

    def _diff(self, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        new_m = news.get("manifest")
        old_m = clean(olds.get("manifest") or {})
        if not isinstance(new_m, dict) or _has_unknown(new_m):
            return DiffResult(changes=True)
        new_m = clean(new_m)
        changes = old_m != new_m or olds.get("kubeconfig") != news.get("kubeconfig")
        if identity(old_m) != identity(new_m):
            # another object: make the new one, then delete the old one
            return DiffResult(changes=True, replaces=["manifest"], delete_before_replace=False)
        if old_m and immutable_changes(old_m, new_m):
            # same object, a field the API will not change: delete it, then make it again
            return DiffResult(changes=True, replaces=["manifest"], delete_before_replace=True)
        return DiffResult(changes=changes, replaces=None)

    def _outs(self, props: dict[str, Any], manifest: dict, live: dict | None) -> dict[str, Any]:
        return {
            "manifest": manifest,
            "kubeconfig": props["kubeconfig"],
            "await_ready": bool(props.get("await_ready")),
            "ready_timeout": clean(props.get("ready_timeout") or DEFAULT_TIMEOUT),
            "uid": ((live or {}).get("metadata") or {}).get("uid", ""),
        }

    def _apply(self, props: dict[str, Any], rec: dict[str, Any]) -> tuple[dict, dict]:
        manifest = clean(props["manifest"])
        api = _client(props["kubeconfig"])
        t0 = time.monotonic()
        live = apply(api, manifest)
        t1 = time.monotonic()
        rec["api"] = t1 - t0
        if props.get("await_ready") and manifest.get("kind") == "Deployment":
            live = wait_ready(api, manifest, float(props.get("ready_timeout") or DEFAULT_TIMEOUT))
            rec["ready"] = time.monotonic() - t1
        return manifest, live

    def create(self, props: dict[str, Any]) -> CreateResult:
        with _traced("create", props.get("manifest")) as rec:
            manifest, live = self._apply(props, rec)
            return CreateResult(object_id(manifest), self._outs(props, manifest, live))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with _traced("update", news.get("manifest")) as rec:
            manifest, live = self._apply(news, rec)
            return UpdateResult(self._outs(news, manifest, live))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with _traced("read", props.get("manifest")):
            return self._read(id_, props)

    def _read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        manifest = clean(props.get("manifest") or {})
        if not manifest.get("metadata"):
            return ReadResult(id_, props)
        live = get(_client(props["kubeconfig"]), manifest)
        if live is None:
            return ReadResult("", {})
        current = project(manifest, live)
        outs = self._outs(props, current, live)
        inputs = {k: outs[k] for k in ("manifest", "kubeconfig", "await_ready", "ready_timeout")}
        return ReadResult(id_, outs, inputs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with _traced("delete", props.get("manifest")) as rec:
            manifest = clean(props["manifest"])
            delete(_client(props["kubeconfig"]), manifest, float(props.get("ready_timeout") or DEFAULT_TIMEOUT), rec)


class KubeObject(pulumi.dynamic.Resource, module="dcops", name="KubeObject"):
    """One Kubernetes object, applied by :class:`KubeProvider`.

    Type token ``pulumi-python:dynamic/dcops:KubeObject``.  Outputs: ``manifest``
    (what was applied), ``kubeconfig``, ``uid``.
    """

    manifest: pulumi.Output[dict]
    kubeconfig: pulumi.Output[str]
    uid: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        manifest: dict,
        kubeconfig: str,
        await_ready: bool = False,
        ready_timeout: int = DEFAULT_TIMEOUT,
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__(
            KubeProvider(),
            resource_name,
            {
                "manifest": manifest,
                "kubeconfig": kubeconfig,
                "await_ready": await_ready,
                "ready_timeout": ready_timeout,
                "uid": None,
            },
            opts,
        )
