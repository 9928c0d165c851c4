"""SLA computation from Prometheus (prometheus-api-client).

Availability, latency and the remaining error budget of each platform, and the
availability of each site's WAN link, over a window (default 30 days).  The
long window is the average of the 1h SLI ratios that the recording rules keep,
never a raw 30-day range over the probe series (that would exceed Prometheus'
sample limits on a real WAN):

- once Prometheus holds the window's hourly 1h ratios (``dcops:..._ratio_hourly``,
  recorded once an hour), their average with the current 1h ratio:
  ``(sum_over_time(H[719h]) + R) / (count_over_time(H[719h]) + 1)``, 720 samples
  per target, and a fault shows at once through the current ratio ``R``;
- before that (a Prometheus younger than the window, hours lost), the average
  of the 1h ratios recorded at every evaluation
  (``avg_over_time(dcops:platform_availability:ratio_rate1h{...}[30d])``),
  one sample per evaluation: 172,800 per target over 30 days at 15 s.

``run_all`` asks each query once for every target of a kind (every platform,
every site), all of them in parallel, not one query per target: the full
province's report is 8 queries instead of 936, and with the hourly ratios
Prometheus reads about 0.3 M samples for it instead of 20 M (at 1-minute
evaluation; ``dcops bench --cases sla``, figures in docs/benchmarks.md).
Each result's evidence still names the query that gives its own value.  Where the long-window values come from is an :class:`SLIs`;
the benchmark substitutes one that reads the raw probe series.

Never a pass without data: Prometheus unreachable, a query error, a missing
series or a NaN gives status ``error`` with the reason. Never a verdict over a
window that was not watched: the minutes with a probe result of the target
(Prometheus or the probe down: unmonitored) go into the evidence (``monitored_s``,
``coverage_pct``, ``coverage_daily`` per Vietnamese day); below the province's
``province.targets.sla_min_coverage_pct`` (default 90%) the result is
``insufficient_data`` with the time observed, unless the bad time seen already
overspends the whole window's budget (a certain fail). Days are Vietnam's
calendar days (UTC+7).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

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
    """Prometheus as production runs it: HTTPS, verified against ``ca_file`` (else the system's
    trust store), basic auth or a bearer token. One place that turns transport problems into
    :class:`PromUnavailable` with the cause named (wrong CA, refused credentials, unreachable).

    Credentials are given here as values (read from the environment's secrets by the caller)
    and never appear in messages. ``http://`` is refused when credentials are given."""

    url: str
    timeout: float = 10.0
    ca_file: str | None = None
    basic_auth: tuple[str, str] | None = None
    bearer_token: str | None = None

    def __post_init__(self) -> None:
        if (self.basic_auth or self.bearer_token) and not self.url.startswith("https://"):
            raise PromUnavailable(f"Prometheus at {self.url}: credentials are only sent over https")
        retry = Retry(total=1, backoff_factor=0.2, status_forcelist=[502, 503, 504])
        headers = {"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else None
        session = requests.Session()
        session.verify = self.ca_file or True
        self.client = PrometheusConnect(url=self.url, headers=headers, disable_ssl=False, retry=retry,
                                        auth=self.basic_auth, timeout=self.timeout, session=session)
        # prometheus-api-client passes verify=<its own ssl_verification> on every request: make it our CA
        # bundle (or True for the system store), never False.
        self.client._session.verify = self.ca_file or True
        if hasattr(self.client, "ssl_verification"):
            self.client.ssl_verification = self.ca_file or True

    @classmethod
    def for_stack(cls, stack: Any, timeout: float | None = None) -> "Prom":
        """The stack's Prometheus: URL, CA bundle and credentials from its environment."""
        p = stack.env.prometheus
        auth = (p.basic_auth.username, stack.secret(p.basic_auth.password, "prometheus.basic_auth.password")) if p.basic_auth else None
        token = stack.secret(p.bearer_token, "prometheus.bearer_token") if p.bearer_token else None
        return cls(p.url, timeout or p.timeout, str(stack.resolve(p.ca_file)) if p.ca_file else None, auth, token)

    def probe(self) -> str:
        """Ask for build info: the version, or PromUnavailable saying why not (exit 3 for the CLI)."""
        rows = self._ask("buildinfo", lambda: self.client._session.get(
            f"{self.url}/api/v1/status/buildinfo", verify=self.ca_file or True, auth=self.basic_auth,
            headers=self.client.headers, timeout=self.timeout))
        if rows.status_code in (401, 403):
            raise PromUnavailable(f"Prometheus at {self.url} refused the credentials (HTTP {rows.status_code}): "
                                  "check the environment's prometheus.basic_auth / bearer_token")
        if rows.status_code != 200:
            raise PromUnavailable(f"Prometheus at {self.url} answered HTTP {rows.status_code} to /api/v1/status/buildinfo")
        return str(rows.json().get("data", {}).get("version", "?"))

    def rules(self, kind: str = "alert") -> list[dict[str, Any]]:
        """The rule groups Prometheus has loaded (``/api/v1/rules?type=alert|record``)."""
        resp = self._ask("rules", lambda: self.client._session.get(
            f"{self.url}/api/v1/rules", params={"type": kind}, verify=self.ca_file or True, auth=self.basic_auth,
            headers=self.client.headers, timeout=self.timeout))
        if resp.status_code in (401, 403):
            raise PromUnavailable(f"Prometheus at {self.url} refused the credentials (HTTP {resp.status_code})")
        if resp.status_code != 200:
            raise PromUnavailable(f"Prometheus at {self.url} answered HTTP {resp.status_code} to /api/v1/rules")
        return list(resp.json().get("data", {}).get("groups") or [])

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
        return self._ask(query, lambda: self.client.custom_query(query, params=params))

    def matrix(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query: one row per series, ``values`` as [[t, "v"], ...]."""
        return self._ask(query, lambda: self.client.custom_query_range(
            query, start_time=_dt(start), end_time=_dt(end), step=f"{int(step)}s"))

    def _ask(self, query: str, call):
        try:
            return call()
        except requests.exceptions.SSLError as e:
            why = "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in str(e) or "verify failed" in str(e) else "TLS error"
            raise PromUnavailable(f"Prometheus at {self.url}: {why}: its certificate is not trusted by "
                                  f"{self.ca_file or 'the system trust store'} (check prometheus.ca_file)") from None
        except (requests.exceptions.RequestException, OSError) as e:
            raise PromUnavailable(f"Prometheus at {self.url} is unreachable: {e.__class__.__name__}") from None
        except PrometheusApiClientException as e:
            text = str(e)
            if "401" in text or "403" in text or "Unauthorized" in text:
                raise PromUnavailable(f"Prometheus at {self.url} refused the credentials: check the environment's "
                                      "prometheus.basic_auth / bearer_token") from None
            raise PromUnavailable(f"Prometheus at {self.url} refused the query {query!r}: {text[:300]}") from None


def _dt(t: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, tz=timezone.utc)


DAY = 86400
VN_OFFSET = 7 * 3600
"""Vietnam's time (Asia/Ho_Chi_Minh) is UTC+7 all year (no daylight saving): the days of the
evidence and the charts are Vietnam's calendar days."""


def vn_midnight(t: float) -> float:
    """The Vietnamese midnight at or before ``t`` (a Unix time)."""
    return (t + VN_OFFSET) // DAY * DAY - VN_OFFSET


def _date(t: float) -> str:
    """The Vietnamese calendar date of ``t``."""
    return time.strftime("%Y-%m-%d", time.gmtime(t + VN_OFFSET))


def _pct(x: float) -> float:
    return round(100.0 * x, 6)


def _budget(avail: float, target_pct: float, window_days: int, monitored_min: float | None = None) -> dict[str, float]:
    """The error budget of the window; consumed by the bad time seen in the monitored minutes
    (the whole window when ``monitored_min`` is None)."""
    window_min = window_days * 24 * 60
    allowed = 1 - target_pct / 100
    total = allowed * window_min
    consumed = (1 - avail) * (window_min if monitored_min is None else min(monitored_min, window_min))
    return {
        "error_budget_total_min": round(total, 3),
        "error_budget_consumed_min": round(consumed, 3),
        "error_budget_remaining_min": round(total - consumed, 3),
        "error_budget_remaining_pct": round(100 * (1 - (1 - avail) / allowed), 4),
    }


JOBS = {"platform": R.JOB_PLATFORM, "site": R.JOB_SITE}


def _matchers(*parts: str) -> str:
    return ",".join(x for x in parts if x)


def id_matcher(label: str, ids: Sequence[str] | None) -> str:
    """``label="x"`` for one id, ``label=~"a|b"`` for several, nothing for None (every series).

    Ids are the model's (``[a-z0-9-]``), plain text in a regular expression."""
    if ids is None:
        return ""
    ids = sorted(set(ids))
    if len(ids) == 1:
        return f'{label}="{ids[0]}"'
    return f'{label}=~"{"|".join(ids)}"'


@dataclass(frozen=True)
class Tier:
    """One way to get an SLI over the window: a query for the value and one for the number of 1h
    ratios (or probes) behind it, per target; a target takes the first tier whose count reaches
    ``need`` (the last tier in any case)."""

    value: str
    count: str
    need: int = 0


class SLIs:
    """Where the SLA reads an SLI over its long window (``kind``: ``platform`` or ``site``, also the
    label that tells the targets apart; ``sli``: ``availability`` or ``latency``; ``ids``: the
    targets, None for all; each query returns one series per target carrying that label):

    1. the hourly 1h ratios (``dcops:..._ratio_hourly``) of the window's last 719 hours plus the
       current 1h ratio, so that a fault shows at once: ``(sum of the hourly ratios + the current
       one) / (their count + 1)``, 720 hours, 720 samples per target over 30 days.  The current
       hour overlaps the last hourly ratio by as much as the oldest hourly ratio falls short of the
       window's start (under an hour).  Used when the hourly series covers the window, one lost
       hour allowed (a Prometheus younger than the window, or one that has lost more, falls
       through to 2).  The hourly latency ratio skips hours without a successful probe (0/0), so
       a whole hour down does not make the 30-day latency NaN, only the current hour's does
       (while it lasts);
    2. the average of the 1h ratios recorded at every evaluation
       (``avg_over_time(dcops:..._ratio_rate1h[30d])``): the same figure, but 43,200 samples per
       target over 30 days at a 1-minute evaluation interval, 172,800 at 15 s."""

    samples_key = "samples_of_1h_ratio"

    def tiers(self, kind: str, sli: str, ids: Sequence[str] | None, window_days: int) -> list[Tier]:
        m, w, hours = id_matcher(kind, ids), f"{window_days}d", f"{window_days * 24 - 1}h"
        h, r = f"{R.hourly_rec(kind, sli)}{{{m}}}", f"{R.rec(kind, sli, '1h')}{{{m}}}"
        covered = f"{R.hourly_rec(kind, 'availability')}{{{m}}}"  # hours recorded (latency skips hours without an answer)
        return [
            # the hourly ratios of the window's last 719 hours + the current hour's = 720 hours
            Tier(f"(sum_over_time({h}[{hours}]) + {r}) / (count_over_time({h}[{hours}]) + 1)",
                 f"count_over_time({covered}[{hours}]) + 1", need=window_days * 24 - 1),
            Tier(f"avg_over_time({r}[{w}])", f"count_over_time({r}[{w}])"),
        ]


RECORDED = SLIs()


def _by_label(rows: list[dict[str, Any]], label: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if label in r["metric"]:
            out.setdefault(r["metric"][label], []).append(r)
    return out


_FIRING_PAGE = 'alertstate="firing",severity="page"'
DEFAULT_MIN_COVERAGE = 90.0  # the province file's default (province.targets.sla_min_coverage_pct)
COVERAGE_STEP = "1m"
"""A minute counts as monitored when Prometheus holds a probe result of the target in it (probes
run every minute or more often; a slower probe would read as partly unmonitored)."""
# the page-severity burn-rate alerts the renderer writes per kind of target (infra/render/prometheus.py)
PAGE_RULES = {"platform": ("DcopsPlatformAvailabilityBurn", "DcopsPlatformLatencyBurn"), "site": ("DcopsSiteLinkBurn",)}


def expected_page_rules(kind: str) -> int:
    pages = sum(1 for b in R.BURN_RATES if b.severity == "page")
    return pages * len(PAGE_RULES[kind])


class Queries:
    """The queries of one SLA run, each asked once for every target of a kind that the run wants
    (``scope``) and shared by the results; a target outside the scope is asked alone.  A failed
    query fails every result that needs it, with the same reason.  :meth:`prefetch` asks a list
    of them in parallel."""

    def __init__(self, prom: Prom, at: float | None = None, slis: SLIs | None = None,
                 scope: dict[str, list[str] | None] | None = None) -> None:
        self.prom, self.at, self.slis = prom, at, slis or RECORDED
        self.scope = scope or {}
        self._cache: dict[str, Any] = {}
        self._grouped: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
        self._daily: dict[tuple, Any] = {}

    def _ids(self, kind: str, ident: str) -> list[str] | None:
        if kind in self.scope:
            ids = self.scope[kind]
            if ids is None or ident in ids:
                return ids
        return [ident]

    def _fetch(self, q: str) -> None:
        try:
            self._cache[q] = self.prom.vector(q, self.at)
        except PromUnavailable as e:
            self._cache[q] = e

    def _rows(self, q: str, label: str) -> dict[str, list[dict[str, Any]]]:
        if q not in self._cache:
            self._fetch(q)
        v = self._cache[q]
        if isinstance(v, PromUnavailable):
            raise v
        if (q, label) not in self._grouped:  # once per query, not once per target
            self._grouped[(q, label)] = _by_label(v, label)
        return self._grouped[(q, label)]

    def prefetch(self, queries: list[str], parallel: int = 8) -> None:
        """Ask ``queries`` now, ``parallel`` at a time (Prometheus evaluates each on one core)."""
        todo = [q for q in dict.fromkeys(queries) if q not in self._cache]
        if parallel <= 1 or len(todo) <= 1:
            for q in todo:
                self._fetch(q)
            return
        from concurrent.futures import ThreadPoolExecutor

        # threads started from this one share its network namespace (checks.netns.in_netns)
        with ThreadPoolExecutor(max_workers=min(parallel, len(todo)), thread_name_prefix="sla-query") as pool:
            list(pool.map(self._fetch, todo))

    # -- the queries a result needs (for prefetch), then the result's view of them

    def window_queries(self, kind: str, sli: str, ident: str, window_days: int) -> list[str]:
        t = self.slis.tiers(kind, sli, self._ids(kind, ident), window_days)[0]
        return [t.value, t.count]

    def window(self, kind: str, sli: str, ident: str, window_days: int) -> tuple[float, str, int]:
        """(value over the window, the query that gives this target's value, samples averaged)."""
        tiers = self.slis.tiers(kind, sli, self._ids(kind, ident), window_days)
        for i, t in enumerate(tiers):
            crows = self._rows(t.count, kind).get(ident, [])
            enough = len(crows) == 1 and float(crows[0]["value"][1]) >= t.need
            if (enough and self._rows(t.value, kind).get(ident)) or i == len(tiers) - 1:
                break
        one = self.slis.tiers(kind, sli, [ident], window_days)[i]
        rows = self._rows(t.value, kind).get(ident, [])
        if not rows:
            raise SeriesMissing(f"no data for {one.value}")
        if len(rows) > 1:
            raise SeriesMissing(f"{len(rows)} series for {one.value}, expected one: {[r['metric'] for r in rows]}")
        v = float(rows[0]["value"][1])
        if math.isnan(v) or math.isinf(v):
            raise SeriesMissing(f"{one.value} is {v} (no valid probes in the window)")
        if len(crows) != 1:
            raise SeriesMissing(f"no data for {one.count}")
        return v, one.value, int(float(crows[0]["value"][1]))

    def daily(self, kind: str, sli: str, ident: str, window_days: int) -> list[dict[str, Any]]:
        """The SLI per Vietnamese calendar day (UTC+7) over the window, for the report's charts: ``[{"date", "<sli>_pct"}]``
        (``availability_pct`` or ``latency_ok_pct``), the last day up to the query time.

        Each day is the average of the target's hourly 1h ratios recorded that day (24 samples),
        or of its 1h ratios (one per evaluation) where no hourly ratio exists yet (a young
        Prometheus). Asked once per kind and SLI for every target in scope: one range query with a
        point at each midnight, one instant query for today so far."""
        ids = self._ids(kind, ident)
        key = (kind, sli, window_days, tuple(ids) if ids is not None else None)
        if key not in self._daily:
            self._daily[key] = self._fetch_daily(kind, sli, ids, window_days)
        v = self._daily[key]
        if isinstance(v, PromUnavailable):
            raise v
        return v.get(ident, [])

    def _fetch_daily(self, kind: str, sli: str, ids: list[str] | None, window_days: int):
        end = self.at if self.at is not None else time.time()
        today = vn_midnight(end)
        first = today - (window_days - 2) * DAY  # the end of the first whole day: window_days - 1 whole days, then today
        name = "latency_ok_pct" if sli == "latency" else "availability_pct"
        out: dict[str, dict[str, float]] = {}

        def ask(series: str, sel: str) -> None:
            rows = []
            if window_days > 1:
                rows += [(r, lambda t: _date(t - DAY)) for r in self.prom.matrix(
                    f"avg_over_time({series}{{{sel}}}[1d])", first, today, DAY)]
            if end - today >= 60:  # today so far
                rows += [(r, lambda t: _date(end)) for r in self.prom.vector(
                    f"avg_over_time({series}{{{sel}}}[{int(end - today)}s])", end)]
            for r, label_of in rows:
                who = r["metric"].get(kind)
                for t, v in r.get("values") or [r["value"]]:
                    x = float(v)
                    if who is not None and not (math.isnan(x) or math.isinf(x)):
                        out.setdefault(who, {}).setdefault(label_of(float(t)), _pct(x))

        try:
            ask(R.hourly_rec(kind, sli), id_matcher(kind, ids))
            # targets without any hourly ratio yet (a young Prometheus): from the 1h ratios
            if ids is None:
                sel = f'{kind}!~"{"|".join(sorted(out))}"' if out else id_matcher(kind, None)
            else:
                missing = [x for x in ids if x not in out]
                sel = id_matcher(kind, missing) if missing else None
            if sel is not None:
                ask(R.rec(kind, sli, "1h"), sel)
        except PromUnavailable as e:
            return e
        return {who: [{"date": d, name: v} for d, v in sorted(days.items())] for who, days in out.items()}

    def coverage(self, kind: str, ident: str, window_days: int) -> dict[str, Any]:
        """How much of the window was monitored for the target: the minutes in which Prometheus
        recorded at least one probe result of it (Prometheus down, the probe or its exporter down,
        the series absent: unmonitored, never up), in total and per Vietnamese calendar day.
        Asked once per kind for every target in scope: one range query (a point at each Vietnamese
        midnight, the minutes of the day before), one instant query for the first part-day of the
        window, one for today so far."""
        ids = self._ids(kind, ident)
        key = ("coverage", kind, window_days, tuple(ids) if ids is not None else None)
        if key not in self._daily:
            self._daily[key] = self._fetch_coverage(kind, ids, window_days)
        v = self._daily[key]
        if isinstance(v, PromUnavailable):
            raise v
        window_s = window_days * DAY
        days = v.get(ident, {})
        minutes = sum(days.values())
        monitored_s = min(window_s, minutes * 60)
        return {
            "monitored_s": monitored_s,
            "window_s": window_s,
            "coverage_pct": round(100.0 * monitored_s / window_s, 4),
            "coverage_daily": [{"date": d, "monitored_min": m} for d, m in sorted(days.items())],
            "coverage_query": self.coverage_query(kind, [ident], COVERAGE_STEP),
        }

    def coverage_query(self, kind: str, ids: Sequence[str] | None, rng: str) -> str:
        job = f'job="{JOBS[kind]}"'
        inner = f"count by ({kind}) (count_over_time(probe_success{{{_matchers(job, id_matcher(kind, ids))}}}[{COVERAGE_STEP}]))"
        return f"count_over_time(({inner})[{rng}:{COVERAGE_STEP}])"

    def _fetch_coverage(self, kind: str, ids: list[str] | None, window_days: int):
        end = self.at if self.at is not None else time.time()
        start = end - window_days * DAY
        m0 = vn_midnight(start) + DAY  # the first Vietnamese midnight inside the window
        ml = vn_midnight(end)          # the last one
        out: dict[str, dict[str, int]] = {}

        def add(rows, label_of) -> None:
            for r in rows:
                who = r["metric"].get(kind)
                for t, v in r.get("values") or [r["value"]]:
                    x = float(v)
                    if who is not None and not (math.isnan(x) or math.isinf(x)):
                        d = out.setdefault(who, {})
                        d[label_of(float(t))] = d.get(label_of(float(t)), 0) + int(round(x))

        try:
            # A subquery [Xs:1m] at t evaluates at the minutes of [t - X, t]: both ends in Prometheus 2,
            # so X - 1 s keeps a minute from counting in two days.
            if m0 - start >= 60:  # the window's first part-day
                add(self.prom.vector(self.coverage_query(kind, ids, f"{int(m0 - start) - 1}s"), m0), lambda t: _date(t - 1))
            if ml > m0:  # whole days: the point at each midnight counts the day before
                add(self.prom.matrix(self.coverage_query(kind, ids, f"{DAY - 1}s"), m0 + DAY, ml, DAY), lambda t: _date(t - DAY))
            if end - ml >= 60:  # today so far
                add(self.prom.vector(self.coverage_query(kind, ids, f"{int(end - ml) - 1}s"), end), lambda t: _date(t))
        except PromUnavailable as e:
            return e
        return out

    def probes_query(self, kind: str, ident: str) -> str:
        job = f'job="{JOBS[kind]}"'
        return f"probe_success{{{_matchers(job, id_matcher(kind, self._ids(kind, ident)))}}}"

    def probes(self, kind: str, ident: str) -> bool:
        """Whether the target's probe series exists now."""
        return bool(self._rows(self.probes_query(kind, ident), kind).get(ident))

    def alerts_query(self, kind: str, ident: str, one: bool = False) -> str:
        ids = [ident] if one else self._ids(kind, ident)
        return f"ALERTS{{{_matchers(_FIRING_PAGE, id_matcher(kind, ids))}}}"

    def page_rules(self, kind: str, ident: str) -> list[dict[str, Any]]:
        """The loaded page-severity burn-rate alert rules that watch the target (from the rules API,
        asked once per run): name, windows, health, last error."""
        if "__rules" not in self._cache:
            try:
                self._cache["__rules"] = self.prom.rules("alert")
            except PromUnavailable as e:
                self._cache["__rules"] = e
        groups = self._cache["__rules"]
        if isinstance(groups, PromUnavailable):
            raise groups
        names = PAGE_RULES[kind]
        out = []
        for g in groups:
            for r in g.get("rules") or []:
                lab = r.get("labels") or {}
                if r.get("name") not in names or lab.get("severity") != "page":
                    continue
                if kind == "platform" and lab.get("platform") != ident:
                    continue
                out.append({"name": r["name"], "sli": lab.get("sli"), "long_window": lab.get("long_window"),
                            "health": r.get("health"), "last_error": r.get("lastError") or "", "group": g.get("name")})
        return out

    def page_alerts(self, kind: str, ident: str) -> tuple[list[dict[str, Any]], str]:
        """Firing page alerts of the target, and the query that lists them."""
        return self._rows(self.alerts_query(kind, ident), kind).get(ident, []), self.alerts_query(kind, ident, one=True)


def _daily(qs: Queries, kind: str, sli: str, ident: str, window_days: int) -> dict[str, Any]:
    """Evidence for the report's charts; a failed daily query never changes the verdict."""
    try:
        return {"daily": qs.daily(kind, sli, ident, window_days)}
    except PromUnavailable as e:
        return {"daily_error": str(e)}


def _hours(s: float) -> str:
    return f"{s / 3600:.1f} h" if s < 2 * DAY else f"{s / DAY:.1f} days"


def _coverage_gate(cid: str, target: str, cov: dict[str, Any], ev: dict[str, Any], good: bool, sli: float,
                   target_pct: float, min_cov: float, what: str) -> Result | None:
    """Below the province's coverage threshold a verdict is "insufficient data", unless the bad
    time already seen overspends the whole window's budget (then the fail is certain)."""
    if cov["coverage_pct"] >= min_cov:
        return None
    seen = f"observed {_hours(cov['monitored_s'])} of the {_hours(cov['window_s'])} window ({cov['coverage_pct']:.1f}% < {min_cov:g}%)"
    if not good and ev["error_budget_remaining_min"] < 0:
        return Result.fail(cid, target, ev, f"{what} {_pct(sli):.4f}% over the monitored time, {seen}: the bad time seen "
                           f"already overspends the whole window's error budget by {-ev['error_budget_remaining_min']:.1f} min")
    return Result.insufficient(cid, target, f"insufficient data: {seen}; {what} {_pct(sli):.4f}% over the monitored time "
                               f"(target {target_pct}%), not a verdict over the window", ev)


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


def platform_availability(prom: Prom, p: Platform, at: float | None = None, window_days: int | None = None,
                          queries: Queries | None = None, min_coverage_pct: float = DEFAULT_MIN_COVERAGE) -> Result:
    cid = "DCOPS-SLA-001"
    w = window_days or p.slo.window_days
    qs = queries or Queries(prom, at)

    def run() -> Result:
        avail, q, n = qs.window("platform", "availability", p.id, w)
        cov = qs.coverage("platform", p.id, w)
        ev = {
            "availability_pct": _pct(avail),
            "target_pct": p.slo.availability,
            "window_days": w,
            **_budget(avail, p.slo.availability, w, cov["monitored_s"] / 60),
            qs.slis.samples_key: n,
            "query": q,
            "probe": R.probe_url(p),
            **cov,
            "min_coverage_pct": min_coverage_pct,
            **_daily(qs, "platform", "availability", p.id, w),
        }
        good = avail * 100 >= p.slo.availability
        gate = _coverage_gate(cid, p.id, cov, ev, good, avail, p.slo.availability, min_coverage_pct, "availability")
        if gate is not None:
            return gate
        return Result.verdict(
            cid, p.id, good, ev,
            reason_fail=f"availability {_pct(avail):.4f}% is below the target {p.slo.availability}% over {w} days (budget overspent by {-ev['error_budget_remaining_min']:.1f} min)",
            reason_pass=f"availability {_pct(avail):.4f}% >= {p.slo.availability}% over {w} days (monitored {cov['coverage_pct']:.1f}% of it); {ev['error_budget_remaining_pct']:.1f}% of the error budget left",
        )

    return _guard(cid, p.id, run)


def platform_latency(prom: Prom, p: Platform, at: float | None = None, window_days: int | None = None,
                     queries: Queries | None = None, min_coverage_pct: float = DEFAULT_MIN_COVERAGE) -> Result:
    cid = "DCOPS-SLA-002"
    w = window_days or p.slo.window_days
    qs = queries or Queries(prom, at)

    def run() -> Result:
        ratio, q, n = qs.window("platform", "latency", p.id, w)
        cov = qs.coverage("platform", p.id, w)
        ev = {
            "fast_pct": _pct(ratio),
            "threshold_ms": p.slo.latency_ms,
            "target_pct": p.slo.latency_target,
            "window_days": w,
            **_budget(ratio, p.slo.latency_target, w, cov["monitored_s"] / 60),
            qs.slis.samples_key: n,
            "query": q,
            **cov,
            "min_coverage_pct": min_coverage_pct,
            **_daily(qs, "platform", "latency", p.id, w),
        }
        good = ratio * 100 >= p.slo.latency_target
        gate = _coverage_gate(cid, p.id, cov, ev, good, ratio, p.slo.latency_target, min_coverage_pct,
                              f"answers within {p.slo.latency_ms} ms")
        if gate is not None:
            return gate
        return Result.verdict(
            cid, p.id, good, ev,
            reason_fail=f"{_pct(ratio):.3f}% of successful probes answered within {p.slo.latency_ms} ms; target {p.slo.latency_target}%",
            reason_pass=f"{_pct(ratio):.3f}% within {p.slo.latency_ms} ms >= {p.slo.latency_target}% over {w} days (monitored {cov['coverage_pct']:.1f}% of it)",
        )

    return _guard(cid, p.id, run)


def _site_window() -> int:
    return int(catalog().get("DCOPS-SLA-003").params.get("window_days", R.SITE_SLO.window_days))


def site_availability(prom: Prom, s: Site, at: float | None = None, window_days: int | None = None,
                      queries: Queries | None = None, min_coverage_pct: float = DEFAULT_MIN_COVERAGE) -> Result:
    cid = "DCOPS-SLA-003"
    params = catalog().get(cid).params
    target = float(params.get("target", R.SITE_SLO.availability))
    w = window_days or int(params.get("window_days", R.SITE_SLO.window_days))
    qs = queries or Queries(prom, at)

    def run() -> Result:
        avail, q, n = qs.window("site", "availability", s.id, w)
        cov = qs.coverage("site", s.id, w)
        ev = {
            "availability_pct": _pct(avail),
            "target_pct": target,
            "window_days": w,
            **_budget(avail, target, w, cov["monitored_s"] / 60),
            qs.slis.samples_key: n,
            "query": q,
            "probe": f"icmp {s.tunnel_address}",
            **cov,
            "min_coverage_pct": min_coverage_pct,
            **_daily(qs, "site", "availability", s.id, w),
        }
        gate = _coverage_gate(cid, s.id, cov, ev, avail * 100 >= target, avail, target, min_coverage_pct, "link availability")
        if gate is not None:
            return gate
        return Result.verdict(
            cid, s.id, avail * 100 >= target, ev,
            reason_fail=f"link availability {_pct(avail):.4f}% is below {target}% over {w} days",
            reason_pass=f"link availability {_pct(avail):.4f}% >= {target}% over {w} days (monitored {cov['coverage_pct']:.1f}% of it)",
        )

    return _guard(cid, s.id, run)


def no_page_alerts(prom: Prom, kind: str, ident: str, at: float | None = None, queries: Queries | None = None) -> Result:
    """DCOPS-SLA-004: no page-severity burn-rate alert firing for the platform or site."""
    cid = "DCOPS-SLA-004"
    kind = "platform" if kind == "platform" else "site"
    qs = queries or Queries(prom, at)

    def run() -> Result:
        # the probe series must exist, or "no alert" would mean nothing
        if not qs.probes(kind, ident):
            raise SeriesMissing(f'probe_success{{job="{JOBS[kind]}",{kind}="{ident}"}}')
        # ... and the page rules must be loaded and evaluating, or "none firing" would mean nothing too
        rules = qs.page_rules(kind, ident)
        want = expected_page_rules(kind)
        bad = [f"{r['name']}[{r['sli']},{r['long_window']}]: {r['health']} {r['last_error']}".strip()
               for r in rules if r["health"] != "ok"]
        ev = {"page_rules_loaded": len(rules), "page_rules_expected": want}
        if len(rules) < want or bad:
            why = (f"{len(rules)} of the {want} page alert rules for {kind} {ident} are loaded in Prometheus"
                   if len(rules) < want else f"page alert rules not evaluating: {'; '.join(bad)}")
            return Result.err(cid, ident, f"{why}: no alert firing would prove nothing (are the rules of "
                              "infra/render/prometheus.py loaded?)", ev)
        rows, q = qs.page_alerts(kind, ident)
        firing = sorted({f"{r['metric'].get('alertname')}[{r['metric'].get('sli')},{r['metric'].get('long_window')}]" for r in rows})
        return Result.verdict(cid, ident, not firing, {"firing": firing, "query": q, **ev}, reason_fail=f"page alerts firing: {', '.join(firing)}")

    return _guard(cid, ident, run)


def run_all(pf: ProvinceFile, prom: Prom, at: float | None = None, window_days: int | None = None,
            only: set[str] | None = None, targets: set[str] | None = None, slis: SLIs | None = None,
            batch: bool = True, parallel: int = 8, min_coverage_pct: float | None = None) -> list[Result]:
    """Every SLA control on every platform and site (filtered by ``only`` control ids and ``targets``).

    ``batch`` (default): each query asked once for all the targets of a kind, ``parallel`` queries
    at a time (``batch=False``: once per target, one after the other, as before, for comparison).
    ``slis``: where the long-window SLIs come from (default: the recording rules).
    ``min_coverage_pct``: the share of the window that must have been monitored for a verdict
    (default: the province's ``province.targets.sla_min_coverage_pct``); below it the result is
    ``insufficient_data`` with the time observed."""
    out: list[Result] = []
    min_cov = pf.province.targets.sla_min_coverage_pct if min_coverage_pct is None else min_coverage_pct

    def want(cid: str, target: str) -> bool:
        return (not only or cid in only) and (not targets or target in targets)

    plats = [p.id for p in pf.platforms if any(want(c, p.id) for c in ("DCOPS-SLA-001", "DCOPS-SLA-002", "DCOPS-SLA-004"))]
    sites = [s.id for s in pf.wan.sites if any(want(c, s.id) for c in ("DCOPS-SLA-003", "DCOPS-SLA-004"))]
    scope: dict[str, list[str] | None] = {}
    if batch:  # the whole province: every series (no id matcher); a selection: its ids
        scope = {"platform": None if len(plats) == len(pf.platforms) else plats,
                 "site": None if len(sites) == len(pf.wan.sites) else sites}
    qs = Queries(prom, at, slis, scope)
    if batch:  # every query the results below read, in parallel
        need: list[str] = []
        for cid, sli in (("DCOPS-SLA-001", "availability"), ("DCOPS-SLA-002", "latency")):
            by_window = {window_days or pf.platform_by_id[x].slo.window_days: x for x in plats if want(cid, x)}
            for w, x in by_window.items():
                need += qs.window_queries("platform", sli, x, w)
        wanted = [x for x in sites if want("DCOPS-SLA-003", x)]
        if wanted:
            need += qs.window_queries("site", "availability", wanted[0], window_days or _site_window())
        for kind, ids in (("platform", plats), ("site", sites)):
            wanted = [x for x in ids if want("DCOPS-SLA-004", x)]
            if wanted:
                need += [qs.probes_query(kind, wanted[0]), qs.alerts_query(kind, wanted[0])]
        t0 = time.monotonic()
        qs.prefetch(need, parallel)
        shared = time.monotonic() - t0

    for p in pf.platforms:
        if want("DCOPS-SLA-001", p.id):
            out.append(platform_availability(prom, p, at, window_days, qs, min_cov))
        if want("DCOPS-SLA-002", p.id):
            out.append(platform_latency(prom, p, at, window_days, qs, min_cov))
        if want("DCOPS-SLA-004", p.id):
            out.append(no_page_alerts(prom, "platform", p.id, at, qs))
    for s in pf.wan.sites:
        if want("DCOPS-SLA-003", s.id):
            out.append(site_availability(prom, s, at, window_days, qs, min_cov))
        if want("DCOPS-SLA-004", s.id):
            out.append(no_page_alerts(prom, "site", s.id, at, qs))
    if batch and out:  # the shared queries' time, spread over the results that read them
        for r in out:
            r.duration_s = round(r.duration_s + shared / len(out), 4)
    return out
