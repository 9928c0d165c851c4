"""``dcops wan ...``: roll the desired state of the WAN endpoints out to the lab's hosts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..paths import lab_dir, lab_name
from ..render import endpoint as E
from . import engines, inventory
from .labconn import LabNotReady, connect
from .results import Results

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ENV = 0, 1, 2, 3
DEFAULT_ENGINE = "pyinfra"  # faster for a no-change re-apply (see playbooks/README.md)

wan_app = typer.Typer(
    help="The WAN endpoints: render their desired state from the province file and roll it out.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


@wan_app.command()
def apply(
    engine: str = typer.Option(DEFAULT_ENGINE, "--engine", "-e", help="ansible or pyinfra (same result; pyinfra is faster)"),
    limit: Optional[str] = typer.Option(
        None, "--limit", "-l", help="site id, 'gateway', or group (sites, tier_<tier>, <tier>, parent_<site>); comma-separated"
    ),
    check: bool = typer.Option(False, "--check", help="show what would change (with diffs) and change nothing"),
    province: Path = typer.Option(Path("stacks/province-lab.yaml"), "--province", "-p", help="province file"),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="lab name (default $DCOPS_LAB or 'dcops')"),
    forks: int = typer.Option(50, "--forks", help="hosts worked on at once (Ansible: forks; pyinfra: parallel)"),
    ansible_settings: str = typer.Option(
        "tuned", "--ansible-settings",
        help="tuned: playbooks/ansible.cfg (pipelining, forks, ControlPersist); default: Ansible's own defaults "
             "(forks 5, no pipelining), for comparisons (`dcops bench`)",
    ),
    quiet_diffs: bool = typer.Option(False, "--no-diffs", help="with --check: list changes without the diffs"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results as JSON to this file"),
) -> None:
    """Configure every WAN endpoint (sites and the data-center gateway) from the province file.

    The desired state of each host is rendered once by infra/render/endpoint.py
    (WireGuard tunnel to the hub, nftables, sshd hardening, chrony, rsyslog
    forwarding, sysctls, node_exporter on the tunnel address) and deployed by
    Ansible (playbooks/roles) or pyinfra (playbooks/pyinfra): both give the
    same hosts. First pass: every host makes its own WireGuard private key if it
    has none and reports only its public key; second pass: the rendered state.

    Runs inside the lab's management namespace (hosts are addressed by their
    wan_address, as user dcops with the lab's key and known_hosts).

    Examples:
      dcops wan apply                         # everything, default engine
      dcops wan apply --check                 # what would change, with diffs
      dcops wan apply --engine ansible --limit tier_commune
      dcops wan apply --limit so-tc,gateway

    Progress is printed per host as it finishes, then a summary table:
    changed, unchanged, failed, unreachable. Exit codes: 0 every host ok;
    1 a host failed or was unreachable (the others still completed); 2 bad
    input (province file invalid, unknown --limit, unknown engine): nothing
    was touched; 3 the lab is not running.
    """
    from ..cli import province_or_exit

    if ansible_settings not in engines.ANSIBLE_SETTINGS:
        err.print(f"error: --ansible-settings must be tuned or default, got '{ansible_settings}'; nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if engine not in engines.ENGINES:
        err.print(f"error: unknown engine '{engine}' (use ansible or pyinfra); nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        lab = lab_name(name)
    except ValueError as e:
        err.print(f"error: {e}; nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    model = province_or_exit(province)
    try:
        E.render(model, {h: "A" * 43 + "=" for h in E.hosts(model)})  # model-level problems, before any host
    except E.RenderError as e:
        err.print(f"error: {province}: {e}; nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    p = inventory.plan(model)
    try:
        hosts = inventory.resolve_limit(p, model, limit)
    except inventory.LimitError as e:
        err.print(f"error: {e}; nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        conn = connect(lab)
    except LabNotReady as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(EXIT_ENV)
    # `dcops lab up --sites N` may run a subset of the province's sites.
    in_lab = set(conn.sites) | {E.GATEWAY}
    named_absent = [n.strip() for n in (limit or "").split(",") if n.strip() in model.site_by_id and n.strip() not in in_lab]
    if named_absent:
        err.print(
            f"error: --limit: {', '.join(named_absent)} not running in lab '{lab}' (started with fewer sites?); "
            "nothing was changed.",
            markup=False,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    absent = [h for h in hosts if h not in in_lab]
    if absent:
        out.print(f"note: {len(absent)} site(s) of the province file are not in lab '{lab}': left out", markup=False)
        hosts = [h for h in hosts if h in in_lab]

    workdir = lab_dir(lab) / "wan"
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = "check (nothing is changed)" if check else "apply"
    out.print(
        f"wan {mode}: {len(hosts)} host(s) of {province} in lab '{lab}' with {engine}"
        + (f" (--limit {limit})" if limit else ""),
        markup=False,
    )
    results = Results(hosts, out, check, show_diffs=not quiet_diffs)
    run = engines.Run(model, conn, hosts, check, results, workdir, forks=forks, ansible_settings=ansible_settings, log=lambda m: out.print(m, markup=False))
    t0 = time.monotonic()
    engines.run(engine, run)
    total = time.monotonic() - t0
    out.print(results.table(f"wan {mode} with {engine}: {results.summary_line()}"))
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in run.timings.items())
    out.print(f"time: {total:.1f}s ({phases})", markup=False)
    if json_out:
        data = results.to_json() | {"engine": engine, "seconds": round(total, 2), "timings": run.timings}
        json_out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    raise typer.Exit(EXIT_OK if results.ok else EXIT_FAILED)


@wan_app.command()
def render(
    province: Path = typer.Option(Path("stacks/province-lab.yaml"), "--province", "-p", help="province file"),
    host: str = typer.Argument(..., help="site id or 'gateway'"),
    pubkeys: Optional[Path] = typer.Option(None, "--pubkeys", help="JSON {host: public key} (default: placeholders)"),
) -> None:
    """Print the rendered files of one endpoint (no lab needed).

    Public keys are facts gathered from the hosts at apply time; without
    --pubkeys placeholders stand in for them.
    """
    from ..cli import province_or_exit

    model = province_or_exit(province)
    keys = {h: "A" * 43 + "=" for h in E.hosts(model)}
    if pubkeys:
        keys.update(json.loads(pubkeys.read_text()))
    try:
        ep = E.render(model, keys, only=[host]).get(host)
    except E.RenderError as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if ep is None:
        err.print(f"error: unknown host '{host}' (a site id or 'gateway')", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    for part in ep.parts:
        for f in part.files:
            out.print(f"==> {f.path} ({part.name}, {f.mode} {f.owner}:{f.group})", markup=False)
            out.print(f.content, markup=False, end="")
        for s in part.services:
            out.print(f"--> service {s.name}: enabled, running; on change: {s.on_change or '-'}", markup=False)
