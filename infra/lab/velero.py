"""The lab's Velero: one ``velero server`` process per cluster, writing to the lab's object store.

A data center runs Velero as a Deployment in each cluster (``velero install``). The lab's
nodes are kwok's (no container runtime), so here each cluster's Velero server runs as a lab
process instead, exactly the same binary and controllers, against the cluster's admin
kubeconfig, inside the lab's management namespace ``<lab>-mgmt`` (where the object store and
the API servers' forwarded ports answer):

- each server has a network namespace of its own (``unshare --net`` inside ``<lab>-mgmt``; the
  Kubernetes controller runtime in it binds ``:8080`` for its metrics, with no flag to move it),
  where a forwarder (:mod:`infra.lab.portfwd`) publishes the object store's and its API server's
  ports from ``<lab>-mgmt``;
- the object store is the lab's SeaweedFS S3 gateway (:mod:`infra.lab.objectstore`, HTTPS with
  the lab's CA and random keys; started here when ``dcops lab up --state s3`` did not), bucket
  ``dcops-backups`` beside the Pulumi state's;
- the environment (``<lab dir>/Pulumi.lab.yaml``) gains ``backup:`` (endpoint, bucket, the
  credentials file, CA, site): ``dcops dr backup`` / ``restore-test`` then work on stack ``lab``;
- Velero's CRDs, namespace, BackupStorageLocation and the province's Schedules are applied
  (:func:`infra.dr.backup.install`), then a server per cluster is started with the object-store
  credentials in its environment (``AWS_SHARED_CREDENTIALS_FILE``), the S3 plugin
  (``velero-plugin-for-aws``) in its plugin directory, a 5 s backup sync (a restore on the DR
  cluster sees a backup made on the primary within seconds) and no immediate backup when a
  Schedule appears. Each process is recorded in the lab's state (component ``velero``, name
  ``<lab>-velero-<cluster>``), so ``dcops lab down`` ends it by PID.

Not covered in the lab: file-system backups of volume data (Velero's node agent is a
DaemonSet; kwok runs no pods for real). Backups hold objects; the restore test's data marker
is a ConfigMap in the platform's namespace (README: Backups and restore tests).

Use: ``start(lab)`` / ``stop(lab)``, or ``python -m infra.lab.velero up|down LAB``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from ..paths import lab_dir, lab_name, tool
from . import objectstore as OS

COMPONENT = "velero"
BUCKET = "dcops-backups"
METRICS_PORT = 18085
PROFILER_PORT = 16060
READY_TIMEOUT = float(os.environ.get("DCOPS_VELERO_TIMEOUT", "180"))


class VeleroLabError(RuntimeError):
    pass


def velero_dir(lab: str) -> Path:
    return lab_dir(lab) / "velero"


def _config_path(lab: str) -> Path:
    return lab_dir(lab) / "Pulumi.lab.yaml"


def backup_section(lab: str, site: str) -> dict[str, Any]:
    """The environment's ``backup`` target for the lab's object store (paths only, no secret)."""
    return {"s3_url": OS.endpoint(), "bucket": BUCKET, "region": OS.REGION,
            "credentials_file": str(OS.credentials_path(lab)), "profile": OS.PROFILE,
            "ca_file": str(OS.ca_path(lab)), "site": site}


def _write_env(lab: str, section: dict[str, Any]) -> Path:
    p = _config_path(lab)
    if not p.exists():
        raise VeleroLabError(f"lab '{lab}' has no environment ({p}): start it with `dcops lab up --name {lab}`")
    doc = yaml.safe_load(p.read_text()) or {}
    doc.setdefault("config", {}).setdefault("dcops:environment", {})["backup"] = section
    head = "".join(line + "\n" for line in p.read_text().splitlines() if line.startswith("#"))
    tmp = p.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=200))
    os.replace(tmp, p)
    return p


def _ensure_bucket(lab: str) -> None:
    r = OS.in_mgmt(lab, OS.s3_request, lab, "PUT", f"/{BUCKET}")
    if r.status_code not in (200, 409):
        raise VeleroLabError(f"creating bucket {BUCKET}: HTTP {r.status_code} {r.text[:300]}")


def _plugin_dir(lab: str) -> Path:
    d = velero_dir(lab) / "plugins"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    link = d / "velero-plugin-for-aws"
    src = tool("velero-plugin-for-aws")
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(src)
    return d


def server_argv(kubeconfig: Path, plugin_dir: Path, i: int, location: str) -> list[str]:
    return [str(tool("velero")), "server", "--kubeconfig", str(kubeconfig), "--plugin-dir", str(plugin_dir),
            f"--metrics-address=127.0.0.1:{METRICS_PORT + i}", f"--profiler-address=127.0.0.1:{PROFILER_PORT + i}",
            "--backup-sync-period=5s", "--store-validation-frequency=10s", "--schedule-skip-immediately=true",
            f"--default-backup-storage-location={location}", "--log-format=text", "--uploader-type=kopia",
            "--default-volumes-to-fs-backup=false"]


def stand_in_deployment(namespace: str) -> dict[str, Any]:
    """The ``velero`` Deployment that ``velero install`` makes, scaled to 0: the server reads its
    image, labels and security context for the restore helpers (a restore fails without it); the
    lab's server itself runs as a process."""
    labels = {"component": "velero", "deploy": "velero"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "velero", "namespace": namespace,
                         "labels": {"component": "velero", "app.kubernetes.io/managed-by": "dcops-lab"},
                         "annotations": {"dcops.gov.vn/lab": "stand-in: the lab runs velero server as a process"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"deploy": "velero"}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "velero", "image": "velero/velero:v1.18.3"}]}}}}


