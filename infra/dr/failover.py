"""Moving platforms to their DR cluster and back: ``dcops dr failover`` / ``dcops dr failback``.

A failover needs only the DR cluster (the primary's API server may be gone) and, for a cold
platform, the backups (:mod:`infra.dr.backup`). For each chosen platform, in order:

1. **fence** the home copy when the home cluster still answers (a planned failover: its workload
   scaled to 0 first, so one site serves); when it does not answer, say so and go on (the
   placement record tells the next ``dcops provision`` to keep it at 0 there);
2. **restore** (cold only): the platform's latest backup into its namespace on the DR cluster
   (``velero restore``, :func:`infra.dr.backup.restore`);
3. **apply** the platform's objects on the DR cluster as the province renders them with the
   platform placed there (:func:`infra.render.k8s.render_cluster` with the new placement):
   server-side apply as field manager ``dcops``, the same objects and manager as ``pulumi up``,
   so the next ``pulumi up`` finds nothing to change;
4. **wait** until the workload has its declared replicas ready;
5. **exposure**: its Service holds the platform's address and has ready endpoints, so the
   address pool's speakers announce it from the DR site (``externalTrafficPolicy: Local``
   announces only from nodes with a ready pod): the address the sites and citizens use, its DNS
   name, the WAN's firewall rules and the SLA probes stay the same and now reach the DR site;
6. **record** where it runs (:mod:`infra.dr.placement`), which the checks, the Pulumi program
   and ``dcops dr status`` follow.

A failback is the reverse and needs the home cluster: the home copy is applied with its
replicas and waited for (exposure back home), then the DR copy goes back to standing by (warm:
0 replicas; cold: the restored workload, Services and disruption budget deleted, its volumes
kept), and the record forgets the platform.

Errors are :class:`DRError` with ``code``: 1 a platform did not come up (or its address was not
served) in time, 2 bad input (unknown platform, a platform without a DR mode), 3 a cluster that
must answer does not, a missing tool, a restore that could not run.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from ..model import ProvinceFile
from ..paths import ToolMissing, tool
from ..render.k8s import object_key, render_cluster
from . import placement as PL

Progress = Callable[[str], None]
READY_TIMEOUT = 300.0
"""Seconds a platform may take to be ready (at most its RTO)."""


class DRError(RuntimeError):
    def __init__(self, message: str, code: int = 3):
        self.code = code
        super().__init__(message)


# --------------------------------------------------------------------------- kubectl


class Kube:
    """kubectl with the stack's admin identity on one cluster."""

    def __init__(self, stack: Any, cluster: str):
        if cluster not in stack.env.clusters:
            raise DRError(f"the environment of stack '{stack.name}' gives no access to cluster '{cluster}' "
                          f"(clusters: {', '.join(stack.env.clusters)})", 2)
        self.id = cluster
        kubeconfig, context = stack.kubeconfig(cluster, "admin")
        try:
            self.base = [str(tool("kubectl")), "--kubeconfig", str(kubeconfig)] + (["--context", context] if context else [])
        except ToolMissing as e:
            raise DRError(str(e), 3) from None

    def run(self, *args: str, timeout: float = 60, stdin: str | None = None, check: bool = True,
            request_timeout: str = "20s") -> subprocess.CompletedProcess:
        argv = [*self.base, f"--request-timeout={request_timeout}", *args]
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin,
                                stdin=None if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DRError(f"cluster {self.id}: kubectl {args[0]} did not answer in {timeout:.0f} s", 3) from None
        if check and cp.returncode != 0:
            raise DRError(f"cluster {self.id}: kubectl {' '.join(args[:3])} failed: "
                          f"{' | '.join((cp.stderr or cp.stdout).strip().splitlines()[-3:])[:500]}", 3)
        return cp

    def answers(self, wait: str = "5s") -> tuple[bool, str]:
        try:
            cp = self.run("get", "--raw", "/readyz", timeout=15, check=False, request_timeout=wait)
        except DRError as e:
            return False, str(e)
        return cp.returncode == 0 and "ok" in cp.stdout, (cp.stderr or cp.stdout).strip()[-200:]

    def get(self, *args: str) -> Any:
        cp = self.run("get", *args, "-o", "json", check=False)
        if cp.returncode != 0:
            if "NotFound" in cp.stderr:
                return None
            raise DRError(f"cluster {self.id}: kubectl get {' '.join(args)}: {cp.stderr.strip()[:300]}", 3)
        return json.loads(cp.stdout)

    def apply(self, objs: list[dict[str, Any]]) -> None:
        text = "\n---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)
        self.run("apply", "--server-side", "--field-manager=dcops", "--force-conflicts", "-f", "-", stdin=text,
                 timeout=180, request_timeout="60s")

    def scale(self, kind: str, ns: str, name: str, replicas: int) -> None:
        self.run("scale", f"{kind.lower()}/{name}", "-n", ns, f"--replicas={replicas}", timeout=40, request_timeout="10s")

    def delete(self, objs: list[dict[str, Any]]) -> None:
        for o in objs:
            kind = o["kind"].lower() + ("." + o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else "")
            self.run("delete", kind, o["metadata"]["name"], "-n", o["metadata"]["namespace"], "--ignore-not-found",
                     "--wait=false", timeout=60)


