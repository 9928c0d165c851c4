"""``dcops bench``: run the benchmark cases on the lab and write ``docs/benchmarks.md``."""

from __future__ import annotations

import importlib
import signal
import time
from pathlib import Path

import typer

from ..cli import EXIT_BAD_INPUT, EXIT_ENV, EXIT_FAILED, EXIT_OK, app, err, out
from ..paths import REPO, ToolMissing
from . import BenchOptions
from .core import ORDER, case_markdown, load, load_all, machine, merge, results_dir, save, write_markdown

CASES = {
    "wan": "WAN rollout at each --sites count with each --engines variant (pyinfra, Ansible tuned, Ansible default settings); floor = parallel ssh + one file copy",
    "checks": "host checks of every site (testinfra), against the same floor",
    "provision": "pulumi up and a no-change preview of the full province stack, against kubectl apply --server-side",
    "sla": "30-day SLA queries for every platform and 200 sites, with and without recording rules",
    "memory": "lab memory per site (WAN hosts) and per control plane",
    "province": "the whole province file (default: 700 units) on one lab: lab up, provision, rollout, re-applies, "
                "checks, Ansible default settings, full check, reports and drift, with issue 18's targets (about 1 h)",
}
EVERY = ORDER + ["province"]  # `province` is not in the default set (an hour on its own): ask for it


