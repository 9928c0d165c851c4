"""A synthetic, deterministic results document for a province.

For tests, demos and timing the report on the full province without a lab:
every catalog control on every target it applies to, a few failures and
errors, and SLA figures with 30 daily points per platform and per site.
Nothing here is a real measurement.  ``dcops report --sample`` uses it.
"""

from __future__ import annotations

import datetime as _dt
import random
from typing import Any

from ..model import ProvinceFile

# Used only when the checks' catalog is not installed.
_FALLBACK_CONTROLS = [
    {"id": "DCOPS-SSH-001", "title_vi": "Không cho phép đăng nhập SSH trực tiếp bằng tài khoản root",
     "title_en": "SSH root login is disabled", "severity": "high", "applies_to": ["endpoint", "gateway"], "levels": [1, 2, 3, 4, 5]},
    {"id": "DCOPS-WG-002", "title_vi": "Đường hầm WireGuard có bắt tay gần đây",
     "title_en": "The WireGuard tunnel has a recent handshake", "severity": "high", "applies_to": ["endpoint"], "levels": [2, 3, 4, 5]},
    {"id": "DCOPS-K8S-001", "title_vi": "Mỗi namespace nền tảng có chính sách mạng mặc định từ chối",
     "title_en": "Every platform namespace has a default-deny network policy", "severity": "high", "applies_to": ["cluster"], "levels": [3, 4, 5]},
    {"id": "DCOPS-SLA-001", "title_vi": "Độ sẵn sàng của nền tảng đạt cam kết",
     "title_en": "Platform availability meets its SLO", "severity": "high", "applies_to": ["platform"], "levels": [1, 2, 3, 4, 5]},
    {"id": "DCOPS-SLA-003", "title_vi": "Đường truyền của đơn vị tới trung tâm đạt độ sẵn sàng cam kết",
     "title_en": "Each unit's WAN link meets its availability target", "severity": "high", "applies_to": ["wan_link"], "levels": [1, 2, 3, 4, 5]},
]

SITE_TARGET = 99.5


def _controls(catalog) -> list[dict]:
    if catalog is None:
        return _FALLBACK_CONTROLS
    return [{"id": c.id, "title_vi": c.title_vi, "title_en": c.title_en, "severity": c.severity,
             "applies_to": list(c.applies_to), "levels": list(c.levels)} for c in catalog.controls]


def _budget(avail_pct: float, target_pct: float, window_days: int) -> dict[str, float]:
    """The error-budget fields of checks/sla.py."""
    window_min = window_days * 24 * 60
    allowed = 1 - target_pct / 100
    consumed = (1 - avail_pct / 100) * window_min
    return {"error_budget_total_min": round(allowed * window_min, 3), "error_budget_consumed_min": round(consumed, 3),
            "error_budget_remaining_min": round(allowed * window_min - consumed, 3),
            "error_budget_remaining_pct": round(100 * (1 - (1 - avail_pct / 100) / allowed), 4)}


def _daily(rng: random.Random, days: list[str], base: float, outages: int) -> list[float]:
    vals = [min(100.0, base + rng.uniform(0, 100 - base)) for _ in days]
    for _ in range(outages):
        i = rng.randrange(len(days))
        vals[i] = round(rng.uniform(80.0, 99.0), 3)
    return [round(v, 4) for v in vals]


