"""``dcops run``: the whole job on the lab, one step after another.

Each step is the same ``dcops`` command an engineer would type, run as a child
process so its progress streams through and its exit code is kept:

1. ``dcops validate``        the province file (bad file: stop, exit 2)
2. ``dcops lab up``          control planes, WAN hosts, Pulumi backend; writes the lab's environment
3. ``dcops provision``       ``pulumi up`` of the lab stack
4. ``dcops wan apply``       configure every WAN endpoint
5. ``dcops lab monitor``     Prometheus (HTTPS, basic auth) and blackbox_exporter in the lab
6. ``dcops lab backups``     the lab's backup site: Velero beside each cluster, the lab's S3
7. ``dcops dr backup``       a backup of every platform (Velero)
8. ``dcops dr restore-test`` each platform's latest backup restored on the DR cluster and checked
9. ``dcops check``           security controls and SLAs
10. ``dcops report``         HTML, PDF, JSON and JUnit reports (vi and en)

From step 3 on, every command reaches the lab through the stack ``lab`` (``-s lab
--config-file <lab dir>/Pulumi.lab.yaml``): the way an operator reaches a province.

A failed step after validation does not stop the later ones that can still
say something useful (checks and reports run even when a host failed its
rollout: that is what auditors need to see).  The exit code is the worst
of the steps (2 > 3 > 1 > 0 in severity: bad input, environment, failed).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .cli import EXIT_BAD_INPUT, EXIT_ENV, EXIT_FAILED, EXIT_OK, DEFAULT_PROVINCE, app, out, province_or_exit
from .paths import lab_name

# steps that, when they fail, leave nothing for the next ones to work on
_BLOCKING = {"lab up"}
_SEVERITY = {EXIT_OK: 0, EXIT_FAILED: 1, EXIT_ENV: 2, EXIT_BAD_INPUT: 3}


def _steps(province: Path, name: str, engine: str | None, sites: str | None, out_dir: Path) -> list[tuple[str, list[str]]]:
    from .environment import lab_config_file

    p = ["--province", str(province)]
    n = ["--name", name]
    s = ["-s", "lab", "--config-file", str(lab_config_file(name))]
    up = ["lab", "up", *p, *n] + (["--site", sites] if sites else [])
    wan = ["wan", "apply", *s] + (["--engine", engine] if engine else [])
    results = (out_dir / "results" / "latest.json").resolve()
    rep = (out_dir / "report").resolve()
    return [
        ("lab up", up),
        ("provision", ["provision", *s]),
        ("wan apply", wan),
        ("monitoring", ["lab", "monitor", *n]),
        ("backup site", ["lab", "backups", *n]),
        ("backup", ["dr", "backup", *s]),
        ("restore test", ["dr", "restore-test", *s]),
        ("check", ["check", *s, "--output", str(results)]),
        ("report vi", ["report", *s, "--results", str(results), "--out", str(rep)]),
        ("report en", ["report", *s, "--results", str(results), "--lang", "en", "--out", str(rep)]),
    ]


@app.command()
def run(
    province: Path = typer.Option(DEFAULT_PROVINCE, "--province", "-p", help="province file"),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="lab name (default $DCOPS_LAB or 'dcops')"),
    engine: Optional[str] = typer.Option(None, "--engine", help="WAN engine: ansible or pyinfra (default: dcops' default)"),
    sites: Optional[str] = typer.Option(None, "--sites", help="start only the first N sites in the lab"),
    out_dir: Path = typer.Option(Path("out"), "--out", help="where results and reports go"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the steps and change nothing"),
) -> None:
    """Run the whole job on the lab: lab up, provision, WAN rollout, checks, reports.

    Every step is the dcops command you could run by hand (printed before it
    runs).  The lab keeps running afterwards so you can look around; stop it
    with `dcops lab down`.  Results: out/results/latest.json; reports:
    out/report/.  Exit code: the worst step's (0 ok, 1 a check or host failed,
    2 bad input, 3 environment problem).
    """
    province_or_exit(province)
    lab = lab_name(name)
    steps = _steps(province, lab, engine, sites, out_dir)
    if dry_run:
        for title, argv in steps:
            out.print(f"{title:<12} dcops {' '.join(argv)}", markup=False)
        raise typer.Exit(EXIT_OK)

    done: list[tuple[str, int, float]] = []
    worst = EXIT_OK
    for i, (title, argv) in enumerate(steps, 1):
        out.print(f"\n== [{i}/{len(steps)}] {title}: dcops {' '.join(argv)}", markup=False)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, "-m", "infra.cli", *argv])
        done.append((title, rc, time.monotonic() - t0))
        if _SEVERITY.get(rc, 2) > _SEVERITY.get(worst, 2):
            worst = rc if rc in _SEVERITY else EXIT_ENV
        if rc != EXIT_OK and title in _BLOCKING:
            out.print(f"{title} failed (exit {rc}); the later steps need it, stopping.", markup=False)
            break

    table = Table(title=f"dcops run on lab '{lab}'")
    for col in ("step", "exit", "seconds"):
        table.add_column(col)
    for title, rc, secs in done:
        table.add_row(title, str(rc) if rc else "ok", f"{secs:.1f}")
    out.print(table)
    out.print(f"results: {out_dir / 'results' / 'latest.json'}   reports: {out_dir / 'report'}   stop the lab: dcops lab down --name {lab}")
    raise typer.Exit(worst)
