"""Case ``checks``: every host control on every WAN host of the largest site count.

Fresh WAN hosts for the lab province scaled to N sites (the largest ``--sites``), configured
once with ``dcops wan apply`` (pyinfra), then ``dcops check`` restricted to the host controls
(what an operator's daily run spends its time on), ``repeat`` times. Baseline: the floor
measured on the same hosts (``ssh host true`` plus one file copy per host, 50 at a time).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..validate import load_province
from . import BenchOptions, labhosts
from .core import CaseResult, Measure, Target, dcops_argv
from .wan import BASE_PROVINCE, PARALLEL, apply, run_group

CHECK_PARALLEL = 50


def host_control_ids() -> list[str]:
    from checks.controls import host as H

    return sorted(H.CONTROLS)


def check(name: str, province: Path, out: Path, parallel: int = CHECK_PARALLEL) -> dict:
    ids = ",".join(host_control_ids())
    from ..lab import environment as labenv
    from ..validate import load_province

    labenv.write(name, load_province(province), province)  # the lab's environment, for this province
    argv = dcops_argv("check", "-s", "lab", "--config-file", str(labenv.config_path(name)),
                      "--only", ids, "--parallel", str(parallel), "--quiet", "--output", str(out))
    t0 = time.monotonic()
    p = run_group(argv)
    dt = time.monotonic() - t0
    out.with_suffix(".log").write_text(p.stdout + p.stderr)
    data = json.loads(out.read_text()) if out.exists() else {}
    res = data.get("results", [])
    counts: dict[str, int] = {}
    for x in res:
        counts[x.get("status", "?")] = counts.get(x.get("status", "?"), 0) + 1
    return {"seconds": dt, "exit": p.returncode, "counts": counts, "log": str(out.with_suffix(".log"))}


def timed_runs(r: CaseResult, name: str, pfile: Path, payload: bytes, n: int, opts: BenchOptions, wd: Path,
               what: str) -> tuple[list[float], list[float], str]:
    """``opts.repeat`` host checks of lab ``name``, each beside a floor measured on the same hosts
    just before: (floor seconds, check seconds, the last run's result counts). A run that did not
    do its job marks ``r`` failed, with a note."""
    floor: list[float] = []
    runs: list[float] = []
    detail = ""
    for i in range(opts.repeat):
        floor.append(labhosts.floor(name, PARALLEL, payload))
        c = check(name, pfile, wd / f"check-{n}-{i}.json")
        runs.append(c["seconds"])
        detail = ", ".join(f"{k} {v}" for k, v in sorted(c["counts"].items()))
        opts.progress(f"{what} {i + 1}/{opts.repeat}: floor {floor[-1]:.1f}s, check {c['seconds']:.1f}s "
                      f"exit {c['exit']} ({detail})")
        if c["exit"] not in (0, 1) or not c["counts"]:
            r.failed = True
            r.notes.append(f"check run {i + 1} exit {c['exit']}: see {c['log']}")
    return floor, runs, detail


def measure(r: CaseResult, name: str, pfile: Path, payload: bytes, n: int, opts: BenchOptions) -> None:
    """Time the host checks ``opts.repeat`` times on the running, configured hosts of lab ``name``,
    each beside a floor measured on the same hosts just before."""
    floor, runs, detail = timed_runs(r, name, pfile, payload, n, opts, pfile.parent, f"checks N={n} run")
    nctl = len(host_control_ids())
    r.add(Measure(f"check.{n}", f"{nctl} host controls on {n + 1} hosts", runs, n=n, baseline=f"floor.{n}",
                  detail=f"results: {detail}; {CHECK_PARALLEL} hosts at once"))
    r.add(Measure(f"floor.{n}", "floor: ssh true + one file copy per host", floor, n=n))
    targets(r)


def targets(r: CaseResult) -> None:
    """The issue's target over ``r``'s figures (also after a merge): the largest N checked."""
    ns = [m.n for m in r.measures if m.key.startswith("check.") and m.samples and m.n]
    r.targets = []
    if ns:
        n = max(ns)
        ratio = r.ratio(f"check.{n}")
        if ratio is not None:
            r.targets.append(Target(f"full check of {n} sites within 3x the floor", f"{ratio:.2f}x the floor", ratio <= 3))


def new_result() -> CaseResult:
    r = CaseResult("checks", "Host checks (`dcops check`, host controls)")
    return r


def run(opts: BenchOptions, base: Path = BASE_PROVINCE, workdir: Path | None = None) -> CaseResult:
    """Standalone: fresh hosts, configured with pyinfra, then :func:`measure`. (When the ``wan``
    case runs too, it measures the checks on its own pyinfra hosts instead: one boot fewer.)"""
    r = new_result()
    name = f"{opts.name}c"
    n = opts.max_sites
    wd = workdir or labhosts.workdir(name, opts.progress)
    model, pfile = labhosts.province_of(load_province(base), n, wd)
    payload = labhosts.floor_payload(model)
    try:
        opts.progress(f"checks N={n}: starting {n} sites + gateway")
        labhosts.start(model, name, opts.progress)
        a = apply(name, pfile, "pyinfra", "tuned", wd / "apply.json")
        opts.progress(f"checks N={n}: hosts configured in {a['seconds']:.0f}s (exit {a['exit']})")
        measure(r, name, pfile, payload, n, opts)
    finally:
        if not opts.keep:
            labhosts.stop(name)
    return r