def sample_results(m: ProvinceFile, catalog=None, *, seed: int = 6, fail_rate: float = 0.02,
                   unreachable: int = 1, window_days: int = 30, end: _dt.date | None = None,
                   plant_secrets: bool = False, sla_section: bool = False) -> dict[str, Any]:
    """A results document shaped like ``checks.result.document``."""
    rng = random.Random(seed)
    end = end or _dt.date(2026, 3, 31)
    days = [(end - _dt.timedelta(days=window_days - 1 - i)).isoformat() for i in range(window_days)]
    stamp = f"{end.isoformat()}T02:00:00+00:00"
    sites = [s.id for s in m.wan.sites]
    down = set(rng.sample(sites, min(unreachable, len(sites))))
    level = m.province.security_level
    results: list[dict] = []

    def add(control: str, target: str, status: str, evidence: dict | None = None, reason: str = "") -> None:
        results.append({"control": control, "target": target, "status": status, "evidence": evidence or {},
                        "reason": reason, "time": stamp, "duration_s": round(rng.uniform(0.01, 0.4), 3)})

    sla_platforms, sla_sites = {}, {}
    for c in _controls(catalog):
        cid = c["id"]
        targets: list[str] = []
        for kind in c["applies_to"]:
            targets += {"endpoint": sites, "gateway": ["hub"] + (["gateway-standby"] if m.wan.standby else []), "cluster": [x.id for x in m.datacenter.clusters],
                        "platform": [p.id for p in m.platforms], "wan_link": sites}.get(kind, [])
        for target in targets:
            if level not in c["levels"]:
                what = "cluster" if "cluster" in c["applies_to"] else "host"
                add(cid, target, "skipped", reason=f"applies at levels {c['levels']}; {what} is level {level}")
                continue
            if cid == "DCOPS-K8S-007":
                add(cid, target, "not_assessed", {"would_settle": "clusters.<id>.evidence in the environment"},
                    "the read-only identity cannot see the API server's flags or etcd through the Kubernetes API, "
                    "and the environment gives no other evidence")
                continue
            if cid == "DCOPS-SLA-001" or cid == "DCOPS-SLA-002":
                p = m.platform_by_id[target]
                if target not in sla_platforms:
                    vals = _daily(rng, days, 99.6, rng.choice([0, 0, 1, 2]))
                    lat = [round(rng.uniform(0.15, 0.45) * p.slo.latency_ms, 1) for _ in days]
                    if rng.random() < 0.25:
                        lat[rng.randrange(len(days))] = round(p.slo.latency_ms * 1.6, 1)
                    avail = round(sum(vals) / len(vals), 4)
                    lat_ok = round(rng.uniform(98.5, 99.99), 3)
                    budget = (1 - (100 - avail) / (100 - p.slo.availability)) * 100
                    sla_platforms[target] = {
                        "availability_pct": avail, "target_pct": p.slo.availability, "budget_left_pct": round(budget, 2),
                        "latency_ok_pct": lat_ok, "latency_target_pct": p.slo.latency_target,
                        "latency_threshold_ms": p.slo.latency_ms, "window_days": window_days,
                        "daily": [{"date": d, "availability_pct": v, "latency_ms": lv} for d, v, lv in zip(days, vals, lat)],
                    }
                s = sla_platforms[target]
                # the evidence keys of checks/sla.py, plus the daily series the report charts
                if cid == "DCOPS-SLA-001":
                    ev = {"availability_pct": s["availability_pct"], "target_pct": s["target_pct"],
                          "window_days": window_days, **_budget(s["availability_pct"], s["target_pct"], window_days),
                          "samples_of_1h_ratio": window_days * 24,
                          "query": f'avg_over_time(dcops:platform_availability:ratio_rate1h{{platform="{target}"}}[{window_days}d])',
                          "daily": [dict(x) for x in s["daily"]]}
                    good = s["availability_pct"] >= s["target_pct"]
                    if target == m.platforms[-1].id:  # one platform observed too little of its window
                        win_s = window_days * 86400
                        ev |= {"monitored_s": 0.4 * win_s, "window_s": win_s, "coverage_pct": 40.0, "min_coverage_pct": 90.0}
                        add(cid, target, "insufficient_data", ev,
                            f"insufficient data: observed {0.4 * window_days:.1f} days of the {window_days:.1f} days window "
                            f"(40.0% < 90%); availability {s['availability_pct']:.4f}% over the monitored time "
                            f"(target {s['target_pct']}%), not a verdict over the window")
                        continue
                    why = (f"availability {s['availability_pct']:.4f}% is below the target {s['target_pct']}% over {window_days} days "
                           f"(budget overspent by {-ev['error_budget_remaining_min']:.1f} min)")
                else:
                    ev = {"fast_pct": s["latency_ok_pct"], "threshold_ms": s["latency_threshold_ms"],
                          "target_pct": s["latency_target_pct"], "window_days": window_days,
                          **_budget(s["latency_ok_pct"], s["latency_target_pct"], window_days),
                          "query": f'avg_over_time(dcops:platform_latency:ratio_rate1h{{platform="{target}"}}[{window_days}d])'}
                    good = s["latency_ok_pct"] >= s["latency_target_pct"]
                    why = (f"{s['latency_ok_pct']:.3f}% of successful probes answered within {s['latency_threshold_ms']} ms; "
                           f"target {s['latency_target_pct']}%")
                add(cid, target, "pass" if good else "fail", ev, "" if good else why)
                continue
            if cid == "DCOPS-SLA-003":
                vals = _daily(rng, days, 99.7, rng.choice([0, 0, 0, 1, 3]))
                if target in down:
                    vals[-2:] = [0.0, 0.0]
                lat = [round(rng.uniform(3, 40), 1) for _ in days]
                avail = round(sum(vals) / len(vals), 4)
                budget = (1 - (100 - avail) / (100 - SITE_TARGET)) * 100
                sla_sites[target] = {"availability_pct": avail, "target_pct": SITE_TARGET, "budget_left_pct": round(budget, 2),
                                     "latency_ms": round(sum(lat) / len(lat), 1),
                                     "daily": [{"date": d, "availability_pct": v, "latency_ms": lv} for d, v, lv in zip(days, vals, lat)]}
                good = avail >= SITE_TARGET
                ev = {"availability_pct": avail, "target_pct": SITE_TARGET, "window_days": window_days,
                      **_budget(avail, SITE_TARGET, window_days), "probe": f"icmp {m.site_by_id[target].tunnel_address}",
                      "latency_ms": sla_sites[target]["latency_ms"], "daily": [dict(x) for x in sla_sites[target]["daily"]]}
                add(cid, target, "pass" if good else "fail", ev,
                    "" if good else f"link availability {avail:.4f}% is below {SITE_TARGET}% over {window_days} days")
                continue
            if cid == "DCOPS-SLA-004":
                add(cid, target, "pass", {"firing": [], "query": f'ALERTS{{alertstate="firing",severity="page",platform="{target}"}}'})
                continue
            if target in down and "endpoint" in c["applies_to"]:
                add(cid, target, "error", {"ssh": "connection timed out"},
                    f"host unreachable over SSH as dcops from management: ssh: connect to host "
                    f"{m.site_by_id[target].wan_address} port 22: Connection timed out")
                continue
            bad = rng.random() < fail_rate
            ev = {"observed": "no" if not bad else "yes", "expected": "no", "host": target}
            if cid.startswith("DCOPS-WG"):
                ev = {"peer_endpoint": f"{m.wan.hub.wan_address}:{m.wan.hub.listen_port}", "latest_handshake_age_s": rng.randint(5, 120),
                      "public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="}
            add(cid, target, "fail" if bad else "pass", ev, "observed value differs from the expected one" if bad else "")
    if plant_secrets:
        results.append({
            "control": "DCOPS-WG-003", "target": sites[0], "status": "fail", "reason": "key file mode is 0644",
            "time": stamp, "duration_s": 0.1,
            "evidence": {
                "mode": "0644",
                "private_key": PLANTED["wg"],
                "wg_conf": f"[Interface]\nPrivateKey = {PLANTED['wg']}\nAddress = 10.200.1.1/16\n",
                "pulumi_env": f"PULUMI_CONFIG_PASSPHRASE={PLANTED['passphrase']}",
                "passphrase": PLANTED["passphrase"],
                "ssh_host_key": PLANTED["pem"],
                "nested": {"db": {"password": PLANTED["password"]}, "note": f"dump: {PLANTED['pem']}"},
            },
        })
    doc: dict[str, Any] = {
        "schema": 1,
        "generated": stamp,
        "province_code": m.province.code,
        "security_level": m.province.security_level,
        "audit_standard": m.province.audit_standard,
        "sample": {"seed": seed, "note": "synthetic results, not measurements"},
        "summary": {},
        "results": results,
    }
    counts = {s: 0 for s in ("pass", "fail", "error", "skipped", "not_assessed", "insufficient_data")}
    for r in results:
        counts[r["status"]] += 1
    doc["summary"] = counts | {"total": len(results)}
    if sla_section:
        doc["sla"] = {"window_days": window_days, "window_start": days[0], "window_end": days[-1],
                      "platforms": sla_platforms, "sites": sla_sites}
    return doc


def _make_planted() -> dict[str, str]:
    """Throwaway secrets, made fresh in each process (never committed): real-format keys, so that
    redaction is tested against what a leak would look like. Tests plant them in evidence; none
    of them may reach a report."""
    import base64
    import secrets

    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    bech32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    return {
        "wg": base64.b64encode(secrets.token_bytes(32)).decode(),
        "passphrase": "pp-" + secrets.token_urlsafe(18),
        "password": "pw-" + secrets.token_urlsafe(12) + "!",
        "pem": ed25519.Ed25519PrivateKey.generate().private_bytes(
            ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption()).decode(),
        "pem_pkcs8": rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()).decode(),
        "pem_ec": ec.generate_private_key(ec.SECP256R1()).private_bytes(
            ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption()).decode(),
        "age": "AGE-SECRET-KEY-1" + "".join(secrets.choice(bech32) for _ in range(58)).upper(),
    }


PLANTED = _make_planted()
