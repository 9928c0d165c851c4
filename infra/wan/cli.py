"""``dcops wan ...``: roll the desired state of the WAN endpoints out to a stack's hosts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..cli_common import EXIT_BAD_INPUT, EXIT_ENV, EXIT_FAILED, EXIT_OK, ConfigFileOpt, StackOpt, stack_or_exit
from ..render import endpoint as E
from . import engines, inventory
from .connection import connect
from .results import Results
DEFAULT_ENGINE = "pyinfra"  # faster for a no-change re-apply (see playbooks/README.md)

wan_app = typer.Typer(
    help="The WAN endpoints: render their desired state from the province file and roll it out.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def _preflight_jumps(conn) -> str | None:
    """Reach every jump host once (``ssh -F <ssh_config> JUMP true``); the first failure, or None."""
    import subprocess

    for alias, j in conn.ssh.jump_hosts().items():
        try:
            cp = subprocess.run(["ssh", "-F", str(conn.ssh_config), alias, "true"], capture_output=True, text=True,
                                timeout=60, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"the jump host {j.host}:{j.port} did not answer within 60 s"
        if cp.returncode == 255:  # ssh's own failure; any other code: we got in (a bastion may refuse commands)
            why = (cp.stderr.strip().splitlines() or [f"exit {cp.returncode}"])[-1]
            return f"the jump host {j.host}:{j.port} cannot be reached: {why}"
    return None


@wan_app.command()
def apply(
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    engine: str = typer.Option(DEFAULT_ENGINE, "--engine", "-e", help="ansible or pyinfra (same result; pyinfra is faster)"),
    limit: Optional[str] = typer.Option(
        None, "--limit", "-l", help="site id, 'gateway', or group (sites, tier_<tier>, <tier>, parent_<site>); comma-separated"
    ),
    check: bool = typer.Option(False, "--check", help="show what would change (with diffs) and change nothing"),
    forks: int = typer.Option(50, "--forks", help="hosts worked on at once (Ansible: forks; pyinfra: parallel)"),
    ansible_settings: str = typer.Option(
        "tuned", "--ansible-settings",
        help="tuned: playbooks/ansible.cfg (pipelining, forks, ControlPersist); default: Ansible's own defaults "
             "(forks 5, no pipelining), for comparisons (`dcops bench`)",
    ),
    quiet_diffs: bool = typer.Option(False, "--no-diffs", help="with --check: list changes without the diffs"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results as JSON to this file"),
) -> None:
    """Configure every WAN endpoint (sites and the data-center gateway) of a stack.

    The desired state of each host is rendered once by infra/render/endpoint.py
    from the stack's province file (WireGuard tunnel to the hub, nftables, sshd
    hardening, chrony, rsyslog forwarding, sysctls, node_exporter on the tunnel
    address) and deployed by Ansible (playbooks/roles) or pyinfra
    (playbooks/pyinfra): both give the same hosts. First pass: every host makes
    its own WireGuard private key if it has none and reports only its public
    key; second pass: the rendered state.

    How hosts are reached comes from the stack's environment (-s STACK): SSH
    user, identity file or agent, port, known_hosts, jump hosts, addresses,
    become. Default stack: 'lab' (the running lab).

    \b
    Examples:
      dcops wan apply                         # the lab, everything, default engine
      dcops wan apply -s thanhhoa --check     # what would change, with diffs
      dcops wan apply -s thanhhoa --engine ansible --limit tier_commune
      dcops wan apply --limit so-tc,gateway

    Progress is printed per host as it finishes, then a summary table:
    changed, unchanged, failed, unreachable. Exit codes: 0 every host ok;
    1 a host failed or was unreachable (the others still completed); 2 bad
    input (province file or environment invalid, unknown --limit, unknown
    engine): nothing was touched; 3 the environment cannot be used (the lab
    is not up, a jump host cannot be reached): nothing was touched.
    """
    if ansible_settings not in engines.ANSIBLE_SETTINGS:
        err.print(f"error: --ansible-settings must be tuned or default, got '{ansible_settings}'; nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if engine not in engines.ENGINES:
        err.print(f"error: unknown engine '{engine}' (use ansible or pyinfra); nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    st = stack_or_exit(stack, config_file)
    from ..validate import load_province

    model = load_province(st.province)
    try:
        E.render(model, {h: "A" * 43 + "=" for h in E.hosts(model)})  # model-level problems, before any host
    except E.RenderError as e:
        err.print(f"error: {st.province}: {e}; nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    conn = connect(st, model)
    p = inventory.plan(model, conn.ssh.addresses)
    try:
        hosts = inventory.resolve_limit(p, model, limit)
    except inventory.LimitError as e:
        err.print(f"error: {e}; nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    present = set(conn.hosts_present)
    named_absent = [n.strip() for n in (limit or "").split(",") if n.strip() in p.addresses and n.strip() not in present]
    if named_absent:
        err.print(
            f"error: --limit: {', '.join(named_absent)} not in the environment of stack '{st.name}' (wan.hosts); "
            "nothing was changed.",
            markup=False,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    absent = [h for h in hosts if h not in present]
    if absent:
        out.print(f"note: {len(absent)} host(s) of the province file are not in the environment (wan.hosts): left out", markup=False)
        hosts = [h for h in hosts if h in present]
    why = _preflight_jumps(conn)
    if why:
        err.print(f"error: {why}; nothing was changed.", markup=False)
        raise typer.Exit(EXIT_ENV)

    workdir = conn.workdir
    mode = "check (nothing is changed)" if check else "apply"
    out.print(
        f"wan {mode}: {len(hosts)} host(s) of {st.province.name} on stack '{st.name}' ({st.env.kind}) with {engine}"
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


@wan_app.command("inventory")
def inventory_cmd(
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    out_dir: Path = typer.Option(Path("out/inventory"), "--out", "-o", help="directory for the inventory"),
) -> None:
    """Write standard inventories of a stack for Ansible and pyinfra, to run the playbooks by hand.

    \b
    Files in --out:
      hosts.yml, group_vars/all.yml, host_vars/<host>.yml   an Ansible YAML inventory: hosts with
          ansible_host, ansible_user, ansible_port; groups gateway, sites, tier_<tier>, parent_<site>;
          SSH through the stack's ssh_config (-F: jump hosts, identity, strict known_hosts); the
          rendered state of every host as host vars (!unsafe: never templated)
      ssh_config     the stack's SSH client configuration (a copy; ssh -F ssh_config ADDRESS)
      pyinfra_inventory.py   the same hosts and groups for the pyinfra CLI

    \b
    Then, from a machine that reaches the hosts (for the lab: inside its management namespace):
      ansible-playbook -i out/inventory/hosts.yml playbooks/wan.yml [--check --diff]
      pyinfra out/inventory/pyinfra_inventory.py playbooks/pyinfra/deploy.py
    (the same inventory runs under ansible-runner, as AWX/AAP do).

    The tunnels need every host's WireGuard public key: they come from the last `dcops wan apply`
    of this stack (its work dir). Hosts whose key is not known yet are listed and left without
    host vars: run `dcops wan apply` once first. Contacts nothing. Exit 0 written; 1 some hosts
    have no known key; 2 bad input; 3 the environment cannot be used.
    """
    import shutil

    st = stack_or_exit(stack, config_file)
    from ..validate import load_province

    model = load_province(st.province)
    conn = connect(st, model)
    p = inventory.plan(model, conn.ssh.addresses)
    present = [h for h in p.hosts if h in set(conn.hosts_present)]
    keys = engines.load_pubkey_cache(conn.workdir, p.addresses, conn.known_hosts)
    endpoints = {}
    for h in present:
        gws = E.gateways(model)
        if h not in gws and not (keys.get(h) and all(keys.get(g) for g in gws)):
            continue
        if h in gws and not keys:
            continue
        endpoints[h] = E.render_site(model, h, keys) if h not in gws else E.render_gateway(model, keys, h)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(conn.ssh_config, out_dir / "ssh_config")
    os_conn = inventory.connection_of(conn)
    os_conn = inventory.Connection(os_conn.user, os_conn.port, str((out_dir / "ssh_config").resolve()), None, os_conn.jumps)
    sub = inventory.Plan({h: p.addresses[h] for h in present}, {g: [h for h in hs if h in present] for g, hs in p.groups.items()})
    inventory.write_ansible_inventory(out_dir, sub, os_conn,
                                      {"wireguard_key_create": E.key_script(True), "wireguard_key_read": E.key_script(False)},
                                      note=f"dcops wan inventory -s {st.name}")
    inventory.write_host_vars(out_dir, endpoints)
    inventory.write_pyinfra_inventory(out_dir / "pyinfra_inventory.py", sub, os_conn, out_dir / "host_vars", st.name)
    missing = [h for h in present if h not in endpoints]
    out.print(f"inventory of stack '{st.name}': {len(present)} host(s), {len(endpoints)} with their rendered state, "
              f"in {out_dir}/ (hosts.yml, group_vars/, host_vars/, ssh_config, pyinfra_inventory.py)", markup=False)
    if missing:
        err.print(f"warning: no WireGuard public key known for {len(missing)} host(s) ({', '.join(missing[:8])}"
                  f"{' ...' if len(missing) > 8 else ''}): run `dcops wan apply -s {st.name}` once, then this again",
                  markup=False)
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


@wan_app.command()
def render(
    host: str = typer.Argument(..., help="site id or 'gateway'"),
    province: Path = typer.Option(Path("stacks/province-lab.yaml"), "--province", "-p", help="province file"),
    pubkeys: Optional[Path] = typer.Option(None, "--pubkeys", help="JSON {host: public key} (default: placeholders)"),
) -> None:
    """Print the rendered files of one endpoint (contacts nothing; no stack needed).

    Public keys are facts gathered from the hosts at apply time; without
    --pubkeys placeholders stand in for them.
    """
    from ..cli_common import province_or_exit

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
