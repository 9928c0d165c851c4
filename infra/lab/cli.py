"""``dcops lab up | status | down | env | kubeconfig | monitor``.

The lab is a real, local copy of the data center on one machine: per cluster
of the province file a Kubernetes control plane (etcd, kube-apiserver,
controller manager, scheduler, kwok with fake nodes) on 127.0.0.1, the WAN's
hosts in network namespaces (when ``infra/lab/hosts.py`` is present), and a
Pulumi file backend with a generated passphrase.  Everything lives in
``~/.cache/dcops/labs/<name>/`` and is recorded in its ``state.json``.

The lab is one environment among others: ``lab up`` writes the environment of
the stack ``lab`` (:mod:`infra.lab.environment`), and every other dcops command
reaches the lab through it, exactly as it reaches a real province.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..cli_common import DEFAULT_PROVINCE, EXIT_BAD_INPUT, EXIT_ENV, EXIT_FAILED, EXIT_OK, err, out
from ..paths import ToolMissing, lab_dir, lab_name, lab_root
from . import netexec

lab_app = typer.Typer(
    help=(
        "Run the lab: a real Kubernetes control plane per cluster of the province file (etcd, "
        "kube-apiserver, controller manager, scheduler, kwok fake nodes) on 127.0.0.1, the WAN hosts in "
        "network namespaces, and a local Pulumi backend.\n\n"
        "Typical: `dcops lab up`, `dcops provision`, `dcops lab monitor`, `dcops lab status`, `dcops lab down`. "
        "Lab name: --name, else $DCOPS_LAB, else 'dcops'; two labs with different names run side by side."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

NameOpt = typer.Option(None, "--name", "-n", help="lab name (1-8 lower-case letters/digits); default $DCOPS_LAB or 'dcops'")


def _name_or_exit(name: str | None) -> str:
    try:
        return lab_name(name)
    except ValueError as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)


def _hosts_module(skip: bool = False):
    """``infra.lab.hosts`` if it exists (written by the WAN-hosts part), else None."""
    if skip or importlib.util.find_spec(f"{__package__}.hosts") is None:
        return None
    return importlib.import_module(f"{__package__}.hosts")


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, msg: str) -> None:
        out.print(f"[{time.monotonic() - self.t0:6.1f}s] {msg}", markup=False)


def _process_table(st, title: str) -> Table:
    from .state import pid_alive

    t = Table(title=title, title_justify="left")
    for col in ("cluster", "component", "pid", "port", "state"):
        t.add_column(col)
    for p in st.data["processes"]:
        comp = p["name"].split("/", 1)[-1]
        port = ",".join(str(v) for v in (p.get("ports") or {}).values()) or "-"
        alive = pid_alive(p["pid"], p.get("start_time"))
        t.add_row(p.get("cluster") or p["component"], comp, str(p["pid"]), port, "running" if alive else "DEAD")
    return t


# --------------------------------------------------------------------------- up


def _sites_arg(site: list[str]) -> int | list[str] | None:
    """--site values: ids, or one number N for the first N sites."""
    if not site:
        return None
    if len(site) == 1 and site[0].isdigit():
        return int(site[0])
    return list(site)


@lab_app.command()
def up(
    province: Path = typer.Option(DEFAULT_PROVINCE, "--province", "-p", help="province file (validated first)"),
    name: Optional[str] = NameOpt,
    no_hosts: bool = typer.Option(False, "--no-hosts", help="start only the Kubernetes part, not the WAN hosts"),
    site: list[str] = typer.Option([], "--site", help="WAN sites to start: ids (repeat) or a number N for the first N; default all"),
    state: str = typer.Option("file", "--state", help="the Pulumi backend: file (one engineer; the default) or s3 "
                              "(a shared, locking S3-compatible object store in the lab, as a team keeps its state)"),
) -> None:
    """Start the lab: a Kubernetes control plane per cluster, the WAN hosts, the Pulumi backend.

    Validates the province file first (a bad file: exit 2, nothing started).
    Per cluster of datacenter.clusters it starts etcd, kube-apiserver (TLS,
    RBAC, NodeRestriction and PodSecurity admission, Secrets encrypted at
    rest), kube-controller-manager, kube-scheduler and kwok on free 127.0.0.1
    ports, registers a fake node per node-pool member (labels, taints, CPU and
    memory of the model), writes the admin kubeconfig to
    ~/.cache/dcops/labs/<name>/k8s/<cluster>/kubeconfig and waits until the API
    is ready and every node is Ready.  It also makes the lab's Pulumi
    passphrase (0600, never printed).

    If the lab already runs it says so and exits 0.  Exit 3 when a tool is
    missing (run scripts/install-tools) or a component fails to start (its log
    tail is printed and everything started is stopped again).
    """
    from ..cli_common import province_or_exit
    from .. import pulumi_env
    from . import controlplane as cp
    from .state import LabBusy, LabState, lab_lock

    n = _name_or_exit(name)
    if state not in ("file", "s3"):
        err.print(f"error: --state must be file or s3, not '{state}'; nothing started.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    model = province_or_exit(province)
    wanted = _sites_arg(site)
    if isinstance(wanted, list):
        unknown = [x for x in wanted if x not in model.site_by_id]
        if unknown:
            err.print(f"error: --site: unknown site(s) {', '.join(unknown)} (the ids of wan.sites in {province}); "
                      "nothing started.", markup=False)
            raise typer.Exit(EXIT_BAD_INPUT)
    try:
        cp.check_tools()
    except ToolMissing as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(EXIT_ENV)
    hosts = _hosts_module(no_hosts)

    try:
        with lab_lock(n):
            st = LabState.load(n)
            alive = st.alive()
            dead = [p for p in st.processes() if p not in alive]
            if alive and dead:
                err.print(
                    f"lab '{n}' runs, but {len(dead)} of its processes are gone "
                    f"({', '.join(p['name'] for p in dead[:6])}); nothing started. "
                    f"Logs in {lab_dir(n)}; restart it with `dcops lab down --name {n}` then `dcops lab up --name {n}`.",
                    markup=False,
                )
                raise typer.Exit(EXIT_FAILED)
            if alive:
                out.print(
                    f"lab '{n}' is already running ({len(alive)} processes, {lab_dir(n)}); nothing started. "
                    f"See `dcops lab status --name {n}`; `dcops lab down --name {n}` stops it.",
                    markup=False,
                )
                raise typer.Exit(EXIT_OK)
            if not st.is_empty():
                out.print(f"lab '{n}' has a stale record (its processes are gone): cleaning it up first", markup=False)
                _down(n, hosts_too=True, quiet=True)
            clock = _Clock()
            clock(f"lab '{n}': starting from {province} in {lab_dir(n)}")
            partial: str | None = None
            try:
                pulumi_env.prepare(n)
                LabState.load(n).set("province", str(province.resolve()))
                cp.up(model, n, progress=clock)
                if hosts is not None:
                    clock("WAN hosts: starting (infra.lab.hosts)")
                    try:
                        hosts.up(model, n, sites=_sites_arg(site), progress=clock)
                    except getattr(hosts, "HostsFailed", ()) as e:  # the rest of the lab is usable
                        partial = str(e)
            except (cp.LabError, ToolMissing, OSError, RuntimeError) as e:
                err.print(f"error: lab '{n}' did not come up: {e}", markup=False)
                err.print("stopping what was started...", markup=False)
                _down(n, hosts_too=True, quiet=True)
                raise typer.Exit(EXIT_ENV)
            except BaseException:
                _down(n, hosts_too=True, quiet=True)
                raise
            try:
                from . import environment as labenv

                if labenv.start_forwarder(n):
                    clock(f"control-plane ports published inside {n}-mgmt (infra.lab.portfwd)")
                if state == "s3":
                    from . import objectstore

                    objectstore.start(n, progress=clock)
                cfg = labenv.write(n, model, province)
                clock(f"environment of stack 'lab' written: {cfg}")
            except (RuntimeError, OSError) as e:
                err.print(f"error: lab '{n}': its environment could not be written: {e}", markup=False)
                _down(n, hosts_too=True, quiet=True)
                raise typer.Exit(EXIT_ENV)
            st = LabState.load(n)
            out.print(_process_table(st, f"lab '{n}' is up ({time.monotonic() - clock.t0:.1f}s)"))
            for c in cp.clusters_of(st):
                out.print(f"  {c}: export KUBECONFIG={cp.kubeconfig_path(n, c)}", markup=False)
            out.print(f"  use it like a province: eval \"$(dcops lab env --name {n})\"; then dcops provision, "
                      "dcops wan apply, dcops check, dcops report (stack 'lab')", markup=False)
            if partial:
                err.print(f"warning: lab '{n}' is up, but {partial}", markup=False)
                raise typer.Exit(EXIT_FAILED)
    except LabBusy as e:
        out.print(f"{e} (a `lab up` or `lab down` is in progress); nothing started.", markup=False)
        raise typer.Exit(EXIT_OK)


# --------------------------------------------------------------------------- status


@lab_app.command()
def status(
    name: Optional[str] = NameOpt,
    no_hosts: bool = typer.Option(False, "--no-hosts", help="do not ask the WAN-hosts part"),
) -> None:
    """Show what the lab runs: every recorded process (alive or DEAD), ports, API health, nodes Ready.

    Exit 0 when everything recorded runs and every API is ready, 1 when
    something is dead or unhealthy, 3 when the lab is not running.
    """
    from . import controlplane as cp
    from .state import LabState

    n = _name_or_exit(name)
    st = LabState.load(n)
    if st.is_empty():
        out.print(f"lab '{n}' is not running (no record in {lab_dir(n)}); start it with `dcops lab up --name {n}`",
                  markup=False)
        raise typer.Exit(EXIT_ENV)
    out.print(_process_table(st, f"lab '{n}' ({lab_dir(n)})"))
    bad = len(st.processes()) - len(st.alive())
    for c in cp.clusters_of(st):
        h = cp.cluster_health(n, c)
        ok = h["api"] and h["nodes"] and h["ready"] == h["nodes"]
        bad += 0 if ok else 1
        out.print(
            f"{c}: API {'ready' if h['api'] else 'NOT ready (' + h['detail'] + ')'}, "
            f"nodes Ready {h['ready']}/{h['nodes']}, kubeconfig {cp.kubeconfig_path(n, c)}",
            markup=False,
        )
    hosts = _hosts_module(no_hosts)
    if hosts is not None:
        try:
            rows = hosts.status(n) or []
            if rows:
                t = Table(title="WAN hosts", title_justify="left")
                cols = [c for c in ("host", "kind", "netns", "address", "pid", "running", "ssh") if c in rows[0]]
                for c in cols:
                    t.add_column(c)
                for r in rows:
                    t.add_row(*("-" if r.get(c) is None else str(r.get(c)) for c in cols))
                out.print(t)
                bad += sum(1 for r in rows if not r.get("running") or r.get("ssh") is False)
        except Exception as e:  # the hosts part's own failure must not hide ours
            err.print(f"WAN hosts: status failed: {e}", markup=False)
            bad += 1
    raise typer.Exit(EXIT_OK if bad == 0 else EXIT_FAILED)


# --------------------------------------------------------------------------- down


def _down(n: str, hosts_too: bool = True, quiet: bool = False, timeout: float = 15.0) -> int:
    """Stop everything recorded for lab ``n`` and remove its directory. Returns the number of problems."""
    from . import controlplane as cp
    from .state import LabState

    say = (lambda m: None) if quiet else (lambda m: out.print(m, markup=False))
    problems = 0
    st = LabState.load(n)
    # 1. The Kubernetes part first (it depends on nothing else).
    # Clients before etcd, so that nothing loses its store while still running.
    k8s = list(reversed(st.processes(cp.COMPONENT)))
    left = cp.stop_processes([p for p in k8s if not p["name"].endswith("/etcd")], timeout=timeout, progress=say)
    left += cp.stop_processes([p for p in k8s if p["name"].endswith("/etcd")], timeout=timeout, progress=say)
    for p in st.processes(cp.COMPONENT):
        say(f"stopped {p['name']} (pid {p['pid']})" if p not in left else f"could NOT stop {p['name']} (pid {p['pid']})")
    problems += len(left)
    # 2. The WAN hosts (namespaces, links, mounts, their processes).
    hosts = _hosts_module(not hosts_too)
    if hosts is not None:
        had_hosts = bool(LabState.load(n).processes("hosts") or LabState.load(n).get("hosts.layout"))
        try:
            hosts.down(n, progress=say)
            if had_hosts:
                say("WAN hosts: down")
        except Exception as e:
            err.print(f"WAN hosts: down failed: {e}", markup=False)
            problems += 1
    # 3. Any other recorded process (whoever recorded it).
    st = LabState.load(n)
    rest = [p for p in reversed(st.processes()) if p["component"] != cp.COMPONENT]
    left2 = cp.stop_processes(rest, timeout=timeout, progress=say)
    problems += len(left2)
    # 4. Files: the whole lab directory, unless something is still alive or the
    #    hosts part failed (keep the record so a second `down` can finish).
    d = lab_dir(n)
    if problems == 0:
        root = lab_root().resolve()
        if d.exists() and d.resolve().parent == root:
            shutil.rmtree(d)
            say(f"removed {d}")
    else:
        err.print(f"lab '{n}': {problems} problem(s); kept {d} so that `dcops lab down --name {n}` can retry",
                  markup=False)
    return problems


@lab_app.command()
def down(
    name: Optional[str] = NameOpt,
    timeout: float = typer.Option(15.0, help="seconds to wait after SIGTERM before SIGKILL"),
) -> None:
    """Stop everything the lab started and remove everything it made.

    Processes are ended by the PIDs recorded in the lab's state (SIGTERM, then
    SIGKILL after --timeout; a PID reused by another program is never
    signalled, nothing is ever killed by name).  The WAN hosts part removes its
    namespaces, links and mounts.  Then the lab directory (certificates,
    kubeconfigs, etcd data, logs, Pulumi state and passphrase) is deleted.
    Safe to run twice: a lab that is not running is left as it is (exit 0).
    Exit 1 if something could not be stopped (the record is kept to retry).
    """
    from .state import LabBusy, LabState, lab_lock

    n = _name_or_exit(name)
    if not lab_dir(n).exists():
        out.print(f"lab '{n}' is not running; nothing to do", markup=False)
        raise typer.Exit(EXIT_OK)
    try:
        with lab_lock(n, wait=120):
            if LabState.load(n).is_empty() and not any(
                p for p in lab_dir(n).iterdir() if p.name not in (".lab.lock", ".state.lock")
            ):
                shutil.rmtree(lab_dir(n), ignore_errors=True)
                out.print(f"lab '{n}' is not running; nothing to do", markup=False)
                raise typer.Exit(EXIT_OK)
            t0 = time.monotonic()
            problems = _down(n)
    except LabBusy as e:
        err.print(f"{e}; try again when it has finished", markup=False)
        raise typer.Exit(EXIT_ENV)
    if problems:
        raise typer.Exit(EXIT_FAILED)
    out.print(f"lab '{n}' is down ({time.monotonic() - t0:.1f}s)", markup=False)


# --------------------------------------------------------------------------- helpers for people


@lab_app.command()
def kubeconfig(
    cluster: str = typer.Argument(..., help="cluster id from the province file, e.g. primary"),
    name: Optional[str] = NameOpt,
) -> None:
    """Print the path of a lab cluster's admin kubeconfig (use: export KUBECONFIG=$(dcops lab kubeconfig primary))."""
    from . import controlplane as cp

    n = _name_or_exit(name)
    p = cp.kubeconfig_path(n, cluster)
    if not p.exists():
        err.print(f"lab '{n}' has no cluster '{cluster}' running (no {p})", markup=False)
        raise typer.Exit(EXIT_ENV)
    out.print(str(p), markup=False)


