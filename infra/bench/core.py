"""The benchmark harness's data: measurements, baselines, targets, and the markdown they become.

A case (one module per case in this package: ``wan``, ``checks``, ``provision``, ``sla``,
``memory``) runs its work several times on the lab and returns a :class:`CaseResult`:

- :class:`Measure`: one thing timed (or sized), with every sample kept; ``baseline`` names the
  ``key`` of another measure of the same case, measured in the same run, that it is compared to;
- :class:`Target`: a goal from the issue (for example "no-change re-apply within 3x the floor"),
  with the figure measured and whether it was met;
- ``notes``: what the case found out (where the time goes), written under its table.

Each case's result is saved as JSON (``docs/bench/<case>.json``) and ``docs/benchmarks.md`` is
regenerated from every saved case, so one case can be re-run without losing the others. Text in
``docs/benchmarks.md`` outside the generated block is kept as written.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..paths import REPO

Progress = Callable[[str], None]

BEGIN = "<!-- dcops bench: generated, do not edit between these markers -->"
END = "<!-- dcops bench: end of generated block -->"


@dataclass
class Measure:
    key: str                     # unique in the case, e.g. "wan.pyinfra.again.200"
    label: str                   # what was measured, for the table
    samples: list[float]         # every run's figure
    unit: str = "s"              # "s", "MiB", "MiB/site", ...
    n: int | None = None         # sites (or objects) involved, when it matters
    baseline: str | None = None  # key of the measure this one is compared to
    detail: str = ""             # anything a reader needs (exit codes, changed counts)
    run: int = 0                 # index into CaseResult.runs: the run that measured it

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")


@dataclass
class Target:
    goal: str        # as the issue states it
    measured: str    # the figure, e.g. "2.1x the floor"
    met: bool


@dataclass
class CaseResult:
    case: str
    title: str
    measures: list[Measure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    machine: dict = field(default_factory=dict)
    failed: bool = False  # a run did not do its job (exit code, changes on a re-apply): figures are suspect
    runs: list[dict] = field(default_factory=list)  # every run whose figures are kept (see merge)

    def add(self, m: Measure) -> Measure:
        self.measures.append(m)
        return m

    def get(self, key: str, run: int | None = None) -> Measure | None:
        """The measure ``key`` (of ``run`` when given; else the newest run's)."""
        found = [m for m in self.measures if m.key == key and (run is None or m.run == run)]
        return max(found, key=lambda m: m.run) if found else None

    def baseline_of(self, m: Measure) -> Measure | None:
        """The baseline ``m`` is compared to: always the one measured in the same run."""
        return self.get(m.baseline, m.run) if m.baseline else None

    def ratio(self, key: str) -> float | None:
        """Median of ``key`` (the newest run's) over the median of its baseline (None without one)."""
        m = self.get(key)
        return self.ratio_of(m) if m else None

    def ratio_of(self, m: Measure) -> float | None:
        """Median of ``m`` over the median of its baseline of the same run (None without one)."""
        b = self.baseline_of(m)
        if not b or not m.samples or not b.samples or b.median <= 0:
            return None
        return m.median / b.median

    def to_json(self) -> dict:
        return asdict(self)

    def run_info(self) -> dict:
        """This result's own run, as kept in ``runs``."""
        v = self.machine.get("versions", {})
        return {"started": self.started, "seconds": self.seconds, "load_at_start": self.machine.get("load_at_start"),
                "commit": v.get("dcops commit", "?")}

    @classmethod
    def from_json(cls, d: dict) -> "CaseResult":
        d = dict(d)
        d["measures"] = [Measure(**m) for m in d.get("measures", [])]
        d["targets"] = [Target(**t) for t in d.get("targets", [])]
        return cls(**d)


def merge(old: CaseResult | None, new: CaseResult) -> CaseResult:
    """``new`` (one run) laid over the figures kept from earlier runs of the same case.

    A measure of the new run replaces the earlier one with the same key; earlier measures that
    the new run did not repeat are kept (a case can be re-run for one site count or one engine
    without losing the rest), each with the run it came from, and so is every earlier baseline
    they are compared to: a ratio always sets two figures of the same run side by side. The
    machine, targets, notes and ``failed`` are the new run's; the case module recomputes targets
    over the merged figures (see ``targets`` in the case modules)."""
    if old is None or old.case != new.case:
        out = CaseResult.from_json(new.to_json())
        out.runs = [new.run_info()]
        for m in out.measures:
            m.run = 0
        return out
    runs = list(old.runs) or [old.run_info()]
    fresh = {m.key for m in new.measures}
    kept = [m for m in old.measures if m.key not in fresh]
    needed = {(m.baseline, m.run) for m in kept if m.baseline}
    kept_baselines = [m for m in old.measures if m.key in fresh and (m.key, m.run) in needed]
    used = sorted({m.run for m in kept + kept_baselines})
    renumber = {r: i for i, r in enumerate(used)}
    out = CaseResult.from_json(new.to_json())
    out.runs = [runs[r] for r in used] + [new.run_info()]
    for m in out.measures:
        m.run = len(used)
    keep_ids = {id(m) for m in kept + kept_baselines}
    olds = [Measure(**{**asdict(m), "run": renumber[m.run]}) for m in old.measures if id(m) in keep_ids]
    order = {id(m): i for i, m in enumerate(olds + out.measures)}
    out.measures = sorted(olds + out.measures, key=lambda m: (m.n if m.n is not None else -1, order[id(m)]))
    # notes say what one run saw: the new run's (an earlier run's would describe figures it replaced)
    return out


def dcops_argv(*args: str) -> list[str]:
    """The ``dcops`` command of this venv with ``args``: cases run dcops as users do."""
    return [str(Path(sys.executable).parent / "dcops"), *args]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.monotonic()
    r = fn()
    return time.monotonic() - t0, r


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict:
    """Cores, memory, kernel, load and tool versions: what a figure depends on."""
    from ..paths import tool

    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) // 1024
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except StopIteration:
        cpu = platform.machine()

    def ver(name: str, *args: str) -> str:
        try:
            return _run([str(tool(name)), *args]).splitlines()[0]
        except Exception:  # noqa: BLE001 (a missing tool is shown as such, the case says why)
            return "not installed"

    from importlib.metadata import version as pyver

    def pv(pkg: str) -> str:
        try:
            return pyver(pkg)
        except Exception:  # noqa: BLE001
            return "not installed"

    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_mib": mem,
        "kernel": platform.release(),
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "versions": {
            "dcops commit": _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
            "pulumi": ver("pulumi", "version"),
            "pulumi (Python SDK)": pv("pulumi"),
            "kube-apiserver": ver("kube-apiserver", "--version"),
            "kubectl": ver("kubectl", "version", "--client"),
            "ansible-core": pv("ansible-core"),
            "pyinfra": pv("pyinfra"),
            "prometheus": ver("prometheus", "--version"),
        },
    }


