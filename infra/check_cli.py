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

from .cli_common import (
    EXIT_BAD_INPUT,
    EXIT_ENV,
    EXIT_FAILED,
    EXIT_OK,
    ConfigFileOpt,
    StackOpt,
    exit_with_problems,
    stack_or_exit,
)

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
                mark = {"pass": "ok  ", "fail": "FAIL", "error": "ERR ", "skipped": "skip", "not_assessed": "n/a ",
                        "insufficient_data": "data", "waived": "wvd "}.get(r.status.value, r.status.value[:4])
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
    for col in ("pass", "fail", "error", "skipped", "n/a"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("failing targets", max_width=40, overflow="ellipsis", no_wrap=True)
    for cid in sorted(by):
        c = catalog.get(cid)
        n = by[cid]
        t.add_row(cid, c.severity, c.title_en[:48], str(n["pass"]), str(n["fail"]), str(n["error"]), str(n["skipped"]), str(n["not_assessed"]),
                  ", ".join(sorted(failing[cid]))[:60])
    return t


def _dry_run(st, pf, host_targets, cluster_targets, sla_wanted) -> None:
    """What `dcops check` would contact and how; contacts nothing."""
    from infra.environment_ssh import access

    t = Table(title=f"dcops check --list: stack '{st.name}' ({st.env.kind}); nothing is contacted")
    for col in ("target", "kind", "address", "through", "as"):
        t.add_column(col)
    if host_targets:
        a = access(st, pf)
        present = set(st.hosts_present(list(a.addresses)))
        for h in [h for h in a.addresses if h in host_targets]:
            j = a.jumps.get(h)
            via = f"jump host {j.user + '@' if j and j.user else ''}{j.host}:{j.port}" if j else "direct"
            t.add_row(h, "host" if h in present else "host (not in wan.hosts: skipped)", f"{a.addresses[h]}:{a.port}",
                      via + (f", netns {st.env.management_netns}" if st.env.management_netns else ""), f"{a.user} (ssh -F {a.config})")
    for c in sorted(cluster_targets):
        if c not in st.env.clusters:
            t.add_row(c, "cluster", "-", "no access in this environment (not assessed)", "-")
            continue
        kc, ctx = st.kubeconfig(c, "checks")
        server = "?"
        try:
            import yaml

            doc = yaml.safe_load(kc.read_text()) or {}
            if not isinstance(doc, dict):
                raise ValueError("not a kubeconfig")
            cur = ctx or doc.get("current-context")
            cname = next((x["context"]["cluster"] for x in doc.get("contexts") or [] if x.get("name") == cur), None)
            server = next((x["cluster"]["server"] for x in doc.get("clusters") or [] if x.get("name") == cname), "?")
        except (OSError, ValueError, KeyError, TypeError) as e:
            server = f"(kubeconfig unreadable: {e.__class__.__name__})"
        ev = st.env.clusters[c].evidence
        have = [w for w, ok in (("API server args", ev and ev.apiserver_args_file), ("encryption config", ev and ev.encryption_config_file),
                                ("etcd", ev and ev.etcd)) if ok]
        t.add_row(c, "cluster", server, "evidence: " + (", ".join(have) if have else "none (encryption at rest: not assessed)"),
                  f"{kc}{' context ' + ctx if ctx else ''}")
    if sla_wanted:
        p = st.env.prometheus
        how = "basic auth " + p.basic_auth.username if p.basic_auth else "bearer token" if p.bearer_token else "no credentials"
        t.add_row("SLAs", "prometheus", p.url, f"CA {p.ca_file or 'system trust store'}", how)
    Console(highlight=False, width=max(out.width, 200)).print(t)


def _prom_or_exit(st):
    from checks import sla

    try:
        prom = sla.Prom.for_stack(st)
        prom.probe()
    except sla.PromUnavailable as e:
        err.print(f"error: {e}; nothing was checked.", markup=False)
        raise typer.Exit(EXIT_ENV)
    except Exception as e:  # a secret that cannot be read
        err.print(f"error: Prometheus of stack '{st.name}': {e}; nothing was checked.", markup=False)
        raise typer.Exit(EXIT_ENV)
    return prom


@check_app.callback(invoke_without_command=True)
def check(
    ctx: typer.Context,
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    only: list[str] = typer.Option([], "--only", help="control id(s) to run, e.g. DCOPS-SSH-001 (repeat or comma-separate)"),
    target: list[str] = typer.Option([], "--target", "-t", help="site id, 'gateway' ('gateway-standby' with two hubs), platform id or cluster id (repeat or comma-separate)"),
    output: Path = typer.Option(DEFAULT_OUTPUT, "--output", "-o", help="JSON results (a timestamped copy is written beside it)"),
    window_days: Optional[int] = typer.Option(None, "--window-days", help="SLA window (default: each SLO's window, 30 days)"),
    # checks.controls.host.DEFAULT_PARALLEL (a literal here: --help imports no checks; a test keeps them equal)
    parallel: int = typer.Option(50, "--parallel", help="hosts checked at once (as `wan apply --forks`; each is one SSH connection and a thread)"),
    list_only: bool = typer.Option(False, "--list", help="show what would be contacted and how (hosts, jump hosts, clusters, Prometheus); contact nothing"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress lines, only the summary"),
    waivers: Optional[Path] = typer.Option(None, "--waivers", help="waivers file (e.g. stacks/waivers-lab.yaml): a failure it "
                                                                    "covers is 'waived', with its justification, and does not fail the run"),
) -> None:
    """Verify the security controls on hosts and clusters and the SLAs of platforms and WAN links.

    Controls come from the catalog (checks/catalog.yaml: id, Vietnamese and
    English title, severity, security levels, references to TCVN 11930:2017,
    TCVN 14423:2025, CIS and NIST SP 800-53). Where they connect comes from the
    stack's environment (-s STACK; default 'lab', the running lab):

    \b
    - host controls (sshd, nftables, WireGuard, chrony, rsyslog, node_exporter,
      sysctls, accounts) on the gateway and every site, over SSH (the
      environment's user, key, known_hosts, jump hosts) with pytest-testinfra,
      hosts in parallel;
    - cluster controls (default deny, Pod Security, quotas, RBAC, encryption at
      rest, NetworkPolicies = the dependency graph...) through the Kubernetes
      API with the environment's read-only identity; what it cannot see (for
      example encryption at rest without the control plane's evidence) is
      "not assessed", with the reason;
    - SLA controls (availability, latency and error budget per platform, WAN
      link availability per site, burn-rate pages) from the environment's
      Prometheus, over HTTPS with its CA and credentials.

    Every result has the control id, target, status (pass, fail, error,
    skipped or not_assessed with a reason), evidence and time.  Results go to
    --output (default out/results/latest.json) and a timestamped copy beside
    it.  Exit codes: 0 everything passed (or was skipped / not assessed); 1 a
    control failed or could not be decided (error); 2 bad input (unknown
    control, target, province file or environment); 3 the environment cannot
    be used (the lab is not up; Prometheus unreachable, its certificate not
    trusted, or the credentials refused): nothing was checked; or a cluster's
    API server did not answer its probe (GET /readyz within 5 s): every
    control of that cluster is 'error' with the reason, the other targets
    were checked and the results written.

    \b
    Examples:
      dcops check --list                  # what would be contacted, and how
      dcops check -s thanhhoa
      dcops check --only DCOPS-SSH-001,DCOPS-SSH-002 --target so-tc
      dcops check --target dvc            # the platform's SLAs
      dcops check --target primary        # the cluster's controls
    """
    if ctx.invoked_subcommand is not None:
        return
    from checks.catalog import catalog
    from checks.controls import cluster as K
    from checks.controls import host as H
    from checks.result import Result, any_failed, summarize, write_results
    from infra.validate import load_province

    from checks import sla

    cat = catalog()
    st = stack_or_exit(stack, config_file, enter_netns=not list_only)
    pf = load_province(st.province)
    from infra.dr.placement import PlacementError, placement as dr_placement

    try:  # a platform a failover moved is checked on the cluster it runs on (dcops dr status)
        pf = pf.placed(dr_placement(st.work_dir))
    except PlacementError as e:
        err.print(f"error: the DR placement record: {e}; nothing was checked.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)

    waived_by = None
    if waivers is not None:
        from infra.waivers import WaiverError, load as load_waivers

        try:
            waived_by = load_waivers(waivers, cat, pf)
        except WaiverError as e:
            exit_with_problems(e.file, e.problems, "nothing was checked")

    only_ids = set(_split(only))
    unknown = sorted(only_ids - set(cat.ids()))
    if unknown:
        err.print(f"error: unknown control(s): {', '.join(unknown)} (see checks/catalog.yaml)", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    targets = set(_split(target))
    hosts_all = {"gateway", *(["gateway-standby"] if pf.wan.standby else []), *pf.site_by_id}
    clusters_all = set(pf.cluster_by_id)
    platforms_all = set(pf.platform_by_id)
    bad_t = sorted(targets - hosts_all - clusters_all - platforms_all)
    if bad_t:
        hubs_named = "'gateway', 'gateway-standby'" if pf.wan.standby else "'gateway'"
        err.print(f"error: unknown target(s): {', '.join(bad_t)} (sites, {hubs_named}, platforms or clusters of {st.province})", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)

    def wanted(ids) -> set[str] | None:
        sel = set(ids) & only_ids if only_ids else set(ids)
        return sel or None

    host_ids = wanted(H.CONTROLS)
    host_targets = (targets & hosts_all) if targets else hosts_all
    k8s_ids = wanted(K.CONTROLS)
    cluster_targets = (targets & clusters_all) if targets else clusters_all
    sla_ids = wanted(["DCOPS-SLA-001", "DCOPS-SLA-002", "DCOPS-SLA-003", "DCOPS-SLA-004"])
    sla_targets = (targets & (platforms_all | set(pf.site_by_id))) if targets else None
    sla_wanted = bool(sla_ids and (sla_targets is None or sla_targets))
    from checks.controls import backup as BAK

    bak_ids = wanted(BAK.CONTROLS)
    bak_targets = (targets & (clusters_all | platforms_all)) if targets else None
    bak_wanted = bool(bak_ids and (bak_targets is None or bak_targets))
    if not ((host_ids and host_targets) or (k8s_ids and cluster_targets) or sla_wanted or bak_wanted):
        err.print("nothing selected: check --only and --target", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if list_only:
        _dry_run(st, pf, host_targets if host_ids else set(), cluster_targets if k8s_ids else set(), sla_wanted)
        raise typer.Exit(EXIT_OK)

    prom = _prom_or_exit(st) if sla_wanted else None  # before anything else: a wrong CA or password is exit 3

    prog = _Progress(quiet)
    results = []
    t0 = time.monotonic()

    # -- hosts
    if host_ids and host_targets:
        from infra.environment_ssh import access

        acc = access(st, pf)
        present = set(st.hosts_present(list(acc.addresses)))
        prog.phase(f"hosts: {len(host_targets)} host(s), {len(host_ids)} control(s), over SSH (ssh -F {acc.config})")
        try:
            results += H.check_hosts(acc, pf, names=host_targets, only=host_ids, parallel=parallel, on_result=prog,
                                     present=present)  # control sockets in a short private temp dir (108-byte limit)
        except Exception as e:
            for h in sorted(host_targets):
                for cid in sorted(host_ids):
                    r = Result.err(cid, h, f"cannot reach the hosts: {e.__class__.__name__}: {e}")
                    results.append(r)
                    prog(r)

    # -- the clusters' API servers: one bounded probe each, at once, before any control (a frozen or
    # cut-off control plane costs K.PROBE_TIMEOUT once, not a timeout per request of every control)
    probe_set = set(cluster_targets) if k8s_ids else set()
    if bak_wanted:
        probe_set |= {p.cluster for p in pf.platforms}
    probe_set &= set(st.env.clusters)
    down: dict[str, str] = {}
    if probe_set:
        prog.phase(f"API servers: {', '.join(sorted(probe_set))} (GET /readyz, {K.PROBE_TIMEOUT:g} s each, at once)")
        down = K.probe_all({c: st.kubeconfig(c, "checks") for c in sorted(probe_set)}, K.PROBE_TIMEOUT)
        for c in sorted(down):
            err.print(f"error: {down[c]}: its controls are 'error'; the other targets are checked.", markup=False)

    # -- clusters
    if k8s_ids and cluster_targets:
        for cid_ in sorted(cluster_targets):
            if cid_ not in st.env.clusters:
                for k in sorted(k8s_ids):
                    results.append(Result.not_assessed(k, cid_, f"the environment of stack '{st.name}' gives no access to "
                                                                 f"cluster '{cid_}'", {"would_settle": f"clusters.{cid_} in the environment"}))
                    prog(results[-1])
                continue
            kc, kctx = st.kubeconfig(cid_, "checks")
            prog.phase(f"cluster {cid_}: {len(k8s_ids)} control(s) through the Kubernetes API (read-only identity: {kc.name}"
                       + (f", context {kctx}" if kctx else "") + ")")
            for r in K.check_cluster(kc, pf, cid_, K.resolve_evidence(st, cid_), only=k8s_ids, context=kctx,
                                     down=down.get(cid_)):
                results.append(r)
                prog(r)

    # -- backups: Velero's schedules and backups (read-only identity), the restore tests' records
    if bak_wanted:
        prog.phase(f"backups: {len(bak_ids)} control(s), Velero's objects and the restore-test records "
                   f"({st.work_dir / 'dr'})")
        for r in BAK.check_backups(st, pf, only=bak_ids, targets=bak_targets, down=down):
            results.append(r)
            prog(r)

    # -- SLAs
    if sla_wanted:
        prog.phase(f"SLAs from Prometheus ({st.env.prometheus.url})")
        present_sites = set(st.hosts_present([s.id for s in pf.wan.sites]))
        absent = {s.id for s in pf.wan.sites} - present_sites
        chosen = set(sla_targets) if sla_targets is not None else platforms_all | set(pf.site_by_id)
        for r in sla.run_all(pf, prom, window_days=window_days, only=sla_ids, targets=chosen - absent):
            results.append(r)
            prog(r)
        for site in sorted(chosen & absent):
            for cid in sorted({"DCOPS-SLA-003", "DCOPS-SLA-004"} & set(sla_ids)):
                results.append(Result.skip(cid, site, "site not in this environment (wan.hosts)"))
                prog(results[-1])

    meta = {
        "stack": st.name,
        "environment": {"kind": st.env.kind, "name": st.env.name or st.name, "config_file": str(st.config_file)},
        "province": str(st.province),
        "province_code": pf.province.code,
        "security_level": pf.province.security_level,
        "audit_standard": pf.province.audit_standard,
        "catalog_version": cat.version,
        "selection": {"only": sorted(only_ids), "targets": sorted(targets)},
        "seconds": round(time.monotonic() - t0, 1),
    }
    if waived_by is not None:
        from infra.waivers import apply as apply_waivers, describe, vn_date

        day = vn_date(None)
        dicts, wsum = apply_waivers([r.to_dict() for r in results], waived_by, checked_on=day)
        results = [Result.from_dict(d) for d in dicts]
        meta["waivers"] = describe(waived_by, wsum, day)
    paths = write_results(results, output, meta)
    Console(highlight=False, width=max(out.width, 150)).print(summary_table(results, cat))
    s = summarize(results)
    out.print(
        f"{s['total']} result(s): {s['pass']} pass, {s['fail']} fail, {s['error']} error, {s['skipped']} skipped, "
        f"{s['not_assessed']} not assessed, {s['waived']} waived, {s['insufficient_data']} insufficient data in {meta['seconds']}s; results: {paths[0]} (copy {paths[1].name})",
        markup=False,
    )
    if down:  # the environment could not be fully used: say so in the exit code (the results are written)
        err.print(f"error: the API server of {', '.join(sorted(down))} did not answer: exit {EXIT_ENV} "
                  "(its controls are 'error' in the results; the other targets were checked).", markup=False)
        raise typer.Exit(EXIT_ENV)
    raise typer.Exit(EXIT_FAILED if any_failed(results) else EXIT_OK)
