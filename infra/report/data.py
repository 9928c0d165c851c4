"""Assemble the report's data from its inputs.

The result is one language-neutral, JSON-ready dict (it *is* the JSON report);
the HTML/PDF templates and the JUnit writer only present it.  Every string
that came from the checks or the stack passes through :func:`redact` first.

Inputs:

- the province file (model, path, and the git commit that last touched it);
- a check-results document (``checks.result.write_results``), optionally with an
  ``sla`` section (see :mod:`infra.report.sla`);
- optionally a previous results document or a previous JSON report;
- the control catalog (``checks.catalog``), when present;
- optionally the Pulumi stack's outputs (``pulumi stack output --json``) and
  state (``pulumi stack export``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model import ProvinceFile
from ..render.endpoint import GATEWAY, STANDBY_GATEWAY
from ..waivers import VN, Waivers, describe as describe_waivers, vn_date
from ..waivers import apply as apply_waivers
from . import requirements as _req
from . import sla as _sla
from .redact import redact
from .vi import RATIONALE_VI

REPORT_SCHEMA = "dcops-report/2"
STATUSES = ("fail", "error", "pass", "waived", "insufficient_data", "not_assessed", "skipped")
"""Every status a result may have.  Only fail and error are failures; waived (an approved
exception), insufficient_data (an SLA observed too little of its window), not_assessed (the
evidence cannot be seen from this environment) and skipped (does not apply) are not."""
DECIDED = ("pass", "fail", "error")
ENV_KINDS = ("production", "staging", "lab", "sample", "unknown")
SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")
# Controls that tell whether a unit's link to the center is up right now.
LINK_CONTROLS = ("DCOPS-WG-001", "DCOPS-WG-002")


class ReportInputError(ValueError):
    """An input file the report cannot use (exit code 2)."""


@dataclass
class Inputs:
    province: ProvinceFile
    province_path: Path
    results: dict
    results_path: Path | None = None
    previous: dict | None = None
    previous_path: Path | None = None
    stack_outputs: dict | None = None
    stack_state: dict | None = None
    catalog: Any = None  # checks.catalog.Catalog; None: load it; False: none
    waivers: Waivers | None = None  # applied to the results (infra.waivers)
    environment: dict | None = None  # {kind, name, stack}: from `dcops report -s STACK`; else the results' own
    requirements: Any = None  # list of requirement entries; None: checks/requirements.yaml; False: none


# --------------------------------------------------------------------------- loading


def read_json(path: Path, what: str) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportInputError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as e:
        raise ReportInputError(f"{path}: {what} is not readable JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ReportInputError(f"{path}: {what} must be a JSON object")
    return doc


def read_results_doc(path: Path, what: str = "results document") -> dict:
    """A results document, or a previous JSON report (which carries its results)."""
    doc = read_json(path, what)
    if not isinstance(doc.get("results"), list):
        raise ReportInputError(f"{path}: {what} has no 'results' list (write it with `dcops check`)")
    for i, r in enumerate(doc["results"]):
        if not isinstance(r, dict) or not {"control", "target", "status"} <= r.keys():
            raise ReportInputError(f"{path}: results[{i}] needs control, target and status")
        if r["status"] not in STATUSES:
            raise ReportInputError(f"{path}: results[{i}].status '{r['status']}' is not one of {', '.join(STATUSES)}")
    return doc


def load_catalog():
    """The control catalog through the checks' own API, or None when it is absent."""
    try:
        from checks.catalog import catalog
    except ImportError:
        return None
    return catalog()


def git_commit(path: Path) -> dict:
    """The commit that last changed ``path`` and whether it has uncommitted changes."""
    path = Path(path).resolve()
    try:
        cp = subprocess.run(["git", "-C", str(path.parent), "log", "-1", "--format=%H%x09%cI", "--", path.name],
                            capture_output=True, text=True, timeout=20)
        if cp.returncode != 0:
            return {"commit": None, "dirty": False}
        commit, _, date = cp.stdout.strip().partition("\t")
        st = subprocess.run(["git", "-C", str(path.parent), "status", "--porcelain", "--", path.name],
                            capture_output=True, text=True, timeout=20)
        return {"commit": commit or None, "date": date or None, "dirty": bool(st.stdout.strip()) or not commit}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": False}


# --------------------------------------------------------------------------- helpers