def running(lab: str) -> list[dict[str, Any]]:
    from .state import LabState

    return LabState.load(lab_name(lab)).alive(COMPONENT)


def start(lab: str, progress: Callable[[str], None] = print, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    """Object store (if needed), bucket, environment, Velero's objects, one server per cluster;
    returns {cluster: pid}. Raises VeleroLabError (with the log's tail) when a server does not
    report its location Available within ``timeout``."""
    from .. import environment as E
    from ..dr import backup as B
    from .state import LabState

    n = lab_name(lab)
    if running(n):
        progress(f"lab '{n}': Velero already runs ({len(running(n))} server(s))")
        return {p["cluster"]: p["pid"] for p in running(n) if not p["name"].endswith("-forward")}
    if not OS.running(n):
        OS.start(n, progress=progress)
    _ensure_bucket(n)
    # Where the store really is: a process of the lab's management namespace, on none of the
    # clusters (a data center names its DR site, e.g. the cluster id of the DR cluster).
    site = f"lab object store in {n}-mgmt"
    _write_env(n, backup_section(n, site))
    stack = E.load("lab", _config_path(n))
    t = stack.env.backup
    B.install(stack, progress=progress)
    for c in sorted(stack.env.clusters):
        B.Cluster(stack, c).apply([stand_in_deployment(t.namespace)])
    plugins = _plugin_dir(n)
    ns = OS.mgmt_netns(n)
    d = velero_dir(n)
    (d / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
    (d / "home").mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VELERO_", "KUBECONFIG"))}
    env.update({"VELERO_NAMESPACE": t.namespace, "HOME": str(d / "home"), "GOMEMLIMIT": "192MiB",
                "AWS_SHARED_CREDENTIALS_FILE": str(OS.credentials_path(n)), "AWS_CONFIG_FILE": str(OS.config_path(n)),
                "AWS_EC2_METADATA_DISABLED": "true"})
    pids: dict[str, int] = {}
    st = LabState.load(n)
    for i, c in enumerate(sorted(stack.env.clusters)):
        kc, _ctx = stack.kubeconfig(c, "admin")
        argv = server_argv(kc, plugins, i, t.location)
        log = d / "logs" / f"{c}.log"
        ready = d / f"{c}.ready"
        ready.unlink(missing_ok=True)
        # Its own network namespace (unshare --net, inside <lab>-mgmt): controller-runtime's metrics
        # server binds :8080 with no flag to move it, which the object store's volume server holds in
        # <lab>-mgmt, and two Velero servers would hold each. It starts once the forwarder listens.
        wait = 'ip link set lo up && i=0; while [ ! -e "$0" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exec "$@"'
        with open(log, "ab") as f:
            p = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--net", "--", "/bin/sh", "-c", wait, str(ready),
                                  *argv], stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=d, env=env,
                                 start_new_session=True)
        st.add_process(COMPONENT, f"{n}-velero-{c}", p.pid, cluster=c, log=str(log), dir=str(d), cmd=argv, netns=ns,
                       ports={"metrics": METRICS_PORT + i})
        pids[c] = p.pid
        _forward(n, ns, c, p, [OS.S3_PORT, _api_port(kc)], d / "logs" / f"{c}-forward.log")
        ready.touch()
    try:
        for c in sorted(pids):
            _wait_available(stack, c, pids[c], time.monotonic() + timeout, d / "logs" / f"{c}.log")
            progress(f"lab '{n}': velero server for {c} (pid {pids[c]}) in {ns}: location {t.location} Available")
    except BaseException:
        stop(n)
        raise
    return pids


