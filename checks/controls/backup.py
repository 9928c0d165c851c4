"""Backup controls (DCOPS-BAK-*): Velero's schedules and backups, and the restore test's record.

- DCOPS-BAK-001 (per cluster that hosts platforms): Velero's BackupStorageLocation and one
  Schedule per platform exist and match the province file (cron, retention as TTL, the
  platform's namespace, the location), encryption is asked of the store when the province says
  ``encrypted``, and the store is on separate infrastructure (``separate_infrastructure`` and
  the environment's ``backup.site`` is not the cluster whose platforms it keeps).
- DCOPS-BAK-002 (per platform): the newest Completed backup is younger than the longest gap of
  the province's cron plus an hour (a missed run fails).
- DCOPS-BAK-003 (per platform): the last restore test (``dcops dr restore-test``; its record in
  the stack's work dir) passed and is younger than ``restore_test_interval_days``. No record:
  fail (with the reason); a record that cannot be read: error.

Each control is a pure function of a :class:`View` (what was read) and the province file, so
the unit tests and the scenario files (``checks/scenarios/backup/``) judge the same code as a
live run (:func:`check_backups`, with the environment's read-only identity).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from infra.model import ProvinceFile, cron_max_gap_minutes
from infra.render import velero as R

from ..catalog import Control, catalog
from ..result import Result

Obj = dict[str, Any]
GRACE_MINUTES = 60


@dataclass
class View:
    """What the backup controls read: per cluster the Velero objects, and the records' directory."""

    now: dt.datetime
    namespace: str = "velero"
    location_name: str = "dcops"
    target: Any = None  # the environment's BackupTarget (None: the environment declares none)
    locations: dict[str, Obj | None] = field(default_factory=dict)  # cluster -> BSL
    schedules: dict[str, dict[str, Obj]] = field(default_factory=dict)  # cluster -> name -> Schedule
    backups: dict[str, list[Obj]] = field(default_factory=dict)  # cluster -> Backups
    errors: dict[str, str] = field(default_factory=dict)  # cluster -> why it could not be read
    records_dir: Path | None = None


def _ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def _age_h(now: dt.datetime, s: str) -> float:
    return round((now - _ts(s)).total_seconds() / 3600, 2)


# --------------------------------------------------------------------- controls


def bak_001(c: Control, v: View, pf: ProvinceFile, cluster: str) -> Result:
    if cluster in v.errors:
        return Result.err(c.id, cluster, f"cannot read Velero's objects on {cluster}: {v.errors[cluster]}")
    b = pf.datacenter.backup
    problems: list[str] = []
    ev: dict[str, Any] = {"province": {"schedule": b.schedule, "retention_days": b.retention_days,
                                       "ttl": R.ttl(b.retention_days), "encrypted": b.encrypted,
                                       "separate_infrastructure": b.separate_infrastructure}}
    loc = v.locations.get(cluster)
    if loc is None:
        problems.append(f"no BackupStorageLocation {v.location_name} in {v.namespace}")
    else:
        spec = loc.get("spec") or {}
        cfg = spec.get("config") or {}
        ev["location"] = {"name": v.location_name, "bucket": (spec.get("objectStorage") or {}).get("bucket"),
                          "s3Url": cfg.get("s3Url"), "serverSideEncryption": cfg.get("serverSideEncryption"),
                          "kmsKeyId": bool(cfg.get("kmsKeyId")), "phase": (loc.get("status") or {}).get("phase")}
        if b.encrypted and not (cfg.get("serverSideEncryption") or cfg.get("kmsKeyId") or cfg.get("customerKeyEncryptionFile")):
            problems.append("the province asks for encrypted backups but the location asks the store for no encryption")
        if v.target is not None and (spec.get("objectStorage") or {}).get("bucket") != v.target.bucket:
            problems.append(f"the location writes to bucket {(spec.get('objectStorage') or {}).get('bucket')} "
                            f"instead of the environment's backup target {v.target.bucket}")
    if not b.separate_infrastructure:
        problems.append("the province file does not keep backups on separate infrastructure (separate_infrastructure: false)")
    site = v.target.site if v.target is not None else None
    ev["backup_site"] = site
    if site is None:
        problems.append("the environment declares no backup target (backup.site): where backups go is unknown")
    elif site == cluster:
        problems.append(f"backups of {cluster}'s platforms are kept on {cluster} itself (backup.site) and not on separate infrastructure")
    scheds = v.schedules.get(cluster) or {}
    seen: dict[str, Any] = {}
    for want in R.schedules(pf, cluster, v.namespace, v.location_name, bool(v.target and v.target.fs_backup)):
        name = want["metadata"]["name"]
        got = scheds.get(name)
        if got is None:
            problems.append(f"Schedule {name} missing")
            seen[name] = "missing"
            continue
        ws, gs = want["spec"], got.get("spec") or {}
        wt, gt = ws["template"], gs.get("template") or {}
        diff = []
        if gs.get("schedule") != ws["schedule"]:
            diff.append(f"schedule {gs.get('schedule')!r} (province {ws['schedule']!r})")
        if gt.get("ttl") != wt["ttl"]:
            diff.append(f"ttl {gt.get('ttl')!r} (province {wt['ttl']!r})")
        if sorted(gt.get("includedNamespaces") or []) != wt["includedNamespaces"]:
            diff.append(f"namespaces {gt.get('includedNamespaces')} (want {wt['includedNamespaces']})")
        if (gt.get("storageLocation") or v.location_name) != v.location_name:
            diff.append(f"location {gt.get('storageLocation')} (want {v.location_name})")
        if gs.get("paused"):
            diff.append("paused")
        seen[name] = diff or "matches"
        problems += [f"Schedule {name}: {d}" for d in diff]
    if not seen:
        return Result.skip(c.id, cluster, "no platform on this cluster")
    ev["schedules"] = seen
    ev["failing"] = problems
    return Result.verdict(c.id, cluster, not problems, ev, reason_fail="; ".join(problems)[:1500],
                          reason_pass=f"{len(seen)} schedule(s) match the province (location {v.location_name})")