def _ref14423(refs):
    """The TCVN 14423 reference whatever the catalog calls it (tcvn_14423_2025, or the old _2026)."""
    for name in ("tcvn_14423_2025", "tcvn_14423_2026"):
        r = getattr(refs, name, None) if not isinstance(refs, dict) else refs.get(name)
        if r is not None:
            return r
    return None


def _catalog_entry(control, audit_standard: str) -> dict:
    refs = control.references

    def tcvn(r) -> dict | None:
        if r is None:
            return None
        return {"clause": r.clause, "section": getattr(r, "section", None), "group": r.group, "confirmed": r.confirmed,
                "note": r.note}

    return {
        "id": control.id,
        "title_vi": control.title_vi,
        "title_en": control.title_en,
        "rationale": control.rationale,
        "rationale_vi": getattr(control, "rationale_vi", None) or RATIONALE_VI.get(control.id),
        "severity": control.severity,
        "applies_to": list(control.applies_to),
        "levels": list(control.levels),
        "in_catalog": True,
        "references": {
            "tcvn_11930_2017": tcvn(refs.tcvn_11930_2017),
            "tcvn_14423_2025": tcvn(_ref14423(refs)),
            "decree_85_2016": getattr(refs, "decree_85_2016", None),
            "circular_12_2022": getattr(refs, "circular_12_2022", None),
            "cis": [c.render() for c in refs.cis],
            "nist_800_53": list(refs.nist_800_53),
        },
    }


def _doc_control_entry(cid: str, d: dict | None) -> dict:
    """A control the catalog does not know: use what the results document says."""
    d = d or {}
    refs = d.get("references") or {}

    def tcvn(v) -> dict | None:
        if v is None:
            return None
        if isinstance(v, str):
            return {"clause": None, "group": v, "confirmed": False, "note": ""}
        return {"clause": v.get("clause"), "section": v.get("section"), "group": v.get("group"),
                "confirmed": bool(v.get("confirmed")), "note": v.get("note", "")}

    sev = str(d.get("severity", "unknown")).lower()
    return {
        "id": cid,
        "title_vi": d.get("title_vi") or d.get("title") or cid,
        "title_en": d.get("title_en") or d.get("title") or cid,
        "rationale": d.get("rationale", ""),
        "rationale_vi": d.get("rationale_vi") or RATIONALE_VI.get(cid),
        "severity": sev if sev in SEVERITIES else "unknown",
        "applies_to": list(d.get("applies_to") or []),
        "levels": list(d.get("levels") or []),
        "in_catalog": False,
        "references": {
            "tcvn_11930_2017": tcvn(refs.get("tcvn_11930_2017")),
            "tcvn_14423_2025": tcvn(_ref14423(refs)),
            "decree_85_2016": refs.get("decree_85_2016"),
            "circular_12_2022": refs.get("circular_12_2022"),
            "cis": [str(x) for x in refs.get("cis") or []],
            "nist_800_53": [str(x) for x in refs.get("nist_800_53") or []],
        },
    }


def _pass_rate(c: dict) -> float | None:
    """pass / (pass + fail + error); every other status is left out."""
    decided = c.get("pass", 0) + c.get("fail", 0) + c.get("error", 0)
    return round(100.0 * c.get("pass", 0) / decided, 2) if decided else None


def _pct(n: int, m: int) -> float | None:
    return round(100.0 * n / m, 2) if m else None


def _status_rank(s: str) -> int:
    return {"fail": 0, "error": 1, "insufficient_data": 2, "not_assessed": 3, "waived": 4, "pass": 5, "skipped": 6}.get(s, 7)


