"""Synthetic probe history in a Prometheus of its own: the raw series backfilled
with promtool, the SLI recording rules backfilled over the same history, and
Prometheus serving both from a network namespace that has only loopback.

Shared by the SLA ground truth test (``tests/test_prometheus_sla.py``) and the
SLA benchmark (``infra/bench/sla.py``):

- :func:`loopback_netns`: make a namespace with only ``lo`` (up), remove it afterwards;
- :func:`write_openmetrics`: raw series (one value per step) as OpenMetrics files, one per day;
- :func:`sli_rule_phases`: the SLI recording rules as rule files, in the order promtool
  can backfill them (a rule reading another recorded series comes in a later phase);
- :class:`HistoryProm`: backfill the raw files, then each phase of rules, restarting
  Prometheus in between so the next phase reads what the previous one recorded.

Every process runs inside the namespace (``ip netns exec``) and is ended by PID.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import requests
import yaml

from infra.model import ProvinceFile
from infra.render import prometheus as R

from . import promrun
from .netns import in_netns

Progress = Callable[[str], None]


# ------------------------------------------------------------------ namespace


def add_loopback_netns(name: str) -> str:
    """Make network namespace ``name`` with only loopback (up).  An existing namespace of that
    name is an error (it may be someone's running lab)."""
    if (Path("/run/netns") / name).exists():
        raise RuntimeError(f"network namespace '{name}' already exists: remove it (`ip netns delete {name}`) "
                           f"after making sure nothing of yours runs in it (`ip netns pids {name}`)")
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, text=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        links = subprocess.run(["ip", "netns", "exec", name, "ip", "-o", "link"], check=True,
                               capture_output=True, text=True).stdout
        names = [ln.split(":")[1].strip() for ln in links.splitlines()]
        if names != ["lo"]:
            raise RuntimeError(f"namespace {name} has links other than lo: {names}")
    except BaseException:
        delete_netns(name)
        raise
    return name


def delete_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


@contextmanager
def loopback_netns(name: str) -> Iterator[str]:
    """:func:`add_loopback_netns` for a ``with`` block; deleted on exit, also on errors."""
    add_loopback_netns(name)
    try:
        yield name
    finally:
        delete_netns(name)


# ------------------------------------------------------------------ raw series


@dataclass
class Series:
    """One series: ``values[k]`` is the sample at ``start + (first + k * stride) * step`` (``first``:
    the index of its first sample on the history's time grid; ``stride``: grid steps between samples);
    a value None writes no sample (a gap: Prometheus or the probe down)."""

    metric: str
    labels: str                      # rendered label pairs, e.g. 'job="dcops-site",site="x"'
    values: Sequence[float | int | None]
    first: int = 0
    stride: int = 1

    def end(self) -> int:
        """One past the grid index of the last sample."""
        return self.first + (len(self.values) - 1) * self.stride + 1 if len(self.values) else self.first


def _fmt(v: float | int) -> str:
    if isinstance(v, int):
        return str(v)
    return f"{v:.12g}" if v == v else "NaN"


def write_openmetrics(d: Path, series: list[Series], start: int, step: int, per_file: int = 86400) -> list[Path]:
    """Write ``series`` as OpenMetrics files of ``per_file`` seconds each (the time grid: ``start``,
    every ``step`` seconds, up to the last sample of any series).

    promtool reads a whole file once per block it writes, so several day-sized files (backfilled
    in parallel) are much faster than one file for the whole history."""
    d.mkdir(parents=True, exist_ok=True)
    n = max(s.end() for s in series)
    by_metric: dict[str, list[Series]] = {}
    for s in series:
        by_metric.setdefault(s.metric, []).append(s)
    stamps = [str(start + step * i) for i in range(n)]
    chunk = max(1, per_file // step)
    files = []
    for k, lo in enumerate(range(0, n, chunk)):
        hi = min(lo + chunk, n)
        path = d / f"history-{k:03d}.om"
        with path.open("w") as f:
            for metric, ss in by_metric.items():
                f.write(f"# HELP {metric} {metric}\n# TYPE {metric} gauge\n")
                for s in ss:
                    head = f"{metric}{{{s.labels}}} "
                    vals, first, st = s.values, s.first, s.stride
                    a = max(lo, first)
                    a += (first - a) % st                      # the first index of this series at or after lo
                    f.write("".join(f"{head}{_fmt(vals[(i - first) // st])} {stamps[i]}\n"
                                    for i in range(a, min(hi, s.end()), st) if vals[(i - first) // st] is not None))
            f.write("# EOF\n")
        files.append(path)
    return files


def platform_labels(pf: ProvinceFile, platform_id: str) -> str:
    """The labels the rendered scrape configuration gives a platform's probe series."""
    p = pf.platform_by_id[platform_id]
    return f'job="{R.JOB_PLATFORM}",platform="{p.id}",instance="{R.probe_url(p)}"'


def site_labels(pf: ProvinceFile, site_id: str) -> str:
    s = pf.site_by_id[site_id]
    return f'job="{R.JOB_SITE}",site="{s.id}",tier="{s.tier}",instance="{s.tunnel_address}"'


# ------------------------------------------------------------------ recording rules


def sli_rule_phases(pf: ProvinceFile, d: Path, records: set[str]) -> list[list[Path]]:
    """The recording rules named in ``records`` (and those they read), one file per record name,
    grouped in phases: every rule of a phase reads only raw series and earlier phases' records."""
    groups = R.recording_rules(pf, windows=["1h"], long=False)["groups"]
    rules: dict[str, list[dict]] = {}
    group_of: dict[str, dict] = {}
    for g in groups:
        for r in g["rules"]:
            rules.setdefault(r["record"], []).append(r)
            group_of[r["record"]] = {k: v for k, v in g.items() if k != "rules"}  # name, interval
    reads = {rec: {o for o in rules if o != rec and any(re.search(rf"\b{re.escape(o)}\b", r["expr"]) for r in rs)}
             for rec, rs in rules.items()}
    want: set[str] = set()
    todo = list(records)
    while todo:
        rec = todo.pop()
        if rec not in rules:
            raise KeyError(f"no recording rule records {rec}")
        if rec not in want:
            want.add(rec)
            todo += reads[rec]
    phases: list[list[Path]] = []
    done: set[str] = set()
    while len(done) < len(want):
        ready = sorted(r for r in want - done if reads[r] <= done)
        if not ready:
            raise ValueError(f"recording rules read each other in a cycle: {sorted(want - done)}")
        files = []
        for rec in ready:
            f = d / f"rules-{len(done) + len(files):02d}.yml"
            f.write_text(yaml.safe_dump({"groups": [{**group_of[rec], "rules": rules[rec]}]}, sort_keys=False))
            files.append(f)
        phases.append(files)
        done |= set(ready)
    return phases


# ------------------------------------------------------------------ Prometheus on the history


class HistoryProm:
    """Prometheus in namespace ``ns`` on a data directory that the history is backfilled into.

    Call :meth:`stop` (by PID) when done, also on errors: ``with HistoryProm(...) as hp``."""

    def __init__(self, ns: str, work: Path, listen: str = "127.0.0.1:9090", retention: str = "400d") -> None:
        self.ns, self.work, self.listen, self.retention = ns, Path(work), listen, retention
        self.url = f"http://{listen}"
        self.data = self.work / "data"
        self.log = self.work / "prometheus.log"
        self.config = self.work / "prometheus.yml"
        self.proc: subprocess.Popen | None = None
        self.work.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump({"global": {"evaluation_interval": "1m"}, "scrape_configs": []}))

    def __enter__(self) -> "HistoryProm":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.proc = promrun.start_prometheus(self.ns, self.config, self.data, self.listen, self.log, retention=self.retention)
        promrun.wait_ready(self.ns, self.url, self.proc, timeout=300)

    def stop(self) -> None:
        if self.proc is not None:
            promrun.stop(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def load(self, om_files: list[Path], rule_phases: list[list[Path]], rules_start: int, end: int,
             eval_interval: str = "60s", progress: Progress = lambda _m: None) -> dict[str, float]:
        """Backfill the raw files, start Prometheus, backfill each phase of rules (restarting in
        between) and leave Prometheus running on all of it.  Returns seconds per step."""
        secs: dict[str, float] = {}
        t = time.monotonic()
        promrun.backfill_openmetrics(om_files, self.data, max_block_duration="54h")
        secs["backfill"] = time.monotonic() - t
        progress(f"series backfilled in {secs['backfill']:.0f} s ({len(om_files)} OpenMetrics files)")
        t = time.monotonic()
        self.start()
        secs["start"] = time.monotonic() - t
        for i, files in enumerate(rule_phases):
            t = time.monotonic()
            out = self.work / f"rules-blocks-{i}"
            promrun.backfill_rules(self.ns, self.url, files, rules_start, end, out, eval_interval=eval_interval)
            n = promrun.move_blocks(out, self.data)
            shutil.rmtree(out, ignore_errors=True)
            if n == 0:
                raise RuntimeError(f"promtool wrote no blocks for {[f.name for f in files]}")
            secs[f"rules backfill {i + 1}"] = time.monotonic() - t
            progress(f"recording rules phase {i + 1}/{len(rule_phases)} ({len(files)} rule file(s)) backfilled "
                     f"in {secs[f'rules backfill {i + 1}']:.0f} s; restarting Prometheus on {n} new block(s)")
            t = time.monotonic()
            self.restart()
            secs["start"] += time.monotonic() - t
        return secs

    def metric(self, name: str) -> float:
        """A Prometheus self-metric (summed over its series), read from inside the namespace."""
        def get() -> str:
            return requests.get(f"{self.url}/metrics", timeout=10).text
        total = 0.0
        for ln in in_netns(self.ns, get).splitlines():
            if ln.startswith(name) and (ln[len(name)] in " {"):
                total += float(ln.rsplit(" ", 1)[1])
        return total

    def wait_compacted(self, timeout: float = 1800, progress: Progress = lambda _m: None) -> float:
        """Wait until Prometheus has run one whole compaction pass over the backfilled blocks (as a
        server that has held the data for a while would have), so that queries do not compete with
        it.  Prometheus compacts once a minute; the pass is over when the next one is triggered."""
        t = time.monotonic()
        base = self.metric("prometheus_tsdb_compactions_triggered_total")
        while self.metric("prometheus_tsdb_compactions_triggered_total") < base + 2:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"Prometheus exited while compacting; see {self.log}")
            if time.monotonic() - t > timeout:
                raise TimeoutError(f"Prometheus compaction not done after {timeout:.0f} s")
            time.sleep(2)
        blocks = self.metric("prometheus_tsdb_blocks_loaded")
        progress(f"Prometheus compacted the history into {blocks:.0f} block(s) in {time.monotonic() - t:.0f} s")
        return time.monotonic() - t