# --------------------------------------------------------------------------- plan


@dataclass
class Move:
    platform: str
    mode: str
    home: str
    dr: str
    source: str
    target: str
    outcome: str = "planned"
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("platform", "mode", "home", "dr", "source", "target", "outcome",
                                               "seconds", "steps")}


def plan(model: ProvinceFile, placed: dict[str, str], operation: str, platforms: list[str] | None) -> tuple[list[Move], list[str]]:
    """The moves of a failover (to the DR cluster) or failback (home), and notes on what is skipped.
    Raises DRError(2) for a platform that does not exist or has no DR mode."""
    notes: list[str] = []
    chosen = list(platforms or [])
    for pid in chosen:
        if pid not in model.platform_by_id:
            raise DRError(f"platform '{pid}' does not exist (platforms: {', '.join(model.platform_by_id)})", 2)
        if model.platform_by_id[pid].dr.mode == "none":
            raise DRError(f"platform '{pid}' has DR mode none: it has no copy on a DR cluster; set "
                          f"platforms[].dr.mode to warm or cold in the province file and run `dcops provision`", 2)
    if not chosen:
        chosen = [p.id for p in model.platforms if p.dr.mode != "none"]
    moves = []
    for pid in chosen:
        p = model.platform_by_id[pid]
        dr = model.dr_cluster_of(pid) or ""
        where = placed.get(pid, p.cluster)
        if operation == "failover":
            if where == dr:
                notes.append(f"{pid}: already runs on {dr} (dcops dr status); skipped")
                continue
            moves.append(Move(pid, p.dr.mode, p.cluster, dr, where, dr))
        else:
            if where == p.cluster:
                notes.append(f"{pid}: already runs at home on {p.cluster}; skipped")
                continue
            moves.append(Move(pid, p.dr.mode, p.cluster, dr, where, p.cluster))
    return moves, notes


# --------------------------------------------------------------------------- waiting


def _workload(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] in ("Deployment", "StatefulSet"))


def wait_ready(k: Kube, w: dict[str, Any], deadline: float, progress: Progress) -> dict[str, Any]:
    ns, name, kind, want = w["metadata"]["namespace"], w["metadata"]["name"], w["kind"], w["spec"]["replicas"]
    last = None
    while True:
        live = k.get(f"{kind.lower()}.apps", name, "-n", ns) or {}
        st = live.get("status") or {}
        ready = st.get("readyReplicas") or 0
        if (ready, want) != last:
            progress(f"  {k.id}/{ns}: {kind} {name} {ready}/{want} ready")
            last = (ready, want)
        if ready >= want and (live.get("spec") or {}).get("replicas") == want:
            return {"ready": ready, "replicas": want}
        if time.monotonic() > deadline:
            raise DRError(f"{k.id}/{ns}: {kind} {name} has {ready} of {want} replicas ready after the timeout", 1)
        time.sleep(1.0)