@lab_app.command("env")
def env_cmd(name: Optional[str] = NameOpt) -> None:
    """Print shell exports to use the lab by hand: eval "$(dcops lab env)".

    DCOPS_STACK=lab and DCOPS_CONFIG_FILE (the lab's stack config with its
    environment, <lab dir>/Pulumi.lab.yaml): every dcops command then works on
    the lab with no option. For `pulumi` itself: the lab's file backend, the
    passphrase FILE (the passphrase itself is never printed), PULUMI_HOME, no
    update checks or plugin downloads, PATH with the tools first, and
    DCOPS_PULUMI_ARGS (`--stack lab --config-file <lab dir>/Pulumi.lab.yaml`, so
    the repository's stacks/Pulumi.lab.yaml is never rewritten): then
    `pulumi up $DCOPS_PULUMI_ARGS`, as `dcops provision` does. Run pulumi
    inside the lab's management namespace (ip netns exec <lab>-mgmt ...), as
    dcops does, or from the machine: the API servers answer in both.
    """
    from .. import pulumi_env
    from . import environment as labenv

    n = _name_or_exit(name)
    out.print(pulumi_env.shell_exports(n), markup=False)
    out.print(labenv.shell_exports(n), markup=False)


def _running_province_or_exit(n: str) -> str:
    """The province file of lab ``n`` as `lab up` recorded it; exit 3 when the lab is not running."""
    from .state import LabState

    prov = LabState.load(n).get("province")
    if not prov:
        err.print(f"error: lab '{n}' is not running: `dcops lab up --name {n}` first", markup=False)
        raise typer.Exit(EXIT_ENV)
    return prov