def bak_002(c: Control, v: View, pf: ProvinceFile, platform: str) -> Result:
    p = pf.platform_by_id[platform]
    if p.cluster in v.errors:
        return Result.err(c.id, platform, f"cannot read Velero's backups on {p.cluster}: {v.errors[p.cluster]}")
    gap = cron_max_gap_minutes(pf.datacenter.backup.schedule)
    limit_h = round(((gap or 0) + GRACE_MINUTES) / 60, 2)
    mine = [b for b in v.backups.get(p.cluster) or []
            if ((b.get("metadata") or {}).get("labels") or {}).get("dcops.gov.vn/platform") == platform
            or p.namespace in ((b.get("spec") or {}).get("includedNamespaces") or [])]
    done = [b for b in mine if (b.get("status") or {}).get("phase") == "Completed"
            and (b.get("status") or {}).get("completionTimestamp")]
    ev: dict[str, Any] = {"cluster": p.cluster, "backups_seen": len(mine), "completed": len(done),
                          "limit_hours": limit_h, "schedule": pf.datacenter.backup.schedule}
    if gap is None:
        return Result.fail(c.id, platform, ev, "the province's backup schedule never runs")
    if not done:
        return Result.fail(c.id, platform, ev, f"no completed backup of {platform} on {p.cluster}")
    last = max(done, key=lambda b: b["status"]["completionTimestamp"])
    age = _age_h(v.now, last["status"]["completionTimestamp"])
    ev.update({"last": last["metadata"]["name"], "completed_at": last["status"]["completionTimestamp"], "age_hours": age})
    return Result.verdict(c.id, platform, age <= limit_h, ev,
                          reason_fail=f"last successful backup {age} h old (limit {limit_h} h)",
                          reason_pass=f"last successful backup {age} h old (limit {limit_h} h)")


