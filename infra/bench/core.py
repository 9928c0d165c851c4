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

    def add(self, m: Measure) -> Measure:
        self.measures.append(m)
        return m

    def get(self, key: str) -> Measure | None:
        return next((m for m in self.measures if m.key == key), None)

    def ratio(self, key: str) -> float | None:
        """Median of ``key`` over the median of its baseline (None without one)."""
        m = self.get(key)
        b = self.get(m.baseline) if m and m.baseline else None
        if not m or not b or not m.samples or not b.samples or b.median <= 0:
            return None
        return m.median / b.median

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "CaseResult":
        d = dict(d)
        d["measures"] = [Measure(**m) for m in d.get("measures", [])]
        d["targets"] = [Target(**t) for t in d.get("targets", [])]
        return cls(**d)


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


def case_markdown(r: CaseResult) -> str:
    m = r.machine
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(r.started))
    lines = [f"## {r.title}", "",
             f"Run {when}, {r.seconds / 60:.1f} min; {m.get('cores')} cores, {m.get('memory_mib', 0) // 1024} GiB, "
             f"load at start {m.get('load_at_start')}; `dcops bench --cases {r.case}` (commit {m.get('versions', {}).get('dcops commit', '?')}).",
             "",
             "| measured | N | runs | min | median | max | ratio to baseline |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for x in r.measures:
        ratio = r.ratio(x.key)
        base = r.get(x.baseline) if x.baseline else None
        rtxt = "baseline" if any(o.baseline == x.key for o in r.measures) else "-"
        if ratio is not None and base is not None:
            rtxt = f"**{ratio:.2f}x** {base.label}"
        s = x.samples
        cells = [_fmt(min(s), x.unit), _fmt(statistics.median(s), x.unit), _fmt(max(s), x.unit)] if s else ["-"] * 3
        label = x.label + (f" ({x.detail})" if x.detail else "")
        lines.append(f"| {label} | {x.n if x.n is not None else ''} | {len(s)} | {' | '.join(cells)} | {rtxt} |")
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


def load_all(d: Path | None = None) -> list[CaseResult]:
    d = d or results_dir()
    found = {p.stem: CaseResult.from_json(json.loads(p.read_text())) for p in d.glob("*.json")} if d.exists() else {}
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