def exposure(k: Kube, service: dict[str, Any], address: str, deadline: float, progress: Progress) -> dict[str, Any]:
    """The Service holds the platform's address and has ready endpoints (so it is announced)."""
    ns, name = service["metadata"]["namespace"], service["metadata"]["name"]
    while True:
        svc = k.get("service", name, "-n", ns) or {}
        ingress = [i.get("ip") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
        slices = (k.get("endpointslices.discovery.k8s.io", "-n", ns, "-l", f"kubernetes.io/service-name={name}") or {}).get("items") or []
        ready = sum(1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))
        lb = (svc.get("spec") or {}).get("type") == "LoadBalancer"
        if ready and (not lb or address in ingress):
            progress(f"  {k.id}/{ns}: Service {name} serves {address} ({ready} ready endpoint(s)"
                     + (f", load-balancer ingress {', '.join(ingress)})" if lb else ", inside the cluster)"))
            return {"address": address, "ready_endpoints": ready, "ingress": ingress}
        if time.monotonic() > deadline:
            raise DRError(f"{k.id}/{ns}: Service {name} does not serve {address} (ingress {ingress or 'none'}, "
                          f"{ready} ready endpoints) after the timeout", 1)
        time.sleep(1.0)


# --------------------------------------------------------------------------- the moves


def _load(stack: Any) -> tuple[ProvinceFile, dict[str, str]]:
    from ..validate import load_province

    model = load_province(stack.province)
    try:
        return model, PL.placement(stack.work_dir)
    except PL.PlacementError as e:
        raise DRError(str(e), 2) from None


def run(stack: Any, operation: str, platforms: list[str] | None = None, *, dry_run: bool = False,
        progress: Progress = print, timeout: float = READY_TIMEOUT, restore: Callable | None = None) -> list[Move]:
    """A failover or failback of ``platforms`` (default: every platform with a DR mode). Returns
    the moves; raises :class:`DRError` on the first platform that fails (the ones before it are
    moved and recorded)."""
    assert operation in ("failover", "failback")
    model, placed = _load(stack)
    moves, notes = plan(model, placed, operation, platforms)
    for n in notes:
        progress(n)
    started, t_all = PL.now(), time.monotonic()
    if not moves:
        progress(f"nothing to {operation}")
        return []
    if dry_run:
        for m in moves:  # nothing contacted, nothing written
            _dry(model, placed, operation, m, progress)
        return moves
    clusters: dict[str, Kube] = {}

    def kube(cid: str) -> Kube:
        if cid not in clusters:
            clusters[cid] = Kube(stack, cid)
        return clusters[cid]

    # the cluster the platforms go to must answer; the one they leave may not
    for cid in sorted({m.target for m in moves}):
        ok, why = kube(cid).answers()
        if not ok:
            raise DRError(f"cluster {cid}, where the platforms go, does not answer ({why}); nothing was moved", 3)
    outcome = "ok"
    try:
        for m in moves:
            t0 = time.monotonic()
            progress(f"{m.platform} ({m.mode}): {operation} {m.source} -> {m.target}")
            try:
                (_failover if operation == "failover" else _failback)(stack, model, placed, m, kube, progress,
                                                                      time.monotonic() + timeout, restore)
            except DRError:
                m.outcome = "failed"
                m.seconds = round(time.monotonic() - t0, 1)
                raise
            placed = PL.placement(stack.work_dir)
            _sync_policies(model, placed, m, kube, progress)
            m.seconds = round(time.monotonic() - t0, 1)
            m.outcome = "ok"
            progress(f"{m.platform}: runs on {m.target} ({m.seconds} s)")
    except DRError as e:
        outcome = f"failed: {e}"
        raise
    finally:
        PL.add_history(stack.work_dir, {"operation": operation, "platforms": [m.platform for m in moves],
                                        "moves": [m.as_dict() for m in moves], "started": started,
                                        "finished": PL.now(), "duration_s": round(time.monotonic() - t_all, 1),
                                        "dry_run": False, "outcome": outcome})
    return moves


