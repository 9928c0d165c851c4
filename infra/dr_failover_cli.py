"""``dcops dr failover``, ``dcops dr failback``, ``dcops dr status``: moving platforms to their DR
cluster and back (:mod:`infra.dr.failover`), registered on the ``dcops dr`` group (:mod:`infra.dr_cli`).

Exit codes: 0 done (or nothing to do); 1 a platform did not come up or its address was not served
in time; 2 bad input (unknown platform, DR mode none, an unreadable placement record); 3 a cluster
that must answer does not (the DR cluster for a failover, the home cluster for a failback), a
missing tool, a restore that could not run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .cli_common import EXIT_OK, ConfigFileOpt, StackOpt, err, out, stack_or_exit
from .dr_cli import dr_app

PlatformsOpt = typer.Option(None, "--platform", "-p",
                            help="a platform id (repeat for several; default: every platform with a DR mode)")
DryRunOpt = typer.Option(False, "--dry-run", help="print each step that would be done; contact nothing, change nothing")
TimeoutOpt = typer.Option(300.0, "--timeout", help="seconds each platform may take to be ready and served")


def _say(m: str) -> None:
    out.print(m, markup=False)


def follow_monitoring(st, say=_say) -> bool:
    """The SLA probes follow the placement record: in a lab whose monitoring runs, re-render its
    configuration from the record and reload it (`dcops lab monitor --reload-only`); elsewhere say
    that the monitoring configuration is to be re-rendered. True when the lab's was reloaded.
    Never fails the move: a problem here is said, the platforms stay where they were moved."""
    try:
        if st.env.kind == "lab":
            import subprocess
            import sys

            from .paths import lab_dir

            lab = Path(st.config_file).parent.name
            if lab_dir(lab) == Path(st.config_file).parent:
                # the lab's own command (product code imports nothing of the lab): re-render from the
                # placement record and reload, only where the lab's monitoring runs
                r = subprocess.run([sys.executable, "-m", "infra.cli", "lab", "monitor", "--name", lab, "--reload-only"],
                                   capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
                for line in (r.stdout + r.stderr).splitlines():
                    say(line)
                if r.returncode == 0 and "nothing to reload" not in r.stdout:
                    return True
                if r.returncode != 0:
                    raise RuntimeError(f"`dcops lab monitor --reload-only` exit {r.returncode}")
    except Exception as e:  # noqa: BLE001 -- the move is done and recorded; say what is left to do
        say(f"warning: the lab's monitoring was not re-rendered ({e.__class__.__name__}: {e})")
    say("next: re-render the monitoring configuration so that the SLA probes follow the placement record "
        "(in a lab: `dcops lab monitor`; docs/runbook-dr.en.md)")
    return False


def _move(operation: str, stack, config_file, platforms, dry_run, timeout, as_json) -> None:
    import time

    from .dr import failover as F

    st = stack_or_exit(stack, config_file, enter_netns=not dry_run)
    t0 = time.monotonic()
    try:
        moves = F.run(st, operation, platforms or None, dry_run=dry_run, progress=_say, timeout=timeout)
    except F.DRError as e:
        err.print(f"error: {e}", markup=False)
        err.print(f"{operation} stopped; `dcops dr status -s {st.name}` shows where each platform runs "
                  "(platforms moved before the error stay moved)", markup=False)
        raise typer.Exit(e.code)
    if as_json:
        out.print(json.dumps([m.as_dict() for m in moves], indent=1), markup=False)
    if not dry_run and moves:
        out.print(f"{operation}: {len(moves)} platform(s) moved in {time.monotonic() - t0:.1f} s: "
                  + ", ".join(f"{m.platform} -> {m.target} ({m.seconds} s)" for m in moves), markup=False)
        out.print(f"next: `dcops check -s {st.name}` (the checks follow the platforms)"
                  + ("; once the primary is back, `dcops provision` keeps it at 0 there" if operation == "failover"
                     else ""), markup=False)
        follow_monitoring(st)
    raise typer.Exit(EXIT_OK)


@dr_app.command("failover")
def failover_cmd(
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    platform: Optional[list[str]] = PlatformsOpt,
    dry_run: bool = DryRunOpt,
    timeout: float = TimeoutOpt,
    as_json: bool = typer.Option(False, "--json", help="print the moves as JSON"),
) -> None:
    """Move platforms to their DR cluster (platforms[].dr); works with the primary gone.

    For each platform (warm or cold; default: all of them):

    \b
    1. fence: if its home cluster still answers, scale it to 0 there (else go on);
    2. cold: restore its latest backup into its namespace on the DR cluster (velero);
    3. apply its objects on the DR cluster with the declared replicas (server-side,
       field manager dcops: what `pulumi up` declares once the record says so);
    4. wait until its replicas are ready;
    5. wait until its Service serves the platform's address with ready endpoints: the
       address pool announces it from the DR site (same address, same DNS name, same
       WAN firewall rules, same SLA probes);
    6. record where it runs: <work_dir>/dr/placement.json. `dcops check`, `dcops
       provision` and `dcops dr status` follow the record;
    7. the SLA probes follow it too: in a lab whose monitoring runs, its Prometheus
       configuration is re-rendered from the record and reloaded; elsewhere re-render
       the monitoring configuration (the command says so).

    Only the DR cluster (and, for cold platforms, the backups) must answer.

    \b
    Exit: 0 moved (or nothing to do); 1 a platform not ready or not served in time;
    2 bad input; 3 the DR cluster unreachable, a tool missing, a restore failed to run.

    \b
    Examples:
      dcops dr failover -s thanhhoa --dry-run          # the plan, step by step
      dcops dr failover -s thanhhoa --platform motcua  # one platform
      dcops dr failover -s thanhhoa                    # every warm and cold platform
    Runbook: docs/runbook-dr.md (Vietnamese) and docs/runbook-dr.en.md.
    """
    _move("failover", stack, config_file, platform, dry_run, timeout, as_json)


@dr_app.command("failback")
def failback_cmd(
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    platform: Optional[list[str]] = PlatformsOpt,
    dry_run: bool = DryRunOpt,
    timeout: float = TimeoutOpt,
    as_json: bool = typer.Option(False, "--json", help="print the moves as JSON"),
) -> None:
    """Bring platforms a failover moved back to their home cluster; the home cluster must answer.

    For each platform the record says is away (default: all of them):

    \b
    1. apply its objects at home with the declared replicas and wait until they are ready;
    2. wait until its Service at home serves the platform's address;
    3. put the DR copy back to standing by: warm -> 0 replicas; cold -> the restored
       workload, Services and disruption budget deleted (its volumes kept);
    4. forget it in the record.

    Before a failback, bring the data home (runbook: warm -> reverse the storage
    replication; cold -> back up on the DR site and restore at home).

    \b
    Exit: 0 back home (or nothing to do); 1 not ready or not served in time;
    2 bad input; 3 the home cluster unreachable, a tool missing.

    \b
    Examples:
      dcops dr failback -s thanhhoa --dry-run
      dcops dr failback -s thanhhoa --platform motcua
    """
    _move("failback", stack, config_file, platform, dry_run, timeout, as_json)


@dr_app.command("status")
def status_cmd(
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """Where each platform runs (the placement record), its DR mode, RPO and RTO, and the last
    failover and failback. Contacts nothing.

    \b
    Example:
      dcops dr status -s thanhhoa
    """
    from .dr import failover as F
    from .dr import placement as PL

    st = stack_or_exit(stack, config_file, enter_netns=False)
    try:
        rows = F.status(st)
        last = {op: PL.last_exercise(st.work_dir, op) for op in ("failover", "failback")}
    except (F.DRError, PL.PlacementError) as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(2)
    if as_json:
        out.print(json.dumps({"platforms": rows, "last": last}, indent=1), markup=False)
        raise typer.Exit(EXIT_OK)
    for r in rows:
        away = r["runs_on"] != r["home"]
        out.print(f"{r['platform']:10} {r['mode']:5} runs on {r['runs_on']:8}{' (FAILED OVER)' if away else ''} "
                  f"home {r['home']}, DR {r['dr'] or '-'}, address {r['address']}, "
                  f"RPO {r['rpo_minutes'] or '-'} min, RTO {r['rto_minutes'] or '-'} min", markup=False)
    for op, e in last.items():
        out.print(f"last {op}: " + (f"{e['finished']} {', '.join(e['platforms'])} ({e.get('duration_s')} s): "
                                    f"{e['outcome']}" if e else "never"), markup=False)
    out.print(f"record: {PL.record_path(st.work_dir)}", markup=False)
    raise typer.Exit(EXIT_OK)