@app.command("bench")
def bench(
    cases: str = typer.Option(",".join(ORDER), "--cases", "-c", help=f"comma-separated, from: {', '.join(EVERY)}"),
    sites: str = typer.Option("10,50,100,200", "--sites", help="site counts for the scaling cases, run in this order (the largest is used by checks/memory)"),
    repeat: int = typer.Option(3, "--repeat", "-r", min=1, help="runs per measure (min / median / max are over these)"),
    engines: str = typer.Option("pyinfra,ansible-tuned,ansible-default", "--engines",
                                help="wan case: which ways of rolling out to time"),
    ansible_first_max: int = typer.Option(50, "--ansible-first-max", min=0,
                                          help="wan case: time the Ansible variants' first apply up to this many sites; "
                                          "above it they re-apply on the hosts pyinfra configured (Ansible's first "
                                          "apply of 200 sites takes 40+ min on 2 cores)"),
    province: Path = typer.Option(REPO / "stacks" / "scale" / "province-thanhhoa-700.yaml", "--province",
                                  help="province case: the province file whose every site the lab starts"),
    name: str = typer.Option("bench", "--name", "-n", help="lab name prefix for the labs the cases start (1-5 chars + suffix)"),
    output: Path = typer.Option(REPO / "docs" / "benchmarks.md", "--output", "-o", help="markdown file; its generated block is rewritten"),
    fresh: bool = typer.Option(False, "--fresh", help="drop the saved figures of the chosen cases first (by default a run "
                               "replaces only the figures it measures again and keeps the others, e.g. other site counts)"),
    reuse: bool = typer.Option(False, "--reuse", help="province case: go on with the lab an earlier run left with --keep (no lab up, "
                               "no provision; its first apply is then a converging run, recorded as such)"),
    keep: bool = typer.Option(False, "--keep", help="leave each case's lab running (for profiling); `dcops lab down --name ...` removes it"),
    skip: str = typer.Option("", "--skip", help="province case: steps not to run this time, comma-separated, from: "
                             "reapply, checks, reports, drift (their figures from an earlier run are kept)"),
    list_cases: bool = typer.Option(False, "--list", help="list the cases and exit"),
    show: bool = typer.Option(False, "--show", help="print the saved results as markdown and exit (runs nothing)"),
) -> None:
    """Measure dcops at province scale on the lab, beside baselines measured in the same run.

    Each case starts the lab parts it needs under its own lab name (NAME + a suffix), runs each
    measure REPEAT times, removes its lab, saves its figures to docs/bench/CASE.json and rewrites
    the generated block of docs/benchmarks.md from every saved case (so cases can be re-run one at
    a time). A run replaces the figures it measures again and keeps the case's other saved figures
    (other site counts, other engines), each marked with its run; --fresh starts the case over.
    Figures: min / median / max and the ratio of medians to the case's baseline; targets
    from the project's goals are marked met or not.

    Needs root (network namespaces) and the installed tools, like the lab. Long: the full set with
    the defaults takes a few hours on 2 cores; `--cases sla,provision --repeat 1 --sites 10` is quick.

    Exit codes: 0 every case ran and met its targets, 1 a target was missed or a run failed,
    2 bad options, 3 a tool is missing or the lab could not start.

    \b
    Examples:
      dcops bench --list
      dcops bench --cases wan --sites 10,50 --repeat 2
      dcops bench --cases sla,provision
      dcops bench --cases province -r 3          # the 700-unit province, about an hour
      dcops bench --cases wan --sites 100 --engines ansible-tuned --ansible-first-max 100
      dcops bench --show
    """
    if list_cases:
        for c in EVERY:
            out.print(f"{c:<10} {CASES[c]}", markup=False)
        raise typer.Exit(EXIT_OK)
    if show:
        for r in load_all(results_dir(output)):
            out.print(case_markdown(r), markup=False)
        raise typer.Exit(EXIT_OK)
    chosen = [c.strip() for c in cases.split(",") if c.strip()]
    bad = [c for c in chosen if c not in CASES]
    if bad:
        err.print(f"--cases: unknown case(s) {', '.join(bad)}; choose from {', '.join(EVERY)}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        ns = list(dict.fromkeys(int(x) for x in sites.split(",") if x.strip()))  # in the order given
    except ValueError:
        ns = []
    if not ns or min(ns) < 1:
        err.print(f"--sites: expected positive integers separated by commas, got {sites!r}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    from .wan import VARIANTS

    variants = [v.strip() for v in engines.split(",") if v.strip()]
    unknown = [v for v in variants if v not in {k for k, *_ in VARIANTS}]
    if unknown or not variants:
        err.print(f"--engines: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(k for k, *_ in VARIANTS)}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if not (1 <= len(name) <= 5 and name.isalnum() and name.islower()):
        err.print(f"--name: 1-5 lower-case letters or digits (cases add a suffix), got {name!r}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)

    from .province import STEPS

    skipped = {x.strip() for x in skip.split(",") if x.strip()}
    if skipped - set(STEPS):
        err.print(f"--skip: unknown step(s) {', '.join(sorted(skipped - set(STEPS)))}; choose from {', '.join(STEPS)}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)

    def progress(msg: str) -> None:
        out.print(f"[{time.strftime('%H:%M:%S')}] {msg}", markup=False)

    def stop_cleanly(signum, frame):  # SIGTERM (a CI timeout, kill): each case's `finally` removes its lab
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop_cleanly)

    earlier: dict = {}  # each case's saved figures as they were before this run

    def checkpoint(r):  # saves a case's result; long cases call it as they go, so stopping loses no finished figure
        r.machine = info
        r.seconds = time.time() - r.started
        if r.case not in earlier:
            earlier[r.case] = None if fresh else load(r.case, results_dir(output))
        merged = merge(earlier[r.case], r)
        mod = importlib.import_module(f".{r.case}", __package__)
        if hasattr(mod, "targets"):
            mod.targets(merged)  # over every kept figure, e.g. the largest N of any run
        save(merged, results_dir(output))
        write_markdown(output, load_all(results_dir(output)))
        return merged

    opts = BenchOptions(sites=ns, repeat=repeat, name=name, progress=progress, keep=keep, checkpoint=checkpoint,
                        variants=variants, ansible_first_max=ansible_first_max, reuse=reuse, skip=skipped)
    info = machine()
    worst = EXIT_OK
    embedded = None
    if "wan" in chosen and "checks" in chosen:
        from .checks import new_result

        embedded = new_result()  # measured by the wan case on its pyinfra hosts at the largest N
    for c in chosen:
        if c == "checks" and embedded is not None:
            continue
        progress(f"== {c}: {CASES[c]}")
        try:
            mod = importlib.import_module(f".{c}", __package__)
        except ModuleNotFoundError as e:
            err.print(f"{c}: this case is not in this version of dcops ({e})", markup=False)
            worst = max(worst, EXIT_ENV)
            continue
        try:
            r = (mod.run(opts, checks=embedded) if c == "wan" else mod.run(opts, province=province) if c == "province"
                 else mod.run(opts))
        except ToolMissing as e:
            err.print(f"{c}: {e}", markup=False)
            worst = max(worst, EXIT_ENV)
            continue
        if c == "wan" and embedded is not None and embedded.measures:
            checkpoint(embedded)
            if [t for t in embedded.targets if not t.met] or embedded.failed:
                worst = max(worst, EXIT_FAILED)
        merged = checkpoint(r)
        p = results_dir(output) / f"{r.case}.json"
        out.print(case_markdown(merged), markup=False)
        progress(f"== {c}: done in {r.seconds / 60:.1f} min; figures in {p}, table in {output}")
        failed = [t for t in r.targets if not t.met]
        if failed or r.failed:
            worst = max(worst, EXIT_FAILED)
    raise typer.Exit(worst)
