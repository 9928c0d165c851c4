"""SLA computation from Prometheus (prometheus-api-client).

Availability, latency and the remaining error budget of each platform, and the
availability of each site's WAN link, over a window (default 30 days).  The
long window is the average of the 1h SLI ratios that the recording rules keep
(``avg_over_time(dcops:platform_availability:ratio_rate1h{...}[30d])``): a raw
30-day range over the probe series would exceed Prometheus' sample limits on a
real WAN.

Never a pass without data: Prometheus unreachable, a query error, a missing
series or a NaN gives status ``error`` with the reason.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.util.retry import Retry
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException

from infra.model import Platform, ProvinceFile, Site
from infra.render import prometheus as R

from .catalog import catalog
from .result import Result


class PromUnavailable(RuntimeError):
    pass


class SeriesMissing(RuntimeError):
    pass


@dataclass
class Prom:
    """A small wrapper: one place that turns transport problems into PromUnavailable."""

    url: str
    timeout: float = 10.0

    def __post_init__(self) -> None:
        retry = Retry(total=1, backoff_factor=0.2, status_forcelist=[502, 503, 504])
        self.client = PrometheusConnect(url=self.url, disable_ssl=True, retry=retry, timeout=self.timeout)

    def scalar(self, query: str, at: float | None = None) -> tuple[float, dict[str, str]]:
        """The single value of an instant query; SeriesMissing when it returns nothing."""
        rows = self.vector(query, at)
        if not rows:
            raise SeriesMissing(f"no data for {query}")
        if len(rows) > 1:
            raise SeriesMissing(f"{len(rows)} series for {query}, expected one: {[r['metric'] for r in rows]}")
        v = float(rows[0]["value"][1])
        return v, rows[0]["metric"]

    def vector(self, query: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"time": f"{at:.3f}"} if at is not None else None
        try:
            return self.client.custom_query(query, params=params)
        except (requests.exceptions.RequestException, OSError) as e:
            raise PromUnavailable(f"Prometheus at {self.url} is unreachable: {e.__class__.__name__}: {e}") from e
        except PrometheusApiClientException as e:
            raise PromUnavailable(f"Prometheus at {self.url} refused the query {query!r}: {e}") from e


def _pct(x: float) -> float:
    return round(100.0 * x, 6)


def _budget(avail: float, target_pct: float, window_days: int) -> dict[str, float]:
    window_min = window_days * 24 * 60
    allowed = 1 - target_pct / 100
    total = allowed * window_min
    consumed = (1 - avail) * window_min
    return {
        "error_budget_total_min": round(total, 3),
        "error_budget_consumed_min": round(consumed, 3),
        "error_budget_remaining_min": round(total - consumed, 3),
        "error_budget_remaining_pct": round(100 * (1 - (1 - avail) / allowed), 4),
    }


def _window_query(record: str, selector: str, window_days: int) -> str:
    return f"avg_over_time({record}{{{selector}}}[{window_days}d])"


def _samples(prom: Prom, record: str, selector: str, window_days: int, at: float | None) -> int:
    v, _ = prom.scalar(f"count_over_time({record}{{{selector}}}[{window_days}d])", at)
    return int(v)


def _measure(prom: Prom, record: str, selector: str, window_days: int, at: float | None) -> tuple[float, str, int]:
    q = _window_query(record, selector, window_days)
    v, _ = prom.scalar(q, at)
    if math.isnan(v) or math.isinf(v):
        raise SeriesMissing(f"{q} is {v} (no valid probes in the window)")
    return v, q, _samples(prom, record, selector, window_days, at)


def _guard(control: str, target: str, fn) -> Result:
    t0 = time.monotonic()
    try:
        r = fn()
    except PromUnavailable as e:
        r = Result.err(control, target, str(e))
    except SeriesMissing as e:
        r = Result.err(
            control,
            target,
            f"series missing: {e}; is the probe configured, Prometheus scraping it and the recording rules loaded?",
        )
    r.duration_s = round(time.monotonic() - t0, 3)
    return r


def platform_availability(prom: Prom, p: Platform, at: float | None = None, window_days: int | None = None) -> Result:
    cid = "DCOPS-SLA-001"
    w = window_days or p.slo.window_days

    def run() -> Result:
        sel = f'platform="{p.id}"'
        avail, q, n = _measure(prom, R.rec("platform", "availability", "1h"), sel, w, at)
        ev = {
            "availability_pct": _pct(avail),
            "target_pct": p.slo.availability,
            "window_days": w,
            **_budget(avail, p.slo.availability, w),
            "samples_of_1h_ratio": n,
            "query": q,
            "probe": R.probe_url(p),
        }
        good = avail * 100 >= p.slo.availability
        return Result.verdict(
            cid, p.id, good, ev,
            reason_fail=f"availability {_pct(avail):.4f}% is below the target {p.slo.availability}% over {w} days (budget overspent by {-ev['error_budget_remaining_min']:.1f} min)",
            reason_pass=f"availability {_pct(avail):.4f}% >= {p.slo.availability}%; {ev['error_budget_remaining_pct']:.1f}% of the error budget left",
        )

    return _guard(cid, p.id, run)


def platform_latency(prom: Prom, p: Platform, at: float | None = None, window_days: int | None = None) -> Result:
    cid = "DCOPS-SLA-002"
    w = window_days or p.slo.window_days

    def run() -> Result:
        sel = f'platform="{p.id}"'
        ratio, q, n = _measure(prom, R.rec("platform", "latency", "1h"), sel, w, at)
        ev = {
            "fast_pct": _pct(ratio),
            "threshold_ms": p.slo.latency_ms,
            "target_pct": p.slo.latency_target,
            "window_days": w,
            **_budget(ratio, p.slo.latency_target, w),
            "samples_of_1h_ratio": n,
            "query": q,
        }
        good = ratio * 100 >= p.slo.latency_target
        return Result.verdict(
            cid, p.id, good, ev,
            reason_fail=f"{_pct(ratio):.3f}% of successful probes answered within {p.slo.latency_ms} ms; target {p.slo.latency_target}%",
            reason_pass=f"{_pct(ratio):.3f}% within {p.slo.latency_ms} ms >= {p.slo.latency_target}%",
        )

    return _guard(cid, p.id, run)


def site_availability(prom: Prom, s: Site, at: float | None = None, window_days: int | None = None) -> Result:
    cid = "DCOPS-SLA-003"
    params = catalog().get(cid).params
    target = float(params.get("target", R.SITE_SLO.availability))
    w = window_days or int(params.get("window_days", R.SITE_SLO.window_days))

    def run() -> Result:
        sel = f'site="{s.id}"'
        avail, q, n = _measure(prom, R.rec("site", "availability", "1h"), sel, w, at)
        ev = {
            "availability_pct": _pct(avail),
            "target_pct": target,
            "window_days": w,
            **_budget(avail, target, w),
            "samples_of_1h_ratio": n,
            "query": q,
            "probe": f"icmp {s.tunnel_address}",
        }
        return Result.verdict(
            cid, s.id, avail * 100 >= target, ev,
            reason_fail=f"link availability {_pct(avail):.4f}% is below {target}% over {w} days",
            reason_pass=f"link availability {_pct(avail):.4f}% >= {target}%",
        )

    return _guard(cid, s.id, run)


def no_page_alerts(prom: Prom, kind: str, ident: str, at: float | None = None) -> Result:
    """DCOPS-SLA-004: no page-severity burn-rate alert firing for the platform or site."""
    cid = "DCOPS-SLA-004"
    label = "platform" if kind == "platform" else "site"

    def run() -> Result:
        # the probe series must exist, or "no alert" would mean nothing
        job = R.JOB_PLATFORM if kind == "platform" else R.JOB_SITE
        if not prom.vector(f'probe_success{{job="{job}",{label}="{ident}"}}', at):
            raise SeriesMissing(f'probe_success{{job="{job}",{label}="{ident}"}}')
        q = f'ALERTS{{alertstate="firing",severity="page",{label}="{ident}"}}'
        rows = prom.vector(q, at)
        firing = sorted({f"{r['metric'].get('alertname')}[{r['metric'].get('sli')},{r['metric'].get('long_window')}]" for r in rows})
        return Result.verdict(cid, ident, not firing, {"firing": firing, "query": q}, reason_fail=f"page alerts firing: {', '.join(firing)}")

    return _guard(cid, ident, run)


def run_all(pf: ProvinceFile, prom: Prom, at: float | None = None, window_days: int | None = None,
            only: set[str] | None = None, targets: set[str] | None = None) -> list[Result]:
    """Every SLA control on every platform and site (filtered by ``only`` control ids and ``targets``)."""
    out: list[Result] = []

    def want(cid: str, target: str) -> bool:
        return (not only or cid in only) and (not targets or target in targets)

    for p in pf.platforms:
        if want("DCOPS-SLA-001", p.id):
            out.append(platform_availability(prom, p, at, window_days))
        if want("DCOPS-SLA-002", p.id):
            out.append(platform_latency(prom, p, at, window_days))
        if want("DCOPS-SLA-004", p.id):
            out.append(no_page_alerts(prom, "platform", p.id, at))
    for s in pf.wan.sites:
        if want("DCOPS-SLA-003", s.id):
            out.append(site_availability(prom, s, at, window_days))
        if want("DCOPS-SLA-004", s.id):
            out.append(no_page_alerts(prom, "site", s.id, at))
    return out
