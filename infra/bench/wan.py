"""Case ``wan``: the WAN rollout at 10, 50, 100 and 200 sites.

For each site count N (the lab province scaled to N sites) and each way of rolling out:

- ``pyinfra`` (dcops' default engine),
- ``ansible tuned`` (``playbooks/ansible.cfg``: pipelining, 50 forks, ControlPersist 300 s,
  short poll interval, strategy free),
- ``ansible default`` (Ansible's own settings: 5 forks, no pipelining, ControlPersist 60 s),

the case starts fresh WAN hosts, times ``dcops wan apply`` (first apply: every host made from
scratch, keys included) once, then the no-change re-apply ``repeat`` times (each must report
zero changes), then removes the hosts. The baseline, measured on the same hosts after a full
apply, is the floor of :func:`.labhosts.floor`: ``ssh host true`` plus one file copy per host,
50 at a time.

Ansible is slow at scale: above 50 sites (``--ansible-first-max``) its first apply is not timed
(10-40 minutes on 2 cores) and its re-applies run on the hosts pyinfra configured; with its
default settings, from 50 sites up, its re-apply is timed once (the table's ``runs`` column
says so).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from ..paths import REPO
from ..validate import load_province
from . import BenchOptions
from . import labhosts
from .core import CaseResult, Measure, Target, dcops_argv

VARIANTS = [  # key, label, engine, ansible settings
    ("pyinfra", "pyinfra", "pyinfra", "tuned"),
    ("ansible-tuned", "Ansible tuned", "ansible", "tuned"),
    ("ansible-default", "Ansible default settings", "ansible", "default"),
]
PARALLEL = 50
BASE_PROVINCE = REPO / "stacks" / "province-lab.yaml"


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(d)] = (int(fields[1]), fields[19])  # ppid, starttime (clock ticks since boot)
    return table


def descendants(pid: int) -> list[tuple[int, str]]:
    """Every process below ``pid`` (pid and start time, so that a reused pid is never signalled),
    whatever its session or process group: pulumi's plugins, for one, are not in dcops' group."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for p, (pp, _) in table.items():
        children.setdefault(pp, []).append(p)
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append((p, table[p][1]))
        todo += children.get(p, [])
    return out


def _signal_all(tree: list[tuple[int, str]], sig: int) -> None:
    table = _proc_table()
    for p, start in tree:
        if table.get(p, (0, ""))[1] == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, sig)


def run_group(argv: list[str]) -> subprocess.CompletedProcess:
    """Run a dcops command in its own process group; when the bench is stopped (Ctrl-C, SIGTERM),
    the whole group ends with it (ansible-playbook and its workers too, not only dcops), and so
    does every process below it that left the group (pulumi's plugins), ended by PID."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            start_new_session=True)
    try:
        out, err = proc.communicate()
    except BaseException:
        tree = descendants(proc.pid)  # before anything ends: an orphan's parent becomes init
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        _signal_all(tree, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _signal_all(tree, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def apply(name: str, province: Path, engine: str, settings: str, out: Path) -> dict:
    """One ``dcops wan apply``; returns seconds, exit code and the results' counts."""
    from ..lab import environment as labenv

    labenv.write(name, load_province(province), province)  # the lab's environment, for this province
    argv = dcops_argv("wan", "apply", "-s", "lab", "--config-file", str(labenv.config_path(name)), "--engine", engine,
                      "--ansible-settings", settings, "--forks", str(PARALLEL), "--json", str(out))
    t0 = time.monotonic()
    p = run_group(argv)
    dt = time.monotonic() - t0
    out.with_suffix(".log").write_text(p.stdout + p.stderr)
    data = json.loads(out.read_text()) if out.exists() else {}
    return {"seconds": dt, "exit": p.returncode, "counts": data.get("counts") or {}, "timings": data.get("timings") or {},
            "log": str(out.with_suffix(".log"))}


def _counts(c: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.items() if v)