# ------------------------------------------------------------------ markdown


def _fmt(x: float, unit: str) -> str:
    if x != x:  # nan
        return "-"
    if unit == "s":
        return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"
    return f"{x:.1f} {unit}"


def _run_line(run: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run.get("started") or 0))
    return (f"{when}, {(run.get('seconds') or 0) / 60:.1f} min, load at start {run.get('load_at_start')}, "
            f"commit {run.get('commit', '?')}")


def case_markdown(r: CaseResult) -> str:
    m = r.machine
    cmd = f"`dcops bench --cases {r.case}`"
    runs = r.runs or [r.run_info()]
    several = len(runs) > 1
    if several:
        head = [f"{m.get('cores')} cores, {m.get('memory_mib', 0) // 1024} GiB; {cmd}, figures from {len(runs)} runs "
                f"(each ratio compares figures of one run):", ""]
        head += [f"{i + 1}. {_run_line(run)}" for i, run in enumerate(runs)]
    else:
        head = [f"Run {_run_line(runs[0])}; {m.get('cores')} cores, {m.get('memory_mib', 0) // 1024} GiB; {cmd}."]
    lines = [f"## {r.title}", "", *head, "",
             "| measured | N | " + ("run | " if several else "") + "runs | min | median | max | ratio to baseline |",
             "|---|---:|" + ("---:|" if several else "") + "---:|---:|---:|---:|---|"]
    for x in r.measures:
        ratio = r.ratio_of(x)
        rtxt = "baseline" if any(o.baseline == x.key and o.run == x.run for o in r.measures) else "-"
        if ratio is not None:
            rtxt = f"**{ratio:.2f}x** {r.baseline_of(x).label}"
        s = x.samples
        cells = [_fmt(min(s), x.unit), _fmt(statistics.median(s), x.unit), _fmt(max(s), x.unit)] if s else ["-"] * 3
        label = x.label + (f" ({x.detail})" if x.detail else "")
        run_cell = f"{x.run + 1} | " if several else ""
        lines.append(f"| {label} | {x.n if x.n is not None else ''} | {run_cell}{len(s)} | {' | '.join(cells)} | {rtxt} |")
    if r.targets:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t.goal} | {t.measured} | {'yes' if t.met else '**no**'} |" for t in r.targets]
    if r.notes:
        lines += [""] + [f"- {n}" for n in r.notes]
    return "\n".join(lines) + "\n"