def _api_port(kubeconfig: Path) -> int:
    from urllib.parse import urlparse

    doc = yaml.safe_load(Path(kubeconfig).read_text())
    return urlparse(doc["clusters"][0]["cluster"]["server"]).port or 443


def _forward(lab: str, mgmt: str, cluster: str, server: subprocess.Popen, ports: list[int], log: Path) -> int:
    """The object store's and the API server's ports, published inside the Velero server's own
    namespace: infra.lab.portfwd run inside <lab>-mgmt, listening in the server's namespace
    (/proc/PID/ns/net) and connecting to <lab>-mgmt's loopback. Recorded; returns its PID."""
    import sys

    from ..paths import REPO
    from .state import LabState

    mine = os.stat(f"/run/netns/{mgmt}").st_ino
    deadline = time.monotonic() + 20
    while True:  # until unshare has made the server's namespace
        if server.poll() is not None:
            raise VeleroLabError(f"velero server for {cluster} exited before it started: {_tail(log.with_name(cluster + '.log'))}")
        try:
            if os.stat(f"/proc/{server.pid}/ns/net").st_ino != mine:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise VeleroLabError(f"velero server for {cluster}: no network namespace of its own after 20 s")
        time.sleep(0.05)
    with open(log, "ab") as f:
        fw = subprocess.Popen(["ip", "netns", "exec", mgmt, sys.executable, "-m", "infra.lab.portfwd",
                               f"../../proc/{server.pid}/ns/net", *map(str, ports)], cwd=str(REPO), stdout=f,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    LabState.load(lab).add_process(COMPONENT, f"{lab}-velero-{cluster}-forward", fw.pid, cluster=cluster, log=str(log),
                                   cmd=list(map(str, fw.args)), netns=mgmt)
    deadline = time.monotonic() + 20
    while "forwarding" not in log.read_text(errors="replace"):
        if fw.poll() is not None or time.monotonic() > deadline:
            raise VeleroLabError(f"the port forwarder of Velero's {cluster} server did not start: {_tail(log)}")
        time.sleep(0.1)
    return fw.pid


def _wait_available(stack: Any, cluster: str, pid: int, deadline: float, log: Path) -> None:
    from ..dr import backup as B

    k = B.Cluster(stack, cluster)
    phase = None
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise VeleroLabError(f"velero server for {cluster} exited; {log}:\n{_tail(log)}") from None
        bsl = k.get_or_none("backupstoragelocations.velero.io", k.location, "-n", k.ns)
        phase = ((bsl or {}).get("status") or {}).get("phase")
        if phase == "Available":
            return
        time.sleep(1)
    raise VeleroLabError(f"velero server for {cluster}: location {k.location} not Available in time "
                         f"(phase {phase}); {log}:\n{_tail(log)}")


def _tail(log: Path, n: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def stop(lab: str, timeout: float = 15.0) -> None:
    """End the lab's Velero servers by their recorded PIDs."""
    from .controlplane import stop_component

    n = lab_name(lab)
    left = stop_component(n, COMPONENT, timeout)
    if left:
        raise VeleroLabError(f"could not stop Velero of lab '{n}': pid {[p['pid'] for p in left]}")


if __name__ == "__main__":  # pragma: no cover - by hand: python -m infra.lab.velero up LAB
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m infra.lab.velero", description="The lab's Velero servers.")
    ap.add_argument("action", choices=["up", "down", "status"])
    ap.add_argument("lab")
    a = ap.parse_args()
    try:
        if a.action == "up":
            print(json.dumps(start(a.lab)))
        elif a.action == "status":
            print(json.dumps(running(a.lab), indent=1))
        else:
            stop(a.lab)
    except (VeleroLabError, OS.ObjectStoreError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
