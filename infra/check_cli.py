"""``dcops check``: the security controls and SLAs, against the province file.

Mounted in :mod:`infra.cli` as the ``check`` sub-app.  The work is done by
the :mod:`checks` package (catalog, controls, SLA computation); this module
selects what to run, shows progress, prints the summary and writes the JSON.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ENV = 0, 1, 2, 3
DEFAULT_OUTPUT = Path("out/results/latest.json")

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

check_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _split(values: list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


class _Progress:
    """One line per finished control, with a running count (thread-safe)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.n = 0
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def __call__(self, r) -> None:
        with self.lock:
            self.n += 1
            if not self.quiet:
                mark = {"pass": "ok  ", "fail": "FAIL", "error": "ERR ", "skipped": "skip"}[r.status.value]
                why = f"  {r.reason}" if r.status.value in ("fail", "error") else ""
                out.print(f"[{self.n:4d} {time.monotonic() - self.t0:6.1f}s] {mark} {r.control:<14} {r.target}{why}", markup=False)

    def phase(self, msg: str) -> None:
        if not self.quiet:
            out.print(f"-- {msg}", markup=False)


def summary_table(results, catalog) -> Table:
    by: dict[str, Counter] = defaultdict(Counter)
    failing: dict[str, list[str]] = defaultdict(list)
    for r in results:
        by[r.control][r.status.value] += 1
        if r.status.value in ("fail", "error"):
            failing[r.control].append(r.target)
    t = Table(title="dcops check: summary", show_lines=False)
    t.add_column("control", no_wrap=True)
    t.add_column("severity", no_wrap=True)
    t.add_column("title", max_width=44, overflow="ellipsis", no_wrap=True)
    for col in ("pass", "fail", "error", "skipped"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("failing targets", max_width=40, overflow="ellipsis", no_wrap=True)
    for cid in sorted(by):
        c = catalog.get(cid)
        n = by[cid]
        t.add_row(cid, c.severity, c.title_en[:48], str(n["pass"]), str(n["fail"]), str(n["error"]), str(n["skipped"]),
                  ", ".join(sorted(failing[cid]))[:60])
    return t


@check_app.callback(invoke_without_command=True)
def check(
    ctx: typer.Context,
    only: list[str] = typer.Option([], "--only", help="control id(s) to run, e.g. DCOPS-SSH-001 (repeat or comma-separate)"),
    target: list[str] = typer.Option([], "--target", "-t", help="site id, 'gateway', platform id or cluster id (repeat or comma-separate)"),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="lab name (default $DCOPS_LAB or 'dcops')"),
    province: Path = typer.Option(Path("stacks/province-lab.yaml"), "--province", "-p", help="province file"),
    output: Path = typer.Option(DEFAULT_OUTPUT, "--output", "-o", help="JSON results (a timestamped copy is written beside it)"),
    window_days: Optional[int] = typer.Option(None, "--window-days", help="SLA window (default: each SLO's window, 30 days)"),
    parallel: int = typer.Option(8, "--parallel", help="hosts checked at once"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress lines, only the summary"),
) -> None:
    """Verify the security controls on hosts and clusters and the SLAs of platforms and WAN links.

    Controls come from the catalog (checks/catalog.yaml: id, Vietnamese and
    English title, severity, security levels, references to TCVN 11930:2017,
    TCVN 14423:2026, CIS and NIST SP 800-53). What runs:

    - host controls (sshd, nftables, WireGuard, chrony, rsyslog, node_exporter,
      sysctls, accounts) on the gateway and every site, over SSH with
      pytest-testinfra from inside the lab's management namespace, hosts in
      parallel;
    - cluster controls (default deny, Pod Security, quotas, RBAC, encryption at
      rest, NetworkPolicies = the dependency graph...) on every cluster, through
      the Kubernetes API;
    - SLA controls (availability, latency and error budget per platform, WAN
      link availability per site, burn-rate pages) from the lab's Prometheus.

    Every result has the control id, target, status (pass, fail, error,
    skipped with a reason), evidence and time.  Results go to --output (default
    out/results/latest.json) and a timestamped copy beside it.  Exit codes:
    0 everything passed (or was skipped); 1 a control failed or could not be
    decided (error); 2 bad input (unknown control, target or province file);
    3 the lab is not running.

    Examples:
      dcops check
      dcops check --only DCOPS-SSH-001,DCOPS-SSH-002 --target so-tc
      dcops check --target dvc            # the platform's SLAs
      dcops check --target primary        # the cluster's controls
    """
    if ctx.invoked_subcommand is not None:
        return
    from checks.catalog import catalog
    from checks.controls import cluster as K
    from checks.controls import host as H
    from checks.result import any_failed, summarize, write_results
    from infra.cli import province_or_exit
    from infra.paths import lab_name

    from checks import sla

    cat = catalog()
    pf = province_or_exit(province)
    try:
        lab = lab_name(name)
    except ValueError as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)

    only_ids = set(_split(only))
    unknown = sorted(only_ids - set(cat.ids()))
    if unknown:
        err.print(f"error: unknown control(s): {', '.join(unknown)} (see checks/catalog.yaml)", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    targets = set(_split(target))
    hosts_all = {"gateway", *pf.site_by_id}
    clusters_all = set(pf.cluster_by_id)
    platforms_all = set(pf.platform_by_id)
    bad_t = sorted(targets - hosts_all - clusters_all - platforms_all)
    if bad_t:
        err.print(f"error: unknown target(s): {', '.join(bad_t)} (sites, 'gateway', platforms or clusters of {province})", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)

    from infra.lab.state import LabState

    if not LabState.load(lab).alive():
        err.print(f"error: lab '{lab}' is not running: `dcops lab up --name {lab}` first", markup=False)
        raise typer.Exit(EXIT_ENV)

    def wanted(ids) -> set[str] | None:
        sel = set(ids) & only_ids if only_ids else set(ids)
        return sel or None

    prog = _Progress(quiet)
    results = []
    t0 = time.monotonic()

    # -- hosts
    host_ids = wanted(H.CONTROLS)
    host_targets = (targets & hosts_all) if targets else hosts_all
    if host_ids and host_targets:
        prog.phase(f"hosts: {len(host_targets)} host(s), {len(host_ids)} control(s), over SSH from {lab}-mgmt")
        try:
            results += H.check_hosts(lab, pf, names=host_targets, only=host_ids, parallel=parallel, on_result=prog)
        except Exception as e:  # lab without WAN hosts
            for h in sorted(host_targets):
                for cid in sorted(host_ids):
                    from checks.result import Result

                    r = Result.err(cid, h, f"cannot reach the lab's hosts: {e}")
                    results.append(r)
                    prog(r)

    # -- clusters
    k8s_ids = wanted(K.CONTROLS)
    cluster_targets = (targets & clusters_all) if targets else clusters_all
    if k8s_ids and cluster_targets:
        from infra.lab import controlplane as cp

        for cid_ in sorted(cluster_targets):
            prog.phase(f"cluster {cid_}: {len(k8s_ids)} control(s) through the Kubernetes API")
            for r in K.check_cluster(cp.kubeconfig_path(lab, cid_), pf, cid_, lab=lab, only=k8s_ids):
                results.append(r)
                prog(r)

    # -- SLAs
    sla_ids = wanted(["DCOPS-SLA-001", "DCOPS-SLA-002", "DCOPS-SLA-003", "DCOPS-SLA-004"])
    sla_targets = (targets & (platforms_all | set(pf.site_by_id))) if targets else None
    if sla_ids and (sla_targets is None or sla_targets):
        from checks import monitoring
        from checks.netns import in_netns
        from checks.result import Result

        info = monitoring.running(lab)
        prog.phase("SLAs from Prometheus" + (f" ({info['url']} in {info['netns']})" if info else ""))
        if not info:
            reason = f"Prometheus is not running in lab '{lab}' (start it with `dcops check monitor --name {lab}`)"
            for p in pf.platforms:
                for cid in ("DCOPS-SLA-001", "DCOPS-SLA-002", "DCOPS-SLA-004"):
                    if cid in sla_ids and (sla_targets is None or p.id in sla_targets):
                        results.append(Result.err(cid, p.id, reason)); prog(results[-1])
            for s in pf.wan.sites:
                for cid in ("DCOPS-SLA-003", "DCOPS-SLA-004"):
                    if cid in sla_ids and (sla_targets is None or s.id in sla_targets):
                        results.append(Result.err(cid, s.id, reason)); prog(results[-1])
        else:
            rs = in_netns(info["netns"], lambda: sla.run_all(pf, sla.Prom(info["url"]), window_days=window_days, only=sla_ids, targets=sla_targets))
            for r in rs:
                results.append(r)
                prog(r)

    if not results:
        err.print("nothing selected: check --only and --target", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    meta = {
        "lab": lab,
        "province": str(province),
        "province_code": pf.province.code,
        "security_level": pf.province.security_level,
        "audit_standard": pf.province.audit_standard,
        "catalog_version": cat.version,
        "selection": {"only": sorted(only_ids), "targets": sorted(targets)},
        "seconds": round(time.monotonic() - t0, 1),
    }
    paths = write_results(results, output, meta)
    Console(highlight=False, width=max(out.width, 150)).print(summary_table(results, cat))
    s = summarize(results)
    out.print(
        f"{s['total']} result(s): {s['pass']} pass, {s['fail']} fail, {s['error']} error, {s['skipped']} skipped "
        f"in {meta['seconds']}s; results: {paths[0]} (copy {paths[1].name})",
        markup=False,
    )
    raise typer.Exit(EXIT_FAILED if any_failed(results) else EXIT_OK)


@check_app.command("monitor")
def monitor(
    name: Optional[str] = typer.Option(None, "--name", "-n", help="lab name (default $DCOPS_LAB or 'dcops')"),
    province: Path = typer.Option(Path("stacks/province-lab.yaml"), "--province", "-p", help="province file"),
) -> None:
    """Start the lab's monitoring: Prometheus and blackbox_exporter in the management namespace.

    The scrape configuration, SLI recording rules and burn-rate alerts are
    generated from the province file's SLOs (infra/render/prometheus.py) into
    ~/.cache/dcops/labs/<name>/monitoring/.  Both processes listen on the
    namespace's loopback only and are ended by `dcops lab down`.  Exit 3 when
    the lab (its WAN hosts) is not running.
    """
    from checks import monitoring
    from infra.cli import province_or_exit
    from infra.paths import ToolMissing, lab_name

    pf = province_or_exit(province)
    lab = lab_name(name)
    try:
        monitoring.start(lab, pf, progress=lambda m: out.print(m, markup=False))
    except ToolMissing as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(EXIT_ENV)
    except Exception as e:
        err.print(f"error: monitoring did not start in lab '{lab}': {e}", markup=False)
        raise typer.Exit(EXIT_ENV)
    # A fresh Prometheus has no SLI yet: wait for its first rule evaluations, so that a
    # `dcops check` right after this sees every platform and site instead of "series missing".
    from infra.lab import netexec

    started = netexec.layout(lab).get("ssh", {})
    sites = len([s for s in pf.wan.sites if s.id in started])
    t0 = time.monotonic()
    try:
        monitoring.wait_for_samples(lab, pf, timeout=120, sites=sites)
        out.print(f"first SLI samples of {len(pf.platforms)} platforms and {sites} sites recorded ({time.monotonic() - t0:.0f}s)",
                  markup=False)
    except TimeoutError as e:
        err.print(f"warning: {e}; the SLA checks report those as errors until Prometheus has them", markup=False)