def run(opts: BenchOptions, base: Path = BASE_PROVINCE, workdir: Path | None = None,
        checks: CaseResult | None = None) -> CaseResult:
    """The case; with ``checks`` (a result of the ``checks`` case), the host checks are also
    measured on the pyinfra hosts of the largest N, after its re-applies (saves a boot).

    Above ``opts.ansible_first_max`` sites (``--ansible-first-max``, default 50) the Ansible
    variants' first apply is not timed (10-40 minutes on 2 cores): their no-change re-apply runs
    on the hosts that pyinfra's first apply just configured, which hold the same rendered state (both engines
    deploy what one renderer produced; a re-apply that changes anything is reported NOT CLEAN).
    """
    r = CaseResult("wan", "WAN rollout (`dcops wan apply`)")
    name = f"{opts.name}w"
    wd = workdir or labhosts.workdir(name, opts.progress)
    model0 = load_province(base)
    payload = None
    for n in opts.sites:
        model, pfile = labhosts.province_of(model0, n, wd)
        if payload is None:
            payload = labhosts.floor_payload(model)
        fkey = f"floor.{n}"
        floor_samples = r.add(Measure(fkey, "floor: ssh true + one file copy per host", [], n=n)).samples
        mem = r.add(Measure(f"memory.{n}", "machine memory per WAN host (used, before/after boot)", [], unit="MiB", n=n)).samples
        chosen = [v for v in VARIANTS if v[0] in opts.variants]
        later = [v for v in chosen if v[2] == "ansible" and n > opts.ansible_first_max]
        fresh = [v for v in chosen if v not in later]
        if later and not any(v[0] == "pyinfra" for v in fresh):
            fresh.insert(0, (None, "pyinfra (to prepare the hosts, not timed)", "pyinfra", "tuned"))
        if later:
            r.notes.append(f"N={n}: the Ansible variants' first apply is not timed above "
                           f"{opts.ansible_first_max} sites; their no-change re-apply ran on the hosts "
                           f"pyinfra's first apply configured (the same rendered state).")
        for key, label, engine, settings in fresh:
            opts.progress(f"wan N={n} {label}: starting {n} sites + gateway")
            try:
                up = labhosts.start(model, name, opts.progress)
                opts.progress(f"wan N={n} {label}: hosts up in {up['seconds']:.0f}s; first apply")
                full = apply(name, pfile, engine, settings, wd / f"{key or 'prepare'}-{n}-full.json")
                opts.progress(f"wan N={n} {label}: first apply {full['seconds']:.1f}s exit {full['exit']} ({_counts(full['counts'])})")
                if not floor_samples:
                    for i in range(opts.repeat):
                        floor_samples.append(labhosts.floor(name, PARALLEL, payload))
                        opts.progress(f"wan N={n} floor {i + 1}/{opts.repeat}: {floor_samples[-1]:.2f}s")
                mem.append(up["memory_per_host_mib"])
                if key is not None:
                    _again(r, opts, n, name, pfile, wd, (key, label, engine, settings), full)
                if checks is not None and engine == "pyinfra" and n == opts.max_sites:
                    from . import checks as checks_case

                    checks_case.measure(checks, name, pfile, payload, n, opts)
                if engine == "pyinfra":
                    for v in later:
                        _again(r, opts, n, name, pfile, wd, v, None)
            except Exception as e:  # noqa: BLE001 (one variant failing must not lose the others' figures)
                r.failed = True
                r.notes.append(f"N={n} {label}: failed: {e}")
                opts.progress(f"wan N={n} {label}: FAILED: {e}")
            finally:
                if not opts.keep:
                    labhosts.stop(name)
            if opts.checkpoint:
                targets(r)
                opts.checkpoint(r)
                if checks is not None and checks.measures:
                    opts.checkpoint(checks)
    targets(r)
    return r


def _again(r: CaseResult, opts: BenchOptions, n: int, name: str, pfile: Path, wd: Path,
           variant: tuple, full: dict | None) -> None:
    """The no-change re-applies of one variant (``repeat`` times; once for Ansible's default
    settings from 50 sites up), recorded with its first apply when ``full`` was timed."""
    key, label, engine, settings = variant
    fkey = f"floor.{n}"
    ok = full is None or full["exit"] == 0
    again: list[float] = []
    changed = 0
    times = 1 if (settings == "default" and n >= 50) else opts.repeat
    for i in range(times):
        a = apply(name, pfile, engine, settings, wd / f"{key}-{n}-again{i}.json")
        again.append(a["seconds"])
        changed += a["counts"].get("changed", 0)
        ok = ok and a["exit"] == 0
        opts.progress(f"wan N={n} {label}: no-change re-apply {i + 1}/{times}: {a['seconds']:.1f}s "
                      f"exit {a['exit']} ({_counts(a['counts'])})")
    if changed:
        ok = False
    log = full["log"] if full else str(wd / f"{key}-{n}-again0.log")
    detail = "" if ok else f"NOT CLEAN: first exit {full['exit'] if full else '-'}, re-apply changed {changed}; see {log}"
    if full is not None:
        r.add(Measure(f"{key}.full.{n}", f"{label}: first apply", [full["seconds"]], n=n, baseline=fkey,
                      detail=detail))
    r.add(Measure(f"{key}.again.{n}", f"{label}: no-change re-apply", again, n=n, baseline=fkey,
                  detail="" if full is not None else detail))
    if not ok:
        r.failed = True


def targets(r: CaseResult) -> None:
    """The issue's targets over ``r``'s figures (also after a merge with earlier runs): the
    re-apply target at the largest N pyinfra ran, the 5x target at every N both ran (its smallest
    margin decides)."""
    ns = [m.n for m in r.measures if m.key.startswith("pyinfra.again.") and m.samples and m.n]
    r.targets = []
    if not ns:
        return
    n = max(ns)
    ratio = r.ratio(f"pyinfra.again.{n}")
    if ratio is not None:
        r.targets.append(Target(f"no-change re-apply of {n} sites with the default engine (pyinfra) within 3x the floor",
                                f"{ratio:.2f}x the floor", ratio <= 3))
    def pyinfra_of_run(k: int) -> Measure | None:  # pyinfra's re-apply of Ansible default's own run, never of another
        ad, py = r.get(f"ansible-default.again.{k}"), r.get(f"pyinfra.again.{k}")
        return py if ad and ad.samples and py and py.samples and py.run == ad.run else None

    both = sorted({m.n for m in r.measures if m.key.startswith("ansible-default.again.") and pyinfra_of_run(m.n)})
    if both:  # judged at every site count both ran (issue 18), not only at the most favourable one
        margins = {k: r.get(f"ansible-default.again.{k}").median / pyinfra_of_run(k).median for k in both}
        k_min = min(margins, key=margins.get)
        x = margins[k_min]
        r.targets.append(Target(f"pyinfra at least 5x faster than Ansible with default settings on the no-change "
                                f"re-apply, at every site count both ran in one run ({', '.join(map(str, both))})",
                                f"smallest margin pyinfra: {x:.1f}x faster at {k_min} sites; "
                                + ", ".join(f"{k}: {margins[k]:.1f}x" for k in both), x >= 5))