def _start_or_exit(what: str, n: str, start) -> None:
    """Run a lab service's start; a missing tool or a start that fails is exit 3 with its reason."""
    try:
        start()
    except ToolMissing as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(EXIT_ENV)
    except Exception as e:
        err.print(f"error: {what} did not start in lab '{n}': {e}", markup=False)
        raise typer.Exit(EXIT_ENV)


@lab_app.command("backups")
def backups(
    name: Optional[str] = NameOpt,
) -> None:
    """Start the lab's backup site: Velero beside every cluster, storing to the lab's S3.

    The lab's object store (SeaweedFS, HTTPS, random keys, in the management
    namespace) holds the bucket; the lab's environment gets its backup target;
    Velero's objects (CRDs, the location, a Schedule per platform from the
    province file) are applied and one `velero server` per cluster runs in a
    namespace of its own, recorded and ended by `dcops lab down`. Then
    `dcops dr backup -s lab` and `dcops dr restore-test -s lab` work as on a
    province. Exit 3 when the lab is not running or a server does not start.
    """
    from . import velero

    n = _name_or_exit(name)
    _running_province_or_exit(n)
    _start_or_exit("the backup site", n, lambda: velero.start(n, progress=lambda m: out.print(m, markup=False)))


@lab_app.command("monitor")
def monitor(
    name: Optional[str] = NameOpt,
    reload_only: bool = typer.Option(False, "--reload-only", help="only where the lab's monitoring already runs: "
                                     "re-render its configuration (from the DR placement record) and reload it; "
                                     "otherwise say so and start nothing (what `dcops dr failover` calls)"),
) -> None:
    """Start the lab's monitoring: Prometheus and blackbox_exporter in the management namespace.

    The scrape configuration, SLI recording rules and burn-rate alerts are
    generated from the lab's province file (infra/render/prometheus.py) into
    ~/.cache/dcops/labs/<name>/monitoring/. Prometheus is served as in
    production: HTTPS with a certificate of the lab's monitoring CA and basic
    auth (the password file and CA are named in the lab's environment). Both
    processes listen on the namespace's loopback only and are ended by
    `dcops lab down`. Exit 3 when the lab (its WAN hosts) is not running.
    """
    from ..cli_common import province_or_exit
    from . import monitoring

    n = _name_or_exit(name)
    pf = province_or_exit(Path(_running_province_or_exit(n)))
    if reload_only and not monitoring.running(n):
        out.print(f"the monitoring of lab '{n}' is not running: nothing to reload", markup=False)
        return
    _start_or_exit("monitoring", n, lambda: monitoring.start(n, pf, progress=lambda m: out.print(m, markup=False)))
    # A fresh Prometheus has no SLI yet: wait for its first rule evaluations, so that a
    # `dcops check` right after this sees every platform and site instead of "series missing".
    started = netexec.layout(n).get("ssh", {})
    sites = len([s for s in pf.wan.sites if s.id in started])
    t0 = time.monotonic()
    try:
        monitoring.wait_for_samples(n, pf, timeout=120, sites=sites)
        out.print(f"first SLI samples of {len(pf.platforms)} platforms and {sites} sites recorded ({time.monotonic() - t0:.0f}s)",
                  markup=False)
    except TimeoutError as e:
        err.print(f"warning: {e}; the SLA checks report those as errors until Prometheus has them", markup=False)