ORDER = ["wan", "checks", "provision", "sla", "memory"]


def results_dir(markdown: Path | None = None) -> Path:
    """Where each case's JSON is kept: ``bench/`` beside the markdown file (``docs/bench``)."""
    return (markdown or REPO / "docs" / "benchmarks.md").parent / "bench"


def save(r: CaseResult, d: Path | None = None) -> Path:
    d = d or results_dir()
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{r.case}.json"
    p.write_text(json.dumps(r.to_json(), indent=1, ensure_ascii=False) + "\n")
    return p


def load(case: str, d: Path | None = None) -> CaseResult | None:
    """The saved figures of ``case`` (None when it never ran)."""
    p = (d or results_dir()) / f"{case}.json"
    return CaseResult.from_json(json.loads(p.read_text())) if p.exists() else None


def load_all(d: Path | None = None) -> list[CaseResult]:
    d = d or results_dir()
    found = {}
    for p in sorted(d.glob("*.json")) if d.exists() else []:
        data = json.loads(p.read_text())
        if isinstance(data, dict) and {"case", "measures"} <= set(data):  # a case's figures, not other raw data
            found[p.stem] = CaseResult.from_json(data)
    return [found[c] for c in ORDER if c in found] + [v for k, v in sorted(found.items()) if k not in ORDER]


def write_markdown(path: Path, results: list[CaseResult]) -> None:
    """Rewrite the generated block of ``path`` (created if missing); keep the text around it."""
    versions: dict[str, str] = {}
    for r in results:
        versions.update(r.machine.get("versions", {}))
    m = results[0].machine if results else {}
    block = [BEGIN, "",
             f"Machine: {m.get('cpu', '?')}, {m.get('cores')} cores, {m.get('memory_mib', 0) // 1024} GiB, "
             f"Linux {m.get('kernel')}, Python {m.get('python')}.", "",
             "| tool | version |", "|---|---|"]
    block += [f"| {k} | {v} |" for k, v in versions.items()]
    block += [""]
    targets = [(r, t) for r in results for t in r.targets]
    if targets:
        block += ["### Targets", "", "| case | target | measured | met |", "|---|---|---|---|"]
        block += [f"| {r.case} | {t.goal} | {t.measured} | {'yes' if t.met else '**no**'} |" for r, t in targets]
        block += [""]
    for r in results:
        block += [case_markdown(r)]
    block += [END]
    gen = "\n".join(block) + "\n"
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            path.write_text(head + gen.rstrip("\n") + tail)
            return
        path.write_text(text.rstrip("\n") + "\n\n" + gen)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Benchmarks\n\nGenerated by `dcops bench` (see `dcops bench --help`); figures are from the "
                    "machine named below. Each figure is compared with a baseline measured in the same run.\n\n" + gen)
