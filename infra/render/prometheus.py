"""Prometheus configuration generated from the province file's SLOs.

What is rendered (``render(province, out_dir)`` writes all of it):

- ``prometheus.yml``: scrape configuration.  blackbox_exporter probes every
  platform's front end in the protocol of its first port
  (``https://<address>:<port>/healthz`` with module ``https_2xx`` on a TLS port,
  else ``http://...`` with ``http_2xx``; job ``dcops-platform``, label
  ``platform``) and every site's tunnel address over
  ICMP (job ``dcops-site``, labels ``site``, ``tier``); node_exporter is
  scraped on every site's tunnel address (job ``dcops-node``).
- ``blackbox.yml``: the blackbox modules (``http_2xx``, ``icmp`` and, when a platform
  serves TLS, ``https_2xx``: TLS required and verified against the province's CA bundle,
  ``datacenter.certificates.ca_file``, on the probing host).
- ``rules/slo-recording.yml``: the SLIs as recording rules, ratios of good
  probes over 5m, 30m, 1h, 6h (and 3d from the 1h ratios) per platform and
  per site:

  ``dcops:platform_availability:ratio_rate<W>``  successful probes / probes
  ``dcops:platform_latency:ratio_rate<W>``       probes under the SLO's latency
                                                 threshold / successful probes
  ``dcops:site_availability:ratio_rate<W>``      answered ICMP probes / probes

  Long windows (the 30-day SLA) are computed by averaging the 1h ratios
  (``avg_over_time(...ratio_rate1h[30d])``), never by a raw 30-day range over
  the probe series (that exceeds Prometheus' sample limits on a real WAN).

  The same 1h ratios are also recorded once an hour (group ``dcops-sli-hourly``,
  ``dcops:<kind>_<sli>:ratio_hourly``): one sample per hour, so the 30-day SLA
  reads 720 samples per target whatever the scrape and evaluation intervals
  (the 1h ratio every 15 s is 172,800), see ``checks/sla.py``.  The hourly
  latency ratio divides only by hours with a successful probe: an hour without
  any records nothing instead of 0/0 = NaN (which would poison a 30-day average).
- ``rules/slo-alerts.yml``: multi-window, multi-burn-rate alerts in the style
  of the SRE workbook, per platform (availability and latency) and per site:
  page at 14.4x over 1h (5m short window) and 6x over 6h (30m); ticket at 1x
  over 3d (6h).

The province file has no WAN SLO of its own; sites use ``SITE_SLO`` (the
target DCOPS-SLA-003 checks, from the control catalog).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from ..model import Platform, ProvinceFile
from .comments import comment_block

JOB_PLATFORM = "dcops-platform"
JOB_SITE = "dcops-site"
JOB_NODE = "dcops-node"
NODE_EXPORTER_PORT = 9100
SHORT_WINDOWS = ("5m", "30m", "1h", "6h")
LONG_FROM_1H = ("3d",)


@dataclass(frozen=True)
class BurnRate:
    severity: str
    factor: float
    long: str
    short: str


BURN_RATES = (
    BurnRate("page", 14.4, "1h", "5m"),
    BurnRate("page", 6.0, "6h", "30m"),
    BurnRate("ticket", 1.0, "3d", "6h"),
)


@dataclass(frozen=True)
class SiteSLO:
    availability: float = 99.5
    window_days: int = 30


SITE_SLO = SiteSLO()


# ----------------------------------------------------------------- names


def rec(kind: str, sli: str, window: str) -> str:
    """Recording rule name, e.g. rec('platform', 'availability', '1h')."""
    return f"dcops:{kind}_{sli}:ratio_rate{window}"


def hourly_rec(kind: str, sli: str) -> str:
    """The 1h ratio recorded once an hour, e.g. ``dcops:site_availability:ratio_hourly``."""
    return f"dcops:{kind}_{sli}:ratio_hourly"


def fast_rec() -> str:
    return "dcops:platform_probe_fast:bool"


def up_rec() -> str:
    return "dcops:platform_probe_success:bool"


MODULE_HTTP = "http_2xx"
MODULE_HTTPS = "https_2xx"


def probe_tls(p: Platform) -> bool:
    """The platform's probed port (its first) speaks TLS."""
    return p.ports[0].scheme == "https"


def probe_url(p: Platform) -> str:
    return f"{'https' if probe_tls(p) else 'http'}://{p.address}:{p.ports[0].port}/healthz"