def bak_003(c: Control, v: View, pf: ProvinceFile, platform: str) -> Result:
    from infra.dr.backup import RecordError, read_record

    interval = pf.datacenter.backup.restore_test_interval_days
    ev: dict[str, Any] = {"interval_days": interval}
    if v.records_dir is None:
        return Result.err(c.id, platform, "no records directory (the stack's work dir) to read")
    ev["record"] = str(v.records_dir / "restore-test" / f"{platform}.json")
    try:
        rec = read_record(v.records_dir, "restore-test", platform)
    except RecordError as e:
        return Result.err(c.id, platform, f"the restore test's record cannot be read: {e}", ev)
    if rec is None:
        return Result.fail(c.id, platform, ev, f"no restore test recorded for {platform} "
                                               f"(run `dcops dr restore-test --platform {platform}`)")
    age_d = round((v.now - _ts(rec["date"])).total_seconds() / 86400, 2)
    ev.update({"date": rec["date"], "age_days": age_d, "outcome": rec.get("outcome"), "backup": (rec.get("restore") or {}).get("backup"),
               "target_cluster": rec.get("target_cluster"), "reasons": rec.get("reasons") or []})
    if rec.get("outcome") != "pass":
        return Result.fail(c.id, platform, ev, f"the last restore test ({rec['date']}) did not pass: "
                                               + "; ".join(rec.get("reasons") or [str(rec.get("outcome"))])[:500])
    return Result.verdict(c.id, platform, age_d <= interval, ev,
                          reason_fail=f"last restore test {age_d} days old (interval {interval} days)",
                          reason_pass=f"last restore test {age_d} days old (interval {interval} days)")


CLUSTER_CONTROLS: dict[str, Callable[[Control, View, ProvinceFile, str], Result]] = {"DCOPS-BAK-001": bak_001}
PLATFORM_CONTROLS: dict[str, Callable[[Control, View, ProvinceFile, str], Result]] = {
    "DCOPS-BAK-002": bak_002, "DCOPS-BAK-003": bak_003}
CONTROLS = {**CLUSTER_CONTROLS, **PLATFORM_CONTROLS}


def run(v: View, pf: ProvinceFile, only: set[str] | None = None, targets: set[str] | None = None) -> list[Result]:
    out: list[Result] = []
    clusters = sorted({p.cluster for p in pf.platforms})
    for cid, fn in CONTROLS.items():
        if only and cid not in only:
            continue
        c = catalog().get(cid)
        names = clusters if cid in CLUSTER_CONTROLS else [p.id for p in pf.platforms]
        for t in names:
            if targets and t not in targets:
                continue
            t0 = time.monotonic()
            if not c.applies_at(pf.province.security_level):
                r = Result.skip(cid, t, f"applies at levels {c.levels}; the province is level {pf.province.security_level}")
            else:
                try:
                    r = fn(c, v, pf, t)
                except Exception as e:  # an odd object: an error, never a pass
                    r = Result.err(cid, t, f"control raised {e.__class__.__name__}: {e}")
            r.duration_s = round(time.monotonic() - t0, 3)
            out.append(r)
    return out


def fetch(stack: Any, pf: ProvinceFile, now: dt.datetime | None = None, down: dict[str, str] | None = None) -> View:
    """Read Velero's objects on every cluster that hosts platforms (read-only identity).

    ``down``: {cluster: reason} of the clusters whose API server did not answer the probe
    (:func:`checks.controls.cluster.probe`): not contacted, their controls are errors."""
    from infra.dr.backup import records_dir

    from .cluster import Kube

    t = stack.env.backup
    v = View(now=now or dt.datetime.now(dt.timezone.utc), target=t,
             namespace=t.namespace if t else "velero", location_name=t.location if t else "dcops",
             records_dir=records_dir(stack))
    for cl in sorted({p.cluster for p in pf.platforms}):
        if cl not in stack.env.clusters:
            v.errors[cl] = f"the environment gives no access to cluster '{cl}'"
            continue
        if down and cl in down:
            v.errors[cl] = down[cl]
            continue
        try:
            kc, ctx = stack.kubeconfig(cl, "checks")
            k = Kube(kc, context=ctx)
            base = f"/apis/velero.io/v1/namespaces/{v.namespace}"
            v.locations[cl] = k.get_or_none(f"{base}/backupstoragelocations/{v.location_name}")
            status, sch = k.request("GET", f"{base}/schedules")
            if status == 404:  # no Velero CRDs on the cluster: nothing is scheduled
                v.schedules[cl], v.backups[cl] = {}, []
                continue
            if status != 200:
                raise RuntimeError(f"GET schedules: HTTP {status}")
            v.schedules[cl] = {s["metadata"]["name"]: s for s in (sch or {}).get("items") or []}
            v.backups[cl] = k.items(f"{base}/backups")
        except Exception as e:
            v.errors[cl] = f"{e.__class__.__name__}: {e}"
    return v


def check_backups(stack: Any, pf: ProvinceFile, only: set[str] | None = None,
                  targets: set[str] | None = None, down: dict[str, str] | None = None) -> list[Result]:
    return run(fetch(stack, pf, down=down), pf, only, targets)