def _sync_policies(model: ProvinceFile, placed: dict[str, str], m: Move, kube: Callable[[str], Kube],
                   progress: Progress) -> None:
    """The other platforms' NetworkPolicies follow the move (a dependency reached by namespace on one
    cluster is reached by its segment from the other): applied on every cluster of the move that
    answers; one that does not gets them from the next `dcops provision`."""
    for cid in (m.target, m.source):
        k = kube(cid)
        if cid != m.target and not k.answers("3s")[0]:
            continue
        co = render_cluster(model, cid, placed)
        pols = [o for po in co.platforms.values() for o in po.network_policies]
        pols += [o for c in co.dr_copies.values() for o in c.objects if o["kind"] == "NetworkPolicy"]
        live = {n["metadata"]["name"] for n in (k.get("namespaces") or {}).get("items", [])}
        pols = [o for o in pols if o["metadata"]["namespace"] in live]
        if pols:
            k.apply(pols)
            progress(f"  {cid}: {len(pols)} NetworkPolicies of the platforms there follow the move")


def _objects_there(model: ProvinceFile, placed: dict[str, str], m: Move, cluster: str) -> tuple[list, dict | None, dict | None]:
    """The platform's objects on ``cluster`` with the platform placed at ``m.target``: (objects, workload, service)."""
    after = {**placed, m.platform: m.target} if m.target != m.home else {k: v for k, v in placed.items() if k != m.platform}
    co = render_cluster(model, cluster, after)
    if cluster == m.home:
        po = co.platforms[m.platform]
        return po.objects(), po.workload, po.service
    c = co.dr_copies[m.platform]
    svc = next((o for o in c.objects if o["kind"] == "Service" and o["metadata"]["name"] == m.platform), None)
    return c.objects, c.workload, svc


def _dry(model: ProvinceFile, placed: dict[str, str], operation: str, m: Move, progress: Progress) -> None:
    p = model.platform_by_id[m.platform]
    objs, w, _ = _objects_there(model, placed, m, m.target)
    steps = []
    if operation == "failover":
        steps.append(f"fence: scale {w['kind']}/{m.platform} on {m.source} to 0 if {m.source} answers "
                     "(else go on: the record keeps it at 0 there on the next `dcops provision`)")
        if m.mode == "cold":
            steps.append(f"restore the latest backup of {m.platform} into {m.target}/{p.namespace} (velero restore)")
    steps.append(f"apply {len(objs)} object(s) on {m.target} (server-side, field manager dcops): "
                 + ", ".join(sorted({o['kind'] for o in objs})))
    steps.append(f"wait until {w['kind']}/{m.platform} has {w['spec']['replicas']} ready replica(s) on {m.target}")
    there = model.placed({m.platform: m.target}).platform_by_id[m.platform]
    steps.append(f"wait until {there.address} is served from {m.target} (Service with its address and ready endpoints)")
    if p.dr.address and p.dr.address != p.address:
        steps.append(f"DNS: point {p.hostname or 'the name of ' + p.id} to {there.address}")
    if operation == "failback":
        _, dw, _ = _objects_there(model, placed, m, m.dr)
        steps.append(f"put the copy on {m.dr} back to standing by ("
                     + ("0 replicas" if m.mode == "warm" else "restored workload, Services, disruption budget deleted; "
                        "volumes kept") + ")")
    steps.append(f"record: {m.platform} runs on {m.target} (<work_dir>/dr/placement.json)")
    m.steps = steps
    progress(f"{m.platform} ({m.mode}): would {operation} {m.source} -> {m.target}:")
    for i, s in enumerate(steps, 1):
        progress(f"  {i}. {s}")


def _dns(p: Any, address: str, m: Move, progress: Progress) -> None:
    """A platform with an address of its own at the DR site is reached there by its DNS name."""
    if p.dr.address and p.dr.address != p.address:
        what = f"DNS: point {p.hostname or 'the name of ' + p.id} to {address} (the address it answers at on {m.target})"
        m.steps.append(what)
        progress(f"  {what}")