def sha256_file(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        h = hashlib.sha256()
        with Path(path).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def _environment(doc: dict, given: dict | None) -> dict:
    """Where the results came from: the sample, the stack given on the command line, or what
    `dcops check` wrote in the results (stack, environment.kind/name)."""
    if isinstance(doc.get("sample"), dict):
        return {"kind": "sample", "name": "sample", "stack": None, "source": "sample"}
    env = doc.get("environment") if isinstance(doc.get("environment"), dict) else {}
    kind = str((given or {}).get("kind") or env.get("kind") or "unknown")
    return {"kind": kind if kind in ENV_KINDS else "unknown",
            "name": str((given or {}).get("name") or env.get("name") or doc.get("stack") or (given or {}).get("stack") or ""),
            "stack": (given or {}).get("stack") or doc.get("stack"),
            "source": "command line" if given else ("results" if env or doc.get("stack") else "none")}


# --------------------------------------------------------------------------- sections


def _inventory(m: ProvinceFile, stack_outputs: dict | None, stack_state: dict | None) -> dict:
    dc = m.datacenter
    clusters, pools = [], []
    for c in dc.clusters:
        nodes = sum(p.count for p in c.node_pools)
        clusters.append({
            "id": c.id, "name": c.name, "role": c.role, "kubernetes_version": c.kubernetes_version,
            "node_pools": len(c.node_pools), "nodes": nodes,
            "cpu": sum(p.count * p.cpu for p in c.node_pools),
            "memory_gib": sum(p.count * p.memory_gib for p in c.node_pools),
            "platforms": [p.id for p in m.platforms_on(c.id)],
        })
        for p in c.node_pools:
            pools.append({
                "cluster": c.id, "name": p.name, "count": p.count, "cpu": p.cpu, "memory_gib": p.memory_gib,
                "segment": p.segment, "taints": [f"{t.key}={t.value}:{t.effect}" for t in p.taints],
            })
    tiers = {t.id: t for t in m.wan.tiers}
    by_tier = Counter(s.tier for s in m.wan.sites)
    inv = {
        "datacenter": dc.name,
        "clusters": clusters,
        "node_pools": pools,
        "segments": [{"id": s.id, "name": s.name, "zone": s.zone.value, "cidr": s.cidr, "vlan": s.vlan} for s in dc.segments],
        "storage_classes": [{"name": s.name, "backend": s.backend, "replication": s.replication,
                             "reclaim_policy": s.reclaim_policy, "default": s.default} for s in dc.storage_classes],
        "backup": dc.backup.model_dump(),
        "log_retention_days": dc.log_retention_days,
        "platforms": [{
            "id": p.id, "name": p.name, "name_en": p.name_en, "kind": p.kind, "cluster": p.cluster, "segment": p.segment,
            "replicas": p.replicas, "address": p.address, "ports": [f"{x.port}/{x.protocol}" for x in p.ports],
            "volumes": [f"{v.name} {v.size_gib} GiB ({v.storage_class})" for v in p.storage],
            "depends_on": list(p.depends_on), "national": list(p.national),
            "national_via_lgsp": list(p.national_via_lgsp),
            "slo": p.slo.model_dump(), "security_level": p.security_level,
        } for p in m.platforms],
        "national_endpoints": [{
            "id": n.id, "name": n.name, "name_en": n.name_en, "cidr": n.cidr,
            # LGSP is the door: who links to it directly (LGSP, declared exceptions), who uses it through LGSP
            "direct": [p.id for p in m.platforms if any(x.id == n.id for x, _ in m.direct_national(p))],
            "via_lgsp": [p.id for p in m.platforms if n.id in p.national_via_lgsp],
        } for n in m.national_endpoints],
        "national_exceptions": [{
            "platform": p.id, "endpoint": x.endpoint, "endpoint_cidr": m.national_by_id[x.endpoint].cidr,
            "reason": x.reason, "reason_en": x.reason_en, "approved_by": x.approved_by,
        } for p, x in m.national_exceptions()],
        "tiers": [{"id": t.id, "name": t.name, "name_en": t.name_en, "sites": by_tier.get(t.id, 0)} for t in m.wan.tiers],
        "sites": [{
            "id": s.id, "name": s.name, "tier": s.tier, "tier_name": tiers[s.tier].name if s.tier in tiers else s.tier,
            "tier_name_en": tiers[s.tier].name_en if s.tier in tiers else s.tier,
            "parent": s.parent, "lan": s.lan, "tunnel_address": s.tunnel_address, "reach": list(s.reach),
        } for s in m.wan.sites],
        "hub": {"name": m.wan.hub.name, "tunnel_address": m.wan.hub.tunnel_address},
        # every declared hub: the primary (target 'gateway'), then the standby ('gateway-standby')
        "hubs": [{
            "target": target, "role": role, "name": h.name, "wan_address": h.wan_address,
            "tunnel_address": h.tunnel_address, "ntp_server": h.ntp_server, "log_server": h.log_server,
            "time_upstream": [f"{t.address} ({t.name})" for t in h.time_upstream],
        } for (target, role), h in zip(((GATEWAY, "primary"), (STANDBY_GATEWAY, "standby")), m.wan.hubs)],
    }
    if stack_outputs is not None:
        flat = []
        for k, v in sorted(redact(stack_outputs).items()):
            text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
            flat.append({"key": k, "value": text if len(text) <= 400 else text[:400] + " …"})
        inv["stack_outputs"] = flat
    if stack_state is not None:
        resources = (stack_state.get("deployment") or stack_state.get("checkpoint", {}).get("latest") or stack_state).get("resources") or []
        counts = Counter(str(r.get("type", "?")) for r in resources if isinstance(r, dict))
        inv["stack_resources"] = [{"type": k, "count": v} for k, v in sorted(counts.items())]
    return inv


def _controls(results: list[dict], catalog, doc_controls: dict, audit_standard: str) -> list[dict]:
    by_control: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_control[r["control"]].append(r)
    known = {}
    if catalog is not None:
        for c in catalog.controls:
            known[c.id] = _catalog_entry(c, audit_standard)
    out = []
    for cid, rs in by_control.items():
        entry = dict(known.get(cid) or _doc_control_entry(cid, doc_controls.get(cid)))
        rs = sorted(rs, key=lambda r: (_status_rank(r["status"]), r["target"]))
        counts = Counter(r["status"] for r in rs)
        entry["counts"] = {s: counts.get(s, 0) for s in STATUSES} | {"total": len(rs)}
        entry["pass_rate"] = _pass_rate(entry["counts"])
        entry["results"] = rs
        entry["worst"] = rs[0]["status"] if rs else "skipped"
        out.append(entry)
    sev_rank = {s: i for i, s in enumerate(SEVERITIES)}
    out.sort(key=lambda c: (_status_rank(c["worst"]), sev_rank.get(c["severity"], 9), c["id"]))
    return out


def _site_status(m: ProvinceFile, results: list[dict], sla_data: dict) -> dict[str, dict]:
    per_site: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        tid = _sla.target_id(r["target"])
        if tid in m.site_by_id:
            per_site[tid].append(r)
    out = {}
    for s in m.wan.sites:
        rs = per_site.get(s.id, [])
        link = [r for r in rs if r["control"] in LINK_CONTROLS]
        if link:
            connected, basis = all(r["status"] == "pass" for r in link), "link_controls"
        elif rs:
            connected, basis = any(r["status"] in ("pass", "fail") for r in rs), "host_answered"
        else:
            daily = (sla_data["sites"].get(s.id) or {}).get("daily") or []
            last = daily[-1].get("availability_pct") if daily else None
            connected, basis = (last is not None and last > 0), ("sla" if daily else "no_results")
        decided = [r for r in rs if r["status"] in DECIDED]
        compliant = bool(decided) and all(r["status"] == "pass" for r in decided)
        out[s.id] = {"connected": connected, "basis": basis, "compliant": compliant,
                     "counts": dict(Counter(r["status"] for r in rs))}
    return out


def _summary(m: ProvinceFile, results: list[dict], controls: list[dict], sla_out: dict, site_status: dict) -> dict:
    sev_of = {c["id"]: c["severity"] for c in controls}
    by_sev: dict[str, Counter] = {s: Counter() for s in SEVERITIES}
    for r in results:
        by_sev[sev_of.get(r["control"], "unknown")][r["status"]] += 1
    rows = []
    overall = Counter()
    for s in SEVERITIES:
        c = by_sev[s]
        if not c:
            continue
        overall.update(c)
        d = {k: c.get(k, 0) for k in STATUSES}
        rows.append({"severity": s, **d, "total": sum(d.values()), "pass_rate": _pass_rate(d)})
    od = {k: overall.get(k, 0) for k in STATUSES}
    n_sites = len(m.wan.sites)
    connected = sum(1 for v in site_status.values() if v["connected"])
    compliant = sum(1 for v in site_status.values() if v["compliant"])
    tg = m.province.targets
    targets = []
    for key, n, goal in (("sites_connected", connected, tg.sites_connected_pct), ("sites_compliant", compliant, tg.sites_compliant_pct)):
        actual = _pct(n, n_sites)
        targets.append({"id": key, "n": n, "m": n_sites, "actual_pct": actual, "target_pct": goal,
                         "met": actual is not None and actual >= goal - 1e-9})
    plat = sla_out["platforms"]
    sites = sla_out["sites"]
    ctl_decided = [c for c in controls if any(c["counts"][s] for s in DECIDED)]
    ctl_pass = [c for c in ctl_decided if not c["counts"]["fail"] and not c["counts"]["error"]]
    return {
        "by_severity": rows,
        "overall": {**od, "total": sum(od.values()), "pass_rate": _pass_rate(od)},
        "rates": {
            "pairs": {"n": od["pass"], "m": od["pass"] + od["fail"] + od["error"], "pct": _pass_rate(od)},
            "controls": {"n": len(ctl_pass), "m": len(ctl_decided), "pct": _pct(len(ctl_pass), len(ctl_decided))},
            "requirements": None,  # filled by assemble() from the requirement matrix
        },
        "targets": targets,
        "platforms_sla": {"meeting": sum(1 for p in plat if p.get("meets") is True),
                          "with_data": sum(1 for p in plat if p.get("meets") is not None),
                          "insufficient": sum(1 for p in plat if p.get("insufficient")), "total": len(plat)},
        "sites_sla": {"meeting": sum(1 for p in sites if p.get("meets") is True),
                      "with_data": sum(1 for p in sites if p.get("meets") is not None),
                      "insufficient": sum(1 for p in sites if p.get("insufficient")), "total": len(sites)},
        "failing_controls": [c["id"] for c in controls if c["counts"]["fail"] or c["counts"]["error"]],
        "waived_controls": [c["id"] for c in controls if c["counts"]["waived"]],
    }


def _sla_verdict(e: dict, statuses: list[str] | None, has: bool) -> dict:
    """meets: True/False/None (no data); insufficient: the SLA results say the window was not
    observed enough (then never 'met' nor 'not met', unless a failure is certain); waived."""
    st = statuses or []
    bad = any(x in ("fail", "error") for x in st)
    insufficient = "insufficient_data" in st and not bad
    return {"meets": None if insufficient else (_sla.meets(e, st) if (has or st) else None),
            "insufficient": insufficient, "waived": "waived" in st}


def _sla_section(m: ProvinceFile, doc: dict, raw: dict | None = None) -> dict:
    """``raw``: what :func:`infra.report.sla.extract` read from ``doc``, when already done."""
    if raw is None:
        raw = _sla.extract(doc, set(m.platform_by_id), set(m.site_by_id))
    window = raw.get("window_days") or (m.platforms[0].slo.window_days if m.platforms else 30)
    plats = []
    for p in m.platforms:
        e = dict(raw["platforms"].get(p.id) or {})
        e.setdefault("target_pct", p.slo.availability)
        e.setdefault("latency_threshold_ms", float(p.slo.latency_ms))
        e.setdefault("latency_target_pct", p.slo.latency_target)
        has = any(k in e for k in ("availability_pct", "latency_ok_pct", "daily"))
        if has and e.get("budget_left_pct") is None and e.get("availability_pct") is not None and e["target_pct"] < 100:
            e["budget_left_pct"] = (1 - (100 - e["availability_pct"]) / (100 - e["target_pct"])) * 100
        statuses = raw["statuses"]["platforms"].get(p.id)
        plats.append({"id": p.id, "name": p.name, "name_en": p.name_en, **e, "has_data": has,
                      **_sla_verdict(e, statuses, has)})
    sites = []
    for s in m.wan.sites:
        e = dict(raw["sites"].get(s.id) or {})
        has = any(k in e for k in ("availability_pct", "daily"))
        statuses = raw["statuses"]["sites"].get(s.id)
        sites.append({"id": s.id, "name": s.name, "tier": s.tier, **e, "has_data": has,
                      **_sla_verdict(e, statuses, has)})
    days = sorted({p["date"] for x in plats + sites for p in x.get("daily") or []})
    return {"window_days": int(window), "window_start": raw.get("window_start"), "window_end": raw.get("window_end"),
            "days": days, "platforms": plats, "sites": sites,
            "has_data": any(x["has_data"] for x in plats + sites)}


def _changes(m: ProvinceFile, now_results: list[dict], now_sla: dict, prev: dict | None) -> dict:
    if prev is None:
        return {"available": False}
    prev_results = [r for r in prev.get("results") or [] if isinstance(r, dict)]
    prev_sla = prev["sla_report"] if isinstance(prev.get("sla_report"), dict) else _sla_section(m, prev)
    before = {(r["control"], r["target"]): r for r in prev_results}
    now = {(r["control"], r["target"]): r for r in now_results}
    bad = ("fail", "error")
    new_fail, fixed, still, new_results = [], [], [], []
    for k, r in now.items():
        b = before.get(k)
        if b is None:
            new_results.append(k)
            if r["status"] in bad:
                new_fail.append({"control": k[0], "target": k[1], "status": r["status"], "was": None, "reason": r.get("reason", "")})
        elif r["status"] in bad and b["status"] not in bad:
            new_fail.append({"control": k[0], "target": k[1], "status": r["status"], "was": b["status"], "reason": r.get("reason", "")})
        elif r["status"] == "pass" and b["status"] in bad:
            fixed.append({"control": k[0], "target": k[1], "status": "pass", "was": b["status"]})
        elif r["status"] in bad and b["status"] in bad:
            still.append(k)
    gone = [k for k in before if k not in now]
    keyf = lambda d: (d["control"], d["target"])  # noqa: E731
    pb = {p["id"]: p for p in prev_sla.get("platforms", [])}
    plat_trend = []
    for p in now_sla["platforms"]:
        b = pb.get(p["id"], {})
        a0, a1 = b.get("availability_pct"), p.get("availability_pct")
        plat_trend.append({"id": p["id"], "name": p["name"], "name_en": p["name_en"],
                           "before": a0, "now": a1, "delta": (a1 - a0) if a0 is not None and a1 is not None else None,
                           "budget_before": b.get("budget_left_pct"), "budget_now": p.get("budget_left_pct")})
    sb = {s["id"]: s for s in prev_sla.get("sites", [])}
    deltas = []
    for s in now_sla["sites"]:
        a0, a1 = (sb.get(s["id"]) or {}).get("availability_pct"), s.get("availability_pct")
        if a0 is not None and a1 is not None:
            deltas.append({"id": s["id"], "name": s["name"], "before": a0, "now": a1, "delta": a1 - a0})
    worse = sorted((d for d in deltas if d["delta"] < -1e-9), key=lambda d: d["delta"])
    better = sorted((d for d in deltas if d["delta"] > 1e-9), key=lambda d: -d["delta"])

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else None

    return {
        "available": True,
        "previous_generated": prev.get("generated"),
        "new_failures": sorted(new_fail, key=keyf),
        "fixed": sorted(fixed, key=keyf),
        "still_failing": len(still),
        "new_results": len(new_results),
        "gone_results": len(gone),
        "sla_trend": {
            "platforms": plat_trend,
            "sites": {
                "mean_before": mean(s.get("availability_pct") for s in prev_sla.get("sites", [])),
                "mean_now": mean(s.get("availability_pct") for s in now_sla["sites"]),
                "meeting_before": sum(1 for s in prev_sla.get("sites", []) if s.get("meets") is True),
                "meeting_now": sum(1 for s in now_sla["sites"] if s.get("meets") is True),
                "n_worse": len(worse), "n_better": len(better),
                "worse": worse[:15], "better": better[:15],
            },
        },
    }


# --------------------------------------------------------------------------- entry point


def _signoff(m: ProvinceFile) -> dict:
    d = m.dossier
    place = d.place
    if not place:
        name = m.province.name
        for prefix in ("Tỉnh ", "Thành phố ", "tỉnh ", "thành phố "):
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        place = name

    def who(s) -> dict | None:
        return {"role": s.role, "name": s.name} if s is not None else None

    return {
        "place": place, "operator": d.operator,
        "prepared_by": who(d.prepared_by), "checked_by": who(d.checked_by), "approved_by": who(d.approved_by),
        "level_decisions": [{"system": x.system, "level": x.level, "number": x.number, "date": x.date.isoformat(),
                             "issued_by": x.issued_by} for x in d.level_decisions],
    }


def _result(r: dict) -> dict:
    ev = r.get("evidence")
    out = {"control": str(r["control"]), "target": str(r["target"]), "status": r["status"],
           "reason": r.get("reason") or "",
           "evidence": ev if isinstance(ev, dict) else ({} if ev in (None, "") else {"value": ev}),
           "time": r.get("time") or "", "duration_s": r.get("duration_s", 0.0)}
    if isinstance(r.get("waiver"), dict):
        out["waiver"] = r["waiver"]
    return out


def assemble(inp: Inputs, *, version: str, now: _dt.datetime | None = None) -> dict:
    """Everything the report shows, language-neutral, secrets redacted."""
    m = inp.province
    doc = redact(inp.results)
    results = [_result(r) for r in doc.get("results") or []]
    checked_on = vn_date(doc.get("generated")) if doc.get("generated") else vn_date(None)
    waivers = None
    if inp.waivers is not None:
        results, wsum = apply_waivers(results, inp.waivers, checked_on=checked_on)
        waivers = describe_waivers(inp.waivers, wsum, checked_on)
    elif isinstance(doc.get("waivers"), dict):  # applied by `dcops check --waivers`
        waivers = doc["waivers"]
    doc = {**doc, "results": results}
    doc_controls = {}
    raw_controls = doc.get("controls") or {}
    if isinstance(raw_controls, list):
        raw_controls = {c.get("id"): c for c in raw_controls if isinstance(c, dict)}
    if isinstance(raw_controls, dict):
        doc_controls = raw_controls
    audit = m.province.audit_standard
    catalog = load_catalog() if inp.catalog is None else (inp.catalog or None)
    controls = _controls(results, catalog, doc_controls, audit)
    sla_raw = _sla.extract(doc, set(m.platform_by_id), set(m.site_by_id))  # once: it reads every result
    sla_out = _sla_section(m, doc, sla_raw)
    site_status = _site_status(m, results, sla_raw)
    summary = _summary(m, results, controls, sla_out, site_status)
    if inp.requirements is False:
        entries, req_problem = [], "no requirements catalog given"
    elif inp.requirements is None:
        entries, req_problem = _req.load_requirements()
    else:
        entries, req_problem = list(inp.requirements), None
    req = _req.matrix(entries, m.province.security_level, controls)
    req["problem"] = req_problem
    decided = req["counts"]["passed"] + req["counts"]["failed"]
    summary["rates"]["requirements"] = {"n": req["counts"]["passed"], "m": decided, "pct": req["rate"]}
    git = git_commit(inp.province_path)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    prev = redact(inp.previous) if inp.previous is not None else None
    env = _environment(inp.results, inp.environment)
    provenance = {
        "environment": env,
        "results": {"file": str(inp.results_path) if inp.results_path else None,
                    "abs": str(Path(inp.results_path).resolve()) if inp.results_path else None,
                    "sha256": sha256_file(inp.results_path)},
        "province": {"file": str(inp.province_path), "abs": str(Path(inp.province_path).resolve()),
                     "sha256": sha256_file(inp.province_path)},
        "waivers": ({"file": str(inp.waivers.path), "abs": str(Path(inp.waivers.path).resolve()), "sha256": inp.waivers.sha256}
                    if inp.waivers is not None else
                    ({"file": waivers.get("file"), "abs": None, "sha256": waivers.get("sha256"), "applied_by": "dcops check"}
                     if waivers else None)),
        "timezone": "Asia/Ho_Chi_Minh",
    }
    return {
        "schema": REPORT_SCHEMA,
        "generated": now.isoformat(timespec="seconds"),
        "generated_local": now.astimezone(VN).isoformat(timespec="seconds"),
        "dcops_version": version,
        "provenance": provenance,
        "cover": {
            "province": {"code": m.province.code, "name": m.province.name, "name_en": m.province.name_en,
                         "security_level": m.province.security_level, "audit_standard": audit},
            "datacenter": m.datacenter.name,
            "province_file": str(inp.province_path),
            "province_commit": git.get("commit"),
            "province_commit_date": git.get("date"),
            "province_dirty": git.get("dirty", False),
            "results_file": str(inp.results_path) if inp.results_path else None,
            "results_generated": doc.get("generated"),
            "previous_file": str(inp.previous_path) if inp.previous_path else None,
            "previous_generated": (prev or {}).get("generated"),
            "window_days": sla_out["window_days"],
            "scope": {"clusters": len(m.datacenter.clusters), "platforms": len(m.platforms),
                      "sites": len(m.wan.sites), "controls": len(controls), "results": len(results)},
        },
        "summary": summary,
        "requirements": req,
        "waivers": waivers,
        "signoff": _signoff(m),
        "site_status": site_status,
        "inventory": _inventory(m, inp.stack_outputs, inp.stack_state),
        "controls": controls,
        "sla_report": sla_out,
        "changes": _changes(m, results, sla_out, prev),
        "results": results,
    }