def probe_module(p: Platform) -> str:
    return MODULE_HTTPS if probe_tls(p) else MODULE_HTTP


def _num(x: float) -> str:
    """A float for PromQL without float noise (0.0009999999 -> 0.001)."""
    return f"{round(x, 10):.10g}"


# ----------------------------------------------------------------- scrape config


def scrape_config(
    pf: ProvinceFile,
    blackbox: str = "127.0.0.1:9115",
    scrape_interval: str = "15s",
    evaluation_interval: str = "30s",
    rule_files: Iterable[str] = ("rules/*.yml",),
    node_scrape_interval: str | None = None,
    node_keep: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``node_scrape_interval``: the node_exporter job's own interval (default: ``scrape_interval``).
    ``node_keep``: the only node_exporter metric names stored (default: all of them).
    No SLI or alert reads node_exporter's series; a lab whose hundreds of hosts share one machine
    scrapes them less often (:func:`infra.lab.monitoring.node_scrape_interval`) and stores a few
    (:data:`infra.lab.monitoring.NODE_KEEP`): about a thousand series per host took 1.4 GB of its
    memory at 700 sites."""
    def via_blackbox(module: str) -> list[dict]:
        return [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": blackbox},
        ]

    # each target names its module (__param_module: http_2xx, or https_2xx on a TLS port); the job
    # has no `params`, which Prometheus would put over the targets' own
    platforms = [
        {"targets": [probe_url(p)], "labels": {"platform": p.id, "cluster": p.cluster, "__param_module": probe_module(p)}}
        for p in pf.platforms
    ]
    sites = [{"targets": [s.tunnel_address], "labels": {"site": s.id, "tier": s.tier}} for s in pf.wan.sites]
    nodes = [
        {"targets": [f"{s.tunnel_address}:{NODE_EXPORTER_PORT}"], "labels": {"site": s.id, "tier": s.tier}}
        for s in pf.wan.sites
    ]
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
            "external_labels": {"province": pf.province.code},
        },
        "rule_files": list(rule_files),
        "scrape_configs": [
            {
                "job_name": JOB_PLATFORM,
                "metrics_path": "/probe",
                "static_configs": platforms,
                "relabel_configs": via_blackbox(MODULE_HTTP),
            },
            {
                "job_name": JOB_SITE,
                "metrics_path": "/probe",
                "params": {"module": ["icmp"]},
                "static_configs": sites,
                "relabel_configs": via_blackbox("icmp"),
            },
            {"job_name": JOB_NODE, "static_configs": nodes,
             **({"scrape_interval": node_scrape_interval} if node_scrape_interval else {}),
             **({"metric_relabel_configs": [{"source_labels": ["__name__"], "action": "keep",
                                             "regex": "|".join(re.escape(n) for n in node_keep)}]} if node_keep else {})},
            {"job_name": "blackbox", "static_configs": [{"targets": [blackbox]}]},
        ],
    }


def blackbox_config(timeout: str = "5s", pf: ProvinceFile | None = None) -> dict[str, Any]:
    """The modules; with ``pf`` whose platforms serve TLS, ``https_2xx`` too: TLS required and
    the server's certificate verified against the province's CA bundle (never skipped)."""
    def http(**more: Any) -> dict[str, Any]:
        return {"valid_status_codes": [200], "method": "GET", "preferred_ip_protocol": "ip4", "no_follow_redirects": True,
                **more}

    modules: dict[str, Any] = {MODULE_HTTP: {"prober": "http", "timeout": timeout, "http": http()}}
    if pf is not None and any(probe_tls(p) for p in pf.platforms):
        certs = pf.datacenter.certificates
        if certs is None:  # validation refuses such a file; a caller that skipped it gets the same words
            raise ValueError("platforms serve TLS (https ports) but the province names no CA (datacenter.certificates)")
        modules[MODULE_HTTPS] = {"prober": "http", "timeout": timeout,
                                 "http": http(fail_if_not_ssl=True,
                                              tls_config={"ca_file": certs.ca_file, "insecure_skip_verify": False})}
    modules["icmp"] = {"prober": "icmp", "timeout": timeout, "icmp": {"preferred_ip_protocol": "ip4"}}
    return {"modules": modules}


# ----------------------------------------------------------------- recording rules


def _platform_sel(p: Platform) -> str:
    return f'job="{JOB_PLATFORM}",platform="{p.id}"'


def recording_rules(pf: ProvinceFile, windows: Iterable[str] = SHORT_WINDOWS, long: bool = True,
                    hourly: bool = True) -> dict[str, Any]:
    """The SLI recording rules.  ``windows`` narrows them (the backfill only needs 1h); ``hourly``:
    the 1h ratios recorded once an hour for the long-window SLA."""
    windows = list(windows)
    groups: list[dict[str, Any]] = []

    # per-evaluation booleans for the latency SLI: a probe is "fast" when it
    # succeeded and took at most the platform's threshold
    inst: list[dict[str, Any]] = []
    for p in pf.platforms:
        sel = _platform_sel(p)
        inst.append({"record": up_rec(), "expr": f"max by (platform) (probe_success{{{sel}}})", "labels": {"platform": p.id}})
        inst.append(
            {
                "record": fast_rec(),
                "expr": (
                    f"max by (platform) (probe_success{{{sel}}}) * on (platform) "
                    f"(max by (platform) (probe_duration_seconds{{{sel}}}) <= bool {_num(p.slo.latency_ms / 1000)})"
                ),
                "labels": {"platform": p.id},
            }
        )
    groups.append({"name": "dcops-sli-instant", "rules": inst})

    for w in windows:
        rules = [
            {
                "record": rec("platform", "availability", w),
                "expr": f'avg by (platform) (avg_over_time(probe_success{{job="{JOB_PLATFORM}"}}[{w}]))',
            },
            {
                "record": rec("platform", "latency", w),
                "expr": f"avg_over_time({fast_rec()}[{w}]) / avg_over_time({up_rec()}[{w}])",
            },
            {
                "record": rec("site", "availability", w),
                "expr": f'avg by (site, tier) (avg_over_time(probe_success{{job="{JOB_SITE}"}}[{w}]))',
            },
        ]
        groups.append({"name": f"dcops-sli-{w}", "rules": rules})

    if hourly:
        groups.append({"name": "dcops-sli-hourly", "interval": "1h", "rules": [
            {"record": hourly_rec("platform", "availability"),
             "expr": f'avg by (platform) (avg_over_time(probe_success{{job="{JOB_PLATFORM}"}}[1h]))'},
            {"record": hourly_rec("platform", "latency"),
             "expr": f"avg_over_time({fast_rec()}[1h]) / (avg_over_time({up_rec()}[1h]) > 0)"},
            {"record": hourly_rec("site", "availability"),
             "expr": f'avg by (site, tier) (avg_over_time(probe_success{{job="{JOB_SITE}"}}[1h]))'},
        ]})

    if long and "1h" in windows:
        rules = []
        for w in LONG_FROM_1H:
            for kind, sli in (("platform", "availability"), ("platform", "latency"), ("site", "availability")):
                rules.append({"record": rec(kind, sli, w), "expr": f"avg_over_time({rec(kind, sli, '1h')}[{w}])"})
        groups.append({"name": "dcops-sli-long", "interval": "5m", "rules": rules})
    return {"groups": groups}


# ----------------------------------------------------------------- alert rules


def _days_left(b: BurnRate, window_days: int) -> str:
    return f"{window_days / b.factor:.1f}"


def _burn_alert(
    name: str, kind: str, sli: str, ident: dict[str, str], objective_pct: float, b: BurnRate, what: str, window_days: int
) -> dict:
    budget = 1 - objective_pct / 100
    thresh = _num(b.factor * budget)
    sel = ",".join(f'{k}="{v}"' for k, v in ident.items())
    expr = (
        f"(1 - {rec(kind, sli, b.long)}{{{sel}}}) > {thresh}\n"
        f"and\n(1 - {rec(kind, sli, b.short)}{{{sel}}}) > {thresh}"
    )
    who = next(iter(ident.values()))
    return {
        "alert": name,
        "expr": expr,
        "labels": {
            "severity": b.severity,
            "sli": sli,
            "long_window": b.long,
            "short_window": b.short,
            "burn_rate": _num(b.factor),
            **ident,
        },
        "annotations": {
            "summary": f"{what} {who}: {sli} error budget burning at {_num(b.factor)}x or more",
            "description": (
                f"Over {b.long} (and still over {b.short}) more than {_num(b.factor * budget * 100)}% of "
                f"probes were bad (objective {_num(objective_pct)}%). At this rate the whole budget of the "
                f"{window_days}-day window lasts {_days_left(b, window_days)} days or less."
            ),
        },
    }


def alert_rules(pf: ProvinceFile, site_slo: SiteSLO = SITE_SLO) -> dict[str, Any]:
    """Burn-rate alerts; ``site_slo``: the WAN links' objective (the catalog's DCOPS-SLA-003
    params, given by the caller: the renderer reads nothing but its arguments)."""
    rules: list[dict] = []
    for p in pf.platforms:
        for b in BURN_RATES:
            w = p.slo.window_days
            rules.append(_burn_alert("DcopsPlatformAvailabilityBurn", "platform", "availability", {"platform": p.id}, p.slo.availability, b, "Platform", w))
            rules.append(_burn_alert("DcopsPlatformLatencyBurn", "platform", "latency", {"platform": p.id}, p.slo.latency_target, b, "Platform", w))
    site_rules: list[dict] = []
    for b in BURN_RATES:
        budget = 1 - site_slo.availability / 100
        thresh = _num(b.factor * budget)
        site_rules.append(
            {
                "alert": "DcopsSiteLinkBurn",
                "expr": (
                    f"(1 - {rec('site', 'availability', b.long)}) > {thresh}\n"
                    f"and\n(1 - {rec('site', 'availability', b.short)}) > {thresh}"
                ),
                "labels": {
                    "severity": b.severity,
                    "sli": "availability",
                    "long_window": b.long,
                    "short_window": b.short,
                    "burn_rate": _num(b.factor),
                },
                "annotations": {
                    "summary": "WAN link of {{ $labels.site }}: error budget burning at " + _num(b.factor) + "x or more",
                    "description": f"Tunnel address of {{{{ $labels.site }}}} unanswered in more than {_num(b.factor * budget * 100)}% of probes over {b.long} and {b.short} (objective {_num(site_slo.availability)}%).",
                },
            }
        )
    missing = [
        {
            "alert": "DcopsProbeSeriesMissing",
            "expr": f'absent(probe_success{{job="{JOB_PLATFORM}",platform="{p.id}"}})',
            "for": "10m",
            "labels": {"severity": "ticket", "platform": p.id},
            "annotations": {"summary": f"No probe results for platform {p.id}: its SLA cannot be computed"},
        }
        for p in pf.platforms
    ]
    return {
        "groups": [
            {"name": "dcops-slo-platforms", "rules": rules},
            {"name": "dcops-slo-sites", "rules": site_rules},
            {"name": "dcops-slo-meta", "rules": missing},
        ]
    }


# ----------------------------------------------------------------- files


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=200)


def render(pf: ProvinceFile, out_dir: Path, site_slo: SiteSLO = SITE_SLO, placement: dict[str, str] | None = None,
           **scrape_kw: Any) -> dict[str, Path]:
    """Write prometheus.yml, blackbox.yml and the rule files into ``out_dir``.

    ``placement``: where each platform a failover moved runs (platform id -> cluster id, the DR
    placement record, :func:`infra.dr.placement.placement`): the probes follow it (a platform with
    an address of its own at the DR site, ``platforms[].dr.address``, is probed there). Re-render
    after ``dcops dr failover`` / ``failback`` (in a lab: ``dcops lab monitor`` re-renders and reloads)."""
    pf = pf.placed(placement)
    out_dir = Path(out_dir)
    (out_dir / "rules").mkdir(parents=True, exist_ok=True)
    files = {
        "prometheus": out_dir / "prometheus.yml",
        "blackbox": out_dir / "blackbox.yml",
        "recording": out_dir / "rules" / "slo-recording.yml",
        "alerts": out_dir / "rules" / "slo-alerts.yml",
    }
    header = comment_block("Generated by dcops (infra/render/prometheus.py) from the province file; do not edit.")
    files["prometheus"].write_text(header + _dump(scrape_config(pf, **scrape_kw)), encoding="utf-8")
    files["blackbox"].write_text(header + _dump(blackbox_config(pf=pf)), encoding="utf-8")
    files["recording"].write_text(header + _dump(recording_rules(pf)), encoding="utf-8")
    files["alerts"].write_text(header + _dump(alert_rules(pf, site_slo)), encoding="utf-8")
    return files
