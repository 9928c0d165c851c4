"""SLA figures for the report, from whatever the checks wrote.

Two sources are accepted and merged (the first wins where both say something):

1. an ``sla`` section in the results document::

       "sla": {
         "window_days": 30, "window_start": "...", "window_end": "...",
         "platforms": {"dvc": {"availability_pct": 99.93, "target_pct": 99.9,
                               "budget_left_pct": 30.0, "latency_ok_pct": 99.4,
                               "latency_target_pct": 99.0, "latency_threshold_ms": 1000,
                               "daily": [{"date": "2026-03-01", "availability_pct": 99.99,
                                          "latency_ms": 180}, ...]}},
         "sites": {"x-hoa-binh": {...same keys...}}
       }

   (``platforms``/``sites`` may also be lists of objects with an ``id``);

2. the evidence of the SLA controls' results (any result whose evidence
   carries an availability or latency figure), with the target naming a
   platform or a site (``dvc``, ``platform:dvc``, ``site/x-hoa-binh``...).

Key names are read leniently (``availability_pct`` or ``availability``,
``budget_left_pct`` or ``error_budget_remaining_pct`` or minutes remaining and
total...), so small differences between writers do not lose figures.  When the
budget is not given it is computed: ``1 - (100 - availability) / (100 - target)``.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

AVAIL_KEYS = ("availability_pct", "availability_percent", "availability", "sli_pct", "avail_pct")
TARGET_KEYS = ("target_pct", "availability_target_pct", "target", "objective_pct", "slo_pct", "availability_target")
BUDGET_KEYS = ("budget_left_pct", "error_budget_left_pct", "budget_remaining_pct", "error_budget_remaining_pct",
               "budget_left", "error_budget_left")
LAT_OK_KEYS = ("latency_ok_pct", "under_threshold_pct", "latency_sli_pct", "latency_pct", "fast_pct")
LAT_TARGET_KEYS = ("latency_target_pct", "latency_target")
LAT_THRESHOLD_KEYS = ("latency_threshold_ms", "threshold_ms", "latency_ms_threshold")
LAT_MS_KEYS = ("latency_ms", "latency_p95_ms", "latency_p99_ms", "p95_ms", "p99_ms", "latency_avg_ms", "mean_latency_ms")
DAILY_KEYS = ("daily", "daily_availability", "series", "availability_daily")
LAT_DAILY_KEYS = ("daily_latency", "latency_daily", "latency_series")
WINDOW_KEYS = ("window_days", "window")

_PREFIX = re.compile(r"^(platform|site|wan|wan_link|link|unit|endpoint)[:/]", re.I)


def target_id(target: str) -> str:
    return _PREFIX.sub("", str(target)).strip()


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip().rstrip("%").replace(",", "."))
        except ValueError:
            return None
    return None


def _pick(d: dict, keys: Iterable[str]) -> float | None:
    for k in keys:
        if k in d:
            v = _num(d[k])
            if v is not None:
                return v
    return None


def _pick_pct(d: dict, keys: Iterable[str]) -> float | None:
    """A percentage: keys ending in ``_pct``/``_percent`` are percentages; a value
    under any other key (``availability``, ``value``...) between 0 and 1 is a ratio."""
    for k in keys:
        if k in d:
            v = _num(d[k])
            if v is None:
                continue
            if not (k.endswith("_pct") or k.endswith("_percent")) and 0 <= v <= 1.0:
                return v * 100
            return v
    return None


def _budget(d: dict) -> float | None:
    v = _pick_pct(d, BUDGET_KEYS)
    if v is not None:
        return v
    eb = d.get("error_budget") or d.get("budget")
    src = eb if isinstance(eb, dict) else d
    total = _pick(src, ("total_min", "total_minutes", "budget_total_min", "total"))
    rem = _pick(src, ("remaining_min", "remaining_minutes", "budget_remaining_min", "remaining", "left_min"))
    if total and rem is not None:
        return rem / total * 100
    if isinstance(eb, dict):
        return _pick_pct(eb, ("remaining_pct", "left_pct", "remaining_ratio"))
    return None


def _series(raw: Any, default_key: str) -> list[dict]:
    """A daily series as ``[{"date", "availability_pct"?, "latency_ms"?, "latency_ok_pct"?}]``.

    Accepts a list of objects, of ``[date, value]`` pairs or of plain numbers, or
    a ``{date: value}`` mapping; a bare value is read as ``default_key``.
    """
    if isinstance(raw, dict):
        raw = sorted(raw.items())
    if not isinstance(raw, list):
        return []
    aliases = {"availability_pct": AVAIL_KEYS, "latency_ms": LAT_MS_KEYS, "latency_ok_pct": LAT_OK_KEYS}
    out: list[dict] = []
    for i, p in enumerate(raw):
        if isinstance(p, dict):
            day = p.get("date") or p.get("day") or p.get("t") or p.get("time") or str(i + 1)
            entry: dict[str, Any] = {"date": str(day)[:10]}
            for k, keys in aliases.items():
                keys = keys + (("value", "v") if k == default_key else ())
                v = _pick(p, keys) if k == "latency_ms" else _pick_pct(p, keys)
                if v is not None:
                    entry[k] = v
            out.append(entry)
            continue
        if isinstance(p, (list, tuple)) and len(p) == 2:
            day, v = str(p[0])[:10], _num(p[1])
        else:
            day, v = str(i + 1), _num(p)
        if v is not None:
            out.append({"date": day, default_key: v})
    return out


def _entry_from(d: dict, latency_result: bool = False) -> dict:
    """Normalise one platform's or site's figures."""
    e: dict[str, Any] = {}
    if latency_result:
        e["latency_ok_pct"] = _pick_pct(d, LAT_OK_KEYS + AVAIL_KEYS + ("sli", "value"))
        e["latency_target_pct"] = _pick_pct(d, LAT_TARGET_KEYS + TARGET_KEYS)
    else:
        e["availability_pct"] = _pick_pct(d, AVAIL_KEYS)
        e["target_pct"] = _pick_pct(d, TARGET_KEYS)
        e["budget_left_pct"] = _budget(d)
        e["latency_ok_pct"] = _pick_pct(d, LAT_OK_KEYS)
        e["latency_target_pct"] = _pick_pct(d, LAT_TARGET_KEYS)
    e["latency_threshold_ms"] = _pick(d, LAT_THRESHOLD_KEYS)
    e["latency_ms"] = _pick(d, LAT_MS_KEYS)
    e["window_days"] = _pick(d, WINDOW_KEYS)
    e["coverage_pct"] = _pick(d, ("coverage_pct",))
    e["monitored_s"] = _pick(d, ("monitored_s",))
    e["window_s"] = _pick(d, ("window_s",))
    daily: list[dict] = []
    for k in DAILY_KEYS:
        if k in d:
            daily = _series(d[k], "latency_ok_pct" if latency_result else "availability_pct")
            break
    for k in LAT_DAILY_KEYS:
        if k in d:
            lat = {p["date"]: p for p in _series(d[k], "latency_ms")}
            by_date = {p["date"]: p for p in daily}
            for day, p in lat.items():
                by_date.setdefault(day, {"date": day}).update({k2: v for k2, v in p.items() if k2 != "date"})
            daily = sorted(by_date.values(), key=lambda p: p["date"])
            break
    if daily:
        e["daily"] = daily
    return {k: v for k, v in e.items() if v is not None}


def _merge(into: dict, new: dict) -> None:
    for k, v in new.items():
        if k == "daily" and "daily" in into:
            by_date = {p["date"]: dict(p) for p in into["daily"]}
            for p in v:
                for k2, v2 in p.items():
                    by_date.setdefault(p["date"], {"date": p["date"]}).setdefault(k2, v2)
            into["daily"] = sorted(by_date.values(), key=lambda p: p["date"])
        else:
            into.setdefault(k, v)


def _is_latency_only(ev: dict) -> bool:
    keys = " ".join(ev.keys()).lower()
    return ("latency" in keys or "threshold" in keys) and not any(k in ev for k in AVAIL_KEYS)


def extract(doc: dict, platform_ids: set[str], site_ids: set[str]) -> dict:
    """SLA figures per platform and per site: ``{"window_days", "platforms": {id: entry}, "sites": {...}}``."""
    out: dict[str, Any] = {"platforms": {}, "sites": {}, "statuses": {"platforms": {}, "sites": {}}}
    section = doc.get("sla") if isinstance(doc.get("sla"), dict) else {}
    for k in ("window_days", "window_start", "window_end"):
        if k in section:
            out[k] = section[k]
    for kind in ("platforms", "sites"):
        raw = section.get(kind) or {}
        items = raw.items() if isinstance(raw, dict) else ((x.get("id") or x.get("target"), x) for x in raw if isinstance(x, dict))
        for tid, d in items:
            if tid is None or not isinstance(d, dict):
                continue
            _merge(out[kind].setdefault(target_id(tid), {}), _entry_from(d))
    for r in doc.get("results") or []:
        ev = r.get("evidence") or {}
        if not isinstance(ev, dict):
            continue
        tid = target_id(r.get("target", ""))
        kind = "platforms" if tid in platform_ids else "sites" if tid in site_ids else None
        if kind is None:
            continue
        has_figures = any(k in ev for k in AVAIL_KEYS + LAT_OK_KEYS + LAT_MS_KEYS + LAT_THRESHOLD_KEYS)
        if has_figures:
            _merge(out[kind].setdefault(tid, {}), _entry_from(ev, latency_result=_is_latency_only(ev)))
        if str(r.get("control", "")).upper().startswith("DCOPS-SLA-") or has_figures:
            out["statuses"][kind].setdefault(tid, []).append(r.get("status"))
    if "window_days" not in out:
        wins = [e.get("window_days") for k in ("platforms", "sites") for e in out[k].values() if e.get("window_days")]
        if wins:
            out["window_days"] = int(max(wins))
    for kind in ("platforms", "sites"):
        for e in out[kind].values():
            if e.get("budget_left_pct") is None and e.get("availability_pct") is not None and e.get("target_pct") not in (None, 100.0):
                e["budget_left_pct"] = (1 - (100 - e["availability_pct"]) / (100 - e["target_pct"])) * 100
    return out


def meets(entry: dict, statuses: list[str] | None = None) -> bool | None:
    """True/False when the figures (or the SLA results) decide; None without data.

    Callers first set aside targets whose SLA results say "insufficient data": their figures
    cover too little of the window to decide."""
    decided = False
    ok = True
    statuses = [x for x in statuses or [] if x not in ("insufficient_data", "not_assessed")]
    if statuses:
        decided = True
        ok = all(s in ("pass", "skipped") for s in statuses) and any(s == "pass" for s in statuses)
    a, t = entry.get("availability_pct"), entry.get("target_pct")
    if a is not None and t is not None:
        decided = True
        ok = ok and a >= t - 1e-9
    lo, lt = entry.get("latency_ok_pct"), entry.get("latency_target_pct")
    if lo is not None and lt is not None:
        decided = True
        ok = ok and lo >= lt - 1e-9
    return ok if decided else None