def _failover(stack: Any, model: ProvinceFile, placed: dict[str, str], m: Move, kube: Callable[[str], Kube],
              progress: Progress, deadline: float, restore: Callable | None) -> None:
    p = model.platform_by_id[m.platform]
    src = kube(m.source)
    ok, why = src.answers("3s")
    if ok:
        kind = "StatefulSet" if p.per_replica_storage else "Deployment"
        if src.get(f"{kind.lower()}.apps", p.id, "-n", p.namespace) is not None:
            src.scale(kind, p.namespace, p.id, 0)
            m.steps.append(f"fenced: {kind}/{p.id} on {m.source} scaled to 0")
            progress(f"  {m.source}: {kind}/{p.id} scaled to 0 (fenced)")
    else:
        m.steps.append(f"{m.source} does not answer: not fenced")
        progress(f"  {m.source} does not answer ({why[:120]}): not fenced; the placement record keeps it at 0 "
                 "there on the next `dcops provision`")
    dst = kube(m.target)
    if m.mode == "cold":
        if restore is None:
            from . import backup as B

            def restore(stack, platform, cluster, ns, progress):  # noqa: F811
                try:
                    return B.restore(stack, platform, cluster, ns, progress=progress)
                except B.BackupError as e:
                    raise DRError(f"{platform}: the restore from backup failed: {e}", e.code) from None
        rec = restore(stack, p.id, m.target, p.namespace, progress)
        m.steps.append(f"restored {rec.get('backup')} ({rec.get('items_restored')} items, phase {rec.get('phase')})")
        progress(f"  {m.target}/{p.namespace}: restored {rec.get('backup')} (phase {rec.get('phase')}, "
                 f"{rec.get('items_restored')} items, {rec.get('warnings', 0)} warnings)")
        if rec.get("phase") not in ("Completed", "PartiallyFailed", None) or rec.get("errors"):
            raise DRError(f"{p.id}: restore {rec.get('restore')} ended {rec.get('phase')} with {rec.get('errors')} errors", 1)
    objs, w, svc = _objects_there(model, placed, m, m.target)
    dst.apply(objs)
    m.steps.append(f"applied {len(objs)} objects on {m.target}")
    progress(f"  {m.target}: {len(objs)} object(s) applied ({w['kind']} {w['metadata']['name']} at {w['spec']['replicas']})")
    wait_ready(dst, w, deadline, progress)
    there = model.placed({p.id: m.target}).platform_by_id[p.id]
    exposure(dst, svc, there.address, deadline, progress)
    m.steps.append(f"{there.address} served from {m.target}")
    _dns(p, there.address, m, progress)
    PL.set_running(stack.work_dir, p.id, m.target, m.home, m.mode, "failover")


def _failback(stack: Any, model: ProvinceFile, placed: dict[str, str], m: Move, kube: Callable[[str], Kube],
              progress: Progress, deadline: float, restore: Callable | None) -> None:
    p = model.platform_by_id[m.platform]
    home = kube(m.home)
    objs, w, svc = _objects_there(model, placed, m, m.home)
    home.apply(objs)
    progress(f"  {m.home}: {len(objs)} object(s) applied ({w['kind']} {p.id} at {w['spec']['replicas']})")
    wait_ready(home, w, deadline, progress)
    exposure(home, svc, p.address, deadline, progress)
    m.steps.append(f"{p.address} served from {m.home}")
    _dns(p, p.address, m, progress)
    dr = kube(m.dr)
    standby, sw, _ = _objects_there(model, placed, m, m.dr)
    if sw is not None:  # warm: the same objects at 0 replicas
        dr.apply(standby)
        progress(f"  {m.dr}: {sw['kind']} {p.id} back to 0 replicas (warm standby)")
    else:  # cold: what the restore made goes; the volumes stay (their data is the last state on the DR site)
        active = render_cluster(model, m.dr, {**placed, p.id: m.dr}).dr_copies[p.id].objects
        keep = {object_key(o) for o in standby}
        gone = [o for o in active if object_key(o) not in keep and o["kind"] != "PersistentVolumeClaim"]
        dr.apply(standby)
        dr.delete(gone)
        progress(f"  {m.dr}: cold standby again ({', '.join(sorted(object_key(o) for o in gone))} deleted; volumes kept)")
    m.steps.append(f"{m.dr}: standing by again")
    PL.set_running(stack.work_dir, p.id, m.home, m.home, m.mode, "failback")


def status(stack: Any) -> list[dict[str, Any]]:
    """Where each platform with a DR mode runs, by the record."""
    model, placed = _load(stack)
    rows = []
    for p in model.platforms:
        rows.append({"platform": p.id, "mode": p.dr.mode, "home": p.cluster, "dr": model.dr_cluster_of(p.id),
                     "runs_on": placed.get(p.id, p.cluster), "address": p.address,
                     "rpo_minutes": p.dr.rpo_minutes, "rto_minutes": p.dr.rto_minutes})
    return rows
